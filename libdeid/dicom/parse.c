/* Validating parser: bytes -> C tree. Every length is checked against the bytes present before
 * anything is allocated, and nesting depth and element count against the caller's limits, so a
 * 200-byte file cannot make the library allocate gigabytes (GDCM's own reader would: it sizes
 * a value from its length field before reading it). GDCM is still used for what it adds: the
 * data dictionary for implicit VR input. Deflated data sets are inflated in C (inflate.c). */
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "dicom/dicom_int.h"
#include "shim/gdcm_shim.h"

#define TAG_ITEM 0xFFFEE000u
#define TAG_ITEM_DELIM 0xFFFEE00Du
#define TAG_SEQ_DELIM 0xFFFEE0DDu
#define TAG_PIXEL_DATA 0x7FE00010u
#define TAG_PIXEL_REPRESENTATION 0x00280103u
#define UNDEFINED 0xFFFFFFFFu

typedef struct enc {
    int explicit_vr;
    int big_endian;
} enc;

typedef struct parser {
    const uint8_t *buf;
    size_t size;
    const char *name;
    unsigned max_depth;
    uint64_t max_elements;
    uint64_t count;
    uint64_t max_bytes; /* also bounds an inflated data set */
} parser;

/* ---- small readers ------------------------------------------------------------------------ */

static uint16_t rd16(const uint8_t *b, int big)
{
    return big ? (uint16_t)((b[0] << 8) | b[1]) : (uint16_t)((b[1] << 8) | b[0]);
}

static uint32_t rd32(const uint8_t *b, int big)
{
    if (big)
        return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    return ((uint32_t)b[3] << 24) | ((uint32_t)b[2] << 16) | ((uint32_t)b[1] << 8) | b[0];
}

static uint32_t rdtag(const uint8_t *b, int big)
{
    return ((uint32_t)rd16(b, big) << 16) | rd16(b + 2, big);
}

#define TAG_ARGS(t) (unsigned)((t) >> 16), (unsigned)((t)&0xFFFFu)

int deid__vr_is_long(uint16_t vr)
{
    static const char list[] = "OBODOFOLOVOWSQSVUCUNURUTUV";
    for (size_t i = 0; i + 1 < sizeof list; i += 2)
        if (DEID_VR(list[i], list[i + 1]) == vr)
            return 1;
    return 0;
}

static int vr_is_known(uint16_t vr)
{
    static const char list[] =
        "AEASATCSDADSDTFDFLISLOLTOBODOFOLOVOWPNSHSLSQSSSTSVTMUCUIULUNURUSUTUV";
    for (size_t i = 0; i + 1 < sizeof list; i += 2)
        if (DEID_VR(list[i], list[i + 1]) == vr)
            return 1;
    return 0;
}

static int is_upper(uint8_t c) { return c >= 'A' && c <= 'Z'; }

/* Size of the unit a big-endian value is swapped by (1: no swapping). */
static size_t vr_swap_unit(uint16_t vr)
{
    switch (vr) {
    case DEID_VR('U', 'S'):
    case DEID_VR('S', 'S'):
    case DEID_VR('O', 'W'):
    case DEID_VR('A', 'T'): return 2;
    case DEID_VR('U', 'L'):
    case DEID_VR('S', 'L'):
    case DEID_VR('F', 'L'):
    case DEID_VR('O', 'F'):
    case DEID_VR('O', 'L'): return 4;
    case DEID_VR('F', 'D'):
    case DEID_VR('O', 'D'):
    case DEID_VR('S', 'V'):
    case DEID_VR('U', 'V'):
    case DEID_VR('O', 'V'): return 8;
    default: return 1;
    }
}

static void swap_units(uint8_t *v, size_t len, size_t unit)
{
    for (size_t i = 0; unit > 1 && i + unit <= len; i += unit)
        for (size_t a = i, b = i + unit - 1; a < b; a++, b--) {
            uint8_t t = v[a];
            v[a] = v[b];
            v[b] = t;
        }
}

/* ---- errors ------------------------------------------------------------------------------- */

static deid_status bad(const parser *p, size_t pos, uint32_t tag, const char *what)
{
    return deid__fail(DEID_ERR_NOT_DICOM, "dicom", "%s: %s (element (%04X,%04X) at offset %zu)",
                      p->name, what, TAG_ARGS(tag), pos);
}

