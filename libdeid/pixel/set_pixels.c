/* deid_dataset_set_pixels: new Pixel Data (JPEG baseline through libjpeg-turbo, or native
 * explicit VR little endian) and a header that describes it. Everything that can fail (the
 * encoding, every new value, room in the element arrays) is prepared first; the data set is
 * then changed by steps that cannot fail, so a failed call leaves it as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dicom/dataset_int.h"
#include "pixel/pixel_int.h"

#define DEFAULT_QUALITY 95
#define TS_JPEG_BASELINE "1.2.840.10008.1.2.4.50"
#define TS_EXPLICIT_LE "1.2.840.10008.1.2.1"
#define MAX_STAGED 24
#define VR(a, b) DEID_VR(a, b)

static const char *M = "pixel";

deid_status deid_encode_options_init(deid_encode_options *opts, unsigned version)
{
    if (!opts)
        return deid__fail(DEID_ERR_ARGUMENT, M, "encode options: NULL");
    if (version != DEID_ENCODE_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, M, "encode options: unknown version %u", version);
    opts->version = version;
    opts->codec = DEID_CODEC_JPEG_BASELINE;
    opts->quality = DEFAULT_QUALITY;
    opts->chroma = DEID_CHROMA_422;
    return DEID_OK;
}

int deid_default_jpeg_quality(void) { return DEFAULT_QUALITY; }

static deid_status resolve_options(const deid_encode_options *in, deid_encode_options *o)
{
    deid_encode_options_init(o, DEID_ENCODE_OPTIONS_VERSION);
    if (!in)
        return DEID_OK;
    if (in->version != DEID_ENCODE_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, M, "encode options: unknown version %u",
                          in->version);
    if (in->codec != DEID_CODEC_JPEG_BASELINE && in->codec != DEID_CODEC_UNCOMPRESSED)
        return deid__fail(DEID_ERR_ARGUMENT, M, "encode options: unknown codec %d", in->codec);
    if (in->quality < 0 || in->quality > 100)
        return deid__fail(DEID_ERR_ARGUMENT, M, "encode options: quality %d (1..100)",
                          in->quality);
    if (in->chroma != DEID_CHROMA_422 && in->chroma != DEID_CHROMA_444)
        return deid__fail(DEID_ERR_ARGUMENT, M, "encode options: unknown chroma %d", in->chroma);
    o->codec = in->codec;
    o->quality = in->quality ? in->quality : DEFAULT_QUALITY;
    o->chroma = in->chroma;
    return DEID_OK;
}

/* ---- the plan: new values prepared before anything changes ------------------------------- */

typedef struct staged {
    uint32_t tag;
    uint16_t vr;
    uint8_t *value;
    uint32_t len;
} staged;

typedef struct plan {
    staged set[MAX_STAGED];
    size_t nset;
    uint32_t remove[32];
    size_t nremove;
    const char *ts;
    char photometric[20];
    /* Pixel Data: fragments (encapsulated) or one native value */
    deid_fragment *frags;
    size_t nfrags;
    uint8_t *native;
    uint32_t native_len;
    uint16_t native_vr;
    size_t compressed; /* bytes of all fragments (JPEG) */
    staged meta_ts;    /* (0002,0010) */
    char *ts_copy;     /* for ds->transfer_syntax */
} plan;

static void plan_free(plan *p)
{
    for (size_t i = 0; i < p->nset; i++)
        free(p->set[i].value);
    for (size_t i = 0; i < p->nfrags; i++)
        free(p->frags[i].data);
    free(p->frags);
    free(p->native);
    free(p->meta_ts.value);
    free(p->ts_copy);
}

static deid_status stage(plan *p, uint32_t tag, uint16_t vr, const void *value, size_t len)
{
    int pad = (len & 1u) != 0;
    if (p->nset == MAX_STAGED || len + (size_t)pad > 0xFFFFFFFEu)
        return deid__fail(DEID_ERR_LIMIT, M, "(%04X,%04X): value too long", (unsigned)(tag >> 16),
                          (unsigned)(tag & 0xFFFF));
    uint8_t *v = deid__malloc(len + (size_t)pad + 1);
    if (!v)
        return DEID_ERR_NOMEM;
    memcpy(v, value, len);
    if (pad)
        v[len] = vr == VR('U', 'I') ? '\0' : ' ';
    p->set[p->nset++] = (staged){tag, vr, v, (uint32_t)(len + (size_t)pad)};
    return DEID_OK;
}

