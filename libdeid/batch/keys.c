/* keys.csv: the link from every output back to its original identifiers (PHI: mode 0600).
 * Rows are appended with one write() on an O_APPEND descriptor under a lock, so a crash leaves
 * at most one torn last record; opening for a resume cuts that record off and remembers the
 * rows already there, so no row is ever written twice. The CSV reader and writer here are
 * shared with review.csv (review.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "batch/batch_int.h"
#include "core/core.h"

static const char *const columns[DEID_KEYS_COLUMNS] = {
    "original_path",   "original_patient_id", "original_patient_name", "original_study_uid",
    "original_series_uid", "original_sop_uid", "output_path",          "patient_pseudonym",
    "new_study_uid",   "new_series_uid",      "new_sop_uid",           "date_shift_days"};

struct deid_keys {
    char *path;
    int fd;
    off_t size; /* where the next row starts: a failed write is cut back to here */
    pthread_mutex_t lock;
    deid_strmap outputs;   /* output path -> NULL */
    deid_strmap originals; /* original path -> output path */
    size_t rows;
};

/* ---- CSV ---------------------------------------------------------------------------------- */

int deid__csv_append_field(deid_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n"))
        return deid__buf_append(b, s, strlen(s));
    if (deid__buf_append(b, "\"", 1) != 0)
        return -1;
    for (const char *q; (q = strchr(s, '"')) != NULL; s = q + 1)
        if (deid__buf_append(b, s, (size_t)(q - s + 1)) != 0 || deid__buf_append(b, "\"", 1) != 0)
            return -1;
    return deid__buf_append(b, s, strlen(s)) != 0 || deid__buf_append(b, "\"", 1) != 0 ? -1 : 0;
}

static int format_row(deid_buf *b, const char *const fields[DEID_KEYS_COLUMNS])
{
    for (size_t i = 0; i < DEID_KEYS_COLUMNS; i++) {
        if ((i && deid__buf_append(b, ",", 1) != 0) ||
            deid__csv_append_field(b, fields[i] ? fields[i] : ""))
            return -1;
    }
    return deid__buf_append(b, "\n", 1);
}

typedef deid_csv_record record;

static int end_field(record *r)
{
    if (r->text.len && r->text.data[r->text.len - 1] == '\r')
        r->text.len--; /* tolerate CRLF files */
    if (deid__buf_append(&r->text, "", 1) != 0)
        return -1;
    r->n++;
    if (r->n < DEID_CSV_MAX_FIELDS)
        r->start[r->n] = r->text.len;
    return 0;
}

int deid__csv_parse_record(const char *s, size_t len, size_t *pos, record *r)
{
    size_t i = *pos;
    int quoted = 0, at_start = 1;
    r->text.len = 0;
    r->n = 0;
    r->start[0] = 0;
    while (i < len) {
        char c = s[i];
        if (quoted) {
            if (c == '"' && i + 1 < len && s[i + 1] == '"') {
                if (deid__buf_append(&r->text, "\"", 1) != 0)
                    return -1;
                i += 2;
                continue;
            }
            if (c == '"')
                quoted = 0;
            else if (deid__buf_append(&r->text, &c, 1) != 0)
                return -1;
            i++;
            continue;
        }
        if (at_start && c == '"') {
            quoted = 1;
            at_start = 0;
            i++;
            continue;
        }
        at_start = 0;
        i++;
        if (c == ',' || c == '\n') {
            if (end_field(r) != 0)
                return -1;
            at_start = 1;
            if (c == '\n') {
                *pos = i;
                return 1;
            }
        } else if (deid__buf_append(&r->text, &c, 1) != 0) {
            return -1;
        }
    }
    return 0;
}

const char *deid__csv_field(const record *r, size_t i) { return r->text.data + r->start[i]; }

static const char *field(const record *r, size_t i) { return deid__csv_field(r, i); }

static int is_header(const record *r)
{
    if (r->n != DEID_KEYS_COLUMNS)
        return 0;
    for (size_t i = 0; i < DEID_KEYS_COLUMNS; i++)
        if (strcmp(field(r, i), columns[i]) != 0)
            return 0;
    return 1;
}

