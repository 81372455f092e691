/* deid_image: decoded frames. Native pixel data is unpacked here; encapsulated frames are
 * decoded one at a time straight into the image buffer, after their codestream header was
 * checked against the DICOM header (codec.c): 8-bit JPEG by libjpeg-turbo, lossless JPEG by
 * ljpeg.c, JPEG 2000, JPEG-LS, RLE and 12-bit JPEG by GDCM (shim). Every size is computed with
 * overflow checks and compared with the data present before anything is allocated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "deid/image.h"
#include "dicom/dicom_int.h"
#include "shim/gdcm_shim.h"

#define DEFAULT_MAX_SAMPLES (1ull << 31)
/* Encapsulated data decoding to more than this may not expand more than RATIO_MAX times. */
#define RATIO_FLOOR_BYTES ((size_t)64 << 20)
#define RATIO_MAX 4096u


/* What the header says about the pixels. */
typedef struct layout {
    size_t rows, cols, samples, frames;
    unsigned bits_allocated, bits_stored, high_bit, pixel_representation, planar;
    char photometric[20];
} layout;

static const char *M = "dicom";

static deid_status read_layout(const deid_dataset *ds, layout *l)
{
    const deid_item *r = &ds->root;
    const char *name = deid__ds_label(ds);
    long long rows = deid__item_uint(r, 0x00280010u), cols = deid__item_uint(r, 0x00280011u);
    long long spp = deid__item_uint(r, 0x00280002u), ba = deid__item_uint(r, 0x00280100u);
    long long bs = deid__item_uint(r, 0x00280101u), hb = deid__item_uint(r, 0x00280102u);
    long long pr = deid__item_uint(r, 0x00280103u), pc = deid__item_uint(r, 0x00280006u);
    long long nf = deid__item_uint(r, 0x00280008u);
    if (rows <= 0 || cols <= 0 || ba <= 0)
        return deid__fail(DEID_ERR_NO_PIXELS, M, "%s: Rows, Columns or Bits Allocated missing or 0",
                          name);
    if (ba != 8 && ba != 16)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: Bits Allocated %lld (only 8 and 16)", name,
                          ba);
    if (spp <= 0)
        spp = 1;
    if (spp != 1 && spp != 3)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: Samples per Pixel %lld (only 1 and 3)",
                          name, spp);
    if (nf == 0)
        return deid__fail(DEID_ERR_NO_PIXELS, M, "%s: Number of Frames is 0", name);
    l->rows = (size_t)rows;
    l->cols = (size_t)cols;
    l->samples = (size_t)spp;
    l->frames = nf < 0 ? 1 : (size_t)nf;
    l->bits_allocated = (unsigned)ba;
    l->bits_stored = (bs <= 0 || bs > ba) ? (unsigned)ba : (unsigned)bs;
    l->high_bit = (hb < 0 || hb >= ba) ? l->bits_stored - 1 : (unsigned)hb;
    l->pixel_representation = pr == 1;
    l->planar = pc == 1 && spp == 3;
    const deid_elem *pi = deid__item_find(r, 0x00280004u);
    if (!pi || !pi->value ||
        deid__elem_text(pi, l->photometric, sizeof l->photometric) == (size_t)-1 ||
        !l->photometric[0])
        strcpy(l->photometric, spp == 3 ? "RGB" : "MONOCHROME2");
    return DEID_OK;
}

/* ---- native pixel data -------------------------------------------------------------------- */

static int is_ybr422(const layout *l) { return !strcmp(l->photometric, "YBR_FULL_422"); }

/* Bytes of one stored frame (YBR_FULL_422 stores two samples per pixel). */
static int stored_frame_bytes(const layout *l, size_t *out)
{
    size_t px, spp = (is_ybr422(l) && l->samples == 3) ? 2 : l->samples;
    return deid__mul_size(l->rows, l->cols, &px) && deid__mul_size(px, spp, &px) &&
           deid__mul_size(px, l->bits_allocated / 8, out);
}

