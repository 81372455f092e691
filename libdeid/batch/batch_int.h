/* libdeid internal: the batch pipeline (include/deid/batch.h) split into scan, keys.csv, a small
 * string map, per-file processing and the driver with its workers. */
#ifndef DEID_BATCH_INT_H
#define DEID_BATCH_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "core/core.h"
#include "deid/batch.h"

/* ---- string map (strmap.c): open addressing, owned copies; not thread-safe ---------------- */

typedef struct deid_strmap {
    char **keys;
    char **values; /* may hold NULL values */
    size_t n, cap;
} deid_strmap;

/* Insert or replace; value may be NULL. 0 ok, -1 out of memory. */
int deid__strmap_put(deid_strmap *m, const char *key, const char *value);
/* 1 when present (and *value set when value is not NULL), 0 when absent. */
int deid__strmap_get(const deid_strmap *m, const char *key, const char **value);
void deid__strmap_free(deid_strmap *m);

/* ---- scan (scan.c) ------------------------------------------------------------------------ */

/* One input found by the scan. */
typedef struct deid_batch_entry {
    char *path;    /* input path as reached from the input argument */
    char *rel_dir; /* its directory relative to the input root; "" at the root */
    char *error;   /* why the scan could not use it (unreadable directory...), or NULL */
    int raster;    /* deid_raster_format (text stage only; set by the driver after the scan) */
    unsigned dup;  /* text stage, rasters: 1, or n > 1 for the n-th raster (in path order) of
                      the same output directory and stem, written as <stem>_<n>.<ext> */
} deid_batch_entry;

typedef struct deid_batch_list {
    deid_batch_entry *v;
    size_t n, cap;
} deid_batch_list;

/* A file or directory the scan must not enter or return (output tree, headers, log file). */
typedef struct deid_batch_exclude {
    uint64_t dev, ino;
} deid_batch_exclude;

/* Scan `input` (a file, or a directory walked recursively with symlinks followed, each physical
 * directory once) into `list`, sorted by path. Only a failure to read `input` itself is an
 * error; a subdirectory that cannot be read becomes an entry with `error` set. */
deid_status deid__batch_scan(const char *input, const deid_batch_exclude *exclude,
                             size_t nexclude, deid_batch_list *list);
void deid__batch_list_free(deid_batch_list *list);

/* ---- CSV records (keys.c): RFC 4180, shared by keys.csv and review.csv ------------------ */

#define DEID_CSV_MAX_FIELDS 16
typedef struct deid_csv_record {
    deid_buf text;                     /* decoded fields, each NUL-terminated */
    size_t start[DEID_CSV_MAX_FIELDS]; /* offsets into text */
    size_t n;                          /* fields seen (may exceed DEID_CSV_MAX_FIELDS) */
} deid_csv_record;

/* Append one field, quoted when it holds a comma, quote or line break. 0 ok, -1 no memory. */
int deid__csv_append_field(deid_buf *b, const char *s);
/* Parse the record at *pos. 1: complete (ends with a newline outside quotes), *pos moved past
 * it; 0: the data ends first, i.e. a torn record; -1: out of memory. */
int deid__csv_parse_record(const char *s, size_t len, size_t *pos, deid_csv_record *r);
/* Field i (< min(n, DEID_CSV_MAX_FIELDS)) of a parsed record. */
const char *deid__csv_field(const deid_csv_record *r, size_t i);
/* The whole file behind `fd` (NUL-terminated); `path` names it in errors. */
deid_status deid__read_fd(int fd, const char *path, char **data, size_t *size);

/* ---- keys.csv (keys.c) -------------------------------------------------------------------- */

#define DEID_KEYS_COLUMNS 12
enum {
    DEID_KEY_ORIGINAL_PATH,
    DEID_KEY_ORIGINAL_PATIENT_ID,
    DEID_KEY_ORIGINAL_PATIENT_NAME,
    DEID_KEY_ORIGINAL_STUDY_UID,
    DEID_KEY_ORIGINAL_SERIES_UID,
    DEID_KEY_ORIGINAL_SOP_UID,
    DEID_KEY_OUTPUT_PATH,
    DEID_KEY_PATIENT_PSEUDONYM,
    DEID_KEY_NEW_STUDY_UID,
    DEID_KEY_NEW_SERIES_UID,
    DEID_KEY_NEW_SOP_UID,
    DEID_KEY_DATE_SHIFT_DAYS
};

