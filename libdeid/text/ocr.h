/* libdeid internal: the Tesseract calls of text/ (ocr.c), behind plain C types. Without
 * Tesseract every call fails with DEID_ERR_UNSUPPORTED. */
#ifndef DEID_TEXT_OCR_H
#define DEID_TEXT_OCR_H

#include <stddef.h>
#include <stdint.h>
#include "deid/status.h"

/* A word (or line) Tesseract read: box in the coordinates of the image it was given. */
typedef struct deid_ocr_word {
    int x, y, w, h;
    float conf;  /* 0..100 */
    char *text;  /* malloc'ed UTF-8 */
    int line;    /* index of the text line the word belongs to, within one call */
} deid_ocr_word;

typedef struct deid_ocr_words {
    deid_ocr_word *v;
    size_t n, cap;
} deid_ocr_words;

/* Page segmentation modes used by text/ (Tesseract's numbers). */
#define DEID_OCR_PSM_SINGLE_BLOCK 6
#define DEID_OCR_PSM_SINGLE_LINE 7
#define DEID_OCR_PSM_SINGLE_WORD 8
#define DEID_OCR_PSM_SINGLE_CHAR 10
#define DEID_OCR_PSM_SPARSE 11

/* Load Tesseract with `tessdata` (folder) and `language`; *out is an opaque handle. */
deid_status deid__ocr_new(const char *tessdata, const char *language, void **out);
void deid__ocr_free(void *tess);

/* Recognise an 8-bit grey image (rows x cols, `stride` bytes per row) with page segmentation
 * `psm` and append every non-empty word to `out` (boxes in image coordinates). */
deid_status deid__ocr_words(void *tess, const uint8_t *px, size_t cols, size_t rows,
                            size_t stride, int psm, deid_ocr_words *out);

void deid__ocr_words_clear(deid_ocr_words *w);

#endif
