/* The text engine: options with their defaults, the Tesseract instance, and the frame loop of
 * deid_text_detect. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "text/ocr.h"
#include "text/text_int.h"

#define M "text"

deid_status deid_text_options_init(deid_text_options *opts, unsigned version)
{
    if (!opts)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_text_options_init: opts is NULL");
    if (version != DEID_TEXT_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "unknown deid_text_options version %u (this library knows %d)",
                          version, DEID_TEXT_OPTIONS_VERSION);
    deid_text_options d = DEID_TEXT_OPTIONS_INIT;
    *opts = d;
    return DEID_OK;
}

static deid_status check_options(const deid_text_options *o)
{
    if (o->version != DEID_TEXT_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "unknown deid_text_options version %u (this library knows %d)",
                          o->version, DEID_TEXT_OPTIONS_VERSION);
    if (o->redact < DEID_TEXT_REDACT_ALL || o->redact > DEID_TEXT_REDACT_NONE)
        return deid__fail(DEID_ERR_ARGUMENT, M, "unknown redact mode %d", o->redact);
    if (o->area < DEID_TEXT_AREA_ALL || o->area > DEID_TEXT_AREA_BORDER)
        return deid__fail(DEID_ERR_ARGUMENT, M, "unknown text area %d", o->area);
    if (o->fill < DEID_TEXT_FILL_SOLID || o->fill > DEID_TEXT_FILL_INPAINT)
        return deid__fail(DEID_ERR_ARGUMENT, M, "unknown fill %d", o->fill);
    if (o->passes & ~DEID_TEXT_PASS_ALL)
        return deid__fail(DEID_ERR_ARGUMENT, M, "unknown detection pass bits 0x%x", o->passes);
    if (!(o->min_confidence >= 0 && o->min_confidence <= 100))
        return deid__fail(DEID_ERR_ARGUMENT, M, "min_confidence must be 0..100");
    if (o->jpeg_quality < 0 || o->jpeg_quality > 100)
        return deid__fail(DEID_ERR_ARGUMENT, M, "jpeg_quality must be 1..100 (0: default)");
    if (o->pad > 64)
        return deid__fail(DEID_ERR_ARGUMENT, M, "pad must be at most 64 pixels");
    return DEID_OK;
}

/* First language of "eng+deu". */
static char *first_language(const char *lang)
{
    size_t n = strcspn(lang, "+");
    return deid__strndup(lang, n);
}

static int has_traineddata(const char *dir, const char *lang)
{
    char *first = first_language(lang);
    if (!first)
        return 0;
    deid_buf b = {0};
    int ok = deid__buf_printf(&b, "%s/%s.traineddata", dir, first) == 0 &&
             access(b.data, R_OK) == 0;
    deid__buf_free(&b);
    free(first);
    return ok;
}

