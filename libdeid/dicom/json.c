/* The data set in the DICOM JSON model (PS3.18 F.2), without the meta group and bulk data.
 *
 * Written straight into one growable buffer: building a jansson tree and dumping it cost about
 * a third of a header-only batch. The text is byte for byte what json_dumps(JSON_INDENT(2) |
 * JSON_REAL_PRECISION(15)) of jansson 2.14 printed for the same values, so headers written
 * before and after this change compare equal: insertion-ordered keys, "\n" plus two spaces per
 * level, ": " between key and value, "{}" and "[]" when empty, reals as "%.15g" with ".0" added
 * when neither a point nor an exponent shows and the exponent's '+' and leading zeros dropped,
 * strings escaped for '"', '\\' and control characters only (\b \f \n \r \t, else \u00XX). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "dicom/dicom_int.h"

#define BULK_LIMIT 1024u

/* ---- output buffer ------------------------------------------------------------------------ */

/* The JSON text under construction (core's growable buffer). */
typedef deid_buf out;

/* Room for n more bytes: callers then write with o->data[o->len++] or memcpy. */
static inline int out_reserve(out *o, size_t n)
{
    return o->cap - o->len > n ? 0 : deid__buf_reserve(o, n);
}

static inline int out_put(out *o, const char *s, size_t n)
{
    if (out_reserve(o, n) != 0)
        return -1;
    memcpy(o->data + o->len, s, n);
    o->len += n;
    return 0;
}

#define PUT_LIT(o, lit) out_put((o), (lit), sizeof(lit) - 1)

/* A line break and two spaces per level, as JSON_INDENT(2) lays out every member. */
static int out_newline(out *o, int depth)
{
    static const char ws[] = "\n                                                                ";
    size_t n = (size_t)depth * 2;
    if (out_reserve(o, n + 1) != 0)
        return -1;
    o->data[o->len++] = '\n';
    while (n > 0) {
        size_t k = n < sizeof ws - 2 ? n : sizeof ws - 2;
        memcpy(o->data + o->len, ws + 1, k);
        o->len += k;
        n -= k;
    }
    return 0;
}

/* Opening a member of an object or array: "{"/"[" before the first, "," after the others. */
static int out_open_member(out *o, int *count, char open, int depth)
{
    if (out_reserve(o, 1) != 0)
        return -1;
    o->data[o->len++] = *count ? ',' : open;
    (*count)++;
    return out_newline(o, depth);
}

static int out_close(out *o, int count, char open, char close, int depth)
{
    if (count == 0) {
        char empty[2] = {open, close};
        return out_put(o, empty, 2);
    }
    if (out_newline(o, depth) != 0 || out_reserve(o, 1) != 0)
        return -1;
    o->data[o->len++] = close;
    return 0;
}

/* ---- strings ------------------------------------------------------------------------------ */

/* Bytes copied as they are inside a JSON string: printable ASCII except '"' and '\\'. */
static int plain_ascii(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

static void escape_ascii(out *o, unsigned char c) /* room for 6 bytes reserved by the caller */
{
    static const char hex[] = "0123456789ABCDEF";
    char *d = o->data + o->len;
    const char *two = NULL;
    switch (c) {
    case '"': two = "\\\""; break;
    case '\\': two = "\\\\"; break;
    case '\b': two = "\\b"; break;
    case '\f': two = "\\f"; break;
    case '\n': two = "\\n"; break;
    case '\r': two = "\\r"; break;
    case '\t': two = "\\t"; break;
    default: break;
    }
    if (two) {
        memcpy(d, two, 2);
        o->len += 2;
        return;
    }
    memcpy(d, "\\u00", 4);
    d[4] = hex[c >> 4];
    d[5] = hex[c & 15];
    o->len += 6;
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes) starting with a byte >= 0x80,
 * or 0: jansson's rules (no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, v = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, v = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, v = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (len == 3 && v < 0x800) ||
        (len == 4 && v < 0x10000))
        return 0;
    return len;
}

/* The bytes as a JSON string body when they are UTF-8: 0 written, 1 not UTF-8 (nothing
 * written), -1 out of memory. */
