/* Public dataset API: read/write, element access, walk. */
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "dicom/dicom_int.h"
#include "shim/gdcm_shim.h"

#define DEFAULT_MAX_FILE_BYTES (4ull << 30)
#define DEFAULT_MAX_DEPTH 64u
#define DEFAULT_MAX_ELEMENTS 1000000ull

/* ---- options ------------------------------------------------------------------------------ */

deid_status deid_read_options_init(deid_read_options *opts, unsigned version)
{
    if (!opts)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "read options: NULL");
    if (version != DEID_READ_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "read options: unknown version %u", version);
    opts->version = version;
    opts->max_file_bytes = DEFAULT_MAX_FILE_BYTES;
    opts->max_depth = DEFAULT_MAX_DEPTH;
    opts->max_elements = DEFAULT_MAX_ELEMENTS;
    return DEID_OK;
}

uint64_t deid_default_max_file_bytes(void) { return DEFAULT_MAX_FILE_BYTES; }

unsigned deid_default_max_depth(void) { return DEFAULT_MAX_DEPTH; }

deid_status deid__read_limits(const deid_read_options *opts, deid_read_options *out)
{
    deid_read_options d;
    deid_read_options_init(&d, DEID_READ_OPTIONS_VERSION);
    if (opts) {
        if (opts->version != DEID_READ_OPTIONS_VERSION)
            return deid__fail(DEID_ERR_ARGUMENT, "dicom", "read options: unknown version %u",
                              opts->version);
        if (opts->max_file_bytes)
            d.max_file_bytes = opts->max_file_bytes;
        if (opts->max_depth)
            d.max_depth = opts->max_depth;
        if (opts->max_elements)
            d.max_elements = opts->max_elements;
    }
    *out = d;
    return DEID_OK;
}

/* ---- small shared helpers ----------------------------------------------------------------- */

const char *deid__ds_label(const deid_dataset *ds)
{
    return ds && ds->name ? ds->name : "<memory>";
}

uint64_t deid__rd_le(const uint8_t *v, size_t n)
{
    uint64_t x = 0;
    for (size_t i = n; i-- > 0;)
        x = (x << 8) | v[i];
    return x;
}

void deid__vr_string(uint16_t vr, char out[3])
{
    out[0] = (char)(vr >> 8);
    out[1] = (char)(vr & 0xFF);
    out[2] = '\0';
}

long long deid__item_uint(const deid_item *item, uint32_t tag)
{
    const deid_elem *e = deid__item_find(item, tag);
    if (!e || !e->value || !e->len)
        return -1;
    const uint8_t *v = e->value;
    switch (e->vr) {
    case DEID_VR('U', 'S'): return e->len >= 2 ? (long long)deid__rd_le(v, 2) : -1;
    case DEID_VR('S', 'S'): return e->len >= 2 ? (int16_t)(uint16_t)deid__rd_le(v, 2) : -1;
    case DEID_VR('U', 'L'): return e->len >= 4 ? (long long)deid__rd_le(v, 4) : -1;
    case DEID_VR('S', 'L'): return e->len >= 4 ? (int32_t)(uint32_t)deid__rd_le(v, 4) : -1;
    case DEID_VR('I', 'S'): {
        char buf[32];
        if (deid__elem_text(e, buf, sizeof buf) == (size_t)-1)
            return -1;
        char *s = buf, *end;
        while (*s == ' ')
            s++;
        long long x = strtoll(s, &end, 10);
        if (end == s)
            return -1;
        return x;
    }
    default: return -1;
    }
}

static const char *label_or(const char *name) { return name ? name : "<memory>"; }

/* ---- read / write ------------------------------------------------------------------------- */

deid_status deid_dataset_read_memory(const void *data, size_t size, const char *name,
                                     const deid_read_options *opts, deid_dataset **out)
{
    if (!out || (!data && size))
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "%s: NULL argument", label_or(name));
    deid_read_options lim;
    deid_status st = deid__read_limits(opts, &lim);
    if (st != DEID_OK)
        return st;
    return deid__parse(data, size, name, &lim, out);
}

