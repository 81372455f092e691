/* Redaction: overwrite each redacted region (padded, clipped to the image) in the original
 * image, at its own bit depth and samples, with a solid value or by interpolating the ring of
 * pixels around it; then, optionally, read every redacted box again and fail when text is
 * still readable there. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "dicom/dataset_int.h" /* struct deid_image */
#include "pixel/pixel_int.h"
#include "text/text_int.h"

static const char *M = "text";

/* Extra margin (pixels) read around a padded box by the residual check, so that a stroke the
 * fill only half covered is read whole. */
#define RESIDUAL_MARGIN 4

/* ---- samples -------------------------------------------------------------------------------- */

/* Sample i of the buffer as a signed integer (any of 8/16 bits, signed or not). */
static int32_t get_sample(const deid_image *img, size_t i)
{
    if (img->bits == 8)
        return img->is_signed ? (int32_t)(int8_t)img->data[i] : (int32_t)img->data[i];
    uint16_t v;
    memcpy(&v, img->data + 2 * i, 2);
    return img->is_signed ? (int32_t)(int16_t)v : (int32_t)v;
}

static void put_sample(deid_image *img, size_t i, int32_t v)
{
    if (img->bits == 8) {
        img->data[i] = (uint8_t)v;
    } else {
        uint16_t u = (uint16_t)v;
        memcpy(img->data + 2 * i, &u, 2);
    }
}

/* The solid fill of a frame: its darkest value (minimum sample; maximum for MONOCHROME1; 0 for
 * RGB, where it is black). */
static int32_t solid_value(const deid_image *img, size_t frame)
{
    if (img->samples != 1)
        return 0;
    int mono1 = deid__pi_is(img, "MONOCHROME1");
    size_t n = img->rows * img->cols, base = frame * n;
    int32_t best = get_sample(img, base);
    for (size_t i = 1; i < n; i++) {
        int32_t v = get_sample(img, base + i);
        if (mono1 ? v > best : v < best)
            best = v;
    }
    return best;
}

/* ---- boxes ---------------------------------------------------------------------------------- */

typedef struct box {
    size_t x0, y0, x1, y1; /* [x0, x1) x [y0, y1), clipped to the image */
} box;

static box pad_box(const deid_text_region *r, size_t pad, size_t rows, size_t cols)
{
    box b;
    b.x0 = r->x > pad ? r->x - pad : 0;
    b.y0 = r->y > pad ? r->y - pad : 0;
    b.x1 = r->x < cols && r->w + pad < cols - r->x ? r->x + r->w + pad : cols;
    b.y1 = r->y < rows && r->h + pad < rows - r->y ? r->y + r->h + pad : rows;
    if (b.x0 > b.x1)
        b.x0 = b.x1;
    if (b.y0 > b.y1)
        b.y0 = b.y1;
    return b;
}

/* ---- fills ---------------------------------------------------------------------------------- */

static void fill_solid(deid_image *img, size_t frame, const box *b, int32_t v)
{
    size_t s = img->samples, base = frame * img->rows * img->cols;
    for (size_t y = b->y0; y < b->y1; y++)
        for (size_t x = b->x0; x < b->x1; x++)
            for (size_t k = 0; k < s; k++)
                put_sample(img, (base + y * img->cols + x) * s + k, v);
}

/* Inpainting: every pixel of the box becomes the blend of the ring pixels just outside the
 * box on its row (left, right) and column (top, bottom), each weighted by the inverse of its
 * distance. Between two opposite sides that is linear interpolation; at the box's edge the
 * nearest ring pixel dominates, so the fill joins the surroundings without a seam. Sides lying
 * outside the image are left out; a box covering the whole frame gets the solid value. The
 * result is a convex blend of ring values: it never leaves their range and keeps nothing of
 * what was inside. */