static int put_utf8(out *o, const unsigned char *s, size_t n)
{
    size_t start = o->len;
    if (out_reserve(o, n + 2) != 0) /* the common case: no escapes */
        return -1;
    o->data[o->len++] = '"';
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && plain_ascii(s[j]))
            j++;
        if (out_put(o, (const char *)s + i, j - i) != 0)
            return -1;
        if (j == n)
            break;
        if (s[j] >= 0x80) {
            size_t k = utf8_seq(s + j, n - j);
            if (k == 0) {
                o->len = start;
                return 1;
            }
            if (out_put(o, (const char *)s + j, k) != 0)
                return -1;
            i = j + k;
        } else {
            if (out_reserve(o, 6) != 0)
                return -1;
            escape_ascii(o, s[j]);
            i = j + 1;
        }
    }
    if (out_reserve(o, 1) != 0)
        return -1;
    o->data[o->len++] = '"';
    return 0;
}

/* The bytes read as ISO 8859-1, as a JSON string. */
static int put_latin1(out *o, const unsigned char *s, size_t n)
{
    size_t room; /* two bytes a character; escapes (six) reserve their own */
    if (!deid__mul_size(n, 2, &room) || !deid__add_size(room, 2, &room) ||
        out_reserve(o, room) != 0)
        return -1;
    o->data[o->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (plain_ascii(c)) {
            o->data[o->len++] = (char)c;
        } else if (c >= 0x80) {
            o->data[o->len++] = (char)(0xC0 | (c >> 6));
            o->data[o->len++] = (char)(0x80 | (c & 0x3F));
        } else {
            if (out_reserve(o, 6 + 2 * (n - i)) != 0)
                return -1;
            escape_ascii(o, c);
        }
    }
    o->data[o->len++] = '"';
    return 0;
}

/* A string of raw bytes: UTF-8 kept, anything else read as Latin-1 (jansson refused non-UTF-8
 * strings, so the tree-building code converted them the same way). */
static int put_bytes(out *o, const char *s, size_t n, int latin1)
{
    if (!latin1) {
        int rc = put_utf8(o, (const unsigned char *)s, n);
        if (rc <= 0)
            return rc;
    }
    return put_latin1(o, (const unsigned char *)s, n);
}

/* ---- text decoding ------------------------------------------------------------------------ */

typedef struct charset {
    int latin1; /* ISO_IR 100 declared: bytes >= 0x80 are Latin-1 */
} charset;

static charset charset_of(const deid_item *item, charset inherited)
{
    const deid_elem *e = deid__item_find(item, 0x00080005u);
    if (!e || !e->value)
        return inherited;
    char buf[256];
    charset cs = {0};
    if (deid__elem_text(e, buf, sizeof buf) == (size_t)-1)
        return inherited;
    cs.latin1 = strstr(buf, "ISO_IR 100") != NULL || strstr(buf, "ISO 2022 IR 100") != NULL;
    return cs;
}

/* DICOM text as a JSON string: cut at the first NUL (padding or garbage), then decoded. */
static int put_text(out *o, const char *s, size_t n, const charset *cs)
{
    const char *nul = memchr(s, '\0', n);
    if (nul)
        n = (size_t)(nul - s);
    return put_bytes(o, s, n, cs->latin1);
}

/* ---- numbers ------------------------------------------------------------------------------ */

