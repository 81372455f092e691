/* Scan: the list of input files of a batch, in a deterministic order. Symbolic links are
 * followed, but each physical directory is entered once, so link loops end and a tree linked
 * twice is not processed twice. The output and headers trees are skipped when they lie inside
 * the input. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "batch/batch_int.h"
#include "core/core.h"

typedef struct scan_ctx {
    const deid_batch_exclude *exclude;
    size_t nexclude;
    deid_strmap visited; /* "dev:ino" of directories entered */
    deid_batch_list *list;
} scan_ctx;

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name), n;
    if (!deid__add_size(a, b + 2, &n)) {
        deid__fail(DEID_ERR_NOMEM, "batch", "path too long");
        return NULL;
    }
    char *p = deid__malloc(n);
    if (!p)
        return NULL;
    if (a == 0)
        memcpy(p, name, b + 1);
    else
        snprintf(p, n, "%s%s%s", dir, dir[a - 1] == '/' ? "" : "/", name);
    return p;
}

static deid_status add(deid_batch_list *list, const char *path, const char *rel_dir,
                       const char *error)
{
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64, bytes;
        if (!deid__mul_size(cap, sizeof *list->v, &bytes))
            return deid__fail(DEID_ERR_NOMEM, "batch", "too many files");
        deid_batch_entry *v = deid__realloc(list->v, bytes);
        if (!v)
            return DEID_ERR_NOMEM;
        list->v = v;
        list->cap = cap;
    }
    deid_batch_entry *e = &list->v[list->n];
    e->path = deid__strdup(path);
    e->rel_dir = deid__strdup(rel_dir);
    e->error = error ? deid__strdup(error) : NULL;
    e->raster = 0;
    e->dup = 1;
    if (!e->path || !e->rel_dir || (error && !e->error)) {
        free(e->path);
        free(e->rel_dir);
        free(e->error);
        return DEID_ERR_NOMEM;
    }
    list->n++;
    return DEID_OK;
}

static int excluded(const scan_ctx *c, const struct stat *st)
{
    for (size_t i = 0; i < c->nexclude; i++)
        if (c->exclude[i].dev == (uint64_t)st->st_dev && c->exclude[i].ino == (uint64_t)st->st_ino)
            return 1;
    return 0;
}

/* 1 when the directory was entered before (a loop or a second link to it), 0 when it is new
 * (and now remembered), -1 out of memory. */
static int seen(scan_ctx *c, const struct stat *st)
{
    char key[48];
    snprintf(key, sizeof key, "%llu:%llu", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino);
    if (deid__strmap_get(&c->visited, key, NULL))
        return 1;
    return deid__strmap_put(&c->visited, key, NULL) == 0 ? 0 : -1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The entries of a directory without "." and "..", sorted. DEID_ERR_IO with *err = errno when
 * the listing failed part way. */
static deid_status read_names(DIR *d, char ***out, size_t *count, int *err)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **p = deid__realloc(names, cap * sizeof *names);
            if (!p) {
                free_names(names, n);
                return DEID_ERR_NOMEM;
            }
            names = p;
        }
        if (!(names[n] = deid__strdup(de->d_name))) {
            free_names(names, n);
            return DEID_ERR_NOMEM;
        }
        n++;
    }
    if (errno != 0) {
        *err = errno;
        free_names(names, n);
        return DEID_ERR_IO;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, by_name);
    *out = names;
    *count = n;
    return DEID_OK;
}

static deid_status scan_dir(scan_ctx *c, const char *dir, const char *rel);

static deid_status scan_child(scan_ctx *c, const char *path, const char *rel, const char *name)
{
    struct stat st;
    char msg[256];
    if (stat(path, &st) != 0) {
        struct stat lst;
        if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
            snprintf(msg, sizeof msg, "broken symbolic link");
        else
            snprintf(msg, sizeof msg, "cannot access: %s", strerror(errno));
        return add(c->list, path, rel, msg);
    }
    if (excluded(c, &st))
        return DEID_OK;
    if (S_ISREG(st.st_mode))
        return add(c->list, path, rel, NULL);
    if (!S_ISDIR(st.st_mode))
        return DEID_OK; /* fifos, sockets, devices are not inputs */
    int s = seen(c, &st);
    if (s < 0)
        return DEID_ERR_NOMEM;
    if (s > 0)
        return DEID_OK;
    char *sub = join(rel, name);
    if (!sub)
        return DEID_ERR_NOMEM;
    deid_status st2 = scan_dir(c, path, sub);
    free(sub);
    return st2;
}

static deid_status scan_dir(scan_ctx *c, const char *dir, const char *rel)
{
    DIR *d = opendir(dir);
    if (!d) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot read directory: %s", strerror(errno));
        return add(c->list, dir, rel, msg);
    }
    char **names = NULL;
    size_t n = 0;
    int err = 0;
    deid_status st = read_names(d, &names, &n, &err);
    closedir(d);
    if (st == DEID_ERR_IO) { /* the directory opened but could not be listed */
        char msg[256];
        snprintf(msg, sizeof msg, "cannot read directory: %s", strerror(err));
        return add(c->list, dir, rel, msg);
    }
    if (st != DEID_OK)
        return st;
    for (size_t i = 0; i < n && st == DEID_OK; i++) {
        char *path = join(dir, names[i]);
        if (!path) {
            st = DEID_ERR_NOMEM;
            break;
        }
        st = scan_child(c, path, rel, names[i]);
        free(path);
    }
    free_names(names, n);
    return st;
}

deid_status deid__batch_scan(const char *input, const deid_batch_exclude *exclude,
                             size_t nexclude, deid_batch_list *list)
{
    struct stat st;
    if (stat(input, &st) != 0)
        return deid__fail(DEID_ERR_IO, "batch", "%s: cannot access input: %s", input,
                          strerror(errno));
    if (S_ISREG(st.st_mode))
        return add(list, input, "", NULL);
    if (!S_ISDIR(st.st_mode))
        return deid__fail(DEID_ERR_IO, "batch", "%s: input is neither a file nor a directory",
                          input);
    DIR *d = opendir(input); /* the root must be readable: otherwise the run cannot start */
    if (!d)
        return deid__fail(DEID_ERR_IO, "batch", "%s: cannot read input directory: %s", input,
                          strerror(errno));
    closedir(d);
    scan_ctx c = {exclude, nexclude, {0}, list};
    deid_status rc = seen(&c, &st) < 0 ? DEID_ERR_NOMEM : scan_dir(&c, input, "");
    deid__strmap_free(&c.visited);
    return rc;
}

void deid__batch_list_free(deid_batch_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->v[i].path);
        free(list->v[i].rel_dir);
        free(list->v[i].error);
    }
    free(list->v);
    memset(list, 0, sizeof *list);
}