typedef struct deid_keys deid_keys;

/* Open keys.csv. Without `resume` the file is replaced at once (atomically) by one holding only
 * the header. With `resume` an existing file is kept: a torn last record (a crash during the
 * write) is cut off, and the rows already there are remembered. `warn` receives notes for the
 * log (may be NULL). */
deid_status deid__keys_open(const char *path, int resume,
                            void (*warn)(void *user, const char *message), void *warn_user,
                            deid_keys **out);
/* Number of rows loaded or appended. */
size_t deid__keys_rows(deid_keys *k);
/* Does a row for this output path exist? Thread-safe. */
int deid__keys_has_output(deid_keys *k, const char *output_path);
/* Output path of the row for this original path, copied into a new string (NULL when
 * absent). Thread-safe. */
char *deid__keys_output_of(deid_keys *k, const char *original_path);
/* Append one row with a single write() under the lock; a row whose output path is already
 * there is not written again. Thread-safe. */
deid_status deid__keys_append(deid_keys *k, const char *const fields[DEID_KEYS_COLUMNS]);
/* Flush to disk and free. Returns an I/O error when the final sync fails. NULL is a no-op. */
deid_status deid__keys_close(deid_keys *k);

/* ---- review.csv (review.c) ---------------------------------------------------------------- */

typedef struct deid_review deid_review;

/* Is the file written as `output_path` finished (its keys.csv row, or a raster's report, is
 * there)? Used on resume to drop the review rows of a file that did not finish. */
typedef int (*deid_review_done_fn)(void *user, const char *output_path);

/* Open review.csv (regions left for a person, one row each). Without `resume` the file is
 * replaced at once (atomically) by one holding only the header. With `resume` an existing file
 * is kept: a torn last line is cut off, and rows of files that `done` says did not finish are
 * dropped (the file is rewritten atomically), so a file processed again is listed once. `warn`
 * receives notes for the log (may be NULL). */
deid_status deid__review_open(const char *path, int resume, deid_review_done_fn done,
                              void *done_user, void (*warn)(void *user, const char *message),
                              void *warn_user, deid_review **out);
/* Append the rows of one file's regions whose decision is review, with one write() under the
 * lock; nothing when the file has none, or when rows for `output_path` are already there (a
 * resume redoing a file whose output was lost). The text column is filled only with
 * `include_text`. Thread-safe. */
deid_status deid__review_append(deid_review *r, const char *output_path,
                                const deid_text_result *res, int include_text);
/* Number of rows loaded or appended. */
size_t deid__review_rows(deid_review *r);
/* Flush to disk and free. NULL is a no-op. */
deid_status deid__review_close(deid_review *r);

/* ---- run state (batch.c, process.c) ------------------------------------------------------- */

struct deid_batch {
    char *input, *output_dir, *headers_dir, *prefix, *log_path;
    char **modalities, **sop_classes; /* NULL-terminated lists; NULL = no filter */
    unsigned workers;
    int flat, resume, skip_single_frame, write_json, durable;
    deid_log_fn log;
    void *log_user;
    deid_progress_fn progress;
    void *progress_user;
    deid_read_options read; /* version 0: library defaults */
    const deid_profile *profile;
    int has_us;             /* the ultrasound stage runs (deid_batch_options.us) */
    deid_us_options us;     /* its options; the strings below are the batch's copies */
    char *us_model_path, *us_device, *us_overview_dir;
    int has_text;           /* the text stage runs (deid_batch_options.text) */
    deid_text_options text; /* its options; the strings below are the batch's copies */
    char *text_tessdata, *text_language;
    const deid_text_phi *text_phi; /* borrowed */
    int has_ct;             /* the CT stage runs (deid_batch_options.ct) */
    deid_ct_options ct;     /* its options; the strings below are the batch's copies */
    char *ct_nifti_dir, *ct_qc_dir, *ct_model_path, *ct_device;
};

typedef struct deid_batch_job deid_batch_job;

/* What one worker takes at a time: one entry, or (CT stage) the entries of one series, which
 * deid__batch_ct_plan puts next to each other in the list. */
typedef struct deid_batch_unit {
    size_t start, count;
    int series;            /* 1: a CT series (count >= min_slices); 0: a single entry */
} deid_batch_unit;

