/* The text stage on a DICOM object (deid_text_process) and on a raster file
 * (deid_text_process_file). For DICOM: the header's PHI terms, every frame decoded and
 * searched, every overlay plane rendered and searched, redaction on a decoded copy, and only
 * when all of that succeeded the object is changed (new Pixel Data, overlay groups removed,
 * Burned In Annotation set), so a refused object is left as it was. */
#include <stdlib.h>
#include <string.h>
#include "dicom/dataset_int.h"
#include "pixel/pixel_int.h"
#include "text/text_int.h"

static const char *M = "text";

/* phi.c: add a copy of every term of src to dst (belongs in text_int.h beside the other
 * internal text calls; declared here until that header carries it). */
deid_status deid__text_phi_merge(deid_text_phi *dst, const deid_text_phi *src);

#define TAG_PIXEL_DATA 0x7FE00010u
#define TAG_BITS_ALLOCATED 0x00280100u
#define TAG_BITS_STORED 0x00280101u
#define TAG_HIGH_BIT 0x00280102u
#define TAG_PIXEL_REPRESENTATION 0x00280103u
#define TAG_BURNED_IN 0x00280301u
#define TS_EXPLICIT_BE "1.2.840.10008.1.2.2"
#define OVERLAY_GROUPS 16u
#define OVERLAY_REASON "overlay plane removed"

/* ---- header values ------------------------------------------------------------------------- */

static int big_endian(const deid_dataset *ds)
{
    const char *ts = deid_dataset_transfer_syntax(ds);
    return ts && strcmp(ts, TS_EXPLICIT_BE) == 0;
}

/* A US value (first of a multi-valued one); -1 when absent or unreadable. */
static long get_us(const deid_dataset *ds, uint32_t tag)
{
    const void *v;
    size_t n;
    if (deid_dataset_get(ds, tag, &v, &n) != DEID_OK || n < 2)
        return -1;
    const uint8_t *b = v;
    return big_endian(ds) ? (long)(((unsigned)b[0] << 8) | b[1])
                          : (long)(((unsigned)b[1] << 8) | b[0]);
}

/* An IS value; `dflt` when absent, empty or unreadable. */
static long get_is(const deid_dataset *ds, uint32_t tag, long dflt)
{
    char buf[32], *end;
    if (deid_dataset_get_string(ds, tag, buf, sizeof buf) != DEID_OK || !buf[0])
        return dflt;
    long v = strtol(buf, &end, 10);
    return end == buf ? dflt : v;
}

/* Is the object's transfer syntax a lossy one (its pixels re-encoded as JPEG baseline)? */
static int lossy_syntax(const char *ts)
{
    static const char *const lossy[] = {
        "1.2.840.10008.1.2.4.50", /* JPEG baseline */
        "1.2.840.10008.1.2.4.51", /* JPEG extended */
        "1.2.840.10008.1.2.4.81", /* JPEG-LS near-lossless */
        "1.2.840.10008.1.2.4.91", /* JPEG 2000 (lossy allowed) */
        "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.102",
        "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105",
        "1.2.840.10008.1.2.4.106", "1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108"};
    for (size_t i = 0; ts && i < sizeof lossy / sizeof lossy[0]; i++)
        if (strcmp(ts, lossy[i]) == 0)
            return 1;
    return 0;
}

/* ---- pixel layout ------------------------------------------------------------------------- */

/* Where the stored bits lie in each allocated sample. */
typedef struct layout {
    long allocated, stored, high;
    int is_signed;
} layout;

static layout read_layout(const deid_dataset *ds)
{
    layout l;
    l.allocated = get_us(ds, TAG_BITS_ALLOCATED);
    l.stored = get_us(ds, TAG_BITS_STORED);
    l.high = get_us(ds, TAG_HIGH_BIT);
    l.is_signed = get_us(ds, TAG_PIXEL_REPRESENTATION) == 1;
    if (l.stored <= 0 || l.stored > l.allocated)
        l.stored = l.allocated;
    if (l.high < 0 || l.high >= l.allocated)
        l.high = l.stored - 1;
    return l;
}

/* Is bit `bit` of a sample outside its stored bits (where embedded overlays live)? */
static int outside_stored(const layout *l, unsigned bit)
{
    return l->allocated > 0 && (long)bit < l->allocated &&
           ((long)bit > l->high || (long)bit < l->high - l->stored + 1);
}

/* ---- overlay planes ------------------------------------------------------------------------ */