static deid_status count_one(parser *p, size_t pos, uint32_t tag)
{
    if (++p->count > p->max_elements)
        return deid__fail(DEID_ERR_LIMIT, "dicom",
                          "%s: more than %llu elements, items and fragments (at (%04X,%04X), "
                          "offset %zu); raise max_elements to read it",
                          p->name, (unsigned long long)p->max_elements, TAG_ARGS(tag), pos);
    return DEID_OK;
}

/* ---- VR of implicit elements -------------------------------------------------------------- */

static uint16_t private_vr(const deid_item *item, uint32_t tag)
{
    unsigned el = tag & 0xFFFFu;
    if (el == 0)
        return DEID_VR('U', 'L');
    if (el >= 0x10 && el <= 0xFF)
        return DEID_VR('L', 'O');
    if (el < 0x1000)
        return DEID_VR_UN;
    const deid_elem *c = deid__item_find(item, (tag & 0xFFFF0000u) | (el >> 8));
    char creator[70];
    if (!c || !c->value || deid__elem_text(c, creator, sizeof creator) == (size_t)-1)
        return DEID_VR_UN;
    return deid_shim_private_vr(tag, creator);
}

static uint16_t implicit_vr(const deid_item *item, uint32_t tag)
{
    if ((tag >> 16) & 1u)
        return private_vr(item, tag);
    if ((tag & 0xFFFFu) == 0)
        return DEID_VR('U', 'L');
    uint16_t alt = 0;
    uint16_t vr = deid_shim_dict_vr(tag, &alt);
    if (alt == DEID_VR('S', 'S')) {
        const deid_elem *pr = deid__item_find(item, TAG_PIXEL_REPRESENTATION);
        if (pr && pr->len >= 2 && pr->value && (pr->value[0] | pr->value[1]) == 1)
            vr = DEID_VR('S', 'S');
    }
    return vr;
}

/* ---- recursive descent -------------------------------------------------------------------- */

static deid_status parse_items(parser *p, deid_elem *e, size_t pos, size_t end, uint32_t len,
                               enc en, unsigned depth, size_t *out_pos);

/* Elements of one item (or of the top level) from pos: until `end` when the item has a
 * defined length, or until the item delimiter. */
static deid_status parse_elements(parser *p, deid_item *item, size_t pos, size_t end, int delimited,
                                  enc en, unsigned depth, size_t *out_pos);

static int all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

static deid_status add_fragment(deid_elem *e, size_t *cap, const uint8_t *data, uint32_t len)
{
    if (e->nfrags == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8, bytes;
        if (!deid__mul_size(ncap, sizeof(deid_fragment), &bytes))
            return DEID_ERR_NOMEM;
        deid_fragment *f = deid__realloc(e->frags, bytes);
        if (!f)
            return DEID_ERR_NOMEM;
        e->frags = f;
        *cap = ncap;
    }
    deid_fragment *f = &e->frags[e->nfrags];
    f->data = NULL;
    f->len = len;
    if (len) {
        if (!(f->data = deid__malloc(len)))
            return DEID_ERR_NOMEM;
        memcpy(f->data, data, len);
    }
    e->nfrags++;
    return DEID_OK;
}

/* Encapsulated Pixel Data: items until the sequence delimiter. */
static deid_status parse_fragments(parser *p, deid_elem *e, size_t pos, size_t end, enc en,
                                   size_t *out_pos)
{
    size_t cap = 0;
    deid_status st;
    e->encapsulated = 1;
    for (;;) {
        if (end - pos < 8)
            return bad(p, pos, e->tag, "encapsulated pixel data without sequence delimiter");
        uint32_t tag = rdtag(p->buf + pos, en.big_endian);
        uint32_t len = rd32(p->buf + pos + 4, en.big_endian);
        if (tag == TAG_SEQ_DELIM) {
            pos += 8;
            break;
        }
        if (tag != TAG_ITEM)
            return bad(p, pos, e->tag, "unexpected tag inside encapsulated pixel data");
        if (len == UNDEFINED || len > end - pos - 8)
            return bad(p, pos, e->tag, "pixel data fragment longer than the data left");
        if ((st = count_one(p, pos, e->tag)) != DEID_OK)
            return st;
        if ((st = add_fragment(e, &cap, p->buf + pos + 8, len)) != DEID_OK)
            return st;
        pos += 8 + (size_t)len;
    }
    if (e->nfrags == 0 && (st = add_fragment(e, &cap, NULL, 0)) != DEID_OK)
        return st;
    *out_pos = pos;
    return DEID_OK;
}

