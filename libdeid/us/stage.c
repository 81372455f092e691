/* The ultrasound stage (deid_us_process): decode every frame, make 0 mean black (palette and
 * YBR to RGB), find the scan area with the model-free detector or the corner model, fall back
 * to a conservative rectangle when asked and the detection is not trusted, blank everything
 * outside in every frame and sample, and re-encode. The batch, the binding and a gateway all
 * call this one function, so they mask the same way. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "dicom/dataset_int.h"
#include "dicom/dicom_int.h"
#include "pixel/pixel_int.h"
#include "us/stage_int.h"
#include "us/us_int.h"

static const char *M = "us";

#define TAG_MODALITY 0x00080060u

/* ---- options ------------------------------------------------------------------------------ */

deid_status deid_us_options_init(deid_us_options *opts, unsigned version)
{
    if (!opts)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_us_options_init: opts is NULL");
    if (version != DEID_US_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "unknown deid_us_options version %u (this library knows %d)", version,
                          DEID_US_OPTIONS_VERSION);
    deid_us_options d = DEID_US_OPTIONS_INIT;
    *opts = d;
    return DEID_OK;
}

static deid_status check_options(const deid_us_options *o)
{
    if (o->version != DEID_US_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "unknown deid_us_options version %u (this library knows %d)",
                          o->version, DEID_US_OPTIONS_VERSION);
    if (o->detector < DEID_US_DETECTOR_AUTO || o->detector > DEID_US_DETECTOR_MODEL)
        return deid__fail(DEID_ERR_ARGUMENT, M, "unknown detector %d", o->detector);
    if (o->fallback < DEID_US_FALLBACK_NONE || o->fallback > DEID_US_FALLBACK_REGIONS)
        return deid__fail(DEID_ERR_ARGUMENT, M, "unknown fallback %d", o->fallback);
    if (!isfinite(o->erosion_px) || o->erosion_px < 0 || o->erosion_px > 1000)
        return deid__fail(DEID_ERR_ARGUMENT, M, "erosion must be 0 to 1000 pixels");
    if (!(o->min_confidence >= 0 && o->min_confidence <= 1))
        return deid__fail(DEID_ERR_ARGUMENT, M, "minimum confidence must be 0 to 1");
    if (o->encode.version != 0 && o->encode.version != DEID_ENCODE_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, M, "unknown deid_encode_options version %u",
                          o->encode.version);
    return DEID_OK;
}

/* Does the stage run the corner model? */
static int uses_model(const deid_us_options *o)
{
    return o->detector == DEID_US_DETECTOR_MODEL ||
           (o->detector == DEID_US_DETECTOR_AUTO && (o->model || o->model_path));
}

/* ---- result ------------------------------------------------------------------------------- */

void deid_us_result_clear(deid_us_result *res)
{
    if (!res)
        return;
    deid_image_free(res->overview_original);
    deid_image_free(res->overview_masked);
    free(res->mask);
    res->overview_original = res->overview_masked = NULL;
    res->mask = NULL;
}

static const char *fallback_name(int f)
{
    return f == DEID_US_FALLBACK_RECTANGLE ? "rectangle" : f == DEID_US_FALLBACK_REGIONS
                                                               ? "regions" : "none";
}

deid_status deid_us_result_json(const deid_us_result *res, char **json)
{
    if (!res || !json)
        return deid__fail(DEID_ERR_ARGUMENT, M, "mask JSON: NULL argument");
    json_t *o = deid__fan_json(&res->fan);
    if (!o)
        return deid_last_error_code();
    int bad = json_object_set_new(o, "detector", json_string(res->detector ? res->detector : ""));
    bad |= json_object_set_new(o, "confidence",
                               json_real(round(res->confidence * 1e4) / 1e4));
    if (res->fallback != DEID_US_FALLBACK_NONE)
        bad |= json_object_set_new(o, "fallback", json_string(fallback_name(res->fallback)));
    char *text = bad ? NULL : json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!text)
        return deid__fail(DEID_ERR_NOMEM, M, "mask JSON: out of memory");
    *json = text; /* jansson allocates with malloc; deid_free is free */
    return DEID_OK;
}