deid_status deid_dataset_read_file(const char *path, const deid_read_options *opts,
                                   deid_dataset **out)
{
    if (!path || !out)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "read file: NULL argument");
    deid_read_options lim;
    deid_status st = deid__read_limits(opts, &lim);
    if (st != DEID_OK)
        return st;
    char *buf = NULL;
    size_t size = 0;
    if ((st = deid__read_file(path, lim.max_file_bytes, &buf, &size)) != DEID_OK)
        return st;
    st = deid__parse((const uint8_t *)buf, size, path, &lim, out);
    free(buf);
    return st;
}

void deid_dataset_free(deid_dataset *ds)
{
    if (!ds)
        return;
    deid__item_clear(&ds->meta);
    deid__item_clear(&ds->root);
    free(ds->transfer_syntax);
    free(ds->name);
    free(ds);
}

deid_status deid_dataset_write_memory(const deid_dataset *ds, void **data, size_t *size)
{
    if (!ds || !data || !size)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "write: NULL argument");
    uint8_t *buf = NULL;
    size_t n = 0;
    deid_status st = deid_shim_write(ds, &buf, &n);
    if (st != DEID_OK)
        return st;
    *data = buf;
    *size = n;
    return DEID_OK;
}

deid_status deid_dataset_write_file(const deid_dataset *ds, const char *path)
{
    return deid__dataset_write_file(ds, path, DEID_WRITE_SYNC);
}

deid_status deid__dataset_write_file(const deid_dataset *ds, const char *path, unsigned flags)
{
    if (!ds || !path)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "write file: NULL argument");
    void *buf = NULL;
    size_t n = 0;
    deid_status st = deid_dataset_write_memory(ds, &buf, &n);
    if (st != DEID_OK) {
        deid__error_prefix(path);
        return st;
    }
    st = deid__write_file_atomic(path, buf, n, 0644, flags);
    free(buf);
    return st;
}

const char *deid_dataset_transfer_syntax(const deid_dataset *ds)
{
    if (!ds)
        return NULL;
    return ds->transfer_syntax ? ds->transfer_syntax : DEID_TS_EXPLICIT_LE;
}

/* ---- element access ----------------------------------------------------------------------- */

static deid_item *item_for(const deid_dataset *ds, uint32_t tag)
{
    return (deid_item *)((tag >> 16) == 0x0002 ? &ds->meta : &ds->root);
}

static deid_status need_element(const deid_dataset *ds, uint32_t tag, const deid_elem **out)
{
    const deid_elem *e = deid__item_find(item_for(ds, tag), tag);
    if (!e)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "%s: element (%04X,%04X) is absent",
                          deid__ds_label(ds), (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF));
    if (e->vr == DEID_VR_SQ || e->encapsulated)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "%s: element (%04X,%04X) is a %s",
                          deid__ds_label(ds), (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF),
                          e->encapsulated ? "fragment sequence (decode it with deid_image_decode)"
                                          : "sequence");
    *out = e;
    return DEID_OK;
}

deid_status deid_dataset_get(const deid_dataset *ds, uint32_t tag, const void **value, size_t *size)
{
    if (!ds || !value || !size)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "get: NULL argument");
    const deid_elem *e;
    deid_status st = need_element(ds, tag, &e);
    if (st != DEID_OK)
        return st;
    *value = e->value ? (const void *)e->value : (const void *)"";
    *size = e->len;
    return DEID_OK;
}

deid_status deid_dataset_get_string(const deid_dataset *ds, uint32_t tag, char *buf, size_t cap)
{
    if (!ds || !buf || !cap)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "get_string: NULL or empty buffer");
    const deid_elem *e;
    deid_status st = need_element(ds, tag, &e);
    if (st != DEID_OK)
        return st;
    size_t n = e->len;
    while (n > 0 && (e->value[n - 1] == ' ' || e->value[n - 1] == '\0'))
        n--;
    if (n >= cap)
        return deid__fail(
            DEID_ERR_LIMIT, "dicom", "%s: value of (%04X,%04X) needs %zu bytes, buffer holds %zu",
            deid__ds_label(ds), (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF), n + 1, cap);
    deid__elem_text(e, buf, cap);
    return DEID_OK;
}