static deid_status copy_value(parser *p, deid_elem *e, size_t pos, uint32_t len, enc en)
{
    if (len == 0)
        return DEID_OK;
    if (deid__elem_set(e, p->buf + pos, len) != 0)
        return DEID_ERR_NOMEM;
    if (en.big_endian)
        swap_units(e->value, len, vr_swap_unit(e->vr));
    return DEID_OK;
}

/* Implicit VR: a defined-length value the dictionary calls a sequence. Parsed as items when it
 * holds items; kept as raw bytes (VR UN) when it does not, as GDCM does. Limits still fail. */
static deid_status implicit_sequence(parser *p, deid_elem *e, size_t pos, uint32_t len, enc en,
                                     unsigned depth)
{
    size_t endpos;
    uint64_t count = p->count;
    deid_status st = parse_items(p, e, pos, pos + len, len, en, depth, &endpos);
    if (st == DEID_OK || st == DEID_ERR_LIMIT || st == DEID_ERR_NOMEM)
        return st;
    deid__elem_clear(e);
    p->count = count;
    e->vr = DEID_VR_UN;
    deid_clear_error();
    return copy_value(p, e, pos, len, en);
}

/* One element at pos (its tag already known not to be an item tag). */
static deid_status parse_element(parser *p, deid_item *item, size_t pos, size_t end, enc en,
                                 unsigned depth, size_t *out_pos)
{
    size_t left = end - pos;
    const uint8_t *b = p->buf + pos;
    uint32_t tag = rdtag(b, en.big_endian);
    uint16_t vr;
    uint32_t len;
    size_t hdr;
    deid_status st;

    if (en.explicit_vr) {
        vr = DEID_VR(b[4], b[5]);
        if (vr_is_known(vr) ? deid__vr_is_long(vr) : (is_upper(b[4]) && is_upper(b[5]))) {
            /* unknown VRs that look like VRs use the long form (PS3.5 7.1.2) */
            if (left < 12)
                return bad(p, pos, tag, "truncated element header");
            len = rd32(b + 8, en.big_endian);
            hdr = 12;
            if (!vr_is_known(vr))
                vr = DEID_VR_UN;
        } else if (vr_is_known(vr)) {
            len = rd16(b + 6, en.big_endian);
            hdr = 8;
        } else {
            return bad(p, pos, tag, "invalid value representation in explicit VR data");
        }
    } else {
        len = rd32(b + 4, en.big_endian);
        hdr = 8;
        vr = implicit_vr(item, tag);
    }
    if ((st = count_one(p, pos, tag)) != DEID_OK)
        return st;

    deid_elem e;
    memset(&e, 0, sizeof e);
    e.tag = tag;
    e.vr = vr;
    size_t vpos = pos + hdr, next;
    if (len == UNDEFINED) {
        if (tag == TAG_PIXEL_DATA && vr != DEID_VR_SQ) {
            e.vr = DEID_VR('O', 'B'); /* the only VR of encapsulated data (PS3.5 A.4) */
            st = parse_fragments(p, &e, vpos, end, en, &next);
        } else {
            /* an undefined-length UN (or any non-SQ VR) holds implicit VR items (CP-246) */
            enc inner = en;
            if (en.explicit_vr && vr != DEID_VR_SQ)
                inner.explicit_vr = 0;
            e.vr = DEID_VR_SQ;
            st = parse_items(p, &e, vpos, end, UNDEFINED, inner, depth, &next);
        }
    } else {
        if (len > end - vpos) {
            deid__fail(DEID_ERR_NOT_DICOM, "dicom",
                       "%s: element (%04X,%04X) at offset %zu claims %lu bytes, only %zu left "
                       "(truncated or corrupt)",
                       p->name, TAG_ARGS(tag), pos, (unsigned long)len, end - vpos);
            return DEID_ERR_NOT_DICOM;
        }
        next = vpos + len;
        if (vr == DEID_VR_SQ && en.explicit_vr)
            st = parse_items(p, &e, vpos, next, len, en, depth, &next);
        else if (vr == DEID_VR_SQ)
            st = implicit_sequence(p, &e, vpos, len, en, depth);
        else
            st = copy_value(p, &e, vpos, len, en);
    }
    if (st != DEID_OK) {
        deid__elem_clear(&e);
        return st;
    }
    *out_pos = next;

    /* duplicates: keep the first, like GDCM */
    if (item->n && item->elems[item->n - 1].tag >= tag && deid__item_find(item, tag)) {
        deid__elem_clear(&e);
        return DEID_OK;
    }
    deid_elem *slot = deid__item_append(item, tag, e.vr);
    if (!slot) {
        deid__elem_clear(&e);
        return DEID_ERR_NOMEM;
    }
    *slot = e;
    return DEID_OK;
}

