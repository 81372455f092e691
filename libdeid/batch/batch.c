/* The batch driver: options, output directories, keys.csv, scan, the worker pool, progress,
 * cancellation, the log file and the summary. Per-file work is in process.c. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "batch/batch_int.h"
#include "core/core.h"
#include "deid/deid.h"

/* ---- options ------------------------------------------------------------------------------ */

deid_status deid_batch_options_init(deid_batch_options *opts, unsigned version)
{
    if (!opts)
        return deid__fail(DEID_ERR_ARGUMENT, "batch", "deid_batch_options_init: opts is NULL");
    if (version != DEID_BATCH_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, "batch",
                          "unknown deid_batch_options version %u (this library knows %d)",
                          version, DEID_BATCH_OPTIONS_VERSION);
    deid_batch_options d = DEID_BATCH_OPTIONS_INIT;
    *opts = d;
    return DEID_OK;
}

static void free_list(char **list)
{
    if (list)
        for (char **p = list; *p; p++)
            free(*p);
    free(list);
}

/* "US, CT" -> {"US", "CT", NULL}; NULL or a list with no item -> *out = NULL (no filter). */
static deid_status split_list(const char *s, char ***out)
{
    *out = NULL;
    if (!s)
        return DEID_OK;
    size_t cap = 2;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    char **list = deid__calloc(cap, sizeof *list);
    if (!list)
        return DEID_ERR_NOMEM;
    size_t n = 0;
    while (*s) {
        size_t len = strcspn(s, ",");
        const char *a = s, *z = s + len;
        while (a < z && (*a == ' ' || *a == '\t'))
            a++;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
            z--;
        if (z > a && !(list[n++] = deid__strndup(a, (size_t)(z - a)))) {
            free_list(list);
            return DEID_ERR_NOMEM;
        }
        s += len + (s[len] == ',');
    }
    if (n == 0)
        free_list(list);
    else
        *out = list;
    return DEID_OK;
}

/* Copy of a directory path without trailing slashes ("/" stays). */
static char *dir_copy(const char *s)
{
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/')
        n--;
    return deid__strndup(s, n);
}

/* Keep the ultrasound options with copies of their strings; checked once here so that a bad
 * value fails the batch before any file is read. */
static deid_status copy_us(deid_batch *b, const deid_us_options *us)
{
    if (us->version != DEID_US_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, "batch",
                          "unknown deid_us_options version %u (this library knows %d)",
                          us->version, DEID_US_OPTIONS_VERSION);
    b->us = *us;
    b->has_us = 1;
    const char *src[3] = {us->model_path, us->device, us->overview_dir};
    char **dst[3] = {&b->us_model_path, &b->us_device, &b->us_overview_dir};
    for (int i = 0; i < 3; i++)
        if (src[i] && !(*dst[i] = dir_copy(src[i])))
            return DEID_ERR_NOMEM;
    b->us.model_path = b->us_model_path;
    b->us.device = b->us_device;
    b->us.overview_dir = b->us_overview_dir;
    return DEID_OK;
}

/* Keep the text options with copies of their strings (the PHI set stays borrowed). */
static deid_status copy_text(deid_batch *b, const deid_text_options *t,
                             const deid_text_phi *phi)
{
    if (t->version != DEID_TEXT_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, "batch",
                          "unknown deid_text_options version %u (this library knows %d)",
                          t->version, DEID_TEXT_OPTIONS_VERSION);
    b->text = *t;
    b->has_text = 1;
    b->text_phi = phi;
    if ((t->tessdata && !(b->text_tessdata = dir_copy(t->tessdata))) ||
        (t->language && !(b->text_language = deid__strdup(t->language))))
        return DEID_ERR_NOMEM;
    b->text.tessdata = b->text_tessdata;
    b->text.language = b->text_language;
    return DEID_OK;
}