/* One overlay group as its header describes it. */
typedef struct overlay {
    unsigned n;           /* group 0x6000 + 2n */
    size_t rows, cols, frames, origin; /* origin: first image frame it applies to, from 0 */
    const uint8_t *data;  /* (60xx,3000), or NULL for an overlay embedded in Pixel Data */
    size_t size;
    int word_swap;        /* OW in big endian: bytes swapped within 16-bit words */
    unsigned bit;         /* embedded: bit position in the pixel samples */
} overlay;

enum { OVERLAY_NONE = 0, OVERLAY_PACKED = 1, OVERLAY_EMBEDDED = 2 };

static uint32_t otag(unsigned n, unsigned element)
{
    return DEID_TAG(0x6000u + 2u * n, element);
}

/* Read group n's description. An overlay without Overlay Data lives in a bit of the pixel
 * samples (whatever Overlay Bits Allocated says: some writers put 1 there); one whose bit lies
 * inside the stored bits is part of the image and searched as pixels. */
static int overlay_read(const deid_dataset *ds, const layout *l, unsigned n, overlay *o)
{
    memset(o, 0, sizeof *o);
    o->n = n;
    long rows = get_us(ds, otag(n, 0x0010)), cols = get_us(ds, otag(n, 0x0011));
    long frames = get_is(ds, otag(n, 0x0015), 1), origin = get_us(ds, otag(n, 0x0051));
    if (rows <= 0 || cols <= 0)
        return OVERLAY_NONE;
    o->rows = (size_t)rows;
    o->cols = (size_t)cols;
    o->frames = frames > 0 ? (size_t)frames : 1;
    o->origin = origin > 0 ? (size_t)origin - 1 : 0;
    const void *v;
    size_t size;
    if (deid_dataset_get(ds, otag(n, 0x3000), &v, &size) == DEID_OK && size) {
        const deid_elem *e = deid__item_find(&ds->root, otag(n, 0x3000));
        o->data = v;
        o->size = size;
        o->word_swap = big_endian(ds) && e && e->vr != DEID_VR('O', 'B');
        return OVERLAY_PACKED;
    }
    long pos = get_us(ds, otag(n, 0x0102));
    if (pos >= 0 && pos < 16 && outside_stored(l, (unsigned)pos)) {
        o->bit = (unsigned)pos;
        return OVERLAY_EMBEDDED;
    }
    return OVERLAY_NONE;
}

/* Render frame k of a packed overlay (bits continue across frames, least significant bit
 * first) as 0/255 bytes; returns the number of bits set. */
static size_t render_packed(const overlay *o, size_t k, uint8_t *plane)
{
    size_t n = o->rows * o->cols, set = 0;
    size_t first = k * n, avail = o->size * 8;
    for (size_t i = 0; i < n; i++) {
        size_t bit = first + i;
        uint8_t on = 0;
        if (bit < avail) {
            size_t byte = bit >> 3;
            if (o->word_swap)
                byte ^= 1u;
            on = (uint8_t)((o->data[byte] >> (bit & 7u)) & 1u);
        }
        plane[i] = on ? 255 : 0;
        set += on;
    }
    return set;
}

/* Render frame k of an overlay embedded in bit o->bit of the raw decoded samples. */
static size_t render_embedded(const deid_image *raw, const overlay *o, size_t k,
                              uint8_t *plane)
{
    size_t n = o->rows * o->cols, set = 0, base = k * n;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (raw->bits == 16) {
            uint16_t u;
            memcpy(&u, raw->data + 2 * (base + i), 2);
            v = u;
        } else {
            v = raw->data[base + i];
        }
        uint8_t on = (uint8_t)((v >> o->bit) & 1u);
        plane[i] = on ? 255 : 0;
        set += on;
    }
    return set;
}

/* Search every frame of overlay o; its regions are decided redacted (the plane is removed).
 * `raw` is the image with its unused bits kept (embedded overlays only). */