static deid_status stage_text(plan *p, uint32_t tag, uint16_t vr, const char *s)
{
    return stage(p, tag, vr, s, strlen(s));
}

static deid_status stage_us(plan *p, uint32_t tag, unsigned v)
{
    uint8_t b[2] = {(uint8_t)(v & 0xFF), (uint8_t)(v >> 8)};
    return stage(p, tag, VR('U', 'S'), b, 2);
}

static void plan_remove(plan *p, uint32_t tag)
{
    if (p->nremove < sizeof p->remove / sizeof *p->remove)
        p->remove[p->nremove++] = tag;
}

/* ---- reading the current header ---------------------------------------------------------- */

static long us_value(const deid_dataset *ds, uint32_t tag)
{
    const deid_elem *e = deid__item_find(&ds->root, tag);
    if (!e || !e->value || e->len < 2 || e->vr != VR('U', 'S'))
        return -1;
    return (long)(e->value[0] | e->value[1] << 8);
}

/* Text of a top-level element without padding, "" when absent or too long for buf. */
static const char *text_value(const deid_dataset *ds, uint32_t tag, char *buf, size_t cap)
{
    const deid_elem *e = deid__item_find(&ds->root, tag);
    buf[0] = '\0';
    if (e && e->value && deid__vr_is_text(e->vr))
        deid__elem_text(e, buf, cap);
    return buf;
}

static const char *label(const deid_dataset *ds) { return ds->name ? ds->name : "<memory>"; }

/* ---- pixel data -------------------------------------------------------------------------- */

/* What the JPEG codec accepts, and the photometric interpretation it produces. */
static deid_status jpeg_check(const deid_dataset *ds, const deid_image *img,
                              const deid_encode_options *o, plan *p, int *ybr_input)
{
    if (img->bits != 8 || img->is_signed)
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "%s: JPEG baseline holds 8-bit unsigned samples; this image has %u-bit "
                          "%s samples (use DEID_CODEC_UNCOMPRESSED)",
                          label(ds), img->bits, img->is_signed ? "signed" : "unsigned");
    *ybr_input = 0;
    if (img->samples == 1 &&
        (deid__pi_is(img, "MONOCHROME2") || deid__pi_is(img, "MONOCHROME1"))) {
        snprintf(p->photometric, sizeof p->photometric, "%s", img->photometric);
        return DEID_OK;
    }
    if (img->samples == 3 && (deid__pi_is(img, "RGB") || deid__pi_is_ybr(img))) {
        *ybr_input = deid__pi_is_ybr(img);
        snprintf(p->photometric, sizeof p->photometric, "%s",
                 o->chroma == DEID_CHROMA_444 ? "YBR_FULL" : "YBR_FULL_422");
        return DEID_OK;
    }
    return deid__fail(DEID_ERR_UNSUPPORTED, M,
                      "%s: JPEG baseline cannot store %s images%s", label(ds), img->photometric,
                      deid__pi_is(img, "PALETTE COLOR")
                          ? " (expand them with deid_image_to_rgb first)"
                          : "");
}

/* The writer: the new Pixel Data built frame by frame (deid__pixel_writer_add), so that a long
 * clip can be decoded, masked and encoded in chunks; the header follows at commit. */
struct deid__pixel_writer {
    plan p;
    deid_encode_options o;
    int jpeg, ybr_input;
    deid_image shape;   /* the whole image's header: every frame, no data */
    deid_jpeg_enc *enc; /* JPEG: one encoder for every frame */
    size_t added;       /* frames added so far */
    char name[64];      /* for errors */
};