static int put_int(out *o, long long v)
{
    char buf[24];
    size_t k = sizeof buf;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        buf[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[--k] = '-';
    return out_put(o, buf + k, sizeof buf - k);
}

/* A finite double as jansson 2.14 prints it with precision 15 (its snprintf variant). */
static int put_real(out *o, double d)
{
    char buf[48];
    int r = snprintf(buf, sizeof buf - 3, "%.15g", d);
    if (r < 0 || (size_t)r >= sizeof buf - 3)
        return -1;
    size_t len = (size_t)r;
    for (size_t i = 0; i < len; i++) /* a locale's decimal point becomes '.' */
        if (!(buf[i] >= '0' && buf[i] <= '9') && buf[i] != '-' && buf[i] != '+' &&
            buf[i] != 'e') {
            buf[i] = '.';
            break;
        }
    if (!memchr(buf, '.', len) && !memchr(buf, 'e', len)) {
        memcpy(buf + len, ".0", 2);
        len += 2;
    }
    char *start = memchr(buf, 'e', len);
    if (start) { /* "1e+20" -> "1e20", "1e-05" -> "1e-5" */
        start++;
        char *end = start + 1;
        if (*start == '-')
            start++;
        while (end < buf + len && *end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - buf));
            len -= (size_t)(end - start);
        }
    }
    return out_put(o, buf, len);
}

static void trim(const char **s, size_t *n, int leading)
{
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\0'))
        (*n)--;
    while (leading && *n && **s == ' ') {
        (*s)++;
        (*n)--;
    }
}

/* An IS or DS value: a JSON number when it reads as one, else the text as a string. */
static int put_number(out *o, const char *s, size_t n, int integer)
{
    char buf[64];
    trim(&s, &n, 1);
    if (n == 0)
        return PUT_LIT(o, "null");
    if (n >= sizeof buf)
        return put_bytes(o, s, n, 0);
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    if (integer || !strpbrk(buf, ".eE")) {
        long long v = strtoll(buf, &end, 10);
        if (*end == '\0')
            return put_int(o, v);
        if (integer)
            return put_bytes(o, buf, strlen(buf), 0);
    }
    double d = strtod(buf, &end);
    if (*end != '\0' || !isfinite(d))
        return put_bytes(o, buf, strlen(buf), 0);
    return put_real(o, d);
}

static int put_binary_number(out *o, const uint8_t *v, uint16_t vr)
{
    switch (vr) {
    case DEID_VR('U', 'S'): return put_int(o, (long long)deid__rd_le(v, 2));
    case DEID_VR('S', 'S'): return put_int(o, (int16_t)(uint16_t)deid__rd_le(v, 2));
    case DEID_VR('U', 'L'): return put_int(o, (long long)deid__rd_le(v, 4));
    case DEID_VR('S', 'L'): return put_int(o, (int32_t)(uint32_t)deid__rd_le(v, 4));
    case DEID_VR('S', 'V'): return put_int(o, (long long)(int64_t)deid__rd_le(v, 8));
    case DEID_VR('U', 'V'): {
        uint64_t u = deid__rd_le(v, 8);
        return u > (uint64_t)INT64_MAX ? put_real(o, (double)u) : put_int(o, (long long)u);
    }
    case DEID_VR('F', 'L'): {
        uint32_t u = (uint32_t)deid__rd_le(v, 4);
        float f;
        memcpy(&f, &u, 4);
        return isfinite(f) ? put_real(o, f) : PUT_LIT(o, "null");
    }
    default: { /* FD */
        uint64_t u = deid__rd_le(v, 8);
        double d;
        memcpy(&d, &u, 8);
        return isfinite(d) ? put_real(o, d) : PUT_LIT(o, "null");
    }
    }
}

static size_t binary_size(uint16_t vr)
{
    switch (vr) {
    case DEID_VR('U', 'S'):
    case DEID_VR('S', 'S'): return 2;
    case DEID_VR('U', 'L'):
    case DEID_VR('S', 'L'):
    case DEID_VR('F', 'L'): return 4;
    default: return 8;
    }
}

/* ---- value classes ------------------------------------------------------------------------ */

static int vr_in(uint16_t vr, const char *list)
{
    for (size_t i = 0; list[i] && list[i + 1]; i += 2)
        if (DEID_VR(list[i], list[i + 1]) == vr)
            return 1;
    return 0;
}

