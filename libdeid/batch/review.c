/* review.csv: the text regions a batch left for a person (decision review), one row each, in
 * the headers directory. Like keys.csv (keys.c), the rows of a file are appended with one
 * write() on an O_APPEND descriptor under a lock, so a crash leaves at most one torn last
 * line. A file's rows are written before it is finished (its keys.csv row, or a raster's
 * report), so on a resume the rows of unfinished files are dropped with the torn line: the
 * file is processed again and listed once. Mode 0600: with --report-text the rows hold the
 * text read, and raster outputs keep their input's file name. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "batch/batch_int.h"
#include "core/core.h"

#define REVIEW_COLUMNS 10
static const char header[] = "output_path,frame,source,x,y,w,h,confidence,reason,text\n";

struct deid_review {
    char *path;
    int fd;
    off_t size; /* where the next rows start: a failed write is cut back to here */
    pthread_mutex_t lock;
    deid_strmap outputs; /* output paths with rows */
    size_t rows;
};

/* ---- rows --------------------------------------------------------------------------------- */

static int add_row(deid_buf *b, const char *output_path, const deid_text_region *g,
                   int include_text)
{
    char source[16];
    if (g->source == DEID_TEXT_SOURCE_PIXELS)
        snprintf(source, sizeof source, "pixels");
    else
        snprintf(source, sizeof source, "overlay %04X", 0x6000u + 2u * (g->source - 1u));
    if (deid__csv_append_field(b, output_path) != 0 ||
        deid__buf_printf(b, ",%zu,%s,%zu,%zu,%zu,%zu,%.1f,", g->frame, source, g->x, g->y, g->w,
                         g->h, g->confidence) != 0 ||
        deid__csv_append_field(b, g->reason ? g->reason : "") != 0 ||
        deid__buf_append(b, ",", 1) != 0 ||
        (include_text && deid__csv_append_field(b, g->text ? g->text : "") != 0))
        return -1;
    return deid__buf_append(b, "\n", 1);
}

static int format_rows(deid_buf *b, const char *output_path, const deid_text_result *res,
                       int include_text, size_t *rows)
{
    *rows = 0;
    for (size_t i = 0; i < deid_text_result_count(res); i++) {
        const deid_text_region *g = deid_text_result_region(res, i);
        if (!g || g->decision != DEID_TEXT_REVIEW)
            continue;
        if (add_row(b, output_path, g, include_text) != 0)
            return -1;
        (*rows)++;
    }
    return 0;
}

/* ---- open / repair ------------------------------------------------------------------------ */

/* Keep the rows of finished files: the complete rows of `s` are parsed, the kept ones copied
 * to `kept`; *dropped counts rows of unfinished files, *torn the bytes of a torn last line. */
static deid_status filter_rows(deid_review *r, const char *s, size_t len,
                               deid_review_done_fn done, void *done_user, deid_buf *kept,
                               size_t *dropped, size_t *torn)
{
    deid_csv_record rec = {0};
    size_t pos = 0, at = 0;
    int first = 1, got;
    deid_status st = DEID_OK;
    *dropped = 0;
    while (st == DEID_OK && (got = deid__csv_parse_record(s, len, &pos, &rec)) == 1) {
        const char *line = s + at;
        size_t n = pos - at;
        at = pos;
        if (first) {
            first = 0;
            if (rec.n != REVIEW_COLUMNS || strcmp(deid__csv_field(&rec, 0), "output_path") != 0)
                st = deid__fail(DEID_ERR_ARGUMENT, "batch",
                                "%s: not a libdeid review file (unexpected header line)",
                                r->path);
            else if (deid__buf_append(kept, header, strlen(header)) != 0)
                st = DEID_ERR_NOMEM;
            continue;
        }
        if (rec.n < REVIEW_COLUMNS) /* blank or malformed: dropped */
            continue;
        const char *out = deid__csv_field(&rec, 0);
        if (!done || !done(done_user, out)) {
            (*dropped)++;
            continue;
        }
        if (deid__buf_append(kept, line, n) != 0 || deid__strmap_put(&r->outputs, out, NULL))
            st = DEID_ERR_NOMEM;
        r->rows++;
    }
    if (st == DEID_OK && got < 0)
        st = DEID_ERR_NOMEM;
    if (st == DEID_OK && first && deid__buf_append(kept, header, strlen(header)) != 0)
        st = DEID_ERR_NOMEM; /* empty, or only a torn header */
    deid__buf_free(&rec.text);
    *torn = len - at;
    return st;
}