int deid_dataset_has(const deid_dataset *ds, uint32_t tag)
{
    return ds && deid__item_find(item_for(ds, tag), tag) != NULL;
}

static int valid_vr_letters(const char *vr)
{
    return vr && vr[0] >= 'A' && vr[0] <= 'Z' && vr[1] >= 'A' && vr[1] <= 'Z' && vr[2] == '\0';
}

/* VR for a new element when the caller gave none: dictionary, private creators as LO. */
static uint16_t default_vr(const deid_dataset *ds, uint32_t tag)
{
    const deid_elem *e = deid__item_find(item_for(ds, tag), tag);
    if (e)
        return e->vr;
    if ((tag & 0xFFFFu) == 0)
        return DEID_VR('U', 'L');
    if (((tag >> 16) & 1u) && (tag & 0xFFFFu) >= 0x10 && (tag & 0xFFFFu) <= 0xFF)
        return DEID_VR('L', 'O');
    return deid__dict_vr(tag);
}

deid_status deid_dataset_set(deid_dataset *ds, uint32_t tag, const char *vr, const void *value,
                             size_t size)
{
    if (!ds || (!value && size))
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "set: NULL argument");
    unsigned g = tag >> 16, el = tag & 0xFFFF;
    if (g == 0xFFFE)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "%s: set (%04X,%04X): an item tag",
                          deid__ds_label(ds), g, el);
    uint16_t v;
    if (vr) {
        if (!valid_vr_letters(vr))
            return deid__fail(DEID_ERR_ARGUMENT, "dicom", "%s: set (%04X,%04X): bad VR",
                              deid__ds_label(ds), g, el);
        v = DEID_VR(vr[0], vr[1]);
    } else {
        v = default_vr(ds, tag);
        if (v == DEID_VR_UN)
            return deid__fail(DEID_ERR_ARGUMENT, "dicom",
                              "%s: set (%04X,%04X): not in the data dictionary; give its VR",
                              deid__ds_label(ds), g, el);
    }
    if (v == DEID_VR_SQ)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom",
                          "%s: set (%04X,%04X): sequences cannot be set from raw bytes",
                          deid__ds_label(ds), g, el);
    if (size > 0xFFFFFFFEu)
        return deid__fail(DEID_ERR_LIMIT, "dicom", "%s: set (%04X,%04X): value too long",
                          deid__ds_label(ds), g, el);
    /* the Transfer Syntax UID is the one the object is written in */
    char *ts = NULL;
    if (tag == 0x00020010u) {
        size_t n = size;
        while (n && (((const char *)value)[n - 1] == '\0' || ((const char *)value)[n - 1] == ' '))
            n--;
        if (n == 0 || memchr(value, '\0', n))
            return deid__fail(DEID_ERR_ARGUMENT, "dicom", "%s: set (0002,0010): not a UID",
                              deid__ds_label(ds));
        if (!(ts = deid__strndup(value, n)))
            return DEID_ERR_NOMEM;
    }
    deid_item *item = item_for(ds, tag);
    int existed = deid__item_find(item, tag) != NULL;
    deid_elem *e = deid__item_put(item, tag, v);
    if (!e) {
        free(ts);
        return DEID_ERR_NOMEM;
    }
    uint16_t old = e->vr;
    e->vr = v; /* padding depends on the VR */
    if (deid__elem_set(e, value, size) != 0) {
        e->vr = old;
        if (!existed)
            deid__item_remove(item, tag);
        free(ts);
        return DEID_ERR_NOMEM;
    }
    if (ts) {
        free(ds->transfer_syntax);
        ds->transfer_syntax = ts;
    }
    return DEID_OK;
}