static void copy_frame_native(const layout *l, const uint8_t *src, uint8_t *dst)
{
    size_t bpp = l->bits_allocated / 8, npx = l->rows * l->cols;
    if (l->samples == 3 && is_ybr422(l)) {
        /* Y1 Y2 Cb Cr per pixel pair -> Y Cb Cr per pixel */
        for (size_t i = 0; i + 1 < npx; i += 2) {
            const uint8_t *s = src + i * 2 * bpp;
            uint8_t *d = dst + i * 3 * bpp;
            memcpy(d, s, bpp);
            memcpy(d + bpp, s + 2 * bpp, 2 * bpp);
            memcpy(d + 3 * bpp, s + bpp, bpp);
            memcpy(d + 4 * bpp, s + 2 * bpp, 2 * bpp);
        }
    } else if (l->samples == 3 && l->planar) {
        for (size_t i = 0; i < npx; i++)
            for (size_t c = 0; c < 3; c++)
                memcpy(dst + (i * 3 + c) * bpp, src + (c * npx + i) * bpp, bpp);
    } else {
        memcpy(dst, src, npx * l->samples * bpp);
    }
    if (bpp == 2) { /* the tree is little endian; the image is native */
        const uint16_t probe = 1;
        if (*(const uint8_t *)&probe == 0) {
            size_t n = npx * l->samples;
            for (size_t i = 0; i < n; i++) {
                uint8_t t = dst[2 * i];
                dst[2 * i] = dst[2 * i + 1];
                dst[2 * i + 1] = t;
            }
        }
    }
}

/* Native Pixel Data holds every frame the header claims; *fbytes: the stored bytes of one. */
static deid_status native_size(const deid_dataset *ds, const deid_elem *px, const layout *l,
                               size_t *fbytes)
{
    size_t need;
    if (!stored_frame_bytes(l, fbytes) || !deid__mul_size(*fbytes, l->frames, &need))
        return deid__fail(DEID_ERR_LIMIT, M, "%s: pixel data size overflows", deid__ds_label(ds));
    if (px->len < need)
        return deid__fail(DEID_ERR_NO_PIXELS, M,
                          "%s: Pixel Data holds %lu bytes but %zu frames of %zux%zux%zu need %zu",
                          deid__ds_label(ds), (unsigned long)px->len, l->frames, l->rows, l->cols,
                          l->samples, need);
    return DEID_OK;
}

static deid_status decode_native(const deid_dataset *ds, const deid_elem *px, const layout *l,
                                 size_t first, size_t count, deid_image *img)
{
    size_t fbytes;
    deid_status st = native_size(ds, px, l, &fbytes);
    if (st != DEID_OK)
        return st;
    if (!(img->data = deid__malloc(img->size)))
        return DEID_ERR_NOMEM;
    size_t out_frame = img->size / count;
    for (size_t i = 0; i < count; i++)
        copy_frame_native(l, px->value + (first + i) * fbytes, img->data + i * out_frame);
    if (l->samples == 3 && is_ybr422(l))
        strcpy(img->photometric, "YBR_FULL");
    return DEID_OK;
}

/* ---- encapsulated pixel data -------------------------------------------------------------- */

/* Fragment index ranges from an offset table (offsets from the first fragment's item tag). */
static int map_by_offsets(const deid_elem *px, const uint8_t *tab, size_t entry, size_t frames,
                          size_t *starts)
{
    size_t nf = px->nfrags - 1, j = 1;
    uint64_t pos = 0;
    for (size_t i = 0; i < frames; i++) {
        uint64_t off = deid__rd_le(tab + i * entry, entry);
        while (j <= nf && pos < off) {
            pos += 8 + (uint64_t)px->frags[j].len;
            j++;
        }
        if (j > nf || pos != off || (i > 0 && j <= starts[i - 1]))
            return 0;
        starts[i] = j;
    }
    starts[frames] = nf + 1;
    return starts[0] == 1;
}

static int frame_start(const char *ts, const deid_fragment *f)
{
    const uint8_t *d = f->data;
    if (f->len < 4)
        return 0;
    if (!strncmp(ts, "1.2.840.10008.1.2.4.9", 21) || !strncmp(ts, "1.2.840.10008.1.2.4.20", 22))
        return (d[0] == 0xFF && d[1] == 0x4F && d[2] == 0xFF && d[3] == 0x51) ||
               (f->len >= 8 && !memcmp(d, "\0\0\0\x0CjP  ", 8));
    if (!strncmp(ts, "1.2.840.10008.1.2.4.", 20))
        return d[0] == 0xFF && d[1] == 0xD8;
    return 0;
}

