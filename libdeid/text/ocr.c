/* Tesseract through its C API (tesseract/capi.h is plain C). One handle per engine; a handle
 * is used by one thread at a time. Tesseract's own messages are sent to /dev/null: the library
 * never prints. */
#include <stdlib.h>
#include <string.h>
#include "text/ocr.h"
#include "core/core.h"
#include "deid_config.h"

#define M "text"

void deid__ocr_words_clear(deid_ocr_words *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->v[i].text);
    free(w->v);
    memset(w, 0, sizeof *w);
}

#if DEID_HAVE_TESSERACT
#include <pthread.h>
#include <tesseract/capi.h>

/* debug_file is one of Tesseract's global parameters, shared by every instance in the process:
 * it is written once, under this lock, and only read after that, so that engines made by
 * several threads at once (a batch's workers) do not race on it. */
static pthread_mutex_t debug_file_lock = PTHREAD_MUTEX_INITIALIZER;

static void quiet(TessBaseAPI *api)
{
    pthread_mutex_lock(&debug_file_lock);
    const char *now = TessBaseAPIGetStringVariable(api, "debug_file");
    if (!now || strcmp(now, "/dev/null") != 0)
        TessBaseAPISetVariable(api, "debug_file", "/dev/null");
    pthread_mutex_unlock(&debug_file_lock);
}

deid_status deid__ocr_new(const char *tessdata, const char *language, void **out)
{
    TessBaseAPI *api = TessBaseAPICreate();
    if (!api)
        return deid__fail(DEID_ERR_NOMEM, M, "cannot create a Tesseract instance");
    /* Silence Tesseract before it loads anything (it prints to stderr otherwise). */
    quiet(api);
    if (TessBaseAPIInit2(api, tessdata, language, OEM_LSTM_ONLY) != 0) {
        TessBaseAPIDelete(api);
        return deid__fail(DEID_ERR_IO, M,
                          "cannot load Tesseract language data '%s' from %s (install "
                          "tesseract-ocr-%s, or set --tessdata / TESSDATA_PREFIX)",
                          language, tessdata, language);
    }
    quiet(api);
    /* No dictionary penalties: burned-in text is names, IDs and numbers, not words. */
    TessBaseAPISetVariable(api, "load_system_dawg", "0");
    TessBaseAPISetVariable(api, "load_freq_dawg", "0");
    *out = api;
    return DEID_OK;
}

void deid__ocr_free(void *tess)
{
    if (tess) {
        TessBaseAPIEnd(tess);
        TessBaseAPIDelete(tess);
    }
}

static deid_status push_word(deid_ocr_words *out, const deid_ocr_word *w)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 16;
        deid_ocr_word *v = deid__realloc(out->v, cap * sizeof *v);
        if (!v)
            return DEID_ERR_NOMEM;
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n++] = *w;
    return DEID_OK;
}

static int has_visible(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s > ' ')
            return 1;
    return 0;
}

deid_status deid__ocr_words(void *tess, const uint8_t *px, size_t cols, size_t rows,
                            size_t stride, int psm, deid_ocr_words *out)
{
    TessBaseAPI *api = tess;
    if (cols < 3 || rows < 3 || cols > 32000 || rows > 32000)
        return DEID_OK;
    TessBaseAPISetPageSegMode(api, (TessPageSegMode)psm);
    TessBaseAPISetImage(api, px, (int)cols, (int)rows, 1, (int)stride);
    TessBaseAPISetSourceResolution(api, 300);
    if (TessBaseAPIRecognize(api, NULL) != 0) {
        TessBaseAPIClear(api);
        return DEID_OK; /* nothing recognisable: not an error of the input */
    }
    TessResultIterator *ri = TessBaseAPIGetIterator(api);
    deid_status st = DEID_OK;
    int line = -1;
    if (ri) {
        TessPageIterator *pi = TessResultIteratorGetPageIterator(ri);
        do {
            if (TessPageIteratorIsAtBeginningOf(pi, RIL_TEXTLINE))
                line++;
            char *t = TessResultIteratorGetUTF8Text(ri, RIL_WORD);
            if (!t)
                continue;
            int l, tp, r, b;
            if (has_visible(t) && TessPageIteratorBoundingBox(pi, RIL_WORD, &l, &tp, &r, &b)) {
                deid_ocr_word w = {l, tp, r - l, b - tp,
                                   TessResultIteratorConfidence(ri, RIL_WORD), NULL,
                                   line < 0 ? 0 : line};
                w.text = deid__strdup(t);
                if (!w.text || (st = push_word(out, &w)) != DEID_OK) {
                    free(w.text);
                    TessDeleteText(t);
                    st = DEID_ERR_NOMEM;
                    break;
                }
            }
            TessDeleteText(t);
        } while (TessResultIteratorNext(ri, RIL_WORD));
        TessResultIteratorDelete(ri);
    }
    TessBaseAPIClear(api);
    return st;
}

#else

deid_status deid__ocr_new(const char *tessdata, const char *language, void **out)
{
    (void)tessdata;
    (void)language;
    (void)out;
    return deid__fail(DEID_ERR_UNSUPPORTED, M, "libdeid was built without Tesseract (OCR)");
}

void deid__ocr_free(void *tess)
{
    (void)tess;
}

deid_status deid__ocr_words(void *tess, const uint8_t *px, size_t cols, size_t rows,
                            size_t stride, int psm, deid_ocr_words *out)
{
    (void)tess;
    (void)px;
    (void)cols;
    (void)rows;
    (void)stride;
    (void)psm;
    (void)out;
    return deid__fail(DEID_ERR_UNSUPPORTED, M, "libdeid was built without Tesseract (OCR)");
}
#endif