/* JPEG: one fragment per frame, even length (a 0 after EOI when needed). */
static deid_status jpeg_begin(const deid_dataset *ds, deid__pixel_writer *w)
{
    const deid_image *img = &w->shape;
    deid_status st = jpeg_check(ds, img, &w->o, &w->p, &w->ybr_input);
    if (st != DEID_OK)
        return st;
    size_t nfrags, bytes;
    if (!deid__add_size(img->frames, 1, &nfrags) ||
        !deid__mul_size(nfrags, sizeof(deid_fragment), &bytes))
        return deid__fail(DEID_ERR_LIMIT, M, "%s: too many frames", label(ds));
    if (!(w->p.frags = deid__calloc(1, bytes)))
        return DEID_ERR_NOMEM;
    w->p.nfrags = 1;
    w->enc = deid__jpeg_enc_new(img->rows, img->cols, img->samples, w->ybr_input, w->o.quality,
                                w->o.chroma == DEID_CHROMA_444 ? 1 : 2);
    if (!w->enc)
        return deid_last_error_code();
    w->p.ts = TS_JPEG_BASELINE;
    return DEID_OK;
}

static deid_status jpeg_add(deid__pixel_writer *w, const deid_image *img)
{
    plan *p = &w->p;
    size_t fb = deid__image_frame_bytes(img);
    for (size_t f = 0; f < img->frames; f++) {
        const uint8_t *jpg;
        size_t n;
        deid_status st = deid__jpeg_enc_frame(w->enc, img->data + f * fb, &jpg, &n);
        if (st != DEID_OK)
            return st;
        size_t len = n + (n & 1u);
        if (len > 0xFFFFFFFEu)
            return deid__fail(DEID_ERR_LIMIT, M, "%s: frame %zu compresses to more than 4 GiB",
                              w->name, w->added + f);
        uint8_t *d = deid__malloc(len);
        if (!d)
            return DEID_ERR_NOMEM;
        memcpy(d, jpg, n);
        if (len > n)
            d[n] = 0;
        p->frags[p->nfrags++] = (deid_fragment){d, (uint32_t)len};
        p->compressed += len;
    }
    return DEID_OK;
}

/* A Basic Offset Table (offsets from the first fragment's item tag, 8-byte item headers) when
 * every offset fits in 32 bits. */
static deid_status jpeg_finish(deid__pixel_writer *w)
{
    plan *p = &w->p;
    size_t frames = w->shape.frames;
    uint64_t off = 0, last = 0;
    for (size_t f = 1; f < p->nfrags; f++) {
        last = off;
        off += 8 + (uint64_t)p->frags[f].len;
    }
    if (last > 0xFFFFFFFFu || frames > 0x3FFFFFFFu)
        return DEID_OK;
    uint8_t *t = deid__malloc(4 * frames);
    if (!t)
        return DEID_ERR_NOMEM;
    off = 0;
    for (size_t f = 1; f < p->nfrags; f++) {
        for (int b = 0; b < 4; b++)
            t[4 * (f - 1) + (size_t)b] = (uint8_t)(off >> (8 * b));
        off += 8 + (uint64_t)p->frags[f].len;
    }
    p->frags[0] = (deid_fragment){t, (uint32_t)(4 * frames)};
    return DEID_OK;
}

/* Native pixels as they are, except YBR buffers, which become RGB (the photometric
 * interpretation uncompressed colour ultrasound allows). */
static deid_status native_begin(const deid_dataset *ds, deid__pixel_writer *w)
{
    const deid_image *img = &w->shape;
    plan *p = &w->p;
    int ybr = deid__pi_is_ybr(img), mono = !strncmp(img->photometric, "MONOCHROME", 10);
    if (!(img->samples == 1 && (mono || deid__pi_is(img, "PALETTE COLOR"))) &&
        !(img->samples == 3 && (deid__pi_is(img, "RGB") || (ybr && img->bits == 8))))
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "%s: cannot store %u-bit %s images with %zu samples per pixel",
                          label(ds), img->bits, img->photometric, img->samples);
    size_t len = img->size + (img->size & 1u);
    if (len > 0xFFFFFFFEu)
        return deid__fail(DEID_ERR_LIMIT, M,
                          "%s: %zu bytes of pixels exceed what native Pixel Data can hold",
                          label(ds), img->size);
    if (!(p->native = deid__calloc(len ? len : 1, 1)))
        return DEID_ERR_NOMEM;
    p->native_len = (uint32_t)len;
    p->native_vr = img->bits == 16 ? VR('O', 'W') : VR('O', 'B');
    snprintf(p->photometric, sizeof p->photometric, "%s", ybr ? "RGB" : img->photometric);
    p->ts = TS_EXPLICIT_LE;
    return DEID_OK;
}