static int map_by_markers(const deid_elem *px, const char *ts, size_t frames, size_t *starts)
{
    size_t nf = px->nfrags - 1, k = 0;
    for (size_t j = 1; j <= nf; j++)
        if (frame_start(ts, &px->frags[j])) {
            if (k == frames)
                return 0;
            starts[k++] = j;
        }
    starts[frames] = nf + 1;
    return k == frames && starts[0] == 1;
}

/* starts[i]..starts[i+1]-1 are the fragments of frame i. */
static deid_status map_frames(const deid_dataset *ds, const deid_elem *px, const layout *l,
                              size_t *starts)
{
    size_t nf = px->nfrags - 1, frames = l->frames; /* check_request: nf >= frames */
    if (nf == frames || frames == 1) {
        for (size_t i = 0; i < frames; i++)
            starts[i] = 1 + i;
        starts[frames] = nf + 1;
        return DEID_OK;
    }
    const deid_elem *eot = deid__item_find(&ds->root, 0x7FE00001u);
    if (eot && eot->value && eot->len / 8 == frames &&
        map_by_offsets(px, eot->value, 8, frames, starts))
        return DEID_OK;
    const deid_fragment *bot = &px->frags[0];
    if (bot->len / 4 == frames && map_by_offsets(px, bot->data, 4, frames, starts))
        return DEID_OK;
    if (map_by_markers(px, deid_dataset_transfer_syntax(ds), frames, starts))
        return DEID_OK;
    return deid__fail(
        DEID_ERR_UNSUPPORTED, M,
        "%s: cannot tell which of the %zu fragments belong to which of the %zu frames",
        deid__ds_label(ds), nf, frames);
}

static deid_status decode_encapsulated(const deid_dataset *ds, const deid_elem *px, const layout *l,
                                       size_t first, size_t count, deid_image *img)
{
    const char *name = deid__ds_label(ds);
    size_t nstarts, bytes;
    if (!deid__add_size(l->frames, 1, &nstarts) || !deid__mul_size(nstarts, sizeof(size_t), &bytes))
        return DEID_ERR_NOMEM;
    size_t *starts = deid__malloc(bytes);
    if (!starts)
        return DEID_ERR_NOMEM;
    deid_status st = map_frames(ds, px, l, starts);
    size_t compressed = 0;
    for (size_t i = first; st == DEID_OK && i < first + count; i++)
        for (size_t j = starts[i]; j < starts[i + 1]; j++)
            compressed += px->frags[j].len;
    if (st == DEID_OK && img->size > RATIO_FLOOR_BYTES && img->size / RATIO_MAX > compressed)
        st = deid__fail(DEID_ERR_LIMIT, M,
                        "%s: %zu compressed bytes cannot hold %zu decoded bytes (header and data "
                        "disagree)",
                        name, compressed, img->size);
    if (st == DEID_OK && !(img->data = deid__malloc(img->size)))
        st = DEID_ERR_NOMEM;
    deid_shim_pixel sp = {deid_dataset_transfer_syntax(ds),
                          l->photometric,
                          (unsigned)l->rows,
                          (unsigned)l->cols,
                          (unsigned)l->samples,
                          l->bits_allocated,
                          l->bits_stored,
                          l->high_bit,
                          l->pixel_representation,
                          l->planar};
    deid_frame_desc fd = {(unsigned)l->rows, (unsigned)l->cols, (unsigned)l->samples,
                          l->bits_allocated, l->photometric};
    size_t out_frame = img->size / count;
    for (size_t i = 0; st == DEID_OK && i < count; i++) {
        size_t a = starts[first + i], b = starts[first + i + 1];
        const uint8_t *data = px->frags[a].data;
        size_t size = px->frags[a].len;
        uint8_t *joined = NULL;
        if (b - a > 1) { /* a frame split over fragments: hand GDCM one contiguous stream */
            size = 0;
            for (size_t j = a; j < b; j++)
                size += px->frags[j].len;
            if (!(joined = deid__malloc(size))) {
                st = DEID_ERR_NOMEM;
                break;
            }
            for (size_t j = a, o = 0; j < b; o += px->frags[j].len, j++)
                if (px->frags[j].len)
                    memcpy(joined + o, px->frags[j].data, px->frags[j].len);
            data = joined;
        }
        char pi[20];
        int codec = DEID_CODEC_GDCM;
        if (!data)
            data = (const uint8_t *)"";
        st = deid__codestream_check(deid_dataset_transfer_syntax(ds), &fd, data, size, &codec);
        if (st == DEID_OK && codec == DEID_CODEC_TURBO) {
            st = deid__jpeg8_decode(&fd, data, size, img->data + i * out_frame, pi);
        } else if (st == DEID_OK && codec == DEID_CODEC_LOSSLESS) {
            st = deid__ljpeg_decode(&fd, data, size, img->data + i * out_frame, out_frame);
            memcpy(pi, l->photometric, sizeof pi);
        } else if (st == DEID_OK)
            st = deid_shim_decode_frame(&sp, data, size, img->data + i * out_frame, out_frame, pi);
        free(joined);
        if (st != DEID_OK) {
            char where[64];
            snprintf(where, sizeof where, "frame %zu", first + i);
            deid__error_prefix(where);
            deid__error_prefix(name);
        } else if (i == 0)
            memcpy(img->photometric, pi, sizeof pi);
    }
    free(starts);
    return st;
}

