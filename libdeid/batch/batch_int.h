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
};

typedef struct deid_batch_job deid_batch_job;

/* Per-worker totals, summed by the driver after the join. */
typedef struct deid_batch_worker {
    struct deid_batch_job *run;
    pthread_t thread;
    double seconds_read, seconds_deid, seconds_write;
    double seconds_decode, seconds_detect, seconds_mask, seconds_encode; /* us stage */
    size_t us_low_confidence, us_fallback;
    uint64_t bytes_in, bytes_out;
} deid_batch_worker;

struct deid_batch_job {
    deid_batch *batch;
    char *out_root, *hdr_root; /* canonical absolute output and headers directories */
    deid_batch_list list;
    double seconds_scan;
    deid_batch_worker *workers;
    size_t nworkers, active; /* threads started; still running (under lock) */
    deid_keys *keys;
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

/* One log line to the callback and the log file (thread-safe; never PHI). */
void deid__batch_log(deid_batch_job *run, deid_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
