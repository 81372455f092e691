/* Image buffers made by pixel/ (colour conversion results) and the small helpers the files of
 * pixel/ share: frame size, photometric tests, full-range YCbCr to RGB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pixel/pixel_int.h"

deid_image *deid__image_new(size_t frames, size_t rows, size_t cols, size_t samples, unsigned bits,
                            int is_signed, const char *photometric)
{
    size_t bytes;
    if (!deid__mul_size(rows, cols, &bytes) || !deid__mul_size(bytes, samples, &bytes) ||
        !deid__mul_size(bytes, frames, &bytes) || !deid__mul_size(bytes, bits / 8, &bytes)) {
        deid__fail(DEID_ERR_LIMIT, "pixel", "image of %zu frames %zux%zux%zu: size overflows",
                   frames, rows, cols, samples);
        return NULL;
    }
    deid_image *img = deid__calloc(1, sizeof *img);
    if (!img)
        return NULL;
    if (!(img->data = deid__calloc(bytes ? bytes : 1, 1))) {
        free(img);
        return NULL;
    }
    img->frames = frames;
    img->rows = rows;
    img->cols = cols;
    img->samples = samples;
    img->bits = bits;
    img->is_signed = is_signed;
    img->size = bytes;
    snprintf(img->photometric, sizeof img->photometric, "%s", photometric);
    return img;
}

size_t deid__image_frame_bytes(const deid_image *img)
{
    return img->rows * img->cols * img->samples * (img->bits / 8);
}

int deid__pi_is(const deid_image *img, const char *photometric)
{
    return !strcmp(img->photometric, photometric);
}

/* Decoders hand YBR_FULL_422 frames over upsampled (three samples per pixel). */
int deid__pi_is_ybr(const deid_image *img)
{
    return img->samples == 3 && (deid__pi_is(img, "YBR_FULL") || deid__pi_is(img, "YBR_FULL_422"));
}

static uint8_t clamp8(int32_t v)
{
    if (v < 0)
        return 0;
    v >>= 16;
    return (uint8_t)(v > 255 ? 255 : v);
}

/* PS3.3 C.7.6.3.1.2 YBR_FULL (the JFIF equations), in 16.16 fixed point, rounded. */
void deid__ybr_full_to_rgb(const uint8_t *in, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++, in += 3, out += 3) {
        int32_t y = (int32_t)in[0] * 65536 + 32768, cb = (int32_t)in[1] - 128,
                cr = (int32_t)in[2] - 128;
        out[0] = clamp8(y + 91881 * cr);
        out[1] = clamp8(y - 22554 * cb - 46802 * cr);
        out[2] = clamp8(y + 116130 * cb);
    }
}