/* ---- common ------------------------------------------------------------------------------- */

/* Keep only the stored bits, sign-extended for signed data, so values are what they mean
 * (high bits may hold overlays or garbage). Only for the usual layout HighBit = BitsStored-1. */
static void normalize_bits(deid_image *img, const layout *l)
{
    unsigned bs = l->bits_stored;
    if (bs >= l->bits_allocated || l->high_bit != bs - 1)
        return;
    size_t n = img->size / (l->bits_allocated / 8);
    uint32_t mask = (1u << bs) - 1, sign = 1u << (bs - 1);
    if (l->bits_allocated == 8) {
        for (size_t i = 0; i < n; i++) {
            uint32_t v = img->data[i] & mask;
            if (l->pixel_representation && (v & sign))
                v |= ~mask;
            img->data[i] = (uint8_t)v;
        }
    } else {
        uint16_t *p = (uint16_t *)(void *)img->data;
        for (size_t i = 0; i < n; i++) {
            uint32_t v = p[i] & mask;
            if (l->pixel_representation && (v & sign))
                v |= ~mask;
            p[i] = (uint16_t)v;
        }
    }
}

/* Everything about a decode request that can be checked without decoding: Pixel Data present
 * and not empty, a syntax that fits it, a layout libdeid handles, frames first..first+*count
 * (0: to the end) within the image and under max_samples (0: the default). On success *l, *px,
 * *count and *bytes (of the decoded frames) are set. */
