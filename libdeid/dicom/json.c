/* The data set in the DICOM JSON model (PS3.18 F.2), without the meta group and bulk data. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "dicom/dicom_int.h"

#define BULK_LIMIT 1024u

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

/* A JSON string from DICOM text bytes: UTF-8 kept, anything else read as Latin-1. */
static json_t *text_json(const char *s, size_t n, const charset *cs)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0')
            n = i; /* NUL padding or garbage */
    if (!cs->latin1) {
        json_t *j = json_stringn(s, n); /* NULL when not valid UTF-8 */
        if (j)
            return j;
    }
    char *u = deid__malloc(n * 2 + 1);
    if (!u)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            u[k++] = (char)c;
        } else {
            u[k++] = (char)(0xC0 | (c >> 6));
            u[k++] = (char)(0x80 | (c & 0x3F));
        }
    }
    json_t *j = json_stringn(u, k);
    free(u);
    return j;
}

/* ---- value classes ------------------------------------------------------------------------ */

static int vr_in(uint16_t vr, const char *list)
{
    for (size_t i = 0; list[i] && list[i + 1]; i += 2)
        if (DEID_VR(list[i], list[i + 1]) == vr)
            return 1;
    return 0;
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

static json_t *number_json(const char *s, size_t n, int integer)
{
    char buf[64];
    trim(&s, &n, 1);
    if (n == 0)
        return json_null();
    if (n >= sizeof buf)
        return json_stringn(s, n);
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    if (integer || !strpbrk(buf, ".eE")) {
        long long v = strtoll(buf, &end, 10);
        if (*end == '\0')
            return json_integer(v);
        if (integer)
            return json_string(buf);
    }
    double d = strtod(buf, &end);
    if (*end != '\0' || !isfinite(d))
        return json_string(buf);
    return json_real(d);
}

static json_t *pn_json(const char *s, size_t n, const charset *cs)
{
    static const char *groups[3] = {"Alphabetic", "Ideographic", "Phonetic"};
    trim(&s, &n, 0);
    if (n == 0)
        return json_null();
    json_t *o = json_object();
    for (int g = 0; g < 3 && o; g++) {
        const char *eq = memchr(s, '=', n);
        size_t len = eq ? (size_t)(eq - s) : n;
        if (len && json_object_set_new(o, groups[g], text_json(s, len, cs)) != 0) {
            json_decref(o);
            return NULL;
        }
        if (!eq)
            break;
        n -= len + 1;
        s = eq + 1;
    }
    return o;
}

static json_t *binary_number(const uint8_t *v, uint16_t vr)
{
    switch (vr) {
    case DEID_VR('U', 'S'): return json_integer((json_int_t)deid__rd_le(v, 2));
    case DEID_VR('S', 'S'): return json_integer((int16_t)(uint16_t)deid__rd_le(v, 2));
    case DEID_VR('U', 'L'): return json_integer((json_int_t)deid__rd_le(v, 4));
    case DEID_VR('S', 'L'): return json_integer((int32_t)(uint32_t)deid__rd_le(v, 4));
    case DEID_VR('S', 'V'): return json_integer((json_int_t)(int64_t)deid__rd_le(v, 8));
    case DEID_VR('U', 'V'): {
        uint64_t u = deid__rd_le(v, 8);
        return u > (uint64_t)INT64_MAX ? json_real((double)u) : json_integer((json_int_t)u);
    }
    case DEID_VR('F', 'L'): {
        uint32_t u = (uint32_t)deid__rd_le(v, 4);
        float f;
        memcpy(&f, &u, 4);
        return isfinite(f) ? json_real(f) : json_null();
    }
    default: { /* FD */
        uint64_t u = deid__rd_le(v, 8);
        double d;
        memcpy(&d, &u, 8);
        return isfinite(d) ? json_real(d) : json_null();
    }
    }
}

static size_t binary_size(uint16_t vr)
{
    if (vr_in(vr, "USSS"))
        return 2;
    if (vr_in(vr, "ULSLFL"))
        return 4;
    return 8;
}

static char *base64(const uint8_t *v, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = deid__malloc((n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t x = (uint32_t)v[i] << 16;
        if (i + 1 < n)
            x |= (uint32_t)v[i + 1] << 8;
        if (i + 2 < n)
            x |= v[i + 2];
        out[k++] = tab[(x >> 18) & 63];
        out[k++] = tab[(x >> 12) & 63];
        out[k++] = i + 1 < n ? tab[(x >> 6) & 63] : '=';
        out[k++] = i + 2 < n ? tab[x & 63] : '=';
    }
    out[k] = '\0';
    return out;
}

/* ---- elements ----------------------------------------------------------------------------- */

static json_t *item_json(const deid_item *item, charset cs);

/* Split a multi-valued text value on backslashes into a JSON array, one converter per part. */
static json_t *split_values(const deid_elem *e, const charset *cs, int kind)
{
    json_t *arr = json_array();
    const char *s = (const char *)e->value;
    size_t n = e->len;
    trim(&s, &n, 0);
    while (arr) {
        const char *bs = memchr(s, '\\', n);
        size_t len = bs ? (size_t)(bs - s) : n;
        json_t *v;
        if (kind == 'P')
            v = pn_json(s, len, cs);
        else if (kind == 'I' || kind == 'D')
            v = number_json(s, len, kind == 'I');
        else {
            const char *p = s;
            size_t m = len;
            trim(&p, &m, 1);
            v = m ? text_json(p, m, cs) : json_null();
        }
        if (!v || json_array_append_new(arr, v) != 0) {
            json_decref(arr);
            return NULL;
        }
        if (!bs)
            break;
        n -= len + 1;
        s = bs + 1;
    }
    return arr;
}

static json_t *value_json(const deid_elem *e, const charset *cs, int *omit)
{
    uint16_t vr = e->vr;
    *omit = 0;
    if (vr == DEID_VR_SQ) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < e->nitems; i++)
            if (json_array_append_new(arr, item_json(&e->items[i], *cs)) != 0) {
                json_decref(arr);
                return NULL;
            }
        return arr;
    }
    if (e->encapsulated || e->tag == 0x7FE00010u || e->tag == 0x7FE00008u ||
        e->tag == 0x7FE00009u || (vr_in(vr, "OBOWOFODOLOVUN") && e->len > BULK_LIMIT)) {
        *omit = 1;
        return NULL;
    }
    if (vr_in(vr, "OBOWOFODOLOVUN")) {
        char *b = base64(e->value, e->len);
        json_t *j = b ? json_string(b) : NULL;
        free(b);
        *omit = 2; /* InlineBinary */
        return j;
    }
    if (vr_in(vr, "USSSULSLFLFDSVUV")) {
        size_t unit = binary_size(vr);
        json_t *arr = json_array();
        for (size_t i = 0; arr && i + unit <= e->len; i += unit)
            if (json_array_append_new(arr, binary_number(e->value + i, vr)) != 0) {
                json_decref(arr);
                return NULL;
            }
        return arr;
    }
    if (vr == DEID_VR('A', 'T')) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i + 4 <= e->len; i += 4) {
            char t[9];
            snprintf(t, sizeof t, "%04X%04X", (unsigned)deid__rd_le(e->value + i, 2),
                     (unsigned)deid__rd_le(e->value + i + 2, 2));
            if (json_array_append_new(arr, json_string(t)) != 0) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    if (vr_in(vr, "LTSTUTUR")) {
        const char *s = (const char *)e->value;
        size_t n = e->len;
        trim(&s, &n, 0);
        json_t *arr = json_array();
        if (arr && json_array_append_new(arr, text_json(s, n, cs)) != 0) {
            json_decref(arr);
            return NULL;
        }
        return arr;
    }
    if (vr == DEID_VR('P', 'N'))
        return split_values(e, cs, 'P');
    if (vr == DEID_VR('I', 'S'))
        return split_values(e, cs, 'I');
    if (vr == DEID_VR('D', 'S'))
        return split_values(e, cs, 'D');
    return split_values(e, cs, 'T');
}

