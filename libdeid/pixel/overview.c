/* deid_overview_png: what a person checks after masking, in one picture: the first frame
 * before and after, the mask's outline on both, and a caption (detector, confidence). */
#include <stdlib.h>
#include <string.h>
#include "pixel/pixel_int.h"

#define MAX_SIDE 1024 /* longest side of each half, in pixels */
#define GAP 8         /* between the halves */

static const char *M = "pixel";
static const uint8_t BACKGROUND[3] = {24, 24, 24};
static const uint8_t OUTLINE[3] = {255, 0, 255}; /* magenta: rare in ultrasound (ECG is green) */
static const uint8_t TEXT[3] = {235, 235, 235};

static long sample_at(const deid_image *img, size_t i)
{
    if (img->bits == 8)
        return img->is_signed ? (long)(int8_t)img->data[i] : (long)img->data[i];
    uint16_t v = ((const uint16_t *)(const void *)img->data)[i];
    return img->is_signed ? (long)(int16_t)v : (long)v;
}

/* The first frame as 8-bit RGB for a person to look at. */
static void frame_to_rgb8(const deid_image *img, uint8_t *rgb)
{
    size_t npx = img->rows * img->cols, n = npx * img->samples;
    long lo = 0, hi = 255;
    if (img->bits != 8 || img->is_signed) { /* stretch the frame's own range */
        lo = hi = sample_at(img, 0);
        for (size_t i = 1; i < n; i++) {
            long v = sample_at(img, i);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    }
    long range = hi > lo ? hi - lo : 1;
    int invert = deid__pi_is(img, "MONOCHROME1");
    for (size_t p = 0; p < npx; p++)
        for (size_t c = 0; c < 3; c++) {
            size_t i = img->samples == 3 ? p * 3 + c : p;
            long v = (sample_at(img, i) - lo) * 255 / range;
            rgb[p * 3 + c] = (uint8_t)(invert ? 255 - v : v);
        }
    if (deid__pi_is_ybr(img) && img->bits == 8)
        deid__ybr_full_to_rgb(rgb, rgb, npx);
}

/* Average k x k boxes (the last row/column of boxes may be partial). */
static void downscale(const uint8_t *in, size_t rows, size_t cols, size_t k, uint8_t *out,
                      size_t h, size_t w)
{
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            unsigned long sum[3] = {0, 0, 0}, count = 0;
            for (size_t yy = y * k; yy < rows && yy < (y + 1) * k; yy++)
                for (size_t xx = x * k; xx < cols && xx < (x + 1) * k; xx++, count++)
                    for (size_t c = 0; c < 3; c++)
                        sum[c] += in[(yy * cols + xx) * 3 + c];
            for (size_t c = 0; c < 3; c++)
                out[(y * w + x) * 3 + c] = (uint8_t)((sum[c] + count / 2) / count);
        }
}

/* The mask at display scale: a box counts as kept when at least half of it is. */
static void downscale_mask(const uint8_t *mask, size_t rows, size_t cols, size_t k, uint8_t *out,
                           size_t h, size_t w)
{
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            size_t kept = 0, count = 0;
            for (size_t yy = y * k; yy < rows && yy < (y + 1) * k; yy++)
                for (size_t xx = x * k; xx < cols && xx < (x + 1) * k; xx++, count++)
                    kept += mask[yy * cols + xx] != 0;
            out[y * w + x] = 2 * kept >= count;
        }
}

/* Outline pixels: kept pixels on the image border, and pixels of either side wherever kept
 * and blanked touch (a line two pixels wide). */
static int on_outline(const uint8_t *m, size_t h, size_t w, size_t y, size_t x)
{
    uint8_t v = m[y * w + x];
    if (v && (y == 0 || x == 0 || y + 1 == h || x + 1 == w))
        return 1;
    return (y > 0 && m[(y - 1) * w + x] != v) || (x > 0 && m[y * w + x - 1] != v) ||
           (y + 1 < h && m[(y + 1) * w + x] != v) || (x + 1 < w && m[y * w + x + 1] != v);
}