/* The folder holding the language data: the option, $TESSDATA_PREFIX, then Debian's. */
static const char *find_tessdata(const char *given, const char *lang)
{
    if (given)
        return given;
    const char *env = getenv("TESSDATA_PREFIX");
    if (env && *env)
        return env;
    static const char *const known[] = {"/usr/share/tesseract-ocr/5/tessdata",
                                        "/usr/share/tesseract-ocr/4.00/tessdata",
                                        "/usr/share/tessdata", "/usr/local/share/tessdata"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (has_traineddata(known[i], lang))
            return known[i];
    return known[0];
}

deid_status deid_text_engine_new(const deid_text_options *opts, deid_text_engine **out)
{
    if (!out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_text_engine_new: out is NULL");
    deid_text_options o = DEID_TEXT_OPTIONS_INIT;
    if (opts)
        o = *opts;
    deid_status st = check_options(&o);
    if (st != DEID_OK)
        return st;
    if (!o.passes)
        o.passes = DEID_TEXT_PASS_ALL;
    if (!o.jpeg_quality)
        o.jpeg_quality = 95;
    const char *lang = o.language && *o.language ? o.language : "eng";
    const char *dir = find_tessdata(o.tessdata, lang);
    if (!has_traineddata(dir, lang))
        return deid__fail(DEID_ERR_IO, M,
                          "no Tesseract language data '%s' in %s (install tesseract-ocr-%s, or "
                          "set --tessdata / TESSDATA_PREFIX)",
                          lang, dir, lang);
    deid_text_engine *e = deid__calloc(1, sizeof *e);
    if (!e)
        return DEID_ERR_NOMEM;
    e->opts = o;
    e->tessdata = deid__strdup(dir);
    e->language = deid__strdup(lang);
    if (!e->tessdata || !e->language) {
        deid_text_engine_free(e);
        return DEID_ERR_NOMEM;
    }
    e->opts.tessdata = e->tessdata;
    e->opts.language = e->language;
    if ((st = deid__ocr_new(e->tessdata, e->language, &e->tess)) != DEID_OK) {
        deid_text_engine_free(e);
        return st;
    }
    *out = e;
    return DEID_OK;
}

void deid_text_engine_free(deid_text_engine *e)
{
    if (!e)
        return;
    deid__ocr_free(e->tess);
    free(e->tessdata);
    free(e->language);
    free(e);
}

static int boxes_overlap(const deid_text_region *a, const deid_text_region *b)
{
    return a->x < b->x + b->w && b->x < a->x + a->w && a->y < b->y + b->h && b->y < a->y + a->h;
}

/* Do a and b overlap by at least half the smaller box? */
static int boxes_match(const deid_text_region *a, const deid_text_region *b)
{
    size_t ix0 = a->x > b->x ? a->x : b->x, iy0 = a->y > b->y ? a->y : b->y;
    size_t ix1 = a->x + a->w < b->x + b->w ? a->x + a->w : b->x + b->w;
    size_t iy1 = a->y + a->h < b->y + b->h ? a->y + a->h : b->y + b->h;
    if (ix1 <= ix0 || iy1 <= iy0)
        return 0;
    size_t inter = (ix1 - ix0) * (iy1 - iy0), sa = a->w * a->h, sb = b->w * b->h;
    return 2 * inter >= (sa < sb ? sa : sb);
}

/* Burned-in text is in every frame of a clip; what the detector takes for text in the
 * speckle of one frame is not in the next. In a clip of 3 frames or more, a redacted region
 * that matches no PHI and is found (at the same place) in fewer than 2 frames, or fewer than
 * a tenth of them, is left for review instead ("in too few frames"). */
static deid_status steady(deid_text_result *res, size_t frames)
{
    if (frames < 3 || !res->n)
        return DEID_OK;
    size_t need = (frames + 9) / 10 > 2 ? (frames + 9) / 10 : 2;
    uint8_t *seen = deid__malloc(frames), *few = deid__calloc(res->n, 1);
    if (!seen || !few) {
        free(seen);
        free(few);
        return DEID_ERR_NOMEM;
    }
    for (size_t i = 0; i < res->n; i++) {
        const deid_text_region *a = &res->v[i];
        if (a->decision != DEID_TEXT_REDACTED || a->source != DEID_TEXT_SOURCE_PIXELS || a->phi)
            continue;
        memset(seen, 0, frames);
        size_t in = 0;
        for (size_t j = 0; j < res->n && in < need; j++) {
            const deid_text_region *b = &res->v[j];
            if (b->source != DEID_TEXT_SOURCE_PIXELS || b->frame >= frames || seen[b->frame] ||
                b->decision != DEID_TEXT_REDACTED || !boxes_match(a, b))
                continue;
            seen[b->frame] = 1;
            in++;
        }
        few[i] = in < need;
    }
    for (size_t i = 0; i < res->n; i++)
        if (few[i]) {
            res->v[i].decision = DEID_TEXT_REVIEW;
            res->v[i].reason = "in too few frames";
        }
    free(seen);
    free(few);
    return DEID_OK;
}

/* Burned-in text stays where it is from frame to frame; the detector may still miss it in a
 * frame (a cine's moving anatomy under faint text). Every box redacted in one frame is
 * redacted in every frame where no redacted box overlaps it already. */
static deid_status propagate(deid_text_result *res, size_t frames)
{
    size_t n = res->n;
    for (size_t i = 0; i < n; i++) {
        if (res->v[i].decision != DEID_TEXT_REDACTED ||
            res->v[i].source != DEID_TEXT_SOURCE_PIXELS)
            continue;
        for (size_t f = 0; f < frames; f++) {
            if (f == res->v[i].frame)
                continue;
            int covered = 0;
            for (size_t j = 0; j < res->n && !covered; j++)
                covered = res->v[j].frame == f && res->v[j].source == DEID_TEXT_SOURCE_PIXELS &&
                          res->v[j].decision == DEID_TEXT_REDACTED &&
                          boxes_overlap(&res->v[i], &res->v[j]);
            if (covered)
                continue;
            deid_text_region r = res->v[i];
            r.frame = f;
            r.passes = 0;
            r.text = "";
            r.confidence = 0;
            r.reason = "redacted in another frame";
            deid_status st = deid__text_result_push(res, &r);
            if (st != DEID_OK)
                return st;
        }
    }
    return DEID_OK;
}

deid_status deid_text_detect(deid_text_engine *e, const deid_image *img,
                             const deid_text_phi *phi, deid_text_result **out)
{
    if (!e || !img || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_text_detect: NULL argument");
    deid_text_result *res = deid__text_result_new();
    if (!res)
        return DEID_ERR_NOMEM;
    deid_status st = DEID_OK;
    size_t frames = deid_image_frames(img);
    for (size_t f = 0; f < frames && st == DEID_OK; f++) {
        deid_text_frame fr;
        double t0 = deid__now();
        if ((st = deid__text_frame_from_image(img, f, &fr)) != DEID_OK)
            break;
        res->stats.seconds_prepare += deid__now() - t0;
        st = deid__text_detect_frame(e, &fr, phi, res);
        deid__text_frame_clear(&fr);
    }
    if (st == DEID_OK && frames > 1)
        st = steady(res, frames);
    if (st == DEID_OK && frames > 1)
        st = propagate(res, frames);
    if (st != DEID_OK) {
        deid_text_result_free(res);
        return st;
    }
    deid__text_result_recount(res);
    *out = res;
    return DEID_OK;
}