static deid_status native_add(deid__pixel_writer *w, const deid_image *img)
{
    size_t fb = deid__image_frame_bytes(img), n = img->frames * fb;
    uint8_t *d = w->p.native + w->added * fb;
    memcpy(d, img->data, n);
    if (deid__pi_is_ybr(img))
        deid__ybr_full_to_rgb(d, d, n / 3);
    const uint16_t probe = 1;
    if (img->bits == 16 && *(const uint8_t *)&probe == 0) /* the tree is little endian */
        for (size_t i = 0; i + 1 < n; i += 2) {
            uint8_t t = d[i];
            d[i] = d[i + 1];
            d[i + 1] = t;
        }
    return DEID_OK;
}

/* ---- header ------------------------------------------------------------------------------ */

/* "old\new" when the object was lossy already (PS3.3 C.7.6.1.1.5: one value per step). */
static deid_status stage_lossy(const deid_dataset *ds, const deid_image *img, plan *p)
{
    char was[8], old_ratio[256], old_method[256], v[600];
    int lossy = !strcmp(text_value(ds, 0x00282110u, was, sizeof was), "01");
    double ratio = p->compressed ? (double)img->size / (double)p->compressed : 0.0;
    char r[32];
    snprintf(r, sizeof r, "%.2f", ratio > 1e12 ? 1e12 : ratio);
    text_value(ds, 0x00282112u, old_ratio, sizeof old_ratio);
    text_value(ds, 0x00282114u, old_method, sizeof old_method);
    deid_status st = stage_text(p, 0x00282110u, VR('C', 'S'), "01");
    snprintf(v, sizeof v, "%s%s%s", lossy ? old_ratio : "", lossy && old_ratio[0] ? "\\" : "", r);
    if (st == DEID_OK)
        st = stage_text(p, 0x00282112u, VR('D', 'S'), v);
    snprintf(v, sizeof v, "%s%s%s", lossy ? old_method : "", lossy && old_method[0] ? "\\" : "",
             "ISO_10918_1");
    if (st == DEID_OK)
        st = stage_text(p, 0x00282114u, VR('C', 'S'), v);
    return st;
}