deid_status deid_us_write_overview(const deid_us_result *res, const char *path)
{
    if (!res || !path || !res->overview_original || !res->overview_masked || !res->mask)
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "overview: the result holds no overview (run with overview_dir set)");
    char caption[160];
    int n = snprintf(caption, sizeof caption, "detector: %s  confidence %.2f",
                     res->detector ? res->detector : "?", res->confidence);
    if (res->fallback != DEID_US_FALLBACK_NONE && n > 0 && (size_t)n < sizeof caption)
        snprintf(caption + n, sizeof caption - (size_t)n, "  fallback: %s",
                 fallback_name(res->fallback));
    return deid_overview_png(res->overview_original, res->overview_masked, res->mask, caption,
                             path);
}

/* ---- pieces ------------------------------------------------------------------------------- */

static int is_us(const deid_dataset *ds)
{
    char m[20];
    return deid_dataset_get_string(ds, TAG_MODALITY, m, sizeof m) == DEID_OK &&
           strcmp(m, "US") == 0;
}

/* Frames first..first+count-1 (count 0: to the last), with 0 meaning black: palette expanded
 * and YBR converted to RGB. */
static deid_status decode(const deid_dataset *ds, const deid_us_options *o, size_t first,
                          size_t count, deid_image **out)
{
    deid_image *img = NULL;
    deid_status st = deid_image_decode(ds, first, count, o->max_samples, &img);
    if (st != DEID_OK)
        return st;
    if (deid__pi_is(img, "MONOCHROME1")) {
        deid_image_free(img);
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "MONOCHROME1 ultrasound images are not supported (0 is white there)");
    }
    if (deid__pi_is(img, "PALETTE COLOR") || deid__pi_is_ybr(img)) {
        deid_image *rgb = NULL;
        st = deid_image_to_rgb(img, ds, &rgb);
        deid_image_free(img);
        if (st != DEID_OK)
            return st;
        img = rgb;
    }
    *out = img;
    return DEID_OK;
}

/* One frame of img as an image of its own. */
static deid_image *first_frame(const deid_image *img)
{
    deid_image *f = deid__image_new(1, img->rows, img->cols, img->samples, img->bits,
                                    img->is_signed, img->photometric);
    if (f)
        memcpy(f->data, img->data, deid__image_frame_bytes(img));
    return f;
}

/* Bounding rectangle of the 2D Ultrasound Regions, clipped to the image. 0 when there is
 * none. */
static int regions_rect(const deid_dataset *ds, size_t rows, size_t cols, deid_fan *r)
{
    deid_box b = deid__us_regions_box(ds, rows, cols);
    if (!b.valid)
        return 0;
    r->kind = DEID_FAN_RECTANGLE;
    r->rectangle_top = (double)b.top;
    r->rectangle_left = (double)b.left;
    r->rectangle_bottom = (double)b.bottom;
    r->rectangle_right = (double)b.right;
    r->image_size_rows = rows;
    r->image_size_cols = cols;
    return 1;
}

/* Shrink a rectangle by the erosion (whole pixels, rounded up); 0 when nothing is left. */
static int erode_rect(deid_fan *r, double erosion)
{
    double e = ceil(erosion);
    r->rectangle_top += e;
    r->rectangle_left += e;
    r->rectangle_bottom -= e;
    r->rectangle_right -= e;
    return r->rectangle_top <= r->rectangle_bottom && r->rectangle_left <= r->rectangle_right;
}

/* The bounding rectangle of an (already eroded) mask; 0 when it is empty. */
static int mask_rect(const uint8_t *mask, size_t rows, size_t cols, deid_fan *r)
{
    size_t top = rows, left = cols, bottom = 0, right = 0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            if (mask[i * cols + j]) {
                top = i < top ? i : top;
                bottom = i > bottom ? i : bottom;
                left = j < left ? j : left;
                right = j > right ? j : right;
            }
    if (top > bottom || left > right)
        return 0;
    memset(r, 0, sizeof *r);
    r->kind = DEID_FAN_RECTANGLE;
    r->rectangle_top = (double)top;
    r->rectangle_left = (double)left;
    r->rectangle_bottom = (double)bottom;
    r->rectangle_right = (double)right;
    r->image_size_rows = rows;
    r->image_size_cols = cols;
    return 1;
}

/* ---- detection ---------------------------------------------------------------------------- */

typedef struct detection {
    int found;           /* a geometry was found */
    deid_fan fan;
    double confidence;
    double inference_ms;
    const char *warning;
} detection;

/* Run the chosen detector. A detector that finds nothing is not an error here (found 0): the
 * fallback decides. */