/* Per-worker totals, summed by the driver after the join. */
typedef struct deid_batch_worker {
    struct deid_batch_job *run;
    pthread_t thread;
    double seconds_read, seconds_deid, seconds_write;
    double seconds_decode, seconds_detect, seconds_mask, seconds_encode; /* us stage */
    size_t us_low_confidence, us_fallback;
    deid_text_engine *text;  /* text stage: this worker's engine (NULL: the worker takes no
                                file) */
    size_t text_files, text_found, text_merged, text_redacted, text_review, text_kept,
        text_residual_failed;
    double seconds_ocr;
    size_t ct_series, ct_failed; /* ct stage */
    uint64_t ct_altered;
    double seconds_deface;
    size_t ok, skipped, failed;  /* ct stage: files of the series this worker finished */
    uint64_t bytes_in, bytes_out;
} deid_batch_worker;

struct deid_batch_job {
    deid_batch *batch;
    char *out_root, *hdr_root; /* canonical absolute output and headers directories */
    deid_batch_list list;
    deid_batch_unit *units; /* CT stage: the units the workers take (NULL: one per entry) */
    size_t nunits;
    double seconds_scan;
    deid_batch_worker *workers;
    size_t nworkers, active; /* threads started; still running (under lock) */
    deid_keys *keys;
    deid_review *review;   /* text stage: review.csv */
    deid_text_engine *first_text; /* text stage: the first worker's engine, made before any
                                     directory is created (a missing language file stops the
                                     run there) */
    FILE *logf;
    pthread_mutex_t lock;  /* log file, claimed names, progress wake-up */
    pthread_cond_t wake;
    deid_strmap claimed;   /* output path -> input path, this run */
    atomic_size_t next, ok, skipped, failed;
    atomic_int cancel;
    deid_us_options us;    /* batch->us with the run's model (loaded once) */
    deid_us_model *us_model;
    char *low_confidence;  /* newline-separated inputs refused or masked by a fallback (under
                              lock), listed at the end of the run */
    size_t low_confidence_len;
};

/* Note an input whose detection was not trusted, for the end-of-run list (thread-safe). */
void deid__batch_note_low_confidence(deid_batch_job *run, const char *path, const char *what);

typedef enum deid_batch_outcome {
    DEID_BATCH_OK,
    DEID_BATCH_SKIPPED,
    DEID_BATCH_FAILED
} deid_batch_outcome;

/* De-identify one scanned entry and report it (log line, keys.csv row). */
deid_batch_outcome deid__batch_process(deid_batch_worker *w, const deid_batch_entry *e);

struct deid_ids; /* profile/profile_int.h */

/* De-identify an object already read (and changed: `pixels_changed` gives it new Series and
 * SOP Instance UIDs as the pixel stages do) the way deid__batch_process does: filter, name,
 * profile, write, keys.csv row, log line. *after (may be NULL) receives its identifiers
 * before and after. The caller keeps `ds`. */
deid_batch_outcome deid__batch_process_dataset(deid_batch_worker *w, const deid_batch_entry *e,
                                               deid_dataset *ds, int pixels_changed,
                                               struct deid_ids *after);
/* Was this entry finished by an earlier run (resume)? */
int deid__batch_done_before(const deid_batch_job *run, const deid_batch_entry *e);
/* Log a failed or skipped entry (the one-line forms every file gets). */
deid_batch_outcome deid__batch_fail(deid_batch_job *run, const char *path, deid_status st);
deid_batch_outcome deid__batch_skip(deid_batch_job *run, const char *path, const char *why);

/* CT stage (ct_series.c): group the scanned entries into units (one per CT series, its
 * slices next to each other; one per other entry, skipped as not CT), reading each file's
 * header once. */
deid_status deid__batch_ct_plan(deid_batch_job *run);
/* Process one unit of the CT stage: counts its files into w->ok/skipped/failed. */
void deid__batch_ct_unit(deid_batch_worker *w, const deid_batch_unit *u);

/* Is the output at `output_path` finished: a keys.csv row (DICOM), or the report of a raster
 * (<stem>_text.json, written last)? For review.csv on a resume. */
int deid__batch_output_done(deid_batch_job *run, const char *output_path);

/* One log line to the callback and the log file (thread-safe; never PHI). */
void deid__batch_log(deid_batch_job *run, deid_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
