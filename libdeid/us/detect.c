/* deid_fan_detect: options, the Sequence of Ultrasound Regions prior, and the two steps
 * (live.c: where the data is live; fit.c: the fan that explains it). */
#include <string.h>
#include "core/core.h"
#include "dicom/dataset_int.h"
#include "us/us_int.h"

static const char *M = "us";

#define DEFAULT_MAX_FRAMES 32u
#define DEFAULT_MAX_PIXELS (1ull << 26)

#define TAG_REGIONS 0x00186011u        /* Sequence of Ultrasound Regions */
#define TAG_SPATIAL_FORMAT 0x00186012u /* Region Spatial Format: 1 = 2D */
#define TAG_MIN_X0 0x00186018u
#define TAG_MIN_Y0 0x0018601Au
#define TAG_MAX_X1 0x0018601Cu
#define TAG_MAX_Y1 0x0018601Eu

deid_status deid_fan_detect_options_init(deid_fan_detect_options *opts, unsigned version)
{
    if (!opts || version != DEID_FAN_DETECT_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, M, "fan detect options: unknown version %u",
                          version);
    deid_fan_detect_options d = DEID_FAN_DETECT_OPTIONS_INIT;
    *opts = d;
    return DEID_OK;
}

/* Unsigned value of a US or UL element in an item (values are little endian in the tree);
 * -1 when absent or of another size. */
static long long item_unsigned(const deid_item *item, uint32_t tag)
{
    const deid_elem *e = deid__item_find(item, tag);
    if (!e || !e->value)
        return -1;
    if (e->len == 2)
        return (long long)e->value[0] | (long long)e->value[1] << 8;
    if (e->len == 4)
        return (long long)e->value[0] | (long long)e->value[1] << 8 |
               (long long)e->value[2] << 16 | (long long)e->value[3] << 24;
    return -1;
}

deid_box deid__us_regions_box(const deid_dataset *ds, size_t rows, size_t cols)
{
    deid_box b = {0, 0, 0, 0, 0};
    const deid_elem *seq = ds ? deid__item_find(&ds->root, TAG_REGIONS) : NULL;
    if (!seq)
        return b;
    for (size_t k = 0; k < seq->nitems; k++) {
        const deid_item *it = &seq->items[k];
        long long x0 = item_unsigned(it, TAG_MIN_X0), y0 = item_unsigned(it, TAG_MIN_Y0);
        long long x1 = item_unsigned(it, TAG_MAX_X1), y1 = item_unsigned(it, TAG_MAX_Y1);
        if (item_unsigned(it, TAG_SPATIAL_FORMAT) != 1 || x0 < 0 || y0 < 0 || x1 < x0 ||
            y1 < y0 || x0 >= (long long)cols || y0 >= (long long)rows)
            continue;
        if (x1 >= (long long)cols)
            x1 = (long long)cols - 1;
        if (y1 >= (long long)rows)
            y1 = (long long)rows - 1;
        if (!b.valid) {
            b = (deid_box){(long)y0, (long)x0, (long)y1, (long)x1, 1};
        } else {
            b.top = b.top < y0 ? b.top : (long)y0;
            b.left = b.left < x0 ? b.left : (long)x0;
            b.bottom = b.bottom > y1 ? b.bottom : (long)y1;
            b.right = b.right > x1 ? b.right : (long)x1;
        }
    }
    return b;
}

/* The regions as a prior for detection; invalid when they cover less than 2% of the image (a
 * wrong header must not hide the fan). */
static deid_box regions_box(const deid_dataset *ds, size_t rows, size_t cols)
{
    deid_box b = deid__us_regions_box(ds, rows, cols);
    double area = (double)(b.bottom - b.top + 1) * (double)(b.right - b.left + 1);
    if (b.valid && area < 0.02 * (double)rows * (double)cols)
        b.valid = 0;
    return b;
}

deid_status deid_fan_detect(const deid_image *img, const deid_dataset *ds,
                            const deid_fan_detect_options *opts, deid_fan *out,
                            double *confidence)
{
    deid_fan_detect_options o = DEID_FAN_DETECT_OPTIONS_INIT;
    if (opts) {
        if (opts->version != DEID_FAN_DETECT_OPTIONS_VERSION)
            return deid__fail(DEID_ERR_ARGUMENT, M, "fan detect options: unknown version %u",
                              opts->version);
        o = *opts;
    }
    if (!img || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "fan detection: NULL argument");
    if (o.kind > 1 + DEID_FAN_RECTANGLE)
        return deid__fail(DEID_ERR_ARGUMENT, M, "fan detection: unknown kind %u", o.kind);
    unsigned max_frames = o.max_frames ? o.max_frames : DEFAULT_MAX_FRAMES;
    uint64_t max_pixels = o.max_pixels ? o.max_pixels : DEFAULT_MAX_PIXELS;
    size_t rows = deid_image_rows(img), cols = deid_image_cols(img), n;
    if (!deid__mul_size(rows, cols, &n) || (uint64_t)n > max_pixels)
        return deid__fail(DEID_ERR_LIMIT, M, "fan detection: %zux%zu pixels exceed the limit",
                          rows, cols);
    if (deid_image_frames(img) == 0 || rows < 2 || cols < 2)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "fan detection: empty image");
    deid_box prior = {0, 0, 0, 0, 0};
    if (!o.ignore_regions)
        prior = regions_box(ds, rows, cols);
    deid_live_map map;
    deid_status st = deid__live_map(img, max_frames, &prior, &map);
    if (st != DEID_OK)
        return st;
    deid_fan fan;
    double c = 0;
    st = deid__fan_fit(&map, o.kind, &fan, &c);
    deid__live_map_free(&map);
    if (st != DEID_OK)
        return st;
    *out = fan;
    if (confidence)
        *confidence = c;
    return DEID_OK;
}