static deid_status overlay_detect(deid_text_engine *e, const overlay *o, const deid_image *raw,
                                  const deid_text_phi *phi,
                                  deid_text_result *res)
{
    size_t n, total;
    uint64_t limit = e->opts.max_samples ? e->opts.max_samples : (uint64_t)1 << 31;
    if (!deid__mul_size(o->rows, o->cols, &n) || !deid__mul_size(n, o->frames, &total) ||
        (uint64_t)total > limit)
        return deid__fail(DEID_ERR_LIMIT, M,
                          "overlay %04X: %zu frames of %zux%zu exceed the limit of %llu samples",
                          0x6000u + 2u * o->n, o->frames, o->rows, o->cols,
                          (unsigned long long)limit);
    if (!o->data && (!raw || raw->samples != 1 || raw->rows != o->rows ||
                     raw->cols != o->cols || o->bit >= raw->bits))
        return DEID_OK; /* nothing readable there; the group is removed all the same */
    uint8_t *plane = deid__malloc(n);
    if (!plane)
        return DEID_ERR_NOMEM;
    deid_status st = DEID_OK;
    for (size_t k = 0; k < o->frames && st == DEID_OK; k++) {
        size_t set = o->data ? render_packed(o, k, plane) : render_embedded(raw, o, k, plane);
        if (!set) { /* an empty plane holds no text */
            res->stats.frames++;
            continue;
        }
        deid_text_frame f = {plane, NULL, o->rows, o->cols, o->origin + k, 1u + o->n};
        size_t before = res->n;
        st = deid__text_detect_frame(e, &f, phi, res);
        for (size_t i = before; i < res->n; i++) {
            res->v[i].decision = DEID_TEXT_REDACTED;
            res->v[i].reason = OVERLAY_REASON;
        }
    }
    free(plane);
    return st;
}

/* ---- decoding ------------------------------------------------------------------------------ */

/* Decode with the unused bits kept: Bits Stored and High Bit are set to Bits Allocated in place
 * for the call and put back (two bytes each, nothing allocated, nothing can fail). */
static deid_status decode_raw(deid_dataset *ds, const deid_text_engine *e, const layout *l,
                              deid_image **out)
{
    deid_elem *bs = deid__item_find(&ds->root, TAG_BITS_STORED);
    deid_elem *hb = deid__item_find(&ds->root, TAG_HIGH_BIT);
    uint8_t old_bs[2], old_hb[2], v_bs[2], v_hb[2];
    int be = big_endian(ds), ok = bs && hb && bs->len == 2 && hb->len == 2 && bs->value &&
                                  hb->value;
    if (ok) {
        unsigned a = (unsigned)l->allocated, h = a - 1;
        v_bs[0] = (uint8_t)(be ? a >> 8 : a), v_bs[1] = (uint8_t)(be ? a : a >> 8);
        v_hb[0] = (uint8_t)(be ? h >> 8 : h), v_hb[1] = (uint8_t)(be ? h : h >> 8);
        memcpy(old_bs, bs->value, 2), memcpy(old_hb, hb->value, 2);
        memcpy(bs->value, v_bs, 2), memcpy(hb->value, v_hb, 2);
    }
    deid_status st = deid_image_decode(ds, 0, 0, e->opts.max_samples, out);
    if (ok)
        memcpy(bs->value, old_bs, 2), memcpy(hb->value, old_hb, 2);
    return st;
}

/* Make a raw image what the decoder gives: only the stored bits, sign-extended (the usual
 * layout, High Bit = Bits Stored - 1), or the raw value with the overlay bits cleared. */
static void drop_unused_bits(deid_image *img, const layout *l, unsigned overlay_bits)
{
    size_t n = img->size / (img->bits / 8);
    uint32_t keep, sign = 0;
    if (l->high == l->stored - 1 && l->stored < (long)img->bits) {
        keep = (1u << l->stored) - 1;
        sign = l->is_signed ? 1u << (l->stored - 1) : 0;
    } else {
        keep = ~(uint32_t)overlay_bits;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        if (img->bits == 16) {
            uint16_t u;
            memcpy(&u, img->data + 2 * i, 2);
            v = u;
        } else {
            v = img->data[i];
        }
        v &= keep;
        if (sign && (v & sign))
            v |= ~keep;
        if (img->bits == 16) {
            uint16_t u = (uint16_t)v;
            memcpy(img->data + 2 * i, &u, 2);
        } else {
            img->data[i] = (uint8_t)v;
        }
    }
}

/* PALETTE COLOR and YBR expanded to RGB; other images passed through. */
static deid_status to_rgb(const deid_dataset *ds, deid_image **img)
{
    if (!deid__pi_is(*img, "PALETTE COLOR") && !deid__pi_is_ybr(*img))
        return DEID_OK;
    deid_image *rgb = NULL;
    deid_status st = deid_image_to_rgb(*img, ds, &rgb);
    if (st != DEID_OK)
        return st;
    deid_image_free(*img);
    *img = rgb;
    return DEID_OK;
}