static deid_status parse_elements(parser *p, deid_item *item, size_t pos, size_t end, int delimited,
                                  enc en, unsigned depth, size_t *out_pos)
{
    deid_status st;
    for (;;) {
        if (!delimited && pos == end)
            break;
        if (end - pos < 8) {
            if (depth == 0 && all_zero(p->buf + pos, end - pos))
                break; /* trailing padding after the data set */
            return bad(p, pos, 0,
                       delimited ? "item without delimiter (truncated)"
                                 : "truncated element header");
        }
        uint32_t tag = rdtag(p->buf + pos, en.big_endian);
        if (tag == TAG_ITEM_DELIM) {
            if (!delimited)
                return bad(p, pos, tag, "unexpected item delimiter");
            pos += 8;
            break;
        }
        if ((tag >> 16) == 0xFFFEu)
            return bad(p, pos, tag, "unexpected item tag among data elements");
        if (depth == 0 && !delimited && tag == 0 && all_zero(p->buf + pos, end - pos))
            break;
        if ((st = parse_element(p, item, pos, end, en, depth, &pos)) != DEID_OK)
            return st;
    }
    *out_pos = pos;
    return DEID_OK;
}

static deid_item *add_item(deid_elem *e, size_t *cap)
{
    if (e->nitems == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4, bytes;
        if (!deid__mul_size(ncap, sizeof(deid_item), &bytes))
            return NULL;
        deid_item *it = deid__realloc(e->items, bytes);
        if (!it)
            return NULL;
        e->items = it;
        *cap = ncap;
    }
    deid_item *it = &e->items[e->nitems++];
    memset(it, 0, sizeof *it);
    return it;
}

/* Items of a sequence: within [pos, pos+len) for a defined length, else up to the sequence
 * delimiter (and never past `end`). */
static deid_status parse_items(parser *p, deid_elem *e, size_t pos, size_t end, uint32_t len,
                               enc en, unsigned depth, size_t *out_pos)
{
    int defined = len != UNDEFINED;
    size_t cap = 0;
    deid_status st;
    if (depth + 1 > p->max_depth)
        return deid__fail(DEID_ERR_LIMIT, "dicom",
                          "%s: sequences nested deeper than %u levels at (%04X,%04X), offset "
                          "%zu; raise max_depth to read it",
                          p->name, p->max_depth, TAG_ARGS(e->tag), pos);
    for (;;) {
        if (defined && pos == end)
            break;
        if (end - pos < 8)
            return bad(p, pos, e->tag, "sequence without delimiter (truncated)");
        uint32_t tag = rdtag(p->buf + pos, en.big_endian);
        uint32_t ilen = rd32(p->buf + pos + 4, en.big_endian);
        if (tag == TAG_SEQ_DELIM) {
            pos += 8;
            break;
        }
        if (tag != TAG_ITEM)
            return bad(p, pos, e->tag, "expected an item in the sequence");
        if ((st = count_one(p, pos, e->tag)) != DEID_OK)
            return st;
        deid_item *item = add_item(e, &cap);
        if (!item)
            return DEID_ERR_NOMEM;
        pos += 8;
        if (ilen == UNDEFINED) {
            st = parse_elements(p, item, pos, end, 1, en, depth + 1, &pos);
        } else {
            if (ilen > end - pos)
                return bad(p, pos - 8, e->tag, "item longer than its sequence");
            size_t iend = pos + ilen;
            st = parse_elements(p, item, pos, iend, 0, en, depth + 1, &pos);
        }
        if (st != DEID_OK)
            return st;
    }
    *out_pos = pos;
    return DEID_OK;
}

