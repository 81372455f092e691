/* deid_image_apply_mask: blank everything outside a region, in every frame and sample. */
#include <string.h>
#include "pixel/pixel_int.h"

/* Blank the runs of zeros of one mask row in one image row (a few long runs per row: one
 * memset each). */
static void blank_row(uint8_t *row, const uint8_t *m, size_t cols, size_t px)
{
    size_t c = 0;
    while (c < cols) {
        while (c < cols && m[c])
            c++;
        size_t start = c;
        while (c < cols && !m[c])
            c++;
        if (c > start)
            memset(row + start * px, 0, (c - start) * px);
    }
}

deid_status deid_image_apply_mask(deid_image *img, const uint8_t *mask)
{
    if (!img || !mask)
        return deid__fail(DEID_ERR_ARGUMENT, "pixel", "apply_mask: NULL argument");
    size_t px = img->samples * (img->bits / 8), row_bytes = img->cols * px;
    uint8_t *p = img->data;
    for (size_t f = 0; f < img->frames; f++)
        for (size_t r = 0; r < img->rows; r++, p += row_bytes)
            blank_row(p, mask + r * img->cols, img->cols, px);
    return DEID_OK;
}