/* ---- the stage ----------------------------------------------------------------------------- */

/* The PHI terms: the header's own plus the caller's extra ones. */
static deid_status collect_phi(const deid_dataset *ds, const deid_text_phi *extra,
                               deid_text_phi **out)
{
    deid_text_phi *phi = NULL;
    deid_status st = deid_text_phi_new(&phi);
    if (st == DEID_OK)
        st = deid_text_phi_add_dataset(phi, ds);
    if (st == DEID_OK && extra)
        st = deid__text_phi_merge(phi, extra);
    if (st != DEID_OK) {
        deid_text_phi_free(phi);
        return st;
    }
    *out = phi;
    return DEID_OK;
}

static int pixels_redacted(const deid_text_result *res)
{
    for (size_t i = 0; i < res->n; i++)
        if (res->v[i].decision == DEID_TEXT_REDACTED &&
            res->v[i].source == DEID_TEXT_SOURCE_PIXELS)
            return 1;
    return 0;
}

/* Append the regions and totals of `from` (the overlays) to `to` (the pixels). */
static deid_status absorb(deid_text_result *to, const deid_text_result *from)
{
    for (size_t i = 0; i < from->n; i++) {
        deid_status st = deid__text_result_push(to, &from->v[i]);
        if (st != DEID_OK)
            return st;
    }
    deid_text_stats *a = &to->stats;
    const deid_text_stats *b = &from->stats;
    a->frames += b->frames;
    a->found += b->found;
    a->found_lines += b->found_lines;
    a->found_page += b->found_page;
    a->seconds_prepare += b->seconds_prepare;
    a->seconds_detect += b->seconds_detect;
    a->seconds_ocr += b->seconds_ocr;
    a->seconds_redact += b->seconds_redact;
    deid__text_result_recount(to);
    return DEID_OK;
}

/* Lossless inputs are written uncompressed; lossy ones as JPEG baseline when the image fits it
 * (8-bit unsigned grey or RGB), uncompressed otherwise. */
static deid_status write_pixels(deid_dataset *ds, const deid_image *img,
                                const deid_text_engine *e)
{
    deid_encode_options enc = DEID_ENCODE_OPTIONS_INIT;
    enc.quality = e->opts.jpeg_quality;
    int jpeg_ok = img->bits == 8 && !img->is_signed &&
                  (deid__pi_is(img, "RGB") || deid__pi_is(img, "MONOCHROME1") ||
                   deid__pi_is(img, "MONOCHROME2"));
    enc.codec = lossy_syntax(deid_dataset_transfer_syntax(ds)) && jpeg_ok
                    ? DEID_CODEC_JPEG_BASELINE : DEID_CODEC_UNCOMPRESSED;
    return deid_dataset_set_pixels(ds, img, &enc);
}

/* Remove every element of the overlay groups 6000-601E (even). */
static void remove_overlays(deid_dataset *ds)
{
    deid_item *root = &ds->root;
    for (size_t i = root->n; i-- > 0;) {
        unsigned g = root->elems[i].tag >> 16;
        if (g >= 0x6000u && g <= 0x601Eu && !(g & 1u))
            deid__item_remove_at(root, i);
    }
}

/* Change the object: Burned In Annotation first (put back if the pixels cannot be written),
 * then the pixels, then the overlay groups (which cannot fail). */
static deid_status commit(deid_dataset *ds, const deid_image *img, int rewrite,
                          const deid_text_result *res, const deid_text_engine *e)
{
    int all = res->stats.redacted == res->n;
    const void *old = NULL;
    size_t old_size = 0;
    uint8_t *saved = NULL;
    int had = deid_dataset_get(ds, TAG_BURNED_IN, &old, &old_size) == DEID_OK;
    if (had && old_size && !(saved = deid__malloc(old_size)))
        return DEID_ERR_NOMEM;
    if (had && old_size)
        memcpy(saved, old, old_size);
    deid_status st = deid_dataset_set_string(ds, TAG_BURNED_IN, all ? "NO" : "YES");
    if (st == DEID_OK && rewrite && (st = write_pixels(ds, img, e)) != DEID_OK) {
        if (had)
            (void)deid_dataset_set(ds, TAG_BURNED_IN, "CS", saved, old_size);
        else
            (void)deid_dataset_remove(ds, TAG_BURNED_IN);
    }
    free(saved);
    if (st == DEID_OK)
        remove_overlays(ds);
    return st;
}