/* Paste a half (h x w RGB) into the canvas at column x0, outline drawn over it. */
static void paste(uint8_t *canvas, size_t cw, const uint8_t *half, size_t h, size_t w, size_t x0,
                  const uint8_t *m)
{
    for (size_t y = 0; y < h; y++) {
        memcpy(canvas + (y * cw + x0) * 3, half + y * w * 3, w * 3);
        if (m)
            for (size_t x = 0; x < w; x++)
                if (on_outline(m, h, w, y, x))
                    memcpy(canvas + (y * cw + x0 + x) * 3, OUTLINE, 3);
    }
}

/* One half at display scale: *out (h x w x 3) or DEID_ERR_NOMEM. */
static deid_status render_half(const deid_image *img, size_t k, size_t h, size_t w,
                               uint8_t **out)
{
    size_t full = img->rows * img->cols * 3; /* checked when the image was built */
    uint8_t *rgb = deid__malloc(full), *small = deid__malloc(h * w * 3);
    if (!rgb || !small) {
        free(rgb);
        free(small);
        return DEID_ERR_NOMEM;
    }
    frame_to_rgb8(img, rgb);
    downscale(rgb, img->rows, img->cols, k, small, h, w);
    free(rgb);
    *out = small;
    return DEID_OK;
}

static void fill(uint8_t *rgb, size_t n, const uint8_t colour[3])
{
    for (size_t i = 0; i < n; i++)
        memcpy(rgb + 3 * i, colour, 3);
}

static deid_status compose(const deid_image *original, const deid_image *masked,
                           const uint8_t *mask, const char *caption, uint8_t **png, size_t *size)
{
    size_t rows = original->rows, cols = original->cols;
    size_t longest = rows > cols ? rows : cols, k = (longest + MAX_SIDE - 1) / MAX_SIDE;
    size_t h = (rows + k - 1) / k, w = (cols + k - 1) / k;
    size_t cw = masked ? 2 * w + GAP : w;
    unsigned s = cw >= 900 ? 2 : 1; /* font scale */
    size_t pad = 4u * s, line = (DEID_FONT_CELL_H + 2u) * s;
    size_t ch = h + 2 * pad + 2 * line;
    uint8_t *left = NULL, *right = NULL, *m = NULL, *canvas = NULL;
    deid_status st = render_half(original, k, h, w, &left);
    if (st == DEID_OK && masked)
        st = render_half(masked, k, h, w, &right);
    if (st == DEID_OK && mask && !(m = deid__malloc(h * w)))
        st = DEID_ERR_NOMEM;
    if (st == DEID_OK && !(canvas = deid__malloc(ch * cw * 3)))
        st = DEID_ERR_NOMEM;
    if (st == DEID_OK) {
        if (m)
            downscale_mask(mask, rows, cols, k, m, h, w);
        fill(canvas, ch * cw, BACKGROUND);
        paste(canvas, cw, left, h, w, 0, m);
        if (right)
            paste(canvas, cw, right, h, w, w + GAP, m);
        deid__draw_text(canvas, ch, cw, pad, h + pad, s, TEXT, "original");
        if (right)
            deid__draw_text(canvas, ch, cw, w + GAP + pad, h + pad, s, TEXT, "masked");
        if (caption)
            deid__draw_text(canvas, ch, cw, pad, h + pad + line, s, TEXT, caption);
        st = deid__png_encode_rgb(canvas, ch, cw, png, size);
    }
    free(left);
    free(right);
    free(m);
    free(canvas);
    return st;
}

deid_status deid_overview_png(const deid_image *original, const deid_image *masked,
                              const uint8_t *mask, const char *caption, const char *path)
{
    if (!original || !path)
        return deid__fail(DEID_ERR_ARGUMENT, M, "overview: NULL argument");
    if (!original->frames || !original->rows || !original->cols ||
        (masked && (masked->rows != original->rows || masked->cols != original->cols ||
                    !masked->frames)))
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "%s: overview: the original and masked images differ in size", path);
    uint8_t *png = NULL;
    size_t size = 0;
    deid_status st = compose(original, masked, mask, caption, &png, &size);
    if (st == DEID_OK)
        st = deid__write_file_atomic(path, png, size, 0644, 0);
    else
        deid__error_prefix(path);
    free(png);
    return st;
}
