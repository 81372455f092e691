/* Allocation, buffers, clocks and atomic file writes. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include "core/core.h"

int deid__mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

int deid__add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return 0;
    *out = a + b;
    return 1;
}

void *deid__malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        deid__fail(DEID_ERR_NOMEM, "core", "cannot allocate %zu bytes", size);
    return p;
}

void *deid__calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        deid__fail(DEID_ERR_NOMEM, "core", "cannot allocate %zu x %zu bytes", n, size);
    return p;
}

void *deid__realloc(void *old, size_t size)
{
    void *p = realloc(old, size ? size : 1);
    if (!p)
        deid__fail(DEID_ERR_NOMEM, "core", "cannot allocate %zu bytes", size);
    return p;
}

char *deid__strndup(const char *s, size_t n)
{
    char *p = deid__malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *deid__strdup(const char *s)
{
    return s ? deid__strndup(s, strlen(s)) : NULL;
}

int deid__buf_reserve(deid_buf *b, size_t n)
{
    size_t need;
    if (n == SIZE_MAX || !deid__add_size(b->len, n + 1, &need))
        return -1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char *p = deid__realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    return 0;
}

int deid__buf_append(deid_buf *b, const void *data, size_t n)
{
    if (deid__buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int deid__buf_printf(deid_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return deid__buf_append(b, small, (size_t)n);
    char *big = deid__malloc((size_t)n + 1);
    if (!big)
        return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = deid__buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

void deid__buf_free(deid_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

double deid__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

deid_status deid__mkdirs(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return DEID_OK; /* the common case in a batch: one system call */
    char *p = deid__strdup(path);
    if (!p)
        return DEID_ERR_NOMEM;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                deid_status st = deid__fail(DEID_ERR_IO, "core", "%s: cannot create directory: %s",
                                            p, strerror(errno));
                free(p);
                return st;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    free(p);
    return DEID_OK;
}

deid_status deid__read_file(const char *path, uint64_t max_bytes, char **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return deid__fail(DEID_ERR_IO, "core", "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return deid__fail(DEID_ERR_IO, "core", "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes || (uint64_t)st.st_size >= SIZE_MAX) {
        fclose(f);
        return deid__fail(DEID_ERR_LIMIT, "core", "%s: file of %lld bytes exceeds the limit",
                          path, (long long)st.st_size);
    }
    size_t n = (size_t)st.st_size;
    char *buf = deid__malloc(n + 1);
    if (!buf) {
        fclose(f);
        return DEID_ERR_NOMEM;
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != n) {
        free(buf);
        return deid__fail(DEID_ERR_IO, "core", "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return DEID_OK;
}

void deid__heap_trim(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}
