/* libdeid internal: what the files of text/ share. The public API is include/deid/text.h.
 *   engine.c   options, engine (Tesseract instance), deid_text_detect's frame loop
 *   prepare.c  frames to 8-bit detection planes (windowing, colour, CLAHE)
 *   detect.c   the passes: stroke-contrast line candidates, Tesseract page layout; merging;
 *              decisions
 *   ocr.c      Tesseract calls (read a crop, page layout), compiled only with Tesseract
 *   phi.c      PHI terms and fuzzy matching
 *   result.c   result container, accessors, JSON
 *   redact.c   fills (solid, inpaint) and the residual check
 *   process.c  DICOM objects (frames, overlays, bookkeeping) and raster files */
#ifndef DEID_TEXT_INT_H
#define DEID_TEXT_INT_H

#include <stddef.h>
#include <stdint.h>
#include "core/core.h"
#include "deid/text.h"
#include "deid_config.h"

/* ---- engine ---------------------------------------------------------------------------------- */

struct deid_text_engine {
    deid_text_options opts;  /* defaults resolved (passes != 0, jpeg_quality != 0...) */
    char *tessdata, *language;
    void *tess;              /* TessBaseAPI *, NULL without Tesseract */
};

/* ---- results --------------------------------------------------------------------------------- */

struct deid_text_result {
    deid_text_region *v;     /* each v[i].text is a malloc'ed copy owned by the result */
    size_t n, cap;
    deid_text_stats stats;   /* stats.merged is kept equal to n by push */
};

/* A new empty result; NULL (DEID_ERR_NOMEM recorded) when out of memory. */
deid_text_result *deid__text_result_new(void);

/* Append a copy of *reg (reg->text copied; NULL text stored as ""). */
deid_status deid__text_result_push(deid_text_result *res, const deid_text_region *reg);

/* Recount stats.redacted/review/kept/residual/merged from the regions. */
void deid__text_result_recount(deid_text_result *res);

/* ---- detection planes ------------------------------------------------------------------------ */

/* One frame ready for detection: `grey` is 8-bit luminance, rows x cols, row-major (0 dark);
 * `chroma` (may be NULL) is 8-bit colourfulness (max - min of R, G, B) for colour frames. */
typedef struct deid_text_frame {
    uint8_t *grey;
    uint8_t *chroma;
    size_t rows, cols;
    size_t frame;            /* frame index reported in regions */
    unsigned source;         /* DEID_TEXT_SOURCE_PIXELS or 1 + overlay index */
} deid_text_frame;

/* Build the detection planes of frame `frame` of `img` (8/16-bit grey, MONOCHROME1 inverted
 * so text polarity is as displayed; 8-bit RGB). 16-bit grey is windowed from its own
 * histogram. Release with deid__text_frame_clear. */
deid_status deid__text_frame_from_image(const deid_image *img, size_t frame,
                                        deid_text_frame *out);
void deid__text_frame_clear(deid_text_frame *f);

/* Find text in one frame, decide per the engine's options and `phi` (may be NULL), append the
 * regions to `res` and add to res->stats (found, found_lines, found_page, frames, seconds). */
deid_status deid__text_detect_frame(deid_text_engine *e, const deid_text_frame *f,
                                    const deid_text_phi *phi, deid_text_result *res);

/* Read the box (x, y, w, h) of a frame again as a block of text (for the residual check):
 * *text (malloc'ed, "" when nothing) and *confidence (0..100; 0 when nothing). */
deid_status deid__text_read_box(deid_text_engine *e, const deid_text_frame *f, size_t x,
                                size_t y, size_t w, size_t h, char **text, double *confidence);

/* Does `text` look like an identifier or a date (a run of 5+ digits, digits separated by / - .
 * or :, letters and digits mixed in one word)? Used for REVIEW decisions in PHI mode. */
int deid__text_looks_identifying(const char *text);

#endif
