/* Frames to detection planes, and the image operations the passes share: separable min/max
 * filters (van Herk / Gil-Werman, O(1) per pixel), top-hats and CLAHE. */
#include <stdlib.h>
#include <string.h>
#include "text/prep.h"
#include "text/text_int.h"
#include "pixel/pixel_int.h"

#define M "text"

void deid__text_frame_clear(deid_text_frame *f)
{
    if (!f)
        return;
    free(f->grey);
    free(f->chroma);
    memset(f, 0, sizeof *f);
}

/* 16-bit grey to 8 bits: linear from the 0.5th percentile of the frame's own values to its
 * maximum, so burned-in text (usually written at or near the maximum value) stays the brightest
 * thing in the frame and a few outliers below do not squeeze the range. (Clipping the top as
 * well merged text with bone: recall fell on 16-bit CT.) */
static deid_status window16(const uint8_t *raw, int is_signed, size_t n, uint8_t *out)
{
    const uint16_t *u = (const uint16_t *)(const void *)raw;
    const int16_t *s = (const int16_t *)(const void *)raw;
    uint32_t *hist = deid__calloc(65536, sizeof *hist);
    if (!hist)
        return DEID_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        hist[is_signed ? (uint16_t)(s[i] + 32768) : u[i]]++;
    size_t cut = n / 200, acc = 0;
    long lo = 0, hi = 65535;
    for (long v = 0; v < 65536; v++) {
        acc += hist[v];
        if (acc > cut) {
            lo = v;
            break;
        }
    }
    for (long v = 65535; v >= 0; v--)
        if (hist[v]) {
            hi = v;
            break;
        }
    free(hist);
    if (is_signed)
        lo -= 32768, hi -= 32768;
    double span = hi > lo ? (double)(hi - lo) : 1.0;
    for (size_t i = 0; i < n; i++) {
        long v = is_signed ? (long)s[i] : (long)u[i];
        double x = (double)(v - lo) * 255.0 / span + 0.5;
        out[i] = (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x);
    }
    return DEID_OK;
}

deid_status deid__text_frame_from_image(const deid_image *img, size_t frame,
                                        deid_text_frame *out)
{
    if (!img || !out || frame >= img->frames)
        return deid__fail(DEID_ERR_ARGUMENT, M, "text frame: bad arguments");
    size_t n = img->rows * img->cols; /* the image was built with checked sizes */
    const uint8_t *raw = img->data + frame * deid__image_frame_bytes(img);
    deid_text_frame f = {0};
    f.rows = img->rows;
    f.cols = img->cols;
    f.frame = frame;
    f.source = DEID_TEXT_SOURCE_PIXELS;
    if (img->samples == 1 && !deid__pi_is(img, "PALETTE COLOR")) {
        if (!(f.grey = deid__malloc(n ? n : 1)))
            return DEID_ERR_NOMEM;
        if (img->bits == 8) {
            memcpy(f.grey, raw, n);
        } else if (window16(raw, img->is_signed, n, f.grey) != DEID_OK) {
            deid__text_frame_clear(&f);
            return DEID_ERR_NOMEM;
        }
        if (deid__pi_is(img, "MONOCHROME1"))
            for (size_t i = 0; i < n; i++)
                f.grey[i] = (uint8_t)(255 - f.grey[i]);
    } else if (img->samples == 3 && img->bits == 8 && deid__pi_is(img, "RGB")) {
        f.grey = deid__malloc(n ? n : 1);
        f.chroma = deid__malloc(n ? n : 1);
        if (!f.grey || !f.chroma) {
            deid__text_frame_clear(&f);
            return DEID_ERR_NOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            unsigned r = raw[3 * i], g = raw[3 * i + 1], b = raw[3 * i + 2];
            f.grey[i] = (uint8_t)((299 * r + 587 * g + 114 * b + 500) / 1000);
            unsigned mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
            unsigned mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
            f.chroma[i] = (uint8_t)(mx - mn);
        }
    } else {
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "text detection needs grey or 8-bit RGB pixels, not %s with %zu "
                          "samples (convert PALETTE COLOR and YBR first)",
                          img->photometric, img->samples);
    }
    *out = f;
    return DEID_OK;
}

/* ---- min/max filters ------------------------------------------------------------------------ */

/* 1D running min (is_max 0) or max (1) over a centred window of k (odd) samples, on `n`
 * values spaced `step` apart; g and h are scratch of n + k. Edges replicate. */
static void run1d(const uint8_t *in, uint8_t *out, size_t n, size_t step, size_t k, int is_max,
                  uint8_t *g, uint8_t *h)
{
    size_t r = k / 2, m = n + 2 * r;
#define PICK(a, b) (is_max ? ((a) > (b) ? (a) : (b)) : ((a) < (b) ? (a) : (b)))
#define AT(i) in[((i) < r ? 0 : ((i)-r) >= n ? n - 1 : (i)-r) * step]
    for (size_t i = 0; i < m; i++)
        g[i] = (i % k == 0) ? AT(i) : PICK(g[i - 1], AT(i));
    for (size_t i = m; i-- > 0;)
        h[i] = (i == m - 1 || (i + 1) % k == 0) ? AT(i) : PICK(h[i + 1], AT(i));
    for (size_t i = 0; i < n; i++) {
        /* window [i, i + k - 1] in padded coordinates */
        uint8_t a = h[i], b = g[i + k - 1];
        out[i * step] = PICK(a, b);
    }
#undef AT
#undef PICK
}