static deid_status stage_header(const deid_dataset *ds, const deid_image *img, int jpeg, plan *p)
{
    unsigned bits = img->bits, stored = bits, high = bits - 1;
    long ba = us_value(ds, 0x00280100u), bs = us_value(ds, 0x00280101u),
         hb = us_value(ds, 0x00280102u);
    if (!jpeg && ba == (long)bits && bs > 0 && bs <= ba && hb == bs - 1) {
        stored = (unsigned)bs; /* the decoder kept the stored bits: keep saying so */
        high = (unsigned)hb;
    }
    char frames[24];
    snprintf(frames, sizeof frames, "%zu", img->frames);
    deid_status st = stage_us(p, 0x00280002u, (unsigned)img->samples);
    if (st == DEID_OK)
        st = stage_text(p, 0x00280004u, VR('C', 'S'), p->photometric);
    if (st == DEID_OK && img->samples == 3)
        st = stage_us(p, 0x00280006u, 0);
    if (img->samples != 3)
        plan_remove(p, 0x00280006u);
    if (st == DEID_OK && (img->frames > 1 || deid__item_find(&ds->root, 0x00280008u)))
        st = stage_text(p, 0x00280008u, VR('I', 'S'), frames);
    if (st == DEID_OK)
        st = stage_us(p, 0x00280010u, (unsigned)img->rows);
    if (st == DEID_OK)
        st = stage_us(p, 0x00280011u, (unsigned)img->cols);
    if (st == DEID_OK)
        st = stage_us(p, 0x00280100u, bits);
    if (st == DEID_OK)
        st = stage_us(p, 0x00280101u, stored);
    if (st == DEID_OK)
        st = stage_us(p, 0x00280102u, high);
    if (st == DEID_OK)
        st = stage_us(p, 0x00280103u, img->is_signed ? 1u : 0u);
    if (st == DEID_OK && jpeg)
        st = stage_lossy(ds, img, p);
    if (st != DEID_OK)
        return st;
    /* values that described the old pixels */
    static const uint32_t stale[] = {0x00280106u, 0x00280107u, 0x00280108u, 0x00280109u,
                                     0x7FE00001u, 0x7FE00002u, 0x7FE00003u};
    for (size_t i = 0; i < sizeof stale / sizeof *stale; i++)
        plan_remove(p, stale[i]);
    if (strcmp(p->photometric, "PALETTE COLOR")) {
        static const uint32_t palette[] = {0x00281101u, 0x00281102u, 0x00281103u, 0x00281111u,
                                           0x00281112u, 0x00281113u, 0x00281199u, 0x00281201u,
                                           0x00281202u, 0x00281203u, 0x00281211u, 0x00281212u,
                                           0x00281213u, 0x00281214u, 0x00281221u, 0x00281222u,
                                           0x00281223u};
        for (size_t i = 0; i < sizeof palette / sizeof *palette; i++)
            plan_remove(p, palette[i]);
    }
    /* staged last in the list, then moved to its own slot: it goes to the meta group */
    st = stage_text(p, 0x00020010u, VR('U', 'I'), p->ts);
    if (st != DEID_OK)
        return st;
    p->meta_ts = p->set[--p->nset];
    if (!(p->ts_copy = deid__strdup(p->ts)))
        return DEID_ERR_NOMEM;
    return DEID_OK;
}

/* Room for `extra` more elements, so that inserting them cannot fail. */
static deid_status reserve(deid_item *item, size_t extra)
{
    size_t cap, bytes;
    if (item->cap >= item->n + extra)
        return DEID_OK;
    if (!deid__add_size(item->n, extra, &cap) || !deid__mul_size(cap, sizeof(deid_elem), &bytes))
        return DEID_ERR_NOMEM;
    deid_elem *e = deid__realloc(item->elems, bytes);
    if (!e)
        return DEID_ERR_NOMEM;
    item->elems = e;
    item->cap = cap;
    return DEID_OK;
}

static deid_status reserve_all(deid_dataset *ds, const plan *p)
{
    size_t extra = 1; /* Pixel Data */
    for (size_t i = 0; i < p->nset; i++)
        extra += deid__item_find(&ds->root, p->set[i].tag) == NULL;
    deid_status st = reserve(&ds->root, extra);
    if (st == DEID_OK)
        st = reserve(&ds->meta, 1);
    return st;
}

/* Nothing below fails: every value exists and every array has room. */
static void commit(deid_dataset *ds, plan *p)
{
    for (size_t i = 0; i < p->nremove; i++)
        deid__item_remove(&ds->root, p->remove[i]);
    for (size_t i = 0; i < p->nset; i++) {
        deid_elem *e = deid__item_put(&ds->root, p->set[i].tag, p->set[i].vr);
        deid__elem_clear(e);
        e->vr = p->set[i].vr;
        e->value = p->set[i].value;
        e->len = p->set[i].len;
        p->set[i].value = NULL;
    }
    deid_elem *px = deid__item_put(&ds->root, 0x7FE00010u, VR('O', 'B'));
    deid__elem_clear(px);
    if (p->frags) {
        px->vr = VR('O', 'B');
        px->encapsulated = 1;
        px->frags = p->frags;
        px->nfrags = p->nfrags;
        p->frags = NULL;
        p->nfrags = 0;
    } else {
        px->vr = p->native_vr;
        px->value = p->native;
        px->len = p->native_len;
        p->native = NULL;
    }
    deid_elem *ts = deid__item_put(&ds->meta, 0x00020010u, VR('U', 'I'));
    deid__elem_clear(ts);
    ts->vr = VR('U', 'I');
    ts->value = p->meta_ts.value;
    ts->len = p->meta_ts.len;
    p->meta_ts.value = NULL;
    free(ds->transfer_syntax);
    ds->transfer_syntax = p->ts_copy;
    p->ts_copy = NULL;
}

