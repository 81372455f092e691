/* Lossless JPEG (ITU T.81 process 14, Huffman, SOF3) decoder: the CT transfer syntaxes
 * 1.2.840.10008.1.2.4.57 and .70. Written here because GDCM's lossless decoder prints libjpeg
 * warnings to stderr and aborts the process on some corrupt streams; this one never prints,
 * never reads outside the buffer, and always terminates (missing data decodes as zeros). */
#include <stdint.h>
#include <string.h>
#include "core/core.h"
#include "dicom/dicom_int.h"

#define FAST_BITS 9
#define MAX_COMPONENTS 4

typedef struct huff {
    int defined;
    uint8_t fast_len[1 << FAST_BITS]; /* 0: code longer than FAST_BITS */
    uint8_t fast_sym[1 << FAST_BITS];
    int32_t maxcode[18]; /* largest code of each length, -1 when none */
    int32_t valoffset[18];
    uint8_t vals[256];
} huff;

typedef struct bits {
    const uint8_t *d;
    size_t n, pos;
    uint64_t acc; /* next bits, MSB first */
    int cnt;
    int at_marker;
} bits;

typedef struct frame {
    unsigned precision, rows, cols, ncomp;
    unsigned id[MAX_COMPONENTS];
    huff dc[4];
    unsigned restart;
} frame;

/* ---- Huffman tables --------------------------------------------------------------------- */

static const char *build_huff(huff *h, const uint8_t *counts, const uint8_t *syms, unsigned nsyms)
{
    int32_t code = 0;
    unsigned k = 0;
    memset(h, 0, sizeof *h);
    for (int len = 1; len <= 16; len++) {
        h->valoffset[len] = (int32_t)k - code;
        for (unsigned i = 0; i < counts[len - 1]; i++, k++, code++) {
            if (len <= FAST_BITS) {
                unsigned first = (unsigned)code << (FAST_BITS - len);
                for (unsigned j = 0; j < 1u << (FAST_BITS - len); j++) {
                    h->fast_len[first + j] = (uint8_t)len;
                    h->fast_sym[first + j] = syms[k];
                }
            }
        }
        h->maxcode[len] = counts[len - 1] ? code - 1 : -1;
        if (code > (1 << len))
            return "bad Huffman table";
        code <<= 1;
    }
    h->maxcode[17] = INT32_MAX;
    if (k != nsyms)
        return "bad Huffman table";
    memcpy(h->vals, syms, nsyms);
    h->defined = 1;
    return NULL;
}

/* ---- bit reader ------------------------------------------------------------------------- */

static void fill(bits *b)
{
    while (b->cnt <= 56) {
        uint8_t c = 0;
        if (!b->at_marker && b->pos < b->n) {
            c = b->d[b->pos];
            if (c == 0xFF) {
                uint8_t next = b->pos + 1 < b->n ? b->d[b->pos + 1] : 0xD9;
                if (next == 0x00) {
                    b->pos += 2;
                } else {
                    b->at_marker = 1; /* a marker ends the data: zeros from here */
                    c = 0;
                }
            } else {
                b->pos++;
            }
        }
        b->acc |= (uint64_t)c << (56 - b->cnt);
        b->cnt += 8;
    }
}

static uint32_t get_bits(bits *b, int n)
{
    if (n == 0)
        return 0;
    if (b->cnt < n)
        fill(b);
    uint32_t v = (uint32_t)(b->acc >> (64 - n));
    b->acc <<= n;
    b->cnt -= n;
    return v;
}

static int decode_sym(bits *b, const huff *h)
{
    if (b->cnt < 16)
        fill(b);
    unsigned look = (unsigned)(b->acc >> (64 - FAST_BITS));
    int len = h->fast_len[look];
    if (len) {
        b->acc <<= len;
        b->cnt -= len;
        return h->fast_sym[look];
    }
    for (len = FAST_BITS + 1; len <= 16; len++) {
        int32_t code = (int32_t)(b->acc >> (64 - len));
        if (code <= h->maxcode[len]) {
            b->acc <<= len;
            b->cnt -= len;
            return h->vals[h->valoffset[len] + code];
        }
    }
    return -1;
}

/* Next difference value (T.81 H.1.2.2); 0 for a corrupt code. */
static int32_t decode_diff(bits *b, const huff *h)
{
    int s = decode_sym(b, h);
    if (s <= 0 || s > 16)
        return 0;
    if (s == 16)
        return 32768;
    int32_t v = (int32_t)get_bits(b, s);
    if (v < (1 << (s - 1)))
        v -= (1 << s) - 1;
    return v;
}

