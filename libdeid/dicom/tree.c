/* The in-memory DICOM tree: sorted element arrays, sequences, fragments. */
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "dicom/dataset_int.h"

static size_t lower_bound(const deid_item *item, uint32_t tag)
{
    size_t lo = 0, hi = item->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (item->elems[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

deid_elem *deid__item_find(const deid_item *item, uint32_t tag)
{
    size_t i = lower_bound(item, tag);
    return (i < item->n && item->elems[i].tag == tag) ? &item->elems[i] : NULL;
}

static int grow(deid_item *item)
{
    if (item->n < item->cap)
        return 0;
    size_t cap = item->cap ? item->cap * 2 : 16;
    size_t bytes;
    if (!deid__mul_size(cap, sizeof(deid_elem), &bytes))
        return -1;
    deid_elem *p = deid__realloc(item->elems, bytes);
    if (!p)
        return -1;
    item->elems = p;
    item->cap = cap;
    return 0;
}

static deid_elem *insert_at(deid_item *item, size_t i, uint32_t tag, uint16_t vr)
{
    if (grow(item) != 0)
        return NULL;
    memmove(&item->elems[i + 1], &item->elems[i], (item->n - i) * sizeof(deid_elem));
    item->n++;
    deid_elem *e = &item->elems[i];
    memset(e, 0, sizeof *e);
    e->tag = tag;
    e->vr = vr;
    return e;
}

deid_elem *deid__item_put(deid_item *item, uint32_t tag, uint16_t vr)
{
    size_t i = lower_bound(item, tag);
    if (i < item->n && item->elems[i].tag == tag)
        return &item->elems[i];
    return insert_at(item, i, tag, vr);
}

deid_elem *deid__item_append(deid_item *item, uint32_t tag, uint16_t vr)
{
    if (item->n == 0 || item->elems[item->n - 1].tag < tag)
        return insert_at(item, item->n, tag, vr);
    return deid__item_put(item, tag, vr);
}

void deid__item_remove_at(deid_item *item, size_t i)
{
    if (i >= item->n)
        return;
    deid__elem_clear(&item->elems[i]);
    memmove(&item->elems[i], &item->elems[i + 1], (item->n - i - 1) * sizeof(deid_elem));
    item->n--;
}

void deid__item_remove(deid_item *item, uint32_t tag)
{
    size_t i = lower_bound(item, tag);
    if (i < item->n && item->elems[i].tag == tag)
        deid__item_remove_at(item, i);
}

void deid__item_clear(deid_item *item)
{
    for (size_t i = 0; i < item->n; i++)
        deid__elem_clear(&item->elems[i]);
    free(item->elems);
    item->elems = NULL;
    item->n = item->cap = 0;
}

void deid__elem_clear(deid_elem *e)
{
    free(e->value);
    e->value = NULL;
    e->len = 0;
    for (size_t i = 0; i < e->nitems; i++)
        deid__item_clear(&e->items[i]);
    free(e->items);
    e->items = NULL;
    e->nitems = 0;
    for (size_t i = 0; i < e->nfrags; i++)
        free(e->frags[i].data);
    free(e->frags);
    e->frags = NULL;
    e->nfrags = 0;
    e->encapsulated = 0;
}

void deid__elem_empty(deid_elem *e) { deid__elem_clear(e); }

int deid__vr_is_text(uint16_t vr)
{
    static const char list[] = "AEASCSDADSDTISLOLTPNSHSTTMUCUIURUT";
    for (size_t i = 0; i + 1 < sizeof list; i += 2)
        if (DEID_VR(list[i], list[i + 1]) == vr)
            return 1;
    return 0;
}

int deid__elem_set(deid_elem *e, const void *data, size_t size)
{
    if (size > 0xFFFFFFFEu)
        return -1;
    int pad = (size & 1u) != 0;
    uint8_t *v = NULL;
    if (size + (size_t)pad > 0) {
        v = deid__malloc(size + (size_t)pad);
        if (!v)
            return -1;
        if (size)
            memcpy(v, data, size);
        if (pad)
            v[size] = (e->vr == DEID_VR('U', 'I') || !deid__vr_is_text(e->vr)) ? 0 : ' ';
    }
    deid__elem_clear(e);
    e->value = v;
    e->len = (uint32_t)(size + (size_t)pad);
    return 0;
}

deid_item *deid__elem_add_item(deid_elem *e)
{
    size_t bytes;
    if (!deid__mul_size(e->nitems + 1, sizeof(deid_item), &bytes))
        return NULL;
    deid_item *p = deid__realloc(e->items, bytes);
    if (!p)
        return NULL;
    e->items = p;
    memset(&p[e->nitems], 0, sizeof(deid_item));
    return &p[e->nitems++];
}

size_t deid__elem_text(const deid_elem *e, char *buf, size_t cap)
{
    size_t n = e->len;
    while (n > 0 && (e->value[n - 1] == ' ' || e->value[n - 1] == '\0'))
        n--;
    if (cap == 0)
        return (size_t)-1;
    if (n >= cap) {
        buf[0] = '\0';
        return (size_t)-1;
    }
    if (n)
        memcpy(buf, e->value, n);
    buf[n] = '\0';
    return n;
}

deid_dataset *deid__dataset_new(const char *name)
{
    deid_dataset *ds = deid__calloc(1, sizeof *ds);
    if (!ds)
        return NULL;
    if (name && !(ds->name = deid__strdup(name))) {
        free(ds);
        return NULL;
    }
    return ds;
}
