/* PNG encoding through stb_image_write, compiled here and only here, with static linkage so
 * that none of its symbols leave the library. */
#include <stdlib.h>
#include <string.h>
#include "pixel/pixel_int.h"

/* Warnings of the third-party code are off for this file (unused static functions are only
 * reported at the end of the file, so these stay off to its end). */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>

typedef struct sink {
    deid_buf buf;
    int failed;
} sink;

static void put(void *ctx, void *data, int size)
{
    sink *s = ctx;
    if (!s->failed && size > 0 && deid__buf_append(&s->buf, data, (size_t)size) != 0)
        s->failed = 1;
}

deid_status deid__png_encode_rgb(const uint8_t *rgb, size_t rows, size_t cols, uint8_t **png,
                                 size_t *size)
{
    if (rows == 0 || cols == 0 || rows > 0x7FFFFFFF / 3 || cols > 0x7FFFFFFF / 3 ||
        cols * 3 > 0x7FFFFFFF)
        return deid__fail(DEID_ERR_LIMIT, "pixel", "PNG of %zux%zu pixels", rows, cols);
    sink s = {{NULL, 0, 0}, 0};
    int ok = stbi_write_png_to_func(put, &s, (int)cols, (int)rows, 3, rgb, (int)(cols * 3));
    if (!ok || s.failed) {
        deid__buf_free(&s.buf);
        return deid__fail(DEID_ERR_NOMEM, "pixel", "PNG encoding: out of memory");
    }
    *png = (uint8_t *)s.buf.data;
    *size = s.buf.len;
    return DEID_OK;
}