static void fill_inpaint(deid_image *img, size_t frame, const box *b, int32_t solid)
{
    size_t s = img->samples, cols = img->cols, base = frame * img->rows * cols;
    int has_l = b->x0 > 0, has_r = b->x1 < cols, has_t = b->y0 > 0, has_b = b->y1 < img->rows;
    if (!has_l && !has_r && !has_t && !has_b) {
        fill_solid(img, frame, b, solid);
        return;
    }
#define AT(y, x) ((base + (size_t)(y) * cols + (size_t)(x)) * s + k)
    /* columns in chunks, their weights and top/bottom ring values computed once per chunk */
    enum { CHUNK = 256 };
    double wl[CHUNK], wr[CHUNK], top[CHUNK], bot[CHUNK];
    for (size_t k = 0; k < s; k++)
        for (size_t c0 = b->x0; c0 < b->x1; c0 += CHUNK) {
            size_t nc = b->x1 - c0 < CHUNK ? b->x1 - c0 : CHUNK;
            for (size_t j = 0; j < nc; j++) {
                size_t x = c0 + j;
                wl[j] = has_l ? 1.0 / (double)(x - b->x0 + 1) : 0;
                wr[j] = has_r ? 1.0 / (double)(b->x1 - x) : 0;
                top[j] = has_t ? (double)get_sample(img, AT(b->y0 - 1, x)) : 0;
                bot[j] = has_b ? (double)get_sample(img, AT(b->y1, x)) : 0;
            }
            for (size_t y = b->y0; y < b->y1; y++) {
                double l = has_l ? (double)get_sample(img, AT(y, b->x0 - 1)) : 0;
                double r = has_r ? (double)get_sample(img, AT(y, b->x1)) : 0;
                double wt = has_t ? 1.0 / (double)(y - b->y0 + 1) : 0;
                double wb = has_b ? 1.0 / (double)(b->y1 - y) : 0;
                for (size_t j = 0; j < nc; j++) {
                    double v = (wl[j] * l + wr[j] * r + wt * top[j] + wb * bot[j]) /
                               (wl[j] + wr[j] + wt + wb);
                    put_sample(img, AT(y, c0 + j), (int32_t)(v >= 0 ? v + 0.5 : v - 0.5));
                }
            }
        }
#undef AT
}

static int redacts(const deid_image *img, const deid_text_region *r);

/* ---- the residual check --------------------------------------------------------------------- */

/* Is region r still readable in what the check read? Only PHI counts (the header's own
 * terms and the caller's): what the issue asks of the check, and the only reading that cannot
 * be a neighbouring line, an edge of the fill or the anatomy around a box. A file whose PHI
 * is still readable after redaction is refused. */
static int still_readable(const deid_text_engine *e, const deid_text_phi *phi,
                          const deid_text_region *r, const char *text, double confidence)
{
    (void)e;
    (void)r;
    (void)confidence;
    return phi && deid_text_phi_match(phi, text) != DEID_TEXT_PHI_NONE;
}

/* In the detection planes read by the check, the redacted boxes are inpainted from their
 * surroundings: the edges of a solid box are not text (Tesseract reads "mm", "|" in them on
 * textured images), while strokes reaching out of a box stay where they are and are read. */
static void smooth_boxes(const deid_text_engine *e, const deid_image *img, size_t frame,
                         const deid_text_result *res, deid_text_frame *f)
{
    uint8_t *planes[2] = {f->grey, f->chroma};
    for (size_t p = 0; p < 2; p++) {
        if (!planes[p])
            continue;
        deid_image view;
        memset(&view, 0, sizeof view);
        view.frames = 1, view.rows = f->rows, view.cols = f->cols, view.samples = 1;
        view.bits = 8;
        view.data = planes[p];
        view.size = f->rows * f->cols;
        memcpy(view.photometric, "MONOCHROME2", sizeof "MONOCHROME2");
        for (size_t i = 0; i < res->n; i++) {
            const deid_text_region *r = &res->v[i];
            if (!redacts(img, r) || r->frame != frame)
                continue;
            box b = pad_box(r, e->opts.pad, f->rows, f->cols);
            fill_inpaint(&view, 0, &b, 0);
        }
    }
}

/* Read every redacted box of `frame` again; sets residual on the regions still readable and
 * counts them in *residual. */
static deid_status check_frame(deid_text_engine *e, const deid_image *img, size_t frame,
                               deid_text_result *res, const deid_text_phi *phi,
                               size_t *residual)
{
    deid_text_frame f;
    memset(&f, 0, sizeof f);
    deid_status st = deid__text_frame_from_image(img, frame, &f);
    if (st != DEID_OK)
        return st;
    smooth_boxes(e, img, frame, res, &f);
    size_t grow = (size_t)e->opts.pad + RESIDUAL_MARGIN;
    for (size_t i = 0; i < res->n && st == DEID_OK; i++) {
        deid_text_region *r = &res->v[i];
        if (r->decision != DEID_TEXT_REDACTED || r->source != DEID_TEXT_SOURCE_PIXELS ||
            r->frame != frame)
            continue;
        box b = pad_box(r, grow, img->rows, img->cols);
        if (b.x1 == b.x0 || b.y1 == b.y0)
            continue;
        char *text = NULL;
        double conf = 0;
        st = deid__text_read_box(e, &f, b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0, &text, &conf);
        if (st == DEID_OK && text && still_readable(e, phi, r, text, conf)) {
            r->residual = 1;
            (*residual)++;
        }
        free(text);
    }
    deid__text_frame_clear(&f);
    return st;
}

