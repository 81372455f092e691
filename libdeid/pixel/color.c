/* deid_image_to_rgb: PALETTE COLOR expanded through the data set's lookup tables, YBR_FULL
 * converted, RGB and monochrome copied, so that masking with 0 means black and the result can
 * be re-encoded as ordinary colour. */
#include <stdlib.h>
#include <string.h>
#include "dicom/dataset_int.h"
#include "pixel/pixel_int.h"

static const char *M = "pixel";

/* One channel's lookup table reduced to 8-bit output values. */
typedef struct lut {
    size_t count;   /* entries (descriptor value 0 means 65536) */
    long first;     /* first stored pixel value mapped */
    const uint8_t *data;
    size_t width;   /* bytes per entry in the data: 1 or 2 */
    unsigned max;   /* largest entry */
} lut;

static deid_status read_lut(const deid_dataset *ds, int is_signed, unsigned channel, lut *t)
{
    static const char *const names[3] = {"Red", "Green", "Blue"};
    const char *who = ds->name ? ds->name : "<memory>";
    uint32_t desc_tag = 0x00281101u + channel, data_tag = 0x00281201u + channel;
    const deid_elem *d = deid__item_find(&ds->root, desc_tag);
    const deid_elem *v = deid__item_find(&ds->root, data_tag);
    if (!v && deid__item_find(&ds->root, 0x00281221u + channel))
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "%s: segmented palette colour lookup tables are not supported", who);
    if (!d || !d->value || d->len < 6 || !v || !v->value || !v->len)
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "%s: PALETTE COLOR without a usable %s palette descriptor (0028,%04X) "
                          "and data (0028,%04X)",
                          who, names[channel], (unsigned)(desc_tag & 0xFFFF),
                          (unsigned)(data_tag & 0xFFFF));
    unsigned n = (unsigned)(d->value[0] | d->value[1] << 8);
    unsigned first = (unsigned)(d->value[2] | d->value[3] << 8);
    unsigned bits = (unsigned)(d->value[4] | d->value[5] << 8);
    t->count = n ? n : 65536u;
    /* the first mapped value is SS when pixels are signed (PS3.3 C.7.6.3.1.5) */
    t->first = is_signed ? (long)(int16_t)first : (long)first;
    t->data = v->value;
    if (bits != 8 && bits != 16)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: %s palette entries of %u bits", who,
                          names[channel], bits);
    /* Entry width from the data present: 8-bit entries are sometimes stored one per word. */
    if (v->len >= 2 * t->count)
        t->width = 2;
    else if (v->len >= t->count && bits == 8)
        t->width = 1;
    else
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "%s: %s palette data holds %lu bytes for %zu entries of %u bits", who,
                          names[channel], (unsigned long)v->len, t->count, bits);
    t->max = 0;
    for (size_t i = 0; i < t->count; i++) {
        unsigned e = t->width == 2 ? (unsigned)(t->data[2 * i] | t->data[2 * i + 1] << 8)
                                   : t->data[i];
        if (e > t->max)
            t->max = e;
    }
    return DEID_OK;
}

/* 8-bit output per entry. 16-bit entries span 0..65535 (PS3.3 C.7.6.3.1.6) and keep their
 * high byte; tables whose 16-bit entries all fit in 8 bits (a common encoder slip) are taken
 * as they are. `shift` is decided over the three tables together so the channels agree. */
static void build_table(const lut *t, unsigned shift, uint8_t *out)
{
    for (size_t i = 0; i < t->count; i++) {
        unsigned e = t->width == 2 ? (unsigned)(t->data[2 * i] | t->data[2 * i + 1] << 8)
                                   : t->data[i];
        out[i] = (uint8_t)(t->width == 2 ? e >> shift : e);
    }
}

static size_t lut_index(const lut *t, long value)
{
    long i = value - t->first;
    if (i < 0)
        return 0;
    return (size_t)i >= t->count ? t->count - 1 : (size_t)i;
}

static deid_status expand_palette(const deid_image *in, const deid_dataset *ds, deid_image **out)
{
    if (!ds)
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "PALETTE COLOR image: the dataset holding its lookup tables is needed");
    lut t[3];
    for (unsigned c = 0; c < 3; c++) {
        deid_status st = read_lut(ds, in->is_signed, c, &t[c]);
        if (st != DEID_OK)
            return st;
    }
    unsigned wide_max = 0;
    for (unsigned c = 0; c < 3; c++)
        if (t[c].width == 2 && t[c].max > wide_max)
            wide_max = t[c].max;
    unsigned shift = wide_max > 255 ? 8 : 0;
    deid_image *img = deid__image_new(in->frames, in->rows, in->cols, 3, 8, 0, "RGB");
    uint8_t *tables = deid__malloc(3 * 65536);
    if (!img || !tables) {
        deid_image_free(img);
        free(tables);
        return DEID_ERR_NOMEM;
    }
    for (unsigned c = 0; c < 3; c++)
        build_table(&t[c], shift, tables + (size_t)c * 65536);
    size_t n = in->frames * in->rows * in->cols;
    uint8_t *o = img->data;
    if (in->bits == 8) {
        /* 256 possible indices: resolve them once */
        uint8_t rgb[256][3];
        for (unsigned v = 0; v < 256; v++) {
            long value = in->is_signed ? (long)(int8_t)(uint8_t)v : (long)v;
            for (unsigned c = 0; c < 3; c++)
                rgb[v][c] = tables[(size_t)c * 65536 + lut_index(&t[c], value)];
        }
        for (size_t i = 0; i < n; i++, o += 3)
            memcpy(o, rgb[in->data[i]], 3);
    } else {
        const uint16_t *p = (const uint16_t *)(const void *)in->data;
        for (size_t i = 0; i < n; i++, o += 3) {
            long value = in->is_signed ? (long)(int16_t)p[i] : (long)p[i];
            for (unsigned c = 0; c < 3; c++)
                o[c] = tables[(size_t)c * 65536 + lut_index(&t[c], value)];
        }
    }
    free(tables);
    *out = img;
    return DEID_OK;
}

static deid_status copy_image(const deid_image *in, const char *photometric, deid_image **out)
{
    deid_image *img = deid__image_new(in->frames, in->rows, in->cols, in->samples, in->bits,
                                      in->is_signed, photometric);
    if (!img)
        return deid_last_error_code();
    memcpy(img->data, in->data, in->size);
    *out = img;
    return DEID_OK;
}

deid_status deid_image_to_rgb(const deid_image *in, const deid_dataset *ds, deid_image **out)
{
    if (!in || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "to_rgb: NULL argument");
    if (in->samples == 1 && deid__pi_is(in, "PALETTE COLOR"))
        return expand_palette(in, ds, out);
    if (in->samples == 1 && !strncmp(in->photometric, "MONOCHROME", 10))
        return copy_image(in, in->photometric, out);
    if (in->samples == 3 && deid__pi_is(in, "RGB"))
        return copy_image(in, "RGB", out);
    if (deid__pi_is_ybr(in) && in->bits == 8) {
        deid_status st = copy_image(in, "RGB", out);
        if (st == DEID_OK)
            deid__ybr_full_to_rgb((*out)->data, (*out)->data, in->frames * in->rows * in->cols);
        return st;
    }
    return deid__fail(DEID_ERR_UNSUPPORTED, M,
                      "to_rgb: %u-bit %s images with %zu samples per pixel are not supported",
                      in->bits, in->photometric, in->samples);
}
