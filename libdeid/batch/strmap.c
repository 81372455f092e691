/* A small string -> string map (open addressing, FNV-1a) for the sets a batch keeps: rows of
 * keys.csv, output names claimed in this run. */
#include <stdlib.h>
#include <string.h>
#include "batch/batch_int.h"
#include "core/core.h"

static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

static size_t slot(char **keys, size_t cap, const char *key)
{
    size_t i = hash(key) & (cap - 1);
    while (keys[i] && strcmp(keys[i], key) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

static int grow(deid_strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    char **keys = deid__calloc(cap, sizeof *keys);
    char **values = deid__calloc(cap, sizeof *values);
    if (!keys || !values) {
        free(keys);
        free(values);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i]) {
            size_t j = slot(keys, cap, m->keys[i]);
            keys[j] = m->keys[i];
            values[j] = m->values[i];
        }
    }
    free(m->keys);
    free(m->values);
    m->keys = keys;
    m->values = values;
    m->cap = cap;
    return 0;
}

int deid__strmap_put(deid_strmap *m, const char *key, const char *value)
{
    if ((m->n + 1) * 2 > m->cap && grow(m) != 0)
        return -1;
    size_t i = slot(m->keys, m->cap, key);
    char *v = NULL;
    if (value && !(v = deid__strdup(value)))
        return -1;
    if (m->keys[i]) {
        free(m->values[i]);
        m->values[i] = v;
        return 0;
    }
    if (!(m->keys[i] = deid__strdup(key))) {
        free(v);
        return -1;
    }
    m->values[i] = v;
    m->n++;
    return 0;
}

int deid__strmap_get(const deid_strmap *m, const char *key, const char **value)
{
    if (!m->cap)
        return 0;
    size_t i = slot(m->keys, m->cap, key);
    if (!m->keys[i])
        return 0;
    if (value)
        *value = m->values[i];
    return 1;
}

void deid__strmap_free(deid_strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}
