/* libdeid: directory batches shared by every tool: scan, workers, resume, keys.csv, reports. */
#ifndef DEID_BATCH_H
#define DEID_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include "deid/export.h"
#include "deid/status.h"
#include "deid/profile.h"
#include "deid/us.h"
#include "deid/text.h"
#include "deid/ct.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A configured batch run over a directory tree. One thread drives a batch; it runs its own
 * worker threads internally. */
typedef struct deid_batch deid_batch;

/* Progress snapshot passed to the progress callback (from the driving thread). */
typedef struct deid_progress {
    size_t total;     /* files found by the scan */
    size_t done;      /* files finished (ok + skipped + failed) */
    size_t ok;
    size_t skipped;
    size_t failed;
    double elapsed_s;
} deid_progress;

/* Progress callback: return non-zero to cancel the batch (finished files are kept). */
typedef int (*deid_progress_fn)(void *user, const deid_progress *progress);

#define DEID_BATCH_OPTIONS_VERSION 1
typedef struct deid_batch_options {
    unsigned version;            /* DEID_BATCH_OPTIONS_VERSION */
    const char *input;           /* input file or directory (scanned recursively); required */
    const char *output_dir;      /* de-identified DICOM tree; required */
    const char *headers_dir;     /* *_DICOMHeader.json files and keys.csv; NULL = output_dir */
    unsigned workers;            /* worker threads; default 0 = number of cores */
    int flat;                    /* 1: all outputs directly in output_dir; default 0 = mirror the
                                    input tree */
    int resume;                  /* 1: skip files whose output already exists; default 0 */
    const char *filename_prefix; /* prefix of output file names; default NULL = none */
    const char *modalities;      /* comma-separated Modality filter ("US,CT"); NULL = all */
    const char *sop_classes;     /* comma-separated SOP Class UID filter; NULL = all */
    int skip_single_frame;       /* 1: skip objects with one frame; default 0 */
    int write_json;              /* 1: write *_DICOMHeader.json per file; default 1 */
    const char *log_path;        /* log file (appended; per-file lines and stage totals);
                                    NULL = none */
    deid_log_fn log;             /* log callback (thread-safe, no PHI); NULL = none */
    void *log_user;
    deid_progress_fn progress;   /* progress callback, called after each file; NULL = none */
    void *progress_user;
    deid_read_options read;      /* limits for every input file (version 0 = defaults) */
    int durable;                 /* 1: flush every output to disk (fsync) before its keys.csv
                                    row, so each finished file survives a power loss; default
                                    0: outputs are renamed into place complete (a killed
                                    process never leaves a partial file) and flushed to disk
                                    once at the end of the run, which is much faster */
    const deid_us_options *us;   /* the ultrasound stage (deid_us_process) before the header
                                    profile: only Modality US objects are processed (others are
                                    skipped as "not US"), pixels outside the scan area are
                                    blanked and re-encoded, <name>_mask.json is written beside
                                    the header JSON and, with us->overview_dir, a QC PNG to
                                    <overview_dir>/<relative dir>/<name>.png. Borrowed: must
                                    outlive the batch (its strings are copied). A corner model
                                    is loaded once per run. Default NULL = header only */
    const deid_text_options *text; /* the burned-in text stage (deid_text_process) before the
                                    header profile, one engine per worker: every DICOM object
                                    with pixels is searched and redacted, and PNG, JPEG, TIFF
                                    and BMP files are processed too (deid_text_process_file,
                                    written under their own relative path and name); writes
                                    <name>_text.json beside the header JSON and review.csv
                                    (regions left for a person) in headers_dir. Borrowed: must
                                    outlive the batch (its strings are copied). Default NULL =
                                    no text stage (raster files are skipped) */
    const deid_text_phi *text_phi; /* extra PHI terms matched in every file (besides each DICOM
                                    header's own): the only PHI raster files have. Borrowed,
                                    must outlive the batch; default NULL */
    const deid_ct_options *ct;   /* the CT stage: files are grouped into series (same directory
                                    and SeriesInstanceUID, Modality CT; other files are skipped
                                    as "not CT"), each series is made a volume, defaced and
                                    written back (deid_ct_options), one series per worker, its
                                    slices in order. Borrowed: must outlive the batch (its
                                    strings are copied). Default NULL = no CT stage */
} deid_batch_options;
#define DEID_BATCH_OPTIONS_INIT                                                                 \
    {DEID_BATCH_OPTIONS_VERSION, NULL, NULL, NULL, 0, 0, 0, NULL, NULL, NULL, 0, 1, NULL,       \
     NULL, NULL, NULL, NULL, DEID_READ_OPTIONS_INIT, 0, NULL, NULL, NULL, NULL}

/* Fill `opts` with defaults; DEID_ERR_ARGUMENT for an unknown version. */
DEID_API deid_status deid_batch_options_init(deid_batch_options *opts, unsigned version);

/* Outcome of a batch. */
typedef struct deid_batch_summary {
    size_t found;
    size_t ok;
    size_t skipped;   /* filtered out, or already done when resuming */
    size_t failed;
    double seconds_scan, seconds_read, seconds_deid, seconds_write; /* summed over workers */
    double seconds_total;                                            /* wall clock */
    uint64_t bytes_in, bytes_out;
    /* The ultrasound stage (deid_batch_options.us), summed over workers: */
    double seconds_decode, seconds_detect, seconds_mask, seconds_encode;
    size_t us_low_confidence; /* files refused: detection below min_confidence, no fallback */
    size_t us_fallback;       /* files masked with the rectangle or regions fallback */
    /* The text stage (deid_batch_options.text), summed over files: */
    size_t text_files;        /* files searched for text */
    size_t text_found;        /* regions found by all passes, before merging */
    size_t text_merged;       /* regions after merging */
    size_t text_redacted, text_review, text_kept;
    size_t text_residual_failed; /* files refused because text was still readable after
                                    redaction */
    double seconds_ocr;       /* text detection and recognition, summed over workers */
    /* The CT stage (deid_batch_options.ct), summed over series: */
    size_t ct_series;         /* series made volumes and written */
    size_t ct_failed;         /* series that could not be (their files count as failed) */
    uint64_t ct_altered;      /* voxels changed by defacing */
    double seconds_deface;    /* defacing, summed over workers */
} deid_batch_summary;

/* Create a batch. Option strings are copied; `profile` is borrowed and must outlive the batch.
 * On success *out owns the batch (free with deid_batch_free). */
DEID_API deid_status deid_batch_new(const deid_batch_options *opts, const deid_profile *profile,
                                    deid_batch **out);

/* Run the batch: scan, de-identify every file with the workers, write outputs atomically,
 * append to keys.csv, report. A file that fails is logged (one line: file and reason) and the
 * batch goes on. Returns DEID_OK when the run completed (even if some files failed: see
 * summary->failed), DEID_ERR_CANCELLED when the progress callback stopped it, or an error when
 * the run could not start (unreadable input, unwritable output directory). `summary` may be
 * NULL. */
DEID_API DEID_NODISCARD deid_status deid_batch_run(deid_batch *batch,
                                                   deid_batch_summary *summary);

/* Free a batch. NULL is a no-op. */
DEID_API void deid_batch_free(deid_batch *batch);

/* De-identify one object in memory the way the batch does for each file (profile, then the
 * output naming), without touching the file system: the gateway case. */
DEID_API DEID_NODISCARD deid_status deid_deidentify_memory(const deid_profile *profile,
                                                           const void *data, size_t size,
                                                           void **out, size_t *out_size);

#ifdef __cplusplus
}
#endif
#endif