static int put_base64(out *o, const uint8_t *v, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (out_reserve(o, (n + 2) / 3 * 4 + 2) != 0)
        return -1;
    char *d = o->data + o->len;
    size_t k = 0;
    d[k++] = '"';
    for (size_t i = 0; i < n; i += 3) {
        uint32_t x = (uint32_t)v[i] << 16;
        if (i + 1 < n)
            x |= (uint32_t)v[i + 1] << 8;
        if (i + 2 < n)
            x |= v[i + 2];
        d[k++] = tab[(x >> 18) & 63];
        d[k++] = tab[(x >> 12) & 63];
        d[k++] = i + 1 < n ? tab[(x >> 6) & 63] : '=';
        d[k++] = i + 2 < n ? tab[x & 63] : '=';
    }
    d[k++] = '"';
    o->len += k;
    return 0;
}

static int put_hex8(out *o, uint32_t x)
{
    static const char hex[] = "0123456789ABCDEF";
    if (out_reserve(o, 10) != 0)
        return -1;
    char *d = o->data + o->len;
    d[0] = '"';
    for (int i = 0; i < 8; i++)
        d[1 + i] = hex[(x >> (28 - 4 * i)) & 15];
    d[9] = '"';
    o->len += 10;
    return 0;
}

/* A Person Name: {"Alphabetic", "Ideographic", "Phonetic"} from the '='-separated groups,
 * empty groups left out; null when the name is empty. */
static int put_pn(out *o, const char *s, size_t n, const charset *cs, int depth)
{
    static const char *const groups[3] = {"\"Alphabetic\": ", "\"Ideographic\": ", "\"Phonetic\": "};
    trim(&s, &n, 0);
    if (n == 0)
        return PUT_LIT(o, "null");
    int count = 0;
    for (int g = 0; g < 3; g++) {
        const char *eq = memchr(s, '=', n);
        size_t len = eq ? (size_t)(eq - s) : n;
        if (len && (out_open_member(o, &count, '{', depth + 1) != 0 ||
                    out_put(o, groups[g], strlen(groups[g])) != 0 ||
                    put_text(o, s, len, cs) != 0))
            return -1;
        if (!eq)
            break;
        n -= len + 1;
        s = eq + 1;
    }
    return out_close(o, count, '{', '}', depth);
}

/* A multi-valued text value split on backslashes, one JSON value per part. */
static int put_split(out *o, const deid_elem *e, const charset *cs, int kind, int depth)
{
    const char *s = (const char *)e->value;
    size_t n = e->len;
    int count = 0;
    trim(&s, &n, 0);
    for (;;) {
        const char *bs = memchr(s, '\\', n);
        size_t len = bs ? (size_t)(bs - s) : n;
        if (out_open_member(o, &count, '[', depth + 1) != 0)
            return -1;
        int rc;
        if (kind == 'P') {
            rc = put_pn(o, s, len, cs, depth + 1);
        } else if (kind == 'I' || kind == 'D') {
            rc = put_number(o, s, len, kind == 'I');
        } else {
            const char *p = s;
            size_t m = len;
            trim(&p, &m, 1);
            rc = m ? put_text(o, p, m, cs) : PUT_LIT(o, "null");
        }
        if (rc != 0)
            return -1;
        if (!bs)
            break;
        n -= len + 1;
        s = bs + 1;
    }
    return out_close(o, count, '[', ']', depth);
}

static int put_item(out *o, const deid_item *item, charset cs, int depth);