/* ---- file layout -------------------------------------------------------------------------- */

deid_ts_kind deid__ts_kind(const char *uid)
{
    if (!uid || !strcmp(uid, DEID_TS_EXPLICIT_LE))
        return DEID_TS_KIND_EXPLICIT_LE;
    if (!strcmp(uid, DEID_TS_IMPLICIT_LE))
        return DEID_TS_KIND_IMPLICIT_LE;
    if (!strcmp(uid, DEID_TS_EXPLICIT_BE))
        return DEID_TS_KIND_EXPLICIT_BE;
    if (!strcmp(uid, DEID_TS_DEFLATED_LE))
        return DEID_TS_KIND_DEFLATED;
    return DEID_TS_KIND_EXPLICIT_LE;
}

int deid__ts_encapsulated(const char *uid)
{
    if (!uid)
        return 0;
    return deid__ts_kind(uid) == DEID_TS_KIND_EXPLICIT_LE && strcmp(uid, DEID_TS_EXPLICIT_LE);
}

/* File Meta Information: the group 0002 elements at pos (explicit VR little endian; an element
 * whose VR bytes are not a VR is read as implicit, as some old writers did). */
static deid_status parse_meta(parser *p, deid_item *meta, size_t pos, size_t *out_pos)
{
    deid_status st;
    while (p->size - pos >= 8 && rd16(p->buf + pos, 0) == 0x0002) {
        enc en = {1, 0};
        uint16_t vr = DEID_VR(p->buf[pos + 4], p->buf[pos + 5]);
        if (!vr_is_known(vr))
            en.explicit_vr = 0;
        if ((st = parse_element(p, meta, pos, p->size, en, 0, &pos)) != DEID_OK)
            return st;
    }
    *out_pos = pos;
    return DEID_OK;
}

/* How the data set at pos is encoded when no (usable) transfer syntax says so. */
static deid_status guess_encoding(parser *p, size_t pos, int had_prefix, enc *en, const char **uid)
{
    const uint8_t *b = p->buf + pos;
    if (p->size - pos < 8)
        return deid__fail(DEID_ERR_NOT_DICOM, "dicom", "%s: not a DICOM file (%s)", p->name,
                          p->size ? "too short" : "empty");
    uint16_t gle = rd16(b, 0), gbe = rd16(b, 1);
    int big = gle > 0x00FF && gbe <= 0x00FF;
    uint16_t group = big ? gbe : gle;
    int explicit_vr = vr_is_known(DEID_VR(b[4], b[5]));
    if (!had_prefix && (group < 0x0008 || group > 0x00FF))
        return deid__fail(DEID_ERR_NOT_DICOM, "dicom",
                          "%s: not a DICOM file (no DICM prefix, no file meta information, and "
                          "no data element where a data set would start)",
                          p->name);
    if (big && !explicit_vr)
        return deid__fail(DEID_ERR_UNSUPPORTED, "dicom",
                          "%s: implicit VR big endian (ACR-NEMA) is not supported", p->name);
    en->explicit_vr = explicit_vr;
    en->big_endian = big;
    *uid = big ? DEID_TS_EXPLICIT_BE : explicit_vr ? DEID_TS_EXPLICIT_LE : DEID_TS_IMPLICIT_LE;
    return DEID_OK;
}

/* A data set labelled explicit VR whose first element has no VR is implicit (and the other way
 * round): such mislabelled files exist and GDCM reads them too. */
static void fix_mislabel(const parser *p, size_t pos, enc *en, const char **uid)
{
    if (p->size - pos < 8 || en->big_endian)
        return;
    const uint8_t *b = p->buf + pos;
    int looks_explicit = vr_is_known(DEID_VR(b[4], b[5]));
    if (en->explicit_vr && !looks_explicit && rd32(b + 4, 0) <= p->size - pos - 8) {
        en->explicit_vr = 0;
        *uid = DEID_TS_IMPLICIT_LE;
    } else if (!en->explicit_vr && looks_explicit && rd32(b + 4, 0) > p->size - pos - 8) {
        en->explicit_vr = 1;
        *uid = DEID_TS_EXPLICIT_LE;
    }
}