deid_status deid__text_minmax(const uint8_t *in, uint8_t *out, size_t rows, size_t cols,
                              size_t k, int is_max)
{
    size_t big = (rows > cols ? rows : cols) + k + 1;
    uint8_t *tmp = deid__malloc(rows * cols + 1);
    uint8_t *g = deid__malloc(big), *h = deid__malloc(big);
    uint8_t *col = deid__malloc(rows ? rows : 1), *colo = deid__malloc(rows ? rows : 1);
    if (!tmp || !g || !h || !col || !colo) {
        free(tmp), free(g), free(h), free(col), free(colo);
        return DEID_ERR_NOMEM;
    }
    for (size_t y = 0; y < rows; y++)
        run1d(in + y * cols, tmp + y * cols, cols, 1, k, is_max, g, h);
    for (size_t x = 0; x < cols; x++) {
        for (size_t y = 0; y < rows; y++)
            col[y] = tmp[y * cols + x];
        run1d(col, colo, rows, 1, k, is_max, g, h);
        for (size_t y = 0; y < rows; y++)
            out[y * cols + x] = colo[y];
    }
    free(tmp), free(g), free(h), free(col), free(colo);
    return DEID_OK;
}

deid_status deid__text_tophat(const uint8_t *in, uint8_t *out, size_t rows, size_t cols,
                              size_t k, int dark)
{
    size_t n = rows * cols;
    uint8_t *a = deid__malloc(n ? n : 1);
    if (!a)
        return DEID_ERR_NOMEM;
    /* bright text: in - opening; dark text: closing - in */
    deid_status st = deid__text_minmax(in, a, rows, cols, k, dark);
    if (st == DEID_OK)
        st = deid__text_minmax(a, out, rows, cols, k, !dark);
    if (st == DEID_OK)
        for (size_t i = 0; i < n; i++)
            out[i] = dark ? (uint8_t)(out[i] - in[i]) : (uint8_t)(in[i] - out[i]);
    free(a);
    return st;
}

/* ---- CLAHE ---------------------------------------------------------------------------------- */

deid_status deid__text_clahe(const uint8_t *in, uint8_t *out, size_t rows, size_t cols,
                             size_t tiles, double clip)
{
    if (rows < tiles * 2 || cols < tiles * 2) {
        memcpy(out, in, rows * cols);
        return DEID_OK;
    }
    size_t ty = tiles, tx = tiles;
    float *lut = deid__malloc(ty * tx * 256 * sizeof *lut);
    if (!lut)
        return DEID_ERR_NOMEM;
    for (size_t j = 0; j < ty; j++)
        for (size_t i = 0; i < tx; i++) {
            size_t y0 = j * rows / ty, y1 = (j + 1) * rows / ty;
            size_t x0 = i * cols / tx, x1 = (i + 1) * cols / tx;
            double hist[256] = {0};
            for (size_t y = y0; y < y1; y++)
                for (size_t x = x0; x < x1; x++)
                    hist[in[y * cols + x]] += 1.0;
            double total = (double)((y1 - y0) * (x1 - x0));
            double limit = clip * total / 256.0, excess = 0;
            for (int v = 0; v < 256; v++)
                if (hist[v] > limit) {
                    excess += hist[v] - limit;
                    hist[v] = limit;
                }
            double add = excess / 256.0, acc = 0;
            float *l = lut + (j * tx + i) * 256;
            for (int v = 0; v < 256; v++) {
                acc += hist[v] + add;
                l[v] = (float)(acc * 255.0 / total);
            }
        }
    for (size_t y = 0; y < rows; y++) {
        double fy = ((double)y + 0.5) * (double)ty / (double)rows - 0.5;
        size_t j0 = fy < 0 ? 0 : (size_t)fy, j1 = j0 + 1 < ty ? j0 + 1 : ty - 1;
        double wy = fy < 0 ? 0 : fy - (double)j0;
        if (wy > 1)
            wy = 1;
        for (size_t x = 0; x < cols; x++) {
            double fx = ((double)x + 0.5) * (double)tx / (double)cols - 0.5;
            size_t i0 = fx < 0 ? 0 : (size_t)fx, i1 = i0 + 1 < tx ? i0 + 1 : tx - 1;
            double wx = fx < 0 ? 0 : fx - (double)i0;
            if (wx > 1)
                wx = 1;
            uint8_t v = in[y * cols + x];
            double a = lut[(j0 * tx + i0) * 256 + v], b = lut[(j0 * tx + i1) * 256 + v];
            double c = lut[(j1 * tx + i0) * 256 + v], d = lut[(j1 * tx + i1) * 256 + v];
            double r = (1 - wy) * ((1 - wx) * a + wx * b) + wy * ((1 - wx) * c + wx * d);
            out[y * cols + x] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r + 0.5);
        }
    }
    free(lut);
    return DEID_OK;
}