/* Rewrite an existing review.csv with the rows of finished files only (nothing is rewritten
 * when every row is kept). */
static deid_status repair(deid_review *r, deid_review_done_fn done, void *done_user,
                          void (*warn)(void *, const char *), void *warn_user)
{
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return deid__fail(DEID_ERR_IO, "batch", "%s: cannot open: %s", r->path, strerror(errno));
    char *s = NULL;
    size_t len = 0, dropped = 0, torn = 0;
    deid_status st = deid__read_fd(fd, r->path, &s, &len);
    close(fd);
    if (st != DEID_OK)
        return st;
    deid_buf kept = {0};
    st = filter_rows(r, s, len, done, done_user, &kept, &dropped, &torn);
    if (st == DEID_OK && (kept.len != len || memcmp(kept.data, s, len) != 0))
        st = deid__write_file_atomic(r->path, kept.data, kept.len, 0600, DEID_WRITE_SYNC);
    free(s);
    deid__buf_free(&kept);
    char note[512];
    if (st == DEID_OK && (torn || dropped) && warn) {
        snprintf(note, sizeof note,
                 "%s: removed %zu row(s) of unfinished files%s left by an interrupted run",
                 r->path, dropped, torn ? " and a torn last line" : "");
        warn(warn_user, note);
    }
    return st;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

deid_status deid__review_open(const char *path, int resume, deid_review_done_fn done,
                              void *done_user, void (*warn)(void *user, const char *message),
                              void *warn_user, deid_review **out)
{
    deid_review *r = deid__calloc(1, sizeof *r);
    if (!r)
        return DEID_ERR_NOMEM;
    r->fd = -1;
    if (!(r->path = deid__strdup(path))) {
        free(r);
        return DEID_ERR_NOMEM;
    }
    pthread_mutex_init(&r->lock, NULL);
    deid_status st;
    if (resume && exists(path))
        st = repair(r, done, done_user, warn, warn_user);
    else
        st = deid__write_file_atomic(path, header, strlen(header), 0600, DEID_WRITE_SYNC);
    if (st == DEID_OK) {
        r->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        struct stat sb;
        if (r->fd < 0 || fstat(r->fd, &sb) != 0)
            st = deid__fail(DEID_ERR_IO, "batch", "%s: cannot open: %s", path, strerror(errno));
        else
            r->size = sb.st_size;
    }
    if (st != DEID_OK) {
        deid__review_close(r);
        return st;
    }
    *out = r;
    return DEID_OK;
}

/* ---- append ------------------------------------------------------------------------------- */

deid_status deid__review_append(deid_review *r, const char *output_path,
                                const deid_text_result *res, int include_text)
{
    deid_buf b = {0};
    size_t rows = 0;
    if (format_rows(&b, output_path, res, include_text, &rows) != 0) {
        deid__buf_free(&b);
        return DEID_ERR_NOMEM;
    }
    deid_status st = DEID_OK;
    pthread_mutex_lock(&r->lock);
    if (rows && !deid__strmap_get(&r->outputs, output_path, NULL)) {
        ssize_t n;
        do
            n = write(r->fd, b.data, b.len);
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t)b.len) {
            st = deid__fail(DEID_ERR_IO, "batch", "%s: cannot append rows: %s", r->path,
                            n < 0 ? strerror(errno) : "short write");
            if (n > 0 && ftruncate(r->fd, r->size) != 0) {
                /* The torn rows stay; the next resume cuts them off. */
            }
        } else {
            r->size += (off_t)n;
            r->rows += rows;
            if (deid__strmap_put(&r->outputs, output_path, NULL) != 0)
                st = DEID_ERR_NOMEM;
        }
    }
    pthread_mutex_unlock(&r->lock);
    deid__buf_free(&b);
    return st;
}

size_t deid__review_rows(deid_review *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->rows;
    pthread_mutex_unlock(&r->lock);
    return n;
}

deid_status deid__review_close(deid_review *r)
{
    if (!r)
        return DEID_OK;
    deid_status st = DEID_OK;
    if (r->fd >= 0) {
        if (fsync(r->fd) != 0)
            st = deid__fail(DEID_ERR_IO, "batch", "%s: cannot sync: %s", r->path,
                            strerror(errno));
        close(r->fd);
    }
    pthread_mutex_destroy(&r->lock);
    deid__strmap_free(&r->outputs);
    free(r->path);
    free(r);
    return st;
}