static deid_status meta_ts(const deid_item *meta, char *buf, size_t cap)
{
    const deid_elem *e = deid__item_find(meta, 0x00020010u);
    if (!e || !e->value || deid__elem_text(e, buf, cap) == (size_t)-1 || !buf[0])
        return DEID_ERR_NOT_DICOM;
    return DEID_OK;
}

static deid_status parse_deflated(parser *p, size_t pos, deid_dataset *ds)
{
    uint8_t *raw = NULL;
    size_t rawsize = 0;
    deid_status st = deid__inflate(p->buf + pos, p->size - pos, p->max_bytes, p->name, &raw,
                                   &rawsize);
    if (st != DEID_OK)
        return st;
    parser q = *p;
    q.buf = raw;
    q.size = rawsize;
    size_t end;
    enc en = {1, 0};
    st = parse_elements(&q, &ds->root, 0, rawsize, 0, en, 0, &end);
    p->count = q.count;
    free(raw);
    if (st == DEID_OK && ds->root.n == 0)
        return deid__fail(DEID_ERR_NOT_DICOM, "dicom", "%s: empty data set", p->name);
    return st;
}

static deid_status parse_all(parser *p, deid_dataset *ds)
{
    size_t pos = 0;
    int prefix = p->size >= 132 && memcmp(p->buf + 128, "DICM", 4) == 0;
    deid_status st;
    if (prefix)
        pos = 132;
    if ((st = parse_meta(p, &ds->meta, pos, &pos)) != DEID_OK)
        return st;

    char tsbuf[72];
    const char *uid = NULL;
    enc en = {1, 0};
    if (meta_ts(&ds->meta, tsbuf, sizeof tsbuf) == DEID_OK) {
        uid = tsbuf;
        deid_ts_kind kind = deid__ts_kind(uid);
        if (kind == DEID_TS_KIND_DEFLATED) {
            if (!(ds->transfer_syntax = deid__strdup(uid)))
                return DEID_ERR_NOMEM;
            return parse_deflated(p, pos, ds);
        }
        en.explicit_vr = kind != DEID_TS_KIND_IMPLICIT_LE;
        en.big_endian = kind == DEID_TS_KIND_EXPLICIT_BE;
        if (!deid__ts_encapsulated(uid))
            fix_mislabel(p, pos, &en, &uid);
    } else if (pos == p->size && ds->meta.n) {
        return deid__fail(DEID_ERR_NOT_DICOM, "dicom",
                          "%s: file meta information only, no data set", p->name);
    } else if ((st = guess_encoding(p, pos, prefix || ds->meta.n, &en, &uid)) != DEID_OK) {
        return st;
    }
    if (!(ds->transfer_syntax = deid__strdup(uid)))
        return DEID_ERR_NOMEM;
    size_t end;
    if ((st = parse_elements(p, &ds->root, pos, p->size, 0, en, 0, &end)) != DEID_OK)
        return st;
    if (ds->root.n == 0)
        return deid__fail(DEID_ERR_NOT_DICOM, "dicom", "%s: empty data set", p->name);
    return DEID_OK;
}

deid_status deid__parse(const uint8_t *data, size_t size, const char *name,
                        const deid_read_options *opts, deid_dataset **out)
{
    parser p = {data, size, name ? name : "<memory>", opts->max_depth, opts->max_elements, 0,
                opts->max_file_bytes};
    if (size == 0)
        return deid__fail(DEID_ERR_NOT_DICOM, "dicom", "%s: not a DICOM file (empty)", p.name);
    if ((uint64_t)size > opts->max_file_bytes)
        return deid__fail(DEID_ERR_LIMIT, "dicom", "%s: %zu bytes exceed max_file_bytes (%llu)",
                          p.name, size, (unsigned long long)opts->max_file_bytes);
    deid_dataset *ds = deid__dataset_new(name);
    if (!ds)
        return DEID_ERR_NOMEM;
    deid_status st = parse_all(&p, ds);
    if (st != DEID_OK) {
        deid_dataset_free(ds);
        return st;
    }
    *out = ds;
    return DEID_OK;
}