static deid_status detect(const deid_dataset *ds, const deid_image *img,
                          const deid_image *model_img, deid_us_model *model, detection *d)
{
    memset(d, 0, sizeof *d);
    d->warning = "";
    deid_status st;
    if (model) {
        d->warning = deid_us_model_warning(model);
        st = deid__us_model_detect(model, model_img ? model_img : img, &d->fan, &d->inference_ms);
        if (st == DEID_OK)
            st = deid__us_fan_agreement(img, &d->fan, &d->confidence);
    } else {
        st = deid_fan_detect(img, ds, NULL, &d->fan, &d->confidence);
    }
    if (st == DEID_OK)
        d->found = 1;
    else if (st == DEID_ERR_NO_PIXELS || (model && st == DEID_ERR_UNSUPPORTED &&
                                          strstr(deid_last_error(), "make no scan area")))
        st = DEID_OK; /* nothing found: low confidence */
    return st;
}

/* ---- the stage ---------------------------------------------------------------------------- */

typedef struct stage {
    deid_image *img;
    uint8_t *mask;
    deid_us_model *own_model;
} stage;

static void stage_free(stage *s)
{
    deid_image_free(s->img);
    free(s->mask);
    deid_us_model_free(s->own_model);
}

/* The geometry to mask with, after the confidence check and the fallback. The mask is drawn
 * into s->mask. DEID_ERR_GENERIC (low confidence, refused) fills res. */
static deid_status choose(const deid_dataset *ds, const deid_us_options *o, const detection *d,
                          stage *s, deid_us_result *res)
{
    size_t rows = s->img->rows, cols = s->img->cols;
    int low = !d->found || d->confidence < o->min_confidence;
    res->low_confidence = low;
    res->confidence = d->found ? d->confidence : 0;
    if (d->found)
        res->fan = d->fan;
    if (!low)
        return deid_fan_rasterize(&d->fan, o->erosion_px, s->mask, rows * cols);
    char why[96];
    if (d->found)
        snprintf(why, sizeof why, "fan detection confidence %.2f < %.2f", d->confidence,
                 o->min_confidence);
    else
        snprintf(why, sizeof why, "fan detection found no scan area");
    deid_fan r;
    memset(&r, 0, sizeof r);
    int ok = 0;
    if (o->fallback == DEID_US_FALLBACK_RECTANGLE && d->found) {
        deid_status st = deid_fan_rasterize(&d->fan, o->erosion_px, s->mask, rows * cols);
        if (st != DEID_OK)
            return st;
        deid_fan reg;
        ok = mask_rect(s->mask, rows, cols, &r);
        if (ok && regions_rect(ds, rows, cols, &reg)) { /* never wider than the regions */
            r.rectangle_top = fmax(r.rectangle_top, reg.rectangle_top);
            r.rectangle_left = fmax(r.rectangle_left, reg.rectangle_left);
            r.rectangle_bottom = fmin(r.rectangle_bottom, reg.rectangle_bottom);
            r.rectangle_right = fmin(r.rectangle_right, reg.rectangle_right);
            ok = r.rectangle_top <= r.rectangle_bottom && r.rectangle_left <= r.rectangle_right;
        }
    } else if (o->fallback != DEID_US_FALLBACK_NONE) {
        /* regions, or a rectangle with nothing detected: the regions are all there is */
        ok = regions_rect(ds, rows, cols, &r) && erode_rect(&r, o->erosion_px);
        if (!ok && o->fallback == DEID_US_FALLBACK_REGIONS)
            snprintf(why + strlen(why), sizeof why - strlen(why),
                     " and no Sequence of Ultrasound Regions");
    }
    if (!ok)
        return deid__fail(DEID_ERR_GENERIC, M, "%s: not written%s", why,
                          o->fallback == DEID_US_FALLBACK_NONE
                              ? " (use --fallback rectangle|regions)" : "");
    res->fan = r;
    res->fallback = o->fallback == DEID_US_FALLBACK_REGIONS || !d->found
                        ? DEID_US_FALLBACK_REGIONS : DEID_US_FALLBACK_RECTANGLE;
    return deid_fan_rasterize(&r, 0, s->mask, rows * cols);
}

/* The caller's encoding, uncompressed for 16-bit pixels (JPEG baseline holds 8 bits only). */
static deid_encode_options encode_options(const deid_us_options *o, unsigned bits,
                                          const char **warning)
{
    deid_encode_options e = DEID_ENCODE_OPTIONS_INIT;
    if (o->encode.version)
        e = o->encode;
    if (e.codec == DEID_CODEC_JPEG_BASELINE && bits != 8) {
        e.codec = DEID_CODEC_UNCOMPRESSED;
        *warning = "16-bit pixels written uncompressed (JPEG baseline holds 8 bits)";
    }
    return e;
}