typedef struct stage {
    deid_text_phi *phi;
    deid_image *img;
    deid_text_result *res, *overlays;
} stage;

/* Decode, search the overlay planes (from the raw samples for embedded ones), then the pixels.
 * Returns 1 in *rewrite when embedded overlay bits were dropped from the pixels. */
static deid_status find(deid_text_engine *e, deid_dataset *ds, stage *s, int *rewrite)
{
    layout l = read_layout(ds);
    overlay ov[OVERLAY_GROUPS];
    int kind[OVERLAY_GROUPS], embedded = 0;
    unsigned bits = 0;
    for (unsigned n = 0; n < OVERLAY_GROUPS; n++)
        if ((kind[n] = overlay_read(ds, &l, n, &ov[n])) == OVERLAY_EMBEDDED) {
            embedded = 1;
            bits |= 1u << ov[n].bit;
        }
    double t = deid__now();
    deid_status st = embedded ? decode_raw(ds, e, &l, &s->img)
                              : deid_image_decode(ds, 0, 0, e->opts.max_samples, &s->img);
    double t_decode = deid__now() - t;
    if (st != DEID_OK)
        return st;
    if (!(s->overlays = deid__text_result_new()))
        return DEID_ERR_NOMEM;
    for (unsigned n = 0; n < OVERLAY_GROUPS && st == DEID_OK; n++)
        if (kind[n] != OVERLAY_NONE)
            st = overlay_detect(e, &ov[n], embedded ? s->img : NULL, s->phi, s->overlays);
    if (st != DEID_OK)
        return st;
    if (embedded && s->img->samples == 1) {
        drop_unused_bits(s->img, &l, bits);
        *rewrite = 1;
    }
    if ((st = to_rgb(ds, &s->img)) != DEID_OK)
        return st;
    if ((st = deid_text_detect(e, s->img, s->phi, &s->res)) != DEID_OK)
        return st;
    s->res->stats.seconds_prepare += t_decode;
    return absorb(s->res, s->overlays);
}

deid_status deid_text_process(deid_text_engine *engine, deid_dataset *ds,
                              const deid_text_phi *extra, deid_text_result **out)
{
    if (!engine || !ds || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_text_process: NULL argument");
    stage s = {NULL, NULL, NULL, NULL};
    int rewrite = 0;
    deid_status st = collect_phi(ds, extra, &s.phi);
    if (st == DEID_OK)
        st = find(engine, ds, &s, &rewrite);
    if (st == DEID_OK)
        st = deid_text_redact(engine, s.img, s.res, s.phi);
    if (st == DEID_OK)
        st = commit(ds, s.img, rewrite || pixels_redacted(s.res), s.res, engine);
    deid_image_free(s.img);
    deid_text_phi_free(s.phi);
    deid_text_result_free(s.overlays);
    if (st == DEID_OK || (st == DEID_ERR_GENERIC && s.res && s.res->stats.residual)) {
        *out = s.res; /* a refused object keeps its report */
    } else {
        deid_text_result_free(s.res);
    }
    return st;
}

/* ---- raster files -------------------------------------------------------------------------- */

deid_status deid_text_process_file(deid_text_engine *engine, const char *input,
                                   const char *output, const deid_text_phi *phi,
                                   deid_text_result **out)
{
    if (!engine || !input || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_text_process_file: NULL argument");
    deid_image *img = NULL;
    deid_text_result *res = NULL;
    int format = DEID_RASTER_UNKNOWN;
    double t = deid__now();
    deid_status st = deid_image_read_raster(input, engine->opts.max_samples, &img, &format);
    double t_read = deid__now() - t;
    if (st == DEID_OK && (st = deid_text_detect(engine, img, phi, &res)) != DEID_OK)
        deid__error_prefix(input);
    if (st == DEID_OK) {
        res->stats.seconds_prepare += t_read;
        st = deid_text_redact(engine, img, res, phi);
        if (st != DEID_OK)
            deid__error_prefix(input);
    }
    /* re-encoded even when nothing was redacted: metadata (EXIF, text chunks) may hold PHI */
    if (st == DEID_OK && output)
        st = deid_image_write_raster(img, 0, output, format, engine->opts.jpeg_quality);
    deid_image_free(img);
    if (st == DEID_OK || (st == DEID_ERR_GENERIC && res && res->stats.residual))
        *out = res;
    else
        deid_text_result_free(res);
    return st;
}