/* ---- deid_text_redact ----------------------------------------------------------------------- */

static deid_status check_image(const deid_image *img)
{
    if ((img->bits != 8 && img->bits != 16) || !img->data)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "redaction: %u-bit samples", img->bits);
    if (img->samples == 3 ? img->bits != 8 || !deid__pi_is(img, "RGB")
                          : img->samples != 1 || deid__pi_is(img, "PALETTE COLOR"))
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "redaction: %s images with %zu samples of %u bits are not supported "
                          "(convert with deid_image_to_rgb)",
                          img->photometric, img->samples, img->bits);
    return DEID_OK;
}

/* Is region r one deid_text_redact overwrites in img? */
static int redacts(const deid_image *img, const deid_text_region *r)
{
    return r->decision == DEID_TEXT_REDACTED && r->source == DEID_TEXT_SOURCE_PIXELS &&
           r->frame < img->frames;
}

static void fill_all(const deid_text_engine *e, deid_image *img, const deid_text_result *res,
                     uint8_t *frame_done)
{
    size_t last = (size_t)-1;
    int32_t solid = 0;
    for (size_t i = 0; i < res->n; i++) {
        const deid_text_region *r = &res->v[i];
        if (!redacts(img, r))
            continue;
        if (r->frame != last) { /* regions come grouped by frame: one scan per frame */
            solid = solid_value(img, r->frame);
            last = r->frame;
        }
        box b = pad_box(r, e->opts.pad, img->rows, img->cols);
        if (e->opts.fill == DEID_TEXT_FILL_INPAINT)
            fill_inpaint(img, r->frame, &b, solid);
        else
            fill_solid(img, r->frame, &b, solid);
        frame_done[r->frame] = 1;
    }
}

deid_status deid_text_redact(deid_text_engine *engine, deid_image *img, deid_text_result *res,
                             const deid_text_phi *phi)
{
    if (!engine || !img || !res)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_text_redact: NULL argument");
    deid_status st = check_image(img);
    if (st != DEID_OK)
        return st;
    double t = deid__now();
    uint8_t *done = deid__calloc(img->frames ? img->frames : 1, 1);
    if (!done)
        return DEID_ERR_NOMEM;
    for (size_t i = 0; i < res->n; i++)
        res->v[i].residual = 0;
    fill_all(engine, img, res, done);
    size_t residual = 0;
    if (engine->opts.residual_check)
        for (size_t f = 0; f < img->frames && st == DEID_OK; f++)
            if (done[f])
                st = check_frame(engine, img, f, res, phi, &residual);
    if (st == DEID_OK && residual) {
        /* A second chance: what was still read lies in the margin the check reads around a
         * box (a glyph's rim, the rest of a line the detector cut short). Widen those boxes
         * to that margin, fill again, and read again; only text still readable then fails. */
        size_t grow = RESIDUAL_MARGIN;
        for (size_t i = 0; i < res->n; i++) {
            deid_text_region *r = &res->v[i];
            if (!r->residual)
                continue;
            box b = pad_box(r, grow, img->rows, img->cols);
            r->x = b.x0, r->y = b.y0, r->w = b.x1 - b.x0, r->h = b.y1 - b.y0;
            r->residual = 0;
        }
        memset(done, 0, img->frames ? img->frames : 1);
        fill_all(engine, img, res, done);
        residual = 0;
        for (size_t f = 0; f < img->frames && st == DEID_OK; f++)
            if (done[f])
                st = check_frame(engine, img, f, res, phi, &residual);
    }
    free(done);
    deid__text_result_recount(res);
    res->stats.seconds_redact += deid__now() - t;
    if (st == DEID_OK && residual)
        st = deid__fail(DEID_ERR_GENERIC, M, "residual text readable after redaction in %zu "
                        "region%s", residual, residual == 1 ? "" : "s");
    return st;
}