/* Keep the CT options with copies of their strings. */
static deid_status copy_ct(deid_batch *b, const deid_ct_options *c)
{
    if (c->version != DEID_CT_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, "batch",
                          "unknown deid_ct_options version %u (this library knows %d)",
                          c->version, DEID_CT_OPTIONS_VERSION);
    if (b->has_us || b->has_text)
        return deid__fail(DEID_ERR_ARGUMENT, "batch",
                          "the CT stage runs alone (not with the ultrasound or text stage)");
    if (!c->dicom && !c->nifti_dir && !c->nrrd)
        return deid__fail(DEID_ERR_ARGUMENT, "batch",
                          "the CT stage writes nothing (no DICOM, no NIfTI, no NRRD)");
    b->ct = *c;
    b->has_ct = 1;
    if (b->ct.face.version == 0 &&
        deid_deface_options_init(&b->ct.face, DEID_DEFACE_OPTIONS_VERSION) != DEID_OK)
        return DEID_ERR_GENERIC;
    if (b->ct.face.version != DEID_DEFACE_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, "batch", "unknown deid_deface_options version %u",
                          b->ct.face.version);
    if (!b->ct.min_slices)
        b->ct.min_slices = 3;
    const deid_deface_options *f = &b->ct.face;
    if ((c->nifti_dir && !(b->ct_nifti_dir = dir_copy(c->nifti_dir))) ||
        (c->qc_dir && !(b->ct_qc_dir = dir_copy(c->qc_dir))) ||
        (f->model_path && !(b->ct_model_path = deid__strdup(f->model_path))) ||
        (f->device && !(b->ct_device = deid__strdup(f->device))))
        return DEID_ERR_NOMEM;
    b->ct.nifti_dir = b->ct_nifti_dir;
    b->ct.qc_dir = b->ct_qc_dir;
    b->ct.face.model_path = b->ct_model_path;
    b->ct.face.device = b->ct_device;
    return DEID_OK;
}