static deid_status check_request(const deid_dataset *ds, size_t first, size_t *count,
                                 uint64_t max_samples, layout *l, const deid_elem **pxo,
                                 size_t *bytes)
{
    const char *name = deid__ds_label(ds);
    const deid_elem *px = deid__item_find(&ds->root, 0x7FE00010u);
    if (!px) {
        if (deid__item_find(&ds->root, 0x7FE00008u) || deid__item_find(&ds->root, 0x7FE00009u))
            return deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: float pixel data is not supported",
                              name);
        return deid__fail(DEID_ERR_NO_PIXELS, M, "%s: no Pixel Data", name);
    }
    if (px->vr == DEID_VR_SQ || (!px->encapsulated && !px->len))
        return deid__fail(DEID_ERR_NO_PIXELS, M, "%s: Pixel Data is empty", name);
    /* Native pixels under a syntax that is not a native one (unknown, or compressed): the bytes
     * cannot be trusted to mean what the header says, so they are not guessed at. */
    const char *ts = deid_dataset_transfer_syntax(ds);
    if (!px->encapsulated && deid__ts_encapsulated(ts))
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "%s: transfer syntax %.64s is not a native one, yet Pixel Data is not "
                          "encapsulated (unknown syntax, or header and data disagree)",
                          name, strspn(ts, "0123456789.") == strlen(ts) ? ts : "(not a UID)");
    deid_status st = read_layout(ds, l);
    if (st != DEID_OK)
        return st;
    if (first >= l->frames)
        return deid__fail(DEID_ERR_ARGUMENT, M, "%s: frame %zu requested, the image has %zu", name,
                          first, l->frames);
    if (*count == 0)
        *count = l->frames - first;
    if (*count > l->frames - first)
        return deid__fail(DEID_ERR_ARGUMENT, M, "%s: frames %zu..%zu requested, the image has %zu",
                          name, first, first + *count - 1, l->frames);
    if (max_samples == 0)
        max_samples = DEFAULT_MAX_SAMPLES;
    size_t samples;
    if (!deid__mul_size(l->rows, l->cols, &samples) ||
        !deid__mul_size(samples, l->samples, &samples) ||
        !deid__mul_size(samples, *count, &samples) || (uint64_t)samples > max_samples ||
        !deid__mul_size(samples, l->bits_allocated / 8, bytes))
        return deid__fail(DEID_ERR_LIMIT, M,
                          "%s: %zu frames of %zux%zux%zu samples exceed the limit of %llu samples",
                          name, *count, l->rows, l->cols, l->samples,
                          (unsigned long long)max_samples);
    /* a fragment per frame at least, before a frame table is sized by NumberOfFrames */
    size_t nfrags = px->nfrags ? px->nfrags - 1 : 0;
    if (px->encapsulated && nfrags < l->frames)
        return deid__fail(DEID_ERR_NO_PIXELS, M, "%s: %zu frames but only %zu pixel data fragments",
                          name, l->frames, nfrags);
    *pxo = px;
    return DEID_OK;
}

size_t deid__image_frame_count(const deid_dataset *ds)
{
    layout l;
    if (read_layout(ds, &l) != DEID_OK) {
        deid_clear_error();
        return 0;
    }
    return l.frames;
}

deid_status deid__image_check(const deid_dataset *ds, uint64_t max_samples)
{
    layout l;
    const deid_elem *px;
    size_t count = 0, bytes, fbytes;
    deid_status st = check_request(ds, 0, &count, max_samples, &l, &px, &bytes);
    if (st != DEID_OK)
        return st;
    return px->encapsulated ? DEID_OK : native_size(ds, px, &l, &fbytes);
}

deid_status deid_image_decode(const deid_dataset *ds, size_t first, size_t count,
                              uint64_t max_samples, deid_image **out)
{
    if (!ds || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "image decode: NULL argument");
    layout l;
    const deid_elem *px;
    size_t bytes;
    deid_status st = check_request(ds, first, &count, max_samples, &l, &px, &bytes);
    if (st != DEID_OK)
        return st;

    deid_image *img = deid__calloc(1, sizeof *img);
    if (!img)
        return DEID_ERR_NOMEM;
    img->frames = count;
    img->rows = l.rows;
    img->cols = l.cols;
    img->samples = l.samples;
    img->bits = l.bits_allocated;
    img->is_signed = (int)l.pixel_representation;
    img->size = bytes;
    memcpy(img->photometric, l.photometric, sizeof img->photometric);
    if (px->encapsulated)
        st = decode_encapsulated(ds, px, &l, first, count, img);
    else
        st = decode_native(ds, px, &l, first, count, img);
    if (st != DEID_OK) {
        deid_image_free(img);
        return st;
    }
    normalize_bits(img, &l);
    *out = img;
    return DEID_OK;
}

void deid_image_free(deid_image *img)
{
    if (!img)
        return;
    free(img->data);
    free(img);
}

size_t deid_image_frames(const deid_image *img) { return img ? img->frames : 0; }
size_t deid_image_rows(const deid_image *img) { return img ? img->rows : 0; }
size_t deid_image_cols(const deid_image *img) { return img ? img->cols : 0; }
size_t deid_image_samples(const deid_image *img) { return img ? img->samples : 0; }
unsigned deid_image_bits(const deid_image *img) { return img ? img->bits : 0; }
int deid_image_signed(const deid_image *img) { return img ? img->is_signed : 0; }
const char *deid_image_photometric(const deid_image *img) { return img ? img->photometric : ""; }
void *deid_image_data(deid_image *img) { return img ? img->data : NULL; }
size_t deid_image_size_bytes(const deid_image *img) { return img ? img->size : 0; }