/* The "Value" array of a non-bulk element at `depth`. */
static int put_value(out *o, const deid_elem *e, const charset *cs, int depth)
{
    uint16_t vr = e->vr;
    int count = 0;
    if (vr == DEID_VR_SQ) {
        for (size_t i = 0; i < e->nitems; i++)
            if (out_open_member(o, &count, '[', depth + 1) != 0 ||
                put_item(o, &e->items[i], *cs, depth + 1) != 0)
                return -1;
        return out_close(o, count, '[', ']', depth);
    }
    if (vr_in(vr, "USSSULSLFLFDSVUV")) {
        size_t unit = binary_size(vr);
        for (size_t i = 0; i + unit <= e->len; i += unit)
            if (out_open_member(o, &count, '[', depth + 1) != 0 ||
                put_binary_number(o, e->value + i, vr) != 0)
                return -1;
        return out_close(o, count, '[', ']', depth);
    }
    if (vr == DEID_VR('A', 'T')) {
        for (size_t i = 0; i + 4 <= e->len; i += 4) {
            uint32_t t = (uint32_t)deid__rd_le(e->value + i, 2) << 16 |
                         (uint32_t)deid__rd_le(e->value + i + 2, 2);
            if (out_open_member(o, &count, '[', depth + 1) != 0 || put_hex8(o, t) != 0)
                return -1;
        }
        return out_close(o, count, '[', ']', depth);
    }
    if (vr_in(vr, "LTSTUTUR")) {
        const char *s = (const char *)e->value;
        size_t n = e->len;
        trim(&s, &n, 0);
        if (out_open_member(o, &count, '[', depth + 1) != 0 || put_text(o, s, n, cs) != 0)
            return -1;
        return out_close(o, count, '[', ']', depth);
    }
    if (vr == DEID_VR('P', 'N'))
        return put_split(o, e, cs, 'P', depth);
    if (vr == DEID_VR('I', 'S'))
        return put_split(o, e, cs, 'I', depth);
    if (vr == DEID_VR('D', 'S'))
        return put_split(o, e, cs, 'D', depth);
    return put_split(o, e, cs, 'T', depth);
}

/* Pixel data, encapsulated or not, and binary values over BULK_LIMIT are left out. */
static int is_bulk(const deid_elem *e, int binary)
{
    return e->encapsulated || e->tag == 0x7FE00010u || e->tag == 0x7FE00008u ||
           e->tag == 0x7FE00009u || (binary && e->len > BULK_LIMIT);
}

/* {"vr": "XX"} plus "Value": [..] or "InlineBinary": "base64" when there is a value to show. */
static int put_elem(out *o, const deid_elem *e, const charset *cs, int depth)
{
    char vr[3];
    int count = 0, binary = 0;
    const char *member = NULL;
    deid__vr_string(e->vr, vr);
    if (e->vr == DEID_VR_SQ) {
        if (e->nitems > 0)
            member = "\"Value\": ";
    } else if (e->len > 0 || e->encapsulated) {
        binary = vr_in(e->vr, "OBOWOFODOLOVUN");
        if (!is_bulk(e, binary))
            member = binary ? "\"InlineBinary\": " : "\"Value\": ";
    }
    if (out_open_member(o, &count, '{', depth + 1) != 0 || PUT_LIT(o, "\"vr\": ") != 0 ||
        put_bytes(o, vr, strlen(vr), 0) != 0)
        return -1;
    if (member && (out_open_member(o, &count, '{', depth + 1) != 0 ||
                   out_put(o, member, strlen(member)) != 0 ||
                   (binary ? put_base64(o, e->value, e->len) : put_value(o, e, cs, depth + 1)) != 0))
        return -1;
    return out_close(o, count, '{', '}', depth);
}

/* One data set as an object keyed by "GGGGEEEE", its own Specific Character Set applying. */
static int put_item(out *o, const deid_item *item, charset cs, int depth)
{
    int count = 0;
    cs = charset_of(item, cs);
    for (size_t i = 0; i < item->n; i++) {
        const deid_elem *e = &item->elems[i];
        if (out_open_member(o, &count, '{', depth + 1) != 0 || put_hex8(o, e->tag) != 0 ||
            PUT_LIT(o, ": ") != 0 || put_elem(o, e, &cs, depth + 1) != 0)
            return -1;
    }
    return out_close(o, count, '{', '}', depth);
}

deid_status deid_dataset_to_json(const deid_dataset *ds, char **json)
{
    if (!ds || !json)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "to_json: NULL argument");
    charset none = {0};
    out o = {0};
    if (deid__buf_reserve(&o, 16384) != 0 || put_item(&o, &ds->root, none, 0) != 0 ||
        out_reserve(&o, 1) != 0) {
        free(o.data);
        return deid__fail(DEID_ERR_NOMEM, "dicom", "%s: out of memory building JSON",
                          deid__ds_label(ds));
    }
    o.data[o.len] = '\0';
    *json = o.data;
    return DEID_OK;
}