static deid_status encode(deid_dataset *ds, const deid_image *img, const deid_us_options *o,
                          const char **warning)
{
    deid_encode_options e = encode_options(o, img->bits, warning);
    return deid_dataset_set_pixels(ds, img, &e);
}

/* ---- long clips: bounded memory --------------------------------------------------------- */

/* A clip of more frames than this is never decoded whole: detection reads the frames it samples
 * (and, for the model, a running maximum), then masking and encoding go CHUNK frames at a time,
 * so memory holds the compressed input and output plus one chunk, whatever the length. */
#define LONG_CLIP 64
#define CHUNK 32
#define DETECT_FRAMES 32 /* what the detectors sample (deid_fan_detect's default max_frames) */

/* The frames the detectors sample of a long clip, as one image: the same evenly spread frames
 * the temporal analysis would pick from the whole clip (frame 0 first). */
static deid_status sampled(const deid_dataset *ds, const deid_us_options *o, size_t frames,
                           deid_image **out)
{
    size_t n = frames < DETECT_FRAMES ? frames : DETECT_FRAMES;
    deid_image *all = NULL;
    deid_status st = DEID_OK;
    for (size_t k = 0; k < n && st == DEID_OK; k++) {
        size_t f = n < 2 ? 0 : (size_t)((double)k * (double)(frames - 1) / (double)(n - 1) + 0.5);
        deid_image *one = NULL;
        if ((st = decode(ds, o, f, 1, &one)) != DEID_OK)
            break;
        if (!all && !(all = deid__image_new(n, one->rows, one->cols, one->samples, one->bits,
                                             one->is_signed, one->photometric)))
            st = DEID_ERR_NOMEM;
        if (st == DEID_OK)
            memcpy(all->data + k * deid__image_frame_bytes(all), one->data,
                   deid__image_frame_bytes(one));
        deid_image_free(one);
    }
    if (st != DEID_OK) {
        deid_image_free(all);
        return st;
    }
    *out = all;
    return DEID_OK;
}

/* Per-sample maximum over every frame, as a one-frame image (what the corner model sees). */
static deid_status running_max(const deid_dataset *ds, const deid_us_options *o, size_t frames,
                               deid_image **out)
{
    deid_image *mx = NULL;
    deid_status st = DEID_OK;
    for (size_t f = 0; f < frames && st == DEID_OK; f += CHUNK) {
        deid_image *c = NULL;
        if ((st = decode(ds, o, f, frames - f < CHUNK ? frames - f : CHUNK, &c)) != DEID_OK)
            break;
        size_t fb = deid__image_frame_bytes(c);
        if (!mx && !(mx = deid__image_new(1, c->rows, c->cols, c->samples, c->bits, c->is_signed,
                                           c->photometric)))
            st = DEID_ERR_NOMEM;
        for (size_t k = 0; st == DEID_OK && k < c->frames; k++)
            for (size_t i = 0; i < fb; i++)
                if (c->data[k * fb + i] > mx->data[i])
                    mx->data[i] = c->data[k * fb + i];
        deid_image_free(c);
    }
    if (st != DEID_OK) {
        deid_image_free(mx);
        return st;
    }
    *out = mx;
    return DEID_OK;
}

/* Mask and encode a long clip CHUNK frames at a time into new Pixel Data. */
static deid_status mask_encode_chunks(deid_dataset *ds, const deid_us_options *o, size_t frames,
                                      const deid_image *shape, const uint8_t *mask,
                                      const char **warning, double *seconds_mask)
{
    deid_encode_options e = encode_options(o, shape->bits, warning);
    deid__pixel_writer *w = NULL;
    deid_status st = deid__pixel_writer_new(ds, shape, frames, &e, &w);
    for (size_t f = 0; f < frames && st == DEID_OK; f += CHUNK) {
        deid_image *c = NULL;
        if ((st = decode(ds, o, f, frames - f < CHUNK ? frames - f : CHUNK, &c)) != DEID_OK)
            break;
        double t = deid__now();
        st = deid_image_apply_mask(c, mask);
        *seconds_mask += deid__now() - t;
        if (st == DEID_OK)
            st = deid__pixel_writer_add(w, c);
        deid_image_free(c);
    }
    if (st == DEID_OK)
        st = deid__pixel_writer_commit(w, ds);
    deid__pixel_writer_free(w);
    return st;
}