/* At a restart marker: drop the buffered bits and step over RSTn (searching forward for it
 * when the data before it was damaged). */
static void restart(bits *b)
{
    b->acc = 0;
    b->cnt = 0;
    b->at_marker = 0;
    while (b->pos + 1 < b->n &&
           !(b->d[b->pos] == 0xFF && b->d[b->pos + 1] >= 0xD0 && b->d[b->pos + 1] <= 0xD7))
        b->pos++;
    if (b->pos + 1 < b->n)
        b->pos += 2;
}

/* ---- scans ------------------------------------------------------------------------------ */

static int32_t floor_half(int32_t x) { return x >= 0 ? x / 2 : -((-x + 1) / 2); }

static int32_t predict(int sel, int32_t ra, int32_t rb, int32_t rc)
{
    switch (sel) {
    case 1: return ra;
    case 2: return rb;
    case 3: return rc;
    case 4: return ra + rb - rc;
    case 5: return ra + floor_half(rb - rc);
    case 6: return rb + floor_half(ra - rc);
    default: return (ra + rb) / 2;
    }
}

typedef struct out_img {
    uint8_t *p8;
    uint16_t *p16;
    size_t cols, ncomp;
} out_img;

static int32_t sample_at(const out_img *o, size_t y, size_t x, size_t c)
{
    size_t i = (y * o->cols + x) * o->ncomp + c;
    return o->p8 ? o->p8[i] : o->p16[i];
}

static void sample_set(const out_img *o, size_t y, size_t x, size_t c, int32_t v)
{
    size_t i = (y * o->cols + x) * o->ncomp + c;
    if (o->p8)
        o->p8[i] = (uint8_t)v;
    else
        o->p16[i] = (uint16_t)v;
}

static void decode_scan(const frame *f, const unsigned *comp, const unsigned *table, unsigned ns,
                        int sel, unsigned pt, bits *b, const out_img *o)
{
    size_t mcus = 0, first_row = 0, first_col = 0;
    int32_t initial = (int32_t)1 << (f->precision - pt - 1);
    uint32_t mask = f->precision - pt >= 16 ? 0xFFFFu : (1u << (f->precision - pt)) - 1;
    for (size_t y = 0; y < f->rows; y++)
        for (size_t x = 0; x < f->cols; x++, mcus++) {
            if (f->restart && mcus && mcus % f->restart == 0) {
                restart(b);
                first_row = y;
                first_col = x;
            }
            for (unsigned k = 0; k < ns; k++) {
                size_t c = comp[k];
                int32_t px;
                if (y == first_row && x == first_col)
                    px = initial;
                else if (y == first_row)
                    px = sample_at(o, y, x - 1, c);
                else if (x == 0)
                    px = sample_at(o, y - 1, x, c);
                else
                    px = predict(sel, sample_at(o, y, x - 1, c), sample_at(o, y - 1, x, c),
                                 sample_at(o, y - 1, x - 1, c));
                int32_t v = (int32_t)((uint32_t)(px + decode_diff(b, &f->dc[table[k]])) & 0xFFFFu);
                sample_set(o, y, x, c, (int32_t)((uint32_t)v & mask));
            }
        }
    if (pt) /* undo the point transform of the components of this scan */
        for (size_t y = 0; y < f->rows; y++)
            for (size_t x = 0; x < f->cols; x++)
                for (unsigned k = 0; k < ns; k++)
                    sample_set(o, y, x, comp[k], sample_at(o, y, x, comp[k]) << pt);
}

/* ---- markers ---------------------------------------------------------------------------- */

static unsigned be16(const uint8_t *p) { return (unsigned)(p[0] << 8 | p[1]); }

static const char *read_dht(frame *f, const uint8_t *s, size_t len)
{
    while (len >= 17) {
        unsigned tc = s[0] >> 4, th = s[0] & 15, total = 0;
        for (int i = 0; i < 16; i++)
            total += s[1 + i];
        if (th > 3 || total > 256 || 17 + total > len)
            return "bad Huffman table";
        if (tc == 0) {
            const char *why = build_huff(&f->dc[th], s + 1, s + 17, total);
            if (why)
                return why;
        }
        s += 17 + total;
        len -= 17 + total;
    }
    return len ? "bad Huffman table" : NULL;
}