deid_status deid_batch_new(const deid_batch_options *opts, const deid_profile *profile,
                           deid_batch **out)
{
    if (!opts || !profile || !out)
        return deid__fail(DEID_ERR_ARGUMENT, "batch",
                          "deid_batch_new: opts, profile and out are required");
    if (opts->version != DEID_BATCH_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, "batch",
                          "unknown deid_batch_options version %u (this library knows %d)",
                          opts->version, DEID_BATCH_OPTIONS_VERSION);
    if (!opts->input || !*opts->input)
        return deid__fail(DEID_ERR_ARGUMENT, "batch", "no input file or directory given");
    if (!opts->output_dir || !*opts->output_dir)
        return deid__fail(DEID_ERR_ARGUMENT, "batch", "no output directory given");
    if (opts->headers_dir && !*opts->headers_dir)
        return deid__fail(DEID_ERR_ARGUMENT, "batch", "empty headers directory");
    if (opts->filename_prefix && strchr(opts->filename_prefix, '/'))
        return deid__fail(DEID_ERR_ARGUMENT, "batch", "file name prefix must not contain '/'");
    if (opts->read.version != 0 && opts->read.version != DEID_READ_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, "batch", "unknown deid_read_options version %u",
                          opts->read.version);
    deid_batch *b = deid__calloc(1, sizeof *b);
    if (!b)
        return DEID_ERR_NOMEM;
    b->input = dir_copy(opts->input);
    b->output_dir = dir_copy(opts->output_dir);
    b->headers_dir = dir_copy(opts->headers_dir ? opts->headers_dir : opts->output_dir);
    b->prefix = opts->filename_prefix && *opts->filename_prefix
                    ? deid__strdup(opts->filename_prefix) : NULL;
    b->log_path = opts->log_path && *opts->log_path ? deid__strdup(opts->log_path) : NULL;
    deid_status st = DEID_OK;
    if (!b->input || !b->output_dir || !b->headers_dir ||
        (opts->filename_prefix && *opts->filename_prefix && !b->prefix) ||
        (opts->log_path && *opts->log_path && !b->log_path))
        st = DEID_ERR_NOMEM;
    if (st == DEID_OK)
        st = split_list(opts->modalities, &b->modalities);
    if (st == DEID_OK)
        st = split_list(opts->sop_classes, &b->sop_classes);
    if (st != DEID_OK) {
        deid_batch_free(b);
        return st;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    b->workers = opts->workers ? opts->workers : (cores > 0 ? (unsigned)cores : 1);
    b->flat = opts->flat != 0;
    b->resume = opts->resume != 0;
    b->skip_single_frame = opts->skip_single_frame != 0;
    b->write_json = opts->write_json != 0;
    b->durable = opts->durable != 0;
    b->log = opts->log;
    b->log_user = opts->log_user;
    b->progress = opts->progress;
    b->progress_user = opts->progress_user;
    b->read = opts->read;
    b->profile = profile;
    if (opts->us)
        st = copy_us(b, opts->us);
    if (st == DEID_OK && opts->text)
        st = copy_text(b, opts->text, opts->text_phi);
    if (st == DEID_OK && opts->ct)
        st = copy_ct(b, opts->ct);
    if (st != DEID_OK) {
        deid_batch_free(b);
        return st;
    }
    *out = b;
    return DEID_OK;
}

void deid_batch_free(deid_batch *b)
{
    if (!b)
        return;
    free(b->input);
    free(b->output_dir);
    free(b->headers_dir);
    free(b->prefix);
    free(b->log_path);
    free_list(b->modalities);
    free_list(b->sop_classes);
    free(b->us_model_path);
    free(b->us_device);
    free(b->us_overview_dir);
    free(b->text_tessdata);
    free(b->text_language);
    free(b->ct_nifti_dir);
    free(b->ct_qc_dir);
    free(b->ct_model_path);
    free(b->ct_device);
    free(b);
}

/* ---- log ---------------------------------------------------------------------------------- */

void deid__batch_log(deid_batch_job *run, deid_log_level level, const char *fmt, ...)
{
    const deid_batch *b = run->batch;
    if (!b->log && !run->logf)
        return;
    char small[1024], *line = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof small && (line = malloc((size_t)n + 1)) != NULL) {
        va_start(ap, fmt);
        vsnprintf(line, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    if (!line)
        line = small; /* truncated rather than lost */
    if (b->log)
        b->log(b->log_user, level, "batch", line);
    if (run->logf) {
        pthread_mutex_lock(&run->lock);
        fprintf(run->logf, "%s%s\n", level == DEID_LOG_WARNING ? "warning: " : "", line);
        fflush(run->logf);
        pthread_mutex_unlock(&run->lock);
    }
    if (line != small)
        free(line);
}

static void keys_warning(void *user, const char *message)
{
    deid__batch_log(user, DEID_LOG_WARNING, "%s", message);
}

/* ---- setup -------------------------------------------------------------------------------- */

/* Create a directory tree, check it can be written and return its canonical path. */
static deid_status prepare_dir(const char *dir, const char *what, char **canonical)
{
    deid_status st = deid__mkdirs(dir);
    if (st != DEID_OK)
        return st;
    char *real = realpath(dir, NULL);
    if (!real)
        return deid__fail(DEID_ERR_IO, "batch", "%s: cannot resolve the %s directory: %s", dir,
                          what, strerror(errno));
    if (access(real, W_OK | X_OK) != 0) {
        st = deid__fail(DEID_ERR_IO, "batch", "%s: cannot write to the %s directory: %s", dir,
                        what, strerror(errno));
        free(real);
        return st;
    }
    *canonical = real;
    return DEID_OK;
}

/* The pid in a temporary name of deid__write_file_atomic ("<name>.tmp<pid>.<n>"), or 0. */
static long temp_pid(const char *path)
{
    const char *name = strrchr(path, '/'), *dot = strrchr(path, '.'), *p;
    name = name ? name + 1 : path;
    if (!dot || dot <= name || !dot[1] || dot[1 + strspn(dot + 1, "0123456789")])
        return 0;
    for (p = dot; p > name && p[-1] >= '0' && p[-1] <= '9'; p--)
        ;
    if (p == dot || p - name < 5 || strncmp(p - 4, ".tmp", 4) != 0)
        return 0;
    return strtol(p, NULL, 10);
}

/* A resume removes the temporary files that a killed run left in the trees it writes (a file
 * system without O_TMPFILE writes every output under a temporary name first), except those of
 * a process still running. */
static void remove_stale_temps(deid_batch_job *run, const char *root)
{
    deid_batch_list list = {0};
    size_t removed = 0;
    if (!root || deid__batch_scan(root, NULL, 0, &list) != DEID_OK) {
        deid__batch_list_free(&list);
        return; /* nothing there yet; a tree that cannot be read fails later */
    }
    for (size_t i = 0; i < list.n; i++) {
        long pid = list.v[i].error ? 0 : temp_pid(list.v[i].path);
        if (pid > 0 && (pid_t)pid != getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH &&
            unlink(list.v[i].path) == 0)
            removed++;
    }
    deid__batch_list_free(&list);
    if (removed)
        deid__batch_log(run, DEID_LOG_WARNING,
                        "%s: removed %zu temporary file(s) left by an interrupted run", root,
                        removed);
}

static void add_exclude(deid_batch_exclude *ex, size_t *n, const char *path)
{
    struct stat st;
    if (path && stat(path, &st) == 0) {
        ex[*n].dev = (uint64_t)st.st_dev;
        ex[*n].ino = (uint64_t)st.st_ino;
        (*n)++;
    }
}

static deid_status open_log(deid_batch_job *run)
{
    const deid_batch *b = run->batch;
    if (!b->log_path)
        return DEID_OK;
    run->logf = fopen(b->log_path, "a");
    if (!run->logf)
        return deid__fail(DEID_ERR_IO, "batch", "%s: cannot open the log file: %s", b->log_path,
                          strerror(errno));
    return DEID_OK;
}

/* The ultrasound stage of a run: the corner model loaded once for every worker (its runs are
 * serialised inside), the overview directory created. */
static deid_status setup_us(deid_batch_job *run)
{
    const deid_batch *b = run->batch;
    run->us = b->us;
    int model = b->us.detector == DEID_US_DETECTOR_MODEL ||
                (b->us.detector == DEID_US_DETECTOR_AUTO && (b->us.model || b->us.model_path));
    if (model && !b->us.model) {
        deid_status st = deid_us_model_load(b->us.model_path, b->us.device, &run->us_model);
        if (st != DEID_OK)
            return st;
        run->us.model = run->us_model;
        const char *w = deid_us_model_warning(run->us_model);
        if (*w)
            deid__batch_log(run, DEID_LOG_WARNING, "%s", w);
    }
    if (b->us.overview_dir)
        return deid__mkdirs(b->us.overview_dir);
    return DEID_OK;
}

void deid__batch_note_low_confidence(deid_batch_job *run, const char *path, const char *what)
{
    deid_buf add = {0};
    if (deid__buf_printf(&add, "%s%s (%s)", run->low_confidence_len ? "\n" : "", path,
                         what) != 0) {
        deid__buf_free(&add);
        return;
    }
    pthread_mutex_lock(&run->lock);
    char *grown = realloc(run->low_confidence, run->low_confidence_len + add.len + 1);
    if (grown) {
        memcpy(grown + run->low_confidence_len, add.data, add.len + 1);
        run->low_confidence = grown;
        run->low_confidence_len += add.len;
    }
    pthread_mutex_unlock(&run->lock);
    deid__buf_free(&add);
}

/* ---- the text stage ----------------------------------------------------------------------- */

/* Is the file at `path` DICOM (the "DICM" magic after the preamble)? A DICOM file whose
 * preamble holds a TIFF header (dual-personality files) is read as DICOM. */
static int dicm_magic(const char *path)
{
    unsigned char b[132];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    return n == sizeof b && memcmp(b + 128, "DICM", 4) == 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Tell raster inputs (by content) and number the rasters that would share an output stem
 * (flat mode: the same file name from two directories; any mode: "a.png" and "a.jpg"): in
 * path order, the first keeps its name and the n-th becomes "<stem>_<n>.<ext>", so names do
 * not depend on which worker gets there first and a resume names every file as before. */
static deid_status classify_rasters(deid_batch_job *run)
{
    const deid_batch *b = run->batch;
    deid_strmap count = {0};
    deid_status st = DEID_OK;
    for (size_t i = 0; i < run->list.n && st == DEID_OK; i++) {
        deid_batch_entry *e = &run->list.v[i];
        e->raster = DEID_RASTER_UNKNOWN;
        e->dup = 1;
        if (e->error || dicm_magic(e->path))
            continue;
        e->raster = deid_raster_format_of(e->path);
        if (e->raster == DEID_RASTER_UNKNOWN)
            continue;
        const char *name = base_name(e->path), *dot = strrchr(name, '.');
        size_t stem = dot && dot != name ? (size_t)(dot - name) : strlen(name);
        deid_buf key = {0};
        const char *seen = NULL;
        if (deid__buf_printf(&key, "%s/%.*s", b->flat ? "" : e->rel_dir, (int)stem, name) != 0)
            st = DEID_ERR_NOMEM;
        else if (deid__strmap_get(&count, key.data, &seen))
            e->dup = (unsigned)strtoul(seen, NULL, 10) + 1;
        char n[16];
        snprintf(n, sizeof n, "%u", e->dup);
        if (st == DEID_OK && deid__strmap_put(&count, key.data, n) != 0)
            st = DEID_ERR_NOMEM;
        deid__buf_free(&key);
    }
    deid__strmap_free(&count);
    return st;
}

static int review_done(void *user, const char *output_path)
{
    return deid__batch_output_done(user, output_path);
}

/* review.csv, and which inputs are rasters. The engines are made by run_workers. */
static deid_status setup_text(deid_batch_job *run)
{
    double t = deid__now();
    deid_status st = classify_rasters(run);
    run->seconds_scan += deid__now() - t;
    if (st != DEID_OK)
        return st;
    deid_buf path = {0};
    if (deid__buf_printf(&path, "%s/review.csv", run->hdr_root) != 0)
        return DEID_ERR_NOMEM;
    st = deid__review_open(path.data, run->batch->resume, review_done, run, keys_warning, run,
                           &run->review);
    deid__buf_free(&path);
    return st;
}

/* A worker's text engine: Tesseract loaded once per thread and reused for every file. */
static deid_status start_text(deid_batch_worker *w)
{
    const deid_batch *b = w->run->batch;
    if (!b->has_text || w->text)
        return DEID_OK;
    return deid_text_engine_new(&b->text, &w->text);
}

static deid_status setup(deid_batch_job *run)
{
    deid_batch *b = run->batch;
    struct stat st;
    if (stat(b->input, &st) != 0) /* before creating any directory for a mistyped input */
        return deid__fail(DEID_ERR_IO, "batch", "%s: cannot access input: %s", b->input,
                          strerror(errno));
    /* The first text engine before any directory is created: a missing language file stops
     * the run with the library's message and nothing written; the other workers make theirs
     * in parallel when they start. */
    deid_status rc = DEID_OK;
    if (b->has_text && (rc = deid_text_engine_new(&b->text, &run->first_text)) != DEID_OK)
        return rc;
    rc = prepare_dir(b->output_dir, "output", &run->out_root);
    if (rc == DEID_OK)
        rc = prepare_dir(b->headers_dir, "headers", &run->hdr_root);
    if (rc == DEID_OK)
        rc = open_log(run);
    if (rc != DEID_OK)
        return rc;
    time_t now = time(NULL);
    struct tm tm;
    char when[32] = "";
    if (localtime_r(&now, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S%z", &tm);
    deid__batch_log(run, DEID_LOG_INFO, "libdeid %s batch %s: %s -> %s (%s%s)", deid_version(),
                    when, b->input, run->out_root, b->resume ? "resume" : "fresh run",
                    b->flat ? ", flat" : "");
    if (b->has_us && (rc = setup_us(run)) != DEID_OK)
        return rc;
    if (b->resume) {
        const char *trees[] = {run->out_root, run->hdr_root, b->us_overview_dir, b->ct_nifti_dir,
                               b->ct_qc_dir};
        for (size_t i = 0; i < sizeof trees / sizeof *trees; i++)
            remove_stale_temps(run, trees[i]);
    }
    deid_batch_exclude ex[6];
    size_t nex = 0;
    add_exclude(ex, &nex, run->out_root);
    add_exclude(ex, &nex, run->hdr_root);
    add_exclude(ex, &nex, b->log_path);
    add_exclude(ex, &nex, b->us_overview_dir);
    add_exclude(ex, &nex, b->ct_nifti_dir);
    add_exclude(ex, &nex, b->ct_qc_dir);
    double t = deid__now();
    rc = deid__batch_scan(b->input, ex, nex, &run->list);
    run->seconds_scan = deid__now() - t;
    if (rc != DEID_OK)
        return rc;
    deid_buf keys = {0};
    if (deid__buf_printf(&keys, "%s/keys.csv", run->hdr_root) != 0)
        return DEID_ERR_NOMEM;
    rc = deid__keys_open(keys.data, b->resume, keys_warning, run, &run->keys);
    deid__buf_free(&keys);
    if (rc == DEID_OK && b->has_text)
        rc = setup_text(run);
    if (rc == DEID_OK && b->has_ct) {
        t = deid__now();
        rc = deid__batch_ct_plan(run);
        run->seconds_scan += deid__now() - t;
    }
    return rc;
}

/* ---- workers and progress ----------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    deid_batch_worker *w = arg;
    deid_batch_job *run = w->run;
    int ready = start_text(w) == DEID_OK;
    if (!ready) /* the first worker's engine loaded in the driver, so this is rare: the other
                   workers take this one's files */
        deid__batch_log(run, DEID_LOG_WARNING, "a worker cannot start its text engine: %s",
                        deid_last_error());
    while (ready) {
        if (atomic_load(&run->cancel))
            break;
        size_t i = atomic_fetch_add(&run->next, 1);
        if (run->units) {
            if (i >= run->nunits)
                break;
            w->ok = w->skipped = w->failed = 0;
            deid__batch_ct_unit(w, &run->units[i]);
            atomic_fetch_add(&run->ok, w->ok);
            atomic_fetch_add(&run->skipped, w->skipped);
            atomic_fetch_add(&run->failed, w->failed);
            pthread_mutex_lock(&run->lock);
            pthread_cond_broadcast(&run->wake);
            pthread_mutex_unlock(&run->lock);
            continue;
        }
        if (i >= run->list.n)
            break;
        switch (deid__batch_process(w, &run->list.v[i])) {
        case DEID_BATCH_OK: atomic_fetch_add(&run->ok, 1); break;
        case DEID_BATCH_SKIPPED: atomic_fetch_add(&run->skipped, 1); break;
        case DEID_BATCH_FAILED: atomic_fetch_add(&run->failed, 1); break;
        }
        pthread_mutex_lock(&run->lock);
        pthread_cond_broadcast(&run->wake);
        pthread_mutex_unlock(&run->lock);
    }
    pthread_mutex_lock(&run->lock);
    run->active--;
    pthread_cond_broadcast(&run->wake);
    pthread_mutex_unlock(&run->lock);
    return NULL;
}

static void snapshot(deid_batch_job *run, double t0, deid_progress *p)
{
    p->total = run->list.n;
    p->ok = atomic_load(&run->ok);
    p->skipped = atomic_load(&run->skipped);
    p->failed = atomic_load(&run->failed);
    p->done = p->ok + p->skipped + p->failed;
    p->elapsed_s = deid__now() - t0;
}

/* Wait for the workers, calling the progress callback after files finish and at least every
 * 100 ms; a non-zero return stops the workers after their current file. */
static void drive(deid_batch_job *run, double t0)
{
    const deid_batch *b = run->batch;
    size_t last_done = (size_t)-1;
    double last = 0;
    pthread_mutex_lock(&run->lock);
    for (;;) {
        int finished = run->active == 0;
        deid_progress p;
        snapshot(run, t0, &p);
        if (b->progress && (p.done != last_done || p.elapsed_s - last >= 0.1 || finished)) {
            last_done = p.done;
            last = p.elapsed_s;
            pthread_mutex_unlock(&run->lock);
            int stop = b->progress(b->progress_user, &p);
            pthread_mutex_lock(&run->lock);
            if (stop)
                atomic_store(&run->cancel, 1);
        }
        if (finished)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&run->wake, &run->lock, &ts);
    }
    pthread_mutex_unlock(&run->lock);
}

static deid_status run_workers(deid_batch_job *run, double t0)
{
    const deid_batch *b = run->batch;
    size_t n = b->workers;
    if (n > run->list.n)
        n = run->list.n;
    if (n == 0)
        n = 1; /* still one pass through drive() so the caller sees a final progress call */
    run->workers = deid__calloc(n, sizeof *run->workers);
    if (!run->workers)
        return DEID_ERR_NOMEM;
    run->workers[0].text = run->first_text; /* made by setup; the others make theirs */
    run->first_text = NULL;
    pthread_mutex_lock(&run->lock);
    for (size_t i = 0; i < n; i++) {
        run->workers[i].run = run;
        if (pthread_create(&run->workers[i].thread, NULL, worker_main, &run->workers[i]) != 0)
            break;
        run->nworkers++;
        run->active++;
    }
    pthread_mutex_unlock(&run->lock);
    if (run->nworkers == 0)
        return deid__fail(DEID_ERR_GENERIC, "batch", "cannot start a worker thread");
    drive(run, t0);
    for (size_t i = 0; i < run->nworkers; i++)
        pthread_join(run->workers[i].thread, NULL);
    return DEID_OK;
}

/* ---- run ---------------------------------------------------------------------------------- */

static void summarize(deid_batch_job *run, double t0, deid_batch_summary *s)
{
    memset(s, 0, sizeof *s);
    s->found = run->list.n;
    s->ok = atomic_load(&run->ok);
    s->skipped = atomic_load(&run->skipped);
    s->failed = atomic_load(&run->failed);
    s->seconds_scan = run->seconds_scan;
    for (size_t i = 0; i < run->nworkers; i++) {
        const deid_batch_worker *w = &run->workers[i];
        s->seconds_read += w->seconds_read;
        s->seconds_deid += w->seconds_deid;
        s->seconds_write += w->seconds_write;
        s->bytes_in += w->bytes_in;
        s->bytes_out += w->bytes_out;
        s->seconds_decode += w->seconds_decode;
        s->seconds_detect += w->seconds_detect;
        s->seconds_mask += w->seconds_mask;
        s->seconds_encode += w->seconds_encode;
        s->us_low_confidence += w->us_low_confidence;
        s->us_fallback += w->us_fallback;
        s->text_files += w->text_files;
        s->text_found += w->text_found;
        s->text_merged += w->text_merged;
        s->text_redacted += w->text_redacted;
        s->text_review += w->text_review;
        s->text_kept += w->text_kept;
        s->text_residual_failed += w->text_residual_failed;
        s->seconds_ocr += w->seconds_ocr;
        s->ct_series += w->ct_series;
        s->ct_failed += w->ct_failed;
        s->ct_altered += w->ct_altered;
        s->seconds_deface += w->seconds_deface;
    }
    s->seconds_total = deid__now() - t0;
}

static void log_summary(deid_batch_job *run, const deid_batch_summary *s, int cancelled)
{
    if (run->batch->has_us) {
        deid__batch_log(run, DEID_LOG_INFO,
                        "stage totals (summed over %zu worker%s): scan %.3f s, read %.3f s, "
                        "decode %.3f s, detect %.3f s, mask %.3f s, encode %.3f s, "
                        "de-identify %.3f s, write %.3f s",
                        run->nworkers, run->nworkers == 1 ? "" : "s", s->seconds_scan,
                        s->seconds_read, s->seconds_decode, s->seconds_detect, s->seconds_mask,
                        s->seconds_encode, s->seconds_deid, s->seconds_write);
        if (run->low_confidence)
            deid__batch_log(run, DEID_LOG_WARNING,
                            "low fan-detection confidence: %zu refused, %zu masked with a "
                            "fallback:\n%s",
                            s->us_low_confidence, s->us_fallback, run->low_confidence);
    } else if (run->batch->has_text) {
        deid__batch_log(run, DEID_LOG_INFO,
                        "stage totals (summed over %zu worker%s): scan %.3f s, read %.3f s, "
                        "text %.3f s, de-identify %.3f s, write %.3f s",
                        run->nworkers, run->nworkers == 1 ? "" : "s", s->seconds_scan,
                        s->seconds_read, s->seconds_ocr, s->seconds_deid, s->seconds_write);
    } else {
        deid__batch_log(run, DEID_LOG_INFO,
                        "stage totals (summed over %zu worker%s): scan %.3f s, read %.3f s, "
                        "de-identify %.3f s, write %.3f s",
                        run->nworkers, run->nworkers == 1 ? "" : "s", s->seconds_scan,
                        s->seconds_read, s->seconds_deid, s->seconds_write);
    }
    if (run->batch->has_text)
        deid__batch_log(run, DEID_LOG_INFO,
                        "text: %zu files searched, %zu regions found, %zu merged, %zu redacted, "
                        "%zu left for review, %zu kept, %zu files refused (residual text)",
                        s->text_files, s->text_found, s->text_merged, s->text_redacted,
                        s->text_review, s->text_kept, s->text_residual_failed);
    if (run->batch->has_ct)
        deid__batch_log(run, DEID_LOG_INFO,
                        "ct: %zu series written, %zu series failed, %llu voxels defaced, "
                        "%.3f s defacing",
                        s->ct_series, s->ct_failed, (unsigned long long)s->ct_altered,
                        s->seconds_deface);
    deid__batch_log(run, DEID_LOG_INFO,
                    "summary%s: found %zu, ok %zu, skipped %zu, failed %zu, %.3f s, "
                    "%llu bytes in, %llu bytes out",
                    cancelled ? " (cancelled)" : "", s->found, s->ok, s->skipped, s->failed,
                    s->seconds_total, (unsigned long long)s->bytes_in,
                    (unsigned long long)s->bytes_out);
}

static void run_free(deid_batch_job *run)
{
    deid__batch_list_free(&run->list);
    free(run->units);
    deid__strmap_free(&run->claimed);
    deid_text_engine_free(run->first_text);
    for (size_t i = 0; run->workers && i < run->nworkers + (run->nworkers == 0); i++)
        deid_text_engine_free(run->workers[i].text);
    free(run->workers);
    free(run->out_root);
    free(run->hdr_root);
    free(run->low_confidence);
    deid_us_model_free(run->us_model);
    if (run->logf)
        fclose(run->logf);
    pthread_cond_destroy(&run->wake);
    pthread_mutex_destroy(&run->lock);
}

deid_status deid_batch_run(deid_batch *b, deid_batch_summary *summary)
{
    if (!b)
        return deid__fail(DEID_ERR_ARGUMENT, "batch", "deid_batch_run: batch is NULL");
    double t0 = deid__now();
    deid_batch_job run;
    memset(&run, 0, sizeof run);
    run.batch = b;
    atomic_init(&run.next, 0);
    atomic_init(&run.ok, 0);
    atomic_init(&run.skipped, 0);
    atomic_init(&run.failed, 0);
    atomic_init(&run.cancel, 0);
    pthread_mutex_init(&run.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&run.wake, &ca);
    pthread_condattr_destroy(&ca);

    deid_status st = setup(&run);
    if (st == DEID_OK)
        st = run_workers(&run, t0);
    /* Without per-file fsync (durable = 0), everything written is flushed once here, before
     * keys.csv is synced and closed. */
    if (run.out_root && !b->durable) {
        deid__sync_dir(run.out_root);
        if (run.hdr_root && strcmp(run.hdr_root, run.out_root) != 0)
            deid__sync_dir(run.hdr_root);
    }
    if (run.review) {
        deid_status rst = deid__review_close(run.review);
        if (st == DEID_OK)
            st = rst;
    }
    if (run.keys) {
        deid_status kst = deid__keys_close(run.keys);
        if (st == DEID_OK)
            st = kst;
    }
    /* A stop asked for after the last file is no cancellation: everything was done. */
    int cancelled = st == DEID_OK && atomic_load(&run.cancel) &&
                    atomic_load(&run.ok) + atomic_load(&run.skipped) + atomic_load(&run.failed) <
                        run.list.n;
    deid_batch_summary s;
    summarize(&run, t0, &s);
    if (st == DEID_OK)
        log_summary(&run, &s, cancelled);
    else if (run.logf) /* the caller reports it; the log file keeps a trace */
        fprintf(run.logf, "error: %s\n", deid_last_error());
    if (summary)
        *summary = s;
    run_free(&run);
    if (cancelled)
        return deid__fail(DEID_ERR_CANCELLED, "batch", "cancelled: %zu of %zu files done",
                          s.ok + s.skipped + s.failed, s.found);
    if (st != DEID_OK)
        return st;
    return DEID_OK;
}