static int remember(deid_keys *k, const char *original, const char *output)
{
    if (deid__strmap_put(&k->outputs, output, NULL) != 0 ||
        deid__strmap_put(&k->originals, original, output) != 0)
        return -1;
    k->rows++;
    return 0;
}

/* ---- open / repair ------------------------------------------------------------------------ */

static deid_status header_text(deid_buf *b)
{
    for (size_t i = 0; i < DEID_KEYS_COLUMNS; i++)
        if (deid__buf_printf(b, "%s%s", i ? "," : "", columns[i]) != 0)
            return DEID_ERR_NOMEM;
    return deid__buf_append(b, "\n", 1) == 0 ? DEID_OK : DEID_ERR_NOMEM;
}

static deid_status write_fresh(deid_keys *k)
{
    deid_buf h = {0};
    deid_status st = header_text(&h);
    if (st == DEID_OK)
        st = deid__write_file_atomic(k->path, h.data, h.len, 0600, DEID_WRITE_SYNC);
    deid__buf_free(&h);
    return st;
}

deid_status deid__read_fd(int fd, const char *path, char **data, size_t *size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return deid__fail(DEID_ERR_IO, "batch", "%s: cannot stat: %s", path, strerror(errno));
    if ((uint64_t)st.st_size >= SIZE_MAX)
        return deid__fail(DEID_ERR_LIMIT, "batch", "%s: too large", path);
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = deid__malloc(n + 1);
    if (!buf)
        return DEID_ERR_NOMEM;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            return deid__fail(DEID_ERR_IO, "batch", "%s: cannot read: %s", path,
                              r < 0 ? strerror(errno) : "file shrank");
        }
        got += (size_t)r;
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return DEID_OK;
}