static const char *read_sof(frame *f, const deid_frame_desc *fd, const uint8_t *s, size_t len)
{
    if (len < 6)
        return "bad frame header";
    f->precision = s[0];
    f->rows = be16(s + 1) ? be16(s + 1) : fd->rows;
    f->cols = be16(s + 3);
    f->ncomp = s[5];
    if (f->precision < 2 || f->precision > 16 || f->ncomp == 0 || f->ncomp > MAX_COMPONENTS ||
        len < 6 + 3 * (size_t)f->ncomp)
        return "bad frame header";
    if (f->rows != fd->rows || f->cols != fd->cols || f->ncomp != fd->samples)
        return "JPEG header differs from the DICOM header";
    for (unsigned c = 0; c < f->ncomp; c++) {
        f->id[c] = s[6 + 3 * c];
        if (s[7 + 3 * c] != 0x11)
            return "subsampled lossless JPEG is not supported";
    }
    return NULL;
}

static const char *read_sos(frame *f, const uint8_t *s, size_t len, unsigned *comp, unsigned *table,
                            unsigned *ns, int *sel, unsigned *pt)
{
    if (len < 1 || f->ncomp == 0)
        return "scan before frame header";
    *ns = s[0];
    if (*ns == 0 || *ns > f->ncomp || len != 4 + 2 * (size_t)*ns)
        return "bad scan header";
    for (unsigned k = 0; k < *ns; k++) {
        unsigned id = s[1 + 2 * k], c = 0;
        while (c < f->ncomp && f->id[c] != id)
            c++;
        if (c == f->ncomp)
            return "scan names an unknown component";
        comp[k] = c;
        table[k] = s[2 + 2 * k] >> 4;
        if (table[k] > 3 || !f->dc[table[k]].defined)
            return "scan uses an undefined Huffman table";
    }
    const uint8_t *t = s + 1 + 2 * *ns;
    *sel = t[0];
    *pt = t[2] & 15;
    if (*sel < 1 || *sel > 7 || *pt >= f->precision)
        return "bad predictor or point transform";
    return NULL;
}

static const char *decode(const deid_frame_desc *fd, const uint8_t *d, size_t n, uint8_t *out)
{
    static const frame zero;
    frame f = zero;
    out_img o = {NULL, NULL, fd->cols, fd->samples};
    if (fd->bits_allocated == 8)
        o.p8 = out;
    else
        o.p16 = (uint16_t *)(void *)out;
    if (n < 4 || be16(d) != 0xFFD8)
        return "no JPEG start of image";
    size_t pos = 2;
    int scans = 0;
    for (;;) {
        while (pos + 1 < n && d[pos] == 0xFF && d[pos + 1] == 0xFF)
            pos++;
        if (pos + 2 > n || d[pos] != 0xFF)
            return scans ? NULL : "truncated JPEG";
        unsigned m = d[pos + 1];
        if (m == 0xD9)
            return scans ? NULL : "JPEG without scan";
        if (pos + 4 > n)
            return scans ? NULL : "truncated JPEG";
        size_t len = be16(d + pos + 2);
        if (len < 2 || len > n - pos - 2)
            return scans ? NULL : "JPEG marker segment longer than the data";
        const uint8_t *s = d + pos + 4;
        size_t slen = len - 2;
        const char *why = NULL;
        if (m == 0xC3) {
            if (f.ncomp)
                return "two frame headers";
            why = read_sof(&f, fd, s, slen);
            if (!why && (f.precision <= 8) != (fd->bits_allocated == 8))
                why = "sample precision does not match Bits Allocated";
        } else if ((m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC)) {
            why = "not a lossless Huffman JPEG";
        } else if (m == 0xC4) {
            why = read_dht(&f, s, slen);
        } else if (m == 0xDD) {
            f.restart = slen >= 2 ? be16(s) : 0;
        } else if (m == 0xDA) {
            unsigned comp[MAX_COMPONENTS], table[MAX_COMPONENTS], ns, pt;
            int sel;
            why = read_sos(&f, s, slen, comp, table, &ns, &sel, &pt);
            if (why)
                return why;
            bits b = {d, n, pos + 2 + len, 0, 0, 0};
            decode_scan(&f, comp, table, ns, sel, pt, &b, &o);
            scans++;
            /* the next marker after the entropy-coded data */
            pos = b.pos;
            while (pos + 1 < n && !(d[pos] == 0xFF && d[pos + 1] != 0 &&
                                    !(d[pos + 1] >= 0xD0 && d[pos + 1] <= 0xD7)))
                pos++;
            continue;
        }
        if (why)
            return why;
        pos += 2 + len;
    }
}

deid_status deid__ljpeg_decode(const deid_frame_desc *f, const uint8_t *d, size_t n, uint8_t *out,
                               size_t out_size)
{
    memset(out, 0, out_size);
    const char *why = decode(f, d, n, out);
    if (why)
        return deid__fail(DEID_ERR_NO_PIXELS, "dicom", "lossless JPEG: %s", why);
    return DEID_OK;
}