void deid__pixel_writer_free(deid__pixel_writer *w)
{
    if (!w)
        return;
    deid__jpeg_enc_free(w->enc);
    plan_free(&w->p);
    free(w);
}

deid_status deid__pixel_writer_new(const deid_dataset *ds, const deid_image *shape, size_t frames,
                                   const deid_encode_options *opts, deid__pixel_writer **out)
{
    if (!ds || !shape || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "set_pixels: NULL argument");
    if (!frames || !shape->rows || !shape->cols || (shape->bits != 8 && shape->bits != 16) ||
        shape->rows > 0xFFFF || shape->cols > 0xFFFF)
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "%s: set_pixels: image of %zu frames %zux%zu, %u bits cannot be stored",
                          label(ds), frames, shape->rows, shape->cols, shape->bits);
    deid_encode_options o;
    deid_status st = resolve_options(opts, &o);
    if (st != DEID_OK)
        return st;
    deid__pixel_writer *w = deid__calloc(1, sizeof *w);
    if (!w)
        return DEID_ERR_NOMEM;
    w->o = o;
    w->jpeg = o.codec == DEID_CODEC_JPEG_BASELINE;
    w->shape = *shape;
    w->shape.data = NULL;
    w->shape.frames = frames;
    snprintf(w->name, sizeof w->name, "%s", label(ds));
    if (!deid__mul_size(deid__image_frame_bytes(shape), frames, &w->shape.size))
        st = deid__fail(DEID_ERR_LIMIT, M, "%s: %zu frames: size overflows", label(ds), frames);
    if (st == DEID_OK)
        st = w->jpeg ? jpeg_begin(ds, w) : native_begin(ds, w);
    if (st != DEID_OK) {
        deid__pixel_writer_free(w);
        return st;
    }
    *out = w;
    return DEID_OK;
}

deid_status deid__pixel_writer_add(deid__pixel_writer *w, const deid_image *img)
{
    const deid_image *s = &w->shape;
    if (img->rows != s->rows || img->cols != s->cols || img->samples != s->samples ||
        img->bits != s->bits || img->is_signed != s->is_signed ||
        strcmp(img->photometric, s->photometric) || img->frames > s->frames - w->added)
        return deid__fail(DEID_ERR_ARGUMENT, M, "%s: set_pixels: frames that do not match the "
                          "image being written", w->name);
    deid_status st = w->jpeg ? jpeg_add(w, img) : native_add(w, img);
    if (st == DEID_OK)
        w->added += img->frames;
    return st;
}

deid_status deid__pixel_writer_commit(deid__pixel_writer *w, deid_dataset *ds)
{
    if (w->added != w->shape.frames)
        return deid__fail(DEID_ERR_ARGUMENT, M, "%s: set_pixels: %zu frames of %zu written",
                          w->name, w->added, w->shape.frames);
    deid_status st = w->jpeg ? jpeg_finish(w) : DEID_OK;
    if (st == DEID_OK)
        st = stage_header(ds, &w->shape, w->jpeg, &w->p);
    if (st == DEID_OK)
        st = reserve_all(ds, &w->p);
    if (st == DEID_OK)
        commit(ds, &w->p);
    return st;
}

deid_status deid_dataset_set_pixels(deid_dataset *ds, const deid_image *img,
                                    const deid_encode_options *opts)
{
    if (!ds || !img)
        return deid__fail(DEID_ERR_ARGUMENT, M, "set_pixels: NULL argument");
    deid__pixel_writer *w = NULL;
    deid_status st = deid__pixel_writer_new(ds, img, img->frames, opts, &w);
    if (st == DEID_OK)
        st = deid__pixel_writer_add(w, img);
    if (st == DEID_OK)
        st = deid__pixel_writer_commit(w, ds);
    deid__pixel_writer_free(w);
    return st;
}