/* Load the rows of an existing keys.csv and cut off a torn last record. */
static deid_status load(deid_keys *k, void (*warn)(void *, const char *), void *warn_user)
{
    char *s = NULL;
    size_t len = 0, pos = 0, bad = 0;
    deid_status st = deid__read_fd(k->fd, k->path, &s, &len);
    if (st != DEID_OK)
        return st;
    record r = {0};
    int first = 1, got;
    while ((got = deid__csv_parse_record(s, len, &pos, &r)) == 1) {
        if (first) {
            first = 0;
            if (!is_header(&r)) {
                st = deid__fail(DEID_ERR_ARGUMENT, "batch",
                                "%s: not a libdeid keys file (unexpected header line)", k->path);
                break;
            }
        } else if (r.n == DEID_KEYS_COLUMNS) {
            if (remember(k, field(&r, DEID_KEY_ORIGINAL_PATH), field(&r, DEID_KEY_OUTPUT_PATH))) {
                st = DEID_ERR_NOMEM;
                break;
            }
        } else if (!(r.n == 1 && r.text.len == 1)) { /* blank lines are harmless */
            bad++;
        }
    }
    if (got < 0)
        st = DEID_ERR_NOMEM;
    deid__buf_free(&r.text);
    free(s);
    if (st != DEID_OK)
        return st;
    char note[512];
    if (bad) {
        snprintf(note, sizeof note, "%s: ignored %zu malformed row(s)", k->path, bad);
        if (warn)
            warn(warn_user, note);
    }
    if (pos < len) {
        if (ftruncate(k->fd, (off_t)pos) != 0)
            return deid__fail(DEID_ERR_IO, "batch", "%s: cannot remove a torn last line: %s",
                              k->path, strerror(errno));
        snprintf(note, sizeof note,
                 "%s: removed a torn last line (%zu bytes) left by an interrupted run", k->path,
                 len - pos);
        if (warn)
            warn(warn_user, note);
    }
    k->size = (off_t)pos;
    if (first) { /* empty, or only a torn header */
        deid_buf h = {0};
        if ((st = header_text(&h)) == DEID_OK) {
            if (write(k->fd, h.data, h.len) != (ssize_t)h.len)
                st = deid__fail(DEID_ERR_IO, "batch", "%s: cannot write: %s", k->path,
                                strerror(errno));
            else
                k->size = (off_t)h.len;
        }
        deid__buf_free(&h);
    }
    return st;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

deid_status deid__keys_open(const char *path, int resume,
                            void (*warn)(void *user, const char *message), void *warn_user,
                            deid_keys **out)
{
    deid_keys *k = deid__calloc(1, sizeof *k);
    if (!k)
        return DEID_ERR_NOMEM;
    k->fd = -1;
    if (!(k->path = deid__strdup(path))) {
        free(k);
        return DEID_ERR_NOMEM;
    }
    pthread_mutex_init(&k->lock, NULL);
    deid_status st = DEID_OK;
    int fresh = !resume || !exists(path);
    if (fresh) {
        struct stat old;
        if (stat(path, &old) == 0 && old.st_size > 0 && warn) {
            char note[512];
            snprintf(note, sizeof note,
                     "%s: replacing the keys.csv of an earlier run (resume keeps it)", path);
            warn(warn_user, note);
        }
        st = write_fresh(k);
    }
    if (st == DEID_OK) {
        k->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
        if (k->fd < 0)
            st = deid__fail(DEID_ERR_IO, "batch", "%s: cannot open: %s", path, strerror(errno));
    }
    if (st == DEID_OK)
        st = load(k, warn, warn_user);
    if (st != DEID_OK) {
        deid__keys_close(k);
        return st;
    }
    *out = k;
    return DEID_OK;
}

/* ---- rows --------------------------------------------------------------------------------- */

size_t deid__keys_rows(deid_keys *k)
{
    pthread_mutex_lock(&k->lock);
    size_t n = k->rows;
    pthread_mutex_unlock(&k->lock);
    return n;
}

int deid__keys_has_output(deid_keys *k, const char *output_path)
{
    pthread_mutex_lock(&k->lock);
    int has = deid__strmap_get(&k->outputs, output_path, NULL);
    pthread_mutex_unlock(&k->lock);
    return has;
}

char *deid__keys_output_of(deid_keys *k, const char *original_path)
{
    const char *v = NULL;
    char *copy = NULL;
    pthread_mutex_lock(&k->lock);
    if (deid__strmap_get(&k->originals, original_path, &v) && v)
        copy = deid__strdup(v);
    pthread_mutex_unlock(&k->lock);
    return copy;
}

deid_status deid__keys_append(deid_keys *k, const char *const fields[DEID_KEYS_COLUMNS])
{
    deid_buf row = {0};
    if (format_row(&row, fields) != 0) {
        deid__buf_free(&row);
        return DEID_ERR_NOMEM;
    }
    deid_status st = DEID_OK;
    pthread_mutex_lock(&k->lock);
    if (!deid__strmap_get(&k->outputs, fields[DEID_KEY_OUTPUT_PATH], NULL)) {
        ssize_t n;
        do
            n = write(k->fd, row.data, row.len);
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t)row.len) {
            st = deid__fail(DEID_ERR_IO, "batch", "%s: cannot append a row: %s", k->path,
                            n < 0 ? strerror(errno) : "short write");
            if (n > 0 && ftruncate(k->fd, k->size) != 0) {
                /* The torn row stays; the next resume cuts it off. */
            }
        } else {
            k->size += (off_t)n;
            if (remember(k, fields[DEID_KEY_ORIGINAL_PATH], fields[DEID_KEY_OUTPUT_PATH]) != 0)
                st = DEID_ERR_NOMEM;
        }
    }
    pthread_mutex_unlock(&k->lock);
    deid__buf_free(&row);
    return st;
}

deid_status deid__keys_close(deid_keys *k)
{
    if (!k)
        return DEID_OK;
    deid_status st = DEID_OK;
    if (k->fd >= 0) {
        if (fsync(k->fd) != 0)
            st = deid__fail(DEID_ERR_IO, "batch", "%s: cannot sync: %s", k->path,
                            strerror(errno));
        close(k->fd);
    }
    pthread_mutex_destroy(&k->lock);
    deid__strmap_free(&k->outputs);
    deid__strmap_free(&k->originals);
    free(k->path);
    free(k);
    return st;
}