/* ---- one object ------------------------------------------------------------------------- */

/* Decode what detection needs: every frame of a short clip; of a long one the sampled frames
 * (s->img) and, for the model, the maximum over all frames (*model_img). */
static deid_status decode_for_detection(const deid_dataset *ds, const deid_us_options *o,
                                        size_t frames, stage *s, deid_image **model_img)
{
    *model_img = NULL;
    if (frames <= LONG_CLIP)
        return decode(ds, o, 0, 0, &s->img);
    deid_status st = sampled(ds, o, frames, &s->img);
    if (st == DEID_OK && uses_model(o))
        st = running_max(ds, o, frames, model_img);
    return st;
}

static deid_status process(deid_dataset *ds, const deid_us_options *o, stage *s,
                           deid_us_result *r)
{
    double t = deid__now();
    size_t frames = deid__image_frame_count(ds);
    deid_image *model_img = NULL;
    deid_status st = decode_for_detection(ds, o, frames, s, &model_img);
    r->seconds_decode = deid__now() - t;
    if (st != DEID_OK)
        return st;
    deid_image *img = s->img;
    int whole = frames <= LONG_CLIP;
    r->frames = whole ? img->frames : frames, r->rows = img->rows, r->cols = img->cols;
    if (!(s->mask = malloc(img->rows * img->cols))) {
        deid_image_free(model_img);
        return deid__fail(DEID_ERR_NOMEM, M, "out of memory");
    }
    deid_us_model *model = o->model;
    t = deid__now();
    if (uses_model(o) && !model &&
        (st = deid_us_model_load(o->model_path, o->device, &s->own_model)) == DEID_OK)
        model = s->own_model;
    detection d;
    if (st == DEID_OK)
        st = detect(ds, img, model_img, model, &d);
    deid_image_free(model_img);
    r->seconds_detect = deid__now() - t;
    r->detector = model ? "model" : "model-free";
    if (st != DEID_OK)
        return st;
    r->inference_ms = d.inference_ms;
    r->warning = d.warning;
    t = deid__now();
    if ((st = choose(ds, o, &d, s, r)) != DEID_OK)
        return st;
    if (o->overview_dir && !(r->overview_original = first_frame(img)))
        return DEID_ERR_NOMEM;
    if (whole) {
        st = deid_image_apply_mask(img, s->mask);
        r->seconds_mask = deid__now() - t;
        if (st == DEID_OK && o->overview_dir && !(r->overview_masked = first_frame(img)))
            st = DEID_ERR_NOMEM;
        t = deid__now();
        if (st == DEID_OK)
            st = encode(ds, img, o, &r->warning);
        r->seconds_encode = deid__now() - t;
    } else {
        /* the overview's masked frame is frame 0 of the sample, masked here */
        st = deid_image_apply_mask(img, s->mask);
        if (st == DEID_OK && o->overview_dir && !(r->overview_masked = first_frame(img)))
            st = DEID_ERR_NOMEM;
        r->seconds_mask = deid__now() - t;
        t = deid__now();
        if (st == DEID_OK)
            st = mask_encode_chunks(ds, o, frames, img, s->mask, &r->warning, &r->seconds_mask);
        r->seconds_encode = deid__now() - t - r->seconds_mask;
        if (r->seconds_encode < 0)
            r->seconds_encode = 0;
    }
    if (st == DEID_OK && o->overview_dir) {
        r->mask = s->mask; /* handed to the result */
        s->mask = NULL;
    }
    return st;
}

deid_status deid_us_process(deid_dataset *ds, const deid_us_options *opts, deid_us_result *res)
{
    deid_us_options o = DEID_US_OPTIONS_INIT;
    if (opts)
        o = *opts;
    if (!ds || !res)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_us_process: ds and res are required");
    deid_status st = check_options(&o);
    if (st != DEID_OK)
        return st;
    if (!is_us(ds))
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "not an ultrasound object (Modality is not "
                          "US)");
    deid_us_result r;
    memset(&r, 0, sizeof r);
    r.warning = "";
    stage s = {NULL, NULL, NULL};
    st = process(ds, &o, &s, &r);
    stage_free(&s);
    if (st == DEID_OK ||
        (st == DEID_ERR_GENERIC && r.low_confidence && r.fallback == DEID_US_FALLBACK_NONE)) {
        if (st != DEID_OK)
            deid_us_result_clear(&r); /* a refused file keeps its report, nothing owned */
        *res = r;
    } else {
        deid_us_result_clear(&r);
    }
    return st;
}