static json_t *elem_json(const deid_elem *e, const charset *cs)
{
    json_t *o = json_object();
    char vr[3];
    if (!o)
        return NULL;
    deid__vr_string(e->vr, vr);
    if (json_object_set_new(o, "vr", json_string(vr)) != 0)
        goto fail;
    int has_value = e->vr == DEID_VR_SQ ? e->nitems > 0 : (e->len > 0 || e->encapsulated);
    if (has_value) {
        int omit;
        json_t *v = value_json(e, cs, &omit);
        if (omit != 1) {
            if (!v)
                goto fail;
            if (json_object_set_new(o, omit == 2 ? "InlineBinary" : "Value", v) != 0)
                goto fail;
        }
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

static json_t *item_json(const deid_item *item, charset cs)
{
    json_t *o = json_object();
    cs = charset_of(item, cs);
    for (size_t i = 0; o && i < item->n; i++) {
        const deid_elem *e = &item->elems[i];
        char key[9];
        snprintf(key, sizeof key, "%08X", (unsigned)e->tag);
        if (json_object_set_new(o, key, elem_json(e, &cs)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

deid_status deid_dataset_to_json(const deid_dataset *ds, char **json)
{
    if (!ds || !json)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "to_json: NULL argument");
    charset none = {0};
    json_t *root = item_json(&ds->root, none);
    if (!root)
        return deid__fail(DEID_ERR_NOMEM, "dicom", "%s: out of memory building JSON",
                          deid__ds_label(ds));
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    json_decref(root);
    if (!s)
        return deid__fail(DEID_ERR_NOMEM, "dicom", "%s: out of memory serialising JSON",
                          deid__ds_label(ds));
    *json = s;
    return DEID_OK;
}