deid_status deid_dataset_set_string(deid_dataset *ds, uint32_t tag, const char *value)
{
    if (!ds || !value)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "set_string: NULL argument");
    uint16_t v = default_vr(ds, tag);
    if (!deid__vr_is_text(v)) {
        char s[3];
        deid__vr_string(v, s);
        return deid__fail(DEID_ERR_ARGUMENT, "dicom",
                          "%s: set_string (%04X,%04X): VR %s is not a text VR", deid__ds_label(ds),
                          (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF), s);
    }
    char s[3];
    deid__vr_string(v, s);
    return deid_dataset_set(ds, tag, s, value, strlen(value));
}

deid_status deid_dataset_remove(deid_dataset *ds, uint32_t tag)
{
    if (!ds)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "remove: NULL argument");
    deid__item_remove(item_for(ds, tag), tag);
    return DEID_OK;
}

/* ---- walk --------------------------------------------------------------------------------- */

typedef struct walker {
    deid_walk_fn fn;
    void *user;
    deid_buf path;
} walker;

#define CREATOR_MAX 256

static int walk_item(walker *w, const deid_item *item, unsigned depth);

static int walk_elem(walker *w, const deid_item *item, const deid_elem *e, unsigned depth)
{
    size_t base = w->path.len;
    if (deid__buf_printf(&w->path, "%s(%04X,%04X)", base ? "/" : "", (unsigned)(e->tag >> 16),
                         (unsigned)(e->tag & 0xFFFF)) != 0)
        return -1;
    char creator[CREATOR_MAX];
    const char *pc = NULL;
    unsigned el = e->tag & 0xFFFF;
    if (((e->tag >> 16) & 1u) && el >= 0x1000) {
        const deid_elem *c = deid__item_find(item, (e->tag & 0xFFFF0000u) | (el >> 8));
        if (c && c->value && deid__elem_text(c, creator, sizeof creator) != (size_t)-1)
            pc = creator;
    }
    deid_element_info info;
    info.tag = e->tag;
    deid__vr_string(e->vr, info.vr);
    info.depth = depth;
    info.path = w->path.data;
    info.private_creator = pc;
    info.value = (e->vr == DEID_VR_SQ || e->encapsulated) ? NULL : e->value;
    info.size = e->len;
    if (e->vr == DEID_VR_SQ)
        info.size = e->nitems;
    if (e->encapsulated) {
        info.size = 0;
        for (size_t i = 0; i < e->nfrags; i++)
            info.size += e->frags[i].len;
    }
    if (w->fn(w->user, &info))
        return 1;
    for (size_t i = 0; i < e->nitems; i++) {
        size_t here = w->path.len;
        if (deid__buf_printf(&w->path, "[%zu]", i) != 0)
            return -1;
        int rc = walk_item(w, &e->items[i], depth + 1);
        if (rc)
            return rc;
        w->path.len = here;
        w->path.data[here] = '\0';
    }
    w->path.len = base;
    w->path.data[base] = '\0';
    return 0;
}

static int walk_item(walker *w, const deid_item *item, unsigned depth)
{
    for (size_t i = 0; i < item->n; i++) {
        int rc = walk_elem(w, item, &item->elems[i], depth);
        if (rc)
            return rc;
    }
    return 0;
}

deid_status deid_dataset_walk(const deid_dataset *ds, deid_walk_fn fn, void *user)
{
    if (!ds || !fn)
        return deid__fail(DEID_ERR_ARGUMENT, "dicom", "walk: NULL argument");
    walker w = {fn, user, {NULL, 0, 0}};
    if (deid__buf_append(&w.path, "", 0) != 0)
        return DEID_ERR_NOMEM;
    int rc = walk_item(&w, &ds->meta, 0);
    if (!rc)
        rc = walk_item(&w, &ds->root, 0);
    deid__buf_free(&w.path);
    if (rc < 0)
        return DEID_ERR_NOMEM;
    if (rc > 0)
        return deid__fail(DEID_ERR_CANCELLED, "dicom", "%s: walk stopped by the callback",
                          deid__ds_label(ds));
    return DEID_OK;
}
