/* One file of a batch: read, filter, name, de-identify, write the DICOM, its header JSON and
 * its keys.csv row. Either all three exist afterwards or none of the new ones does, so a file
 * that failed part way is simply processed again by a resume. The stages (ultrasound, text)
 * add their reports to the same all-or-nothing write. Raster files of the text stage (PNG,
 * JPEG, TIFF, BMP) have no keys.csv row: their report <stem>_text.json is written last and
 * marks them done. Also the in-memory variant used by gateways. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "batch/batch_int.h"
#include "core/core.h"
#include "dicom/dataset_int.h"
#include "deid/deid.h"
#include "profile/profile_int.h"

#define TAG_SOP_CLASS_META DEID_TAG(0x0002, 0x0002)
#define TAG_SOP_CLASS DEID_TAG(0x0008, 0x0016)
#define TAG_SOP_INSTANCE DEID_TAG(0x0008, 0x0018)
#define TAG_MODALITY DEID_TAG(0x0008, 0x0060)
#define TAG_PATIENT_NAME DEID_TAG(0x0010, 0x0010)
#define TAG_PATIENT_ID DEID_TAG(0x0010, 0x0020)
#define TAG_STUDY_UID DEID_TAG(0x0020, 0x000D)
#define TAG_SERIES_UID DEID_TAG(0x0020, 0x000E)
#define TAG_NUMBER_OF_FRAMES DEID_TAG(0x0028, 0x0008)

/* Identifiers of one object. Before de-identification they are PHI: they go to keys.csv only,
 * never to a log line or an error message. */
typedef struct ids {
    char *patient_id, *patient_name, *study, *series, *sop;
} ids;

static void ids_free(ids *x)
{
    free(x->patient_id);
    free(x->patient_name);
    free(x->study);
    free(x->series);
    free(x->sop);
    memset(x, 0, sizeof *x);
}

/* Text value of a top-level element without its padding; "" when absent; NULL out of memory. */
static char *text(const deid_dataset *ds, uint32_t tag)
{
    const void *v = NULL;
    size_t n = 0;
    if (!deid_dataset_has(ds, tag) || deid_dataset_get(ds, tag, &v, &n) != DEID_OK || !v)
        n = 0;
    const char *s = v;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\0'))
        n--;
    return deid__strndup(n ? s : "", n);
}

static char *text_or(const deid_dataset *ds, uint32_t tag, uint32_t fallback)
{
    char *s = text(ds, tag);
    if (s && !*s) {
        free(s);
        s = text(ds, fallback);
    }
    return s;
}

static deid_status collect(const deid_dataset *ds, ids *x)
{
    x->patient_id = text(ds, TAG_PATIENT_ID);
    x->patient_name = text(ds, TAG_PATIENT_NAME);
    x->study = text(ds, TAG_STUDY_UID);
    x->series = text(ds, TAG_SERIES_UID);
    x->sop = text(ds, TAG_SOP_INSTANCE);
    if (!x->patient_id || !x->patient_name || !x->study || !x->series || !x->sop) {
        ids_free(x);
        return DEID_ERR_NOMEM;
    }
    return DEID_OK;
}

/* ---- filters ------------------------------------------------------------------------------ */

static int listed(char *const *list, const char *value, int ignore_case)
{
    for (; *list; list++)
        if ((ignore_case ? strcasecmp(*list, value) : strcmp(*list, value)) == 0)
            return 1;
    return 0;
}

/* Is the value of `tag` (or of `fallback` when empty) in `list`? 1 yes; 0 no, and `why` says
 * so; -1 out of memory. */
static int listed_value(const deid_dataset *ds, uint32_t tag, uint32_t fallback,
                        char *const *list, int ignore_case, const char *what, char *why,
                        size_t cap)
{
    char *v = text_or(ds, tag, fallback);
    if (!v)
        return -1;
    int ok = listed(list, v, ignore_case);
    if (!ok)
        snprintf(why, cap, "%s %s not selected", what, *v ? v : "(none)");
    free(v);
    return ok;
}

/* 1 when the object is selected; 0 when not, `why` saying why (no PHI: modality, SOP class
 * and frame count are not identifying); -1 out of memory. */
static int filter(const deid_batch *b, const deid_dataset *ds, char *why, size_t cap)
{
    int ok = 1;
    if (b->has_us) {
        char *m = text(ds, TAG_MODALITY);
        if (!m)
            return -1;
        ok = strcmp(m, "US") == 0;
        free(m);
        if (!ok) {
            snprintf(why, cap, "not US");
            return 0;
        }
    }
    /* The text stage does not skip objects without Pixel Data: deid_text_process fails them
     * with "no pixel data", like any input a tool cannot do its work on. */
    if (b->modalities)
        ok = listed_value(ds, TAG_MODALITY, TAG_MODALITY, b->modalities, 1, "modality", why, cap);
    if (ok > 0 && b->sop_classes)
        ok = listed_value(ds, TAG_SOP_CLASS, TAG_SOP_CLASS_META, b->sop_classes, 0, "SOP class",
                          why, cap);
    if (ok > 0 && b->skip_single_frame) {
        char *f = text(ds, TAG_NUMBER_OF_FRAMES);
        if (!f)
            return -1;
        long frames = *f ? strtol(f, NULL, 10) : 1;
        free(f);
        if (frames <= 1) {
            snprintf(why, cap, "single frame");
            ok = 0;
        }
    }
    return ok;
}

/* ---- reporting ---------------------------------------------------------------------------- */

/* "<input>: <reason>" from the thread's last error ("module: [path: ]reason"), without the
 * module and without repeating the path when the lower layer already named it. */
static deid_batch_outcome fail(deid_batch_job *run, const char *path, deid_status st)
{
    const char *msg = deid_last_error();
    size_t m = strspn(msg, "abcdefghijklmnopqrstuvwxyz_");
    if (m > 0 && m < 16 && msg[m] == ':' && msg[m + 1] == ' ')
        msg += m + 2;
    const char *at = strstr(msg, path);
    size_t n = strlen(path);
    if (at && at[n] == ':' && at[n + 1] == ' ')
        msg = at + n + 2;
    if (!*msg)
        msg = deid_strerror(st);
    deid__batch_log(run, DEID_LOG_ERROR, "%s: %s", path, msg);
    return DEID_BATCH_FAILED;
}

static deid_batch_outcome skip(deid_batch_job *run, const char *path, const char *why)
{
    deid__batch_log(run, DEID_LOG_INFO, "skip %s: %s", path, why);
    return DEID_BATCH_SKIPPED;
}

static int is_file(const char *path, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    if (size)
        *size = (uint64_t)st.st_size;
    return 1;
}

/* ---- names -------------------------------------------------------------------------------- */

typedef struct names {
    char pseudonym[11], instance[9];
    char *out_dir, *out_path, *json_dir, *json_path;
    char *mask_path, *png_dir, *png_path; /* ultrasound stage only */
    char *text_path;                      /* text stage only: <name>_text.json */
} names;

static void names_free(names *n)
{
    free(n->out_dir);
    free(n->out_path);
    free(n->json_dir);
    free(n->json_path);
    free(n->mask_path);
    free(n->png_dir);
    free(n->png_path);
    free(n->text_path);
}

static char *path_of(const char *root, const char *rel, const char *prefix, const char *stem,
                     const char *suffix)
{
    deid_buf b = {0};
    int rc = prefix ? deid__buf_printf(&b, "%s%s%s/%s%s%s", root, *rel ? "/" : "", rel, prefix,
                                       stem, suffix)
                    : deid__buf_printf(&b, "%s%s%s", root, *rel ? "/" : "", rel);
    if (rc != 0) {
        deid__buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* Names of the outputs; `dup` > 1 numbers a further input with the same patient and SOP
 * Instance UID ("<name>_2.dcm"), which would otherwise overwrite the first. */
static deid_status make_names(const deid_batch_job *run, const deid_batch_entry *e,
                              const ids *x, unsigned dup, names *n)
{
    const deid_batch *b = run->batch;
    const char *who = *x->patient_id ? x->patient_id : x->patient_name;
    names_free(n);
    memset(n, 0, sizeof *n);
    deid_status st = deid_profile_patient_pseudonym(b->profile, who, n->pseudonym);
    if (st != DEID_OK)
        return st;
    if (!*x->sop)
        return deid__fail(DEID_ERR_NOT_DICOM, "batch",
                          "no SOP Instance UID (0008,0018): cannot name the output");
    if (deid__profile_instance_hash(b->profile, x->sop, n->instance) != 0)
        return deid__fail(DEID_ERR_GENERIC, "batch", "cannot hash the SOP Instance UID");
    char stem[48];
    if (dup > 1)
        snprintf(stem, sizeof stem, "%s_%s_%u", n->pseudonym, n->instance, dup);
    else
        snprintf(stem, sizeof stem, "%s_%s", n->pseudonym, n->instance);
    const char *rel = b->flat ? "" : e->rel_dir;
    const char *prefix = b->prefix ? b->prefix : "";
    n->out_dir = path_of(run->out_root, rel, NULL, NULL, NULL);
    n->out_path = path_of(run->out_root, rel, prefix, stem, ".dcm");
    n->json_dir = path_of(run->hdr_root, rel, NULL, NULL, NULL);
    n->json_path = path_of(run->hdr_root, rel, prefix, stem, "_DICOMHeader.json");
    if (!n->out_dir || !n->out_path || !n->json_dir || !n->json_path)
        return deid__fail(DEID_ERR_NOMEM, "batch", "out of memory");
    if (b->has_us && b->us.mask_json &&
        !(n->mask_path = path_of(run->hdr_root, rel, prefix, stem, "_mask.json")))
        return deid__fail(DEID_ERR_NOMEM, "batch", "out of memory");
    if (b->has_us && b->us.overview_dir &&
        (!(n->png_dir = path_of(b->us.overview_dir, rel, NULL, NULL, NULL)) ||
         !(n->png_path = path_of(b->us.overview_dir, rel, prefix, stem, ".png"))))
        return deid__fail(DEID_ERR_NOMEM, "batch", "out of memory");
    if (b->has_text && !(n->text_path = path_of(run->hdr_root, rel, prefix, stem, "_text.json")))
        return deid__fail(DEID_ERR_NOMEM, "batch", "out of memory");
    return DEID_OK;
}

/* Resume without reading the input: keys.csv has a row for this very input whose output still
 * exists and would be named the same way now (same output tree, layout and prefix). */
static int done_before(const deid_batch_job *run, const deid_batch_entry *e)
{
    const deid_batch *b = run->batch;
    char *out = deid__keys_output_of(run->keys, e->path);
    if (!out)
        return 0;
    char *dir = path_of(run->out_root, b->flat ? "" : e->rel_dir, NULL, NULL, NULL);
    const char *prefix = b->prefix ? b->prefix : "";
    size_t d = dir ? strlen(dir) : 0;
    int same = dir && strncmp(out, dir, d) == 0 && out[d] == '/' && !strchr(out + d + 1, '/') &&
               strncmp(out + d + 1, prefix, strlen(prefix)) == 0;
    int done = same && is_file(out, NULL);
    free(dir);
    free(out);
    return done;
}

/* Claim an output name for this run. 1: claimed, 0: taken by another input (its path copied
 * to `other`), -1: out of memory. */
static int claim(deid_batch_job *run, const char *out_path, const char *in_path, char *other,
                 size_t cap)
{
    const char *prev = NULL;
    int rc = 1;
    pthread_mutex_lock(&run->lock);
    if (deid__strmap_get(&run->claimed, out_path, &prev)) {
        snprintf(other, cap, "%s", prev ? prev : "?");
        rc = strcmp(prev ? prev : "", in_path) == 0;
    } else if (deid__strmap_put(&run->claimed, out_path, in_path) != 0) {
        rc = -1;
    }
    pthread_mutex_unlock(&run->lock);
    return rc;
}

/* Two inputs with the same patient and SOP Instance UID (a copy, or the same image in two
 * transfer syntaxes) must not overwrite each other: the first to get here keeps the name, the
 * next ones get "_2", "_3"... */
static deid_status claim_names(deid_batch_job *run, const deid_batch_entry *e, const ids *x,
                               names *n)
{
    char other[4096];
    for (unsigned dup = 1;;) {
        int c = claim(run, n->out_path, e->path, other, sizeof other);
        if (c < 0)
            return DEID_ERR_NOMEM;
        if (c > 0) {
            if (dup > 1)
                deid__batch_log(run, DEID_LOG_WARNING,
                                "%s: same patient and SOP Instance UID as %s: its output is named %s",
                                e->path, other, n->out_path);
            return DEID_OK;
        }
        if (++dup > 1000)
            return deid__fail(DEID_ERR_LIMIT, "batch",
                              "more than 1000 inputs with the same SOP Instance UID");
        deid_status st = make_names(run, e, x, dup, n);
        if (st != DEID_OK)
            return st;
    }
}

/* ---- writing ------------------------------------------------------------------------------ */

static deid_status write_json(const deid_dataset *ds, const names *n, unsigned flags)
{
    char *json = NULL;
    deid_status st = deid_dataset_to_json(ds, &json);
    if (st == DEID_OK)
        st = deid__mkdirs(n->json_dir);
    if (st == DEID_OK)
        st = deid__write_file_atomic(n->json_path, json, strlen(json), 0644, flags);
    deid_free(json);
    return st;
}

static deid_status write_row(deid_batch_job *run, const deid_batch_entry *e, const ids *x,
                             const names *n, const deid_ids *after)
{
    char shift[16] = "";
    if (after->date_shift)
        snprintf(shift, sizeof shift, "%d", after->date_shift);
    const char *fields[DEID_KEYS_COLUMNS] = {
        e->path,     x->patient_id, x->patient_name,        x->study,
        x->series,   x->sop,        n->out_path,            n->pseudonym,
        after->new_study_uid, after->new_series_uid, after->new_sop_uid, shift};
    return deid__keys_append(run->keys, fields);
}

/* The ultrasound stage's outputs: mask JSON beside the header JSON, QC overview PNG. */
static deid_status write_us(const names *n, const deid_us_result *us, unsigned flags)
{
    deid_status st = DEID_OK;
    if (n->mask_path) {
        char *json = NULL;
        st = deid_us_result_json(us, &json);
        if (st == DEID_OK)
            st = deid__mkdirs(n->json_dir);
        if (st == DEID_OK)
            st = deid__write_file_atomic(n->mask_path, json, strlen(json), 0644, flags);
        deid_free(json);
    }
    if (st == DEID_OK && n->png_path) {
        st = deid__mkdirs(n->png_dir);
        if (st == DEID_OK)
            st = deid_us_write_overview(us, n->png_path);
    }
    return st;
}

/* The text stage's outputs: <name>_text.json (0600 when it holds the text read) and the
 * review.csv rows of `output_path`. */
static deid_status write_text(deid_batch_job *run, const names *n, const char *output_path,
                              const deid_text_result *res, unsigned flags)
{
    int with_text = run->batch->text.report_text != 0;
    char *json = NULL;
    deid_status st = deid__review_append(run->review, output_path, res, with_text);
    if (st == DEID_OK)
        st = deid_text_result_json(res, with_text, &json);
    if (st == DEID_OK)
        st = deid__mkdirs(n->json_dir);
    if (st == DEID_OK)
        st = deid__write_file_atomic(n->text_path, json, strlen(json), with_text ? 0600 : 0644,
                                     flags);
    deid_free(json);
    return st;
}

/* Write the outputs (DICOM, header JSON, the ultrasound stage's files when `us` is not NULL,
 * the text stage's when `text` is not NULL, keys.csv row last); on failure remove what this
 * call wrote so the file is retried. */
static deid_status write_outputs(deid_batch_worker *w, const deid_batch_entry *e, const ids *x,
                                 const names *n, const deid_dataset *ds, const deid_ids *after,
                                 const deid_us_result *us, const deid_text_result *text)
{
    deid_batch_job *run = w->run;
    deid_status st = deid__mkdirs(n->out_dir);
    if (st != DEID_OK)
        return st;
    unsigned flags = run->batch->durable ? DEID_WRITE_SYNC : 0;
    if ((st = deid__dataset_write_file(ds, n->out_path, flags)) != DEID_OK)
        return st;
    uint64_t size = 0;
    if (is_file(n->out_path, &size))
        w->bytes_out += size;
    int json = run->batch->write_json;
    if (json)
        st = write_json(ds, n, flags);
    if (st == DEID_OK && us)
        st = write_us(n, us, flags);
    if (st == DEID_OK && text)
        st = write_text(run, n, n->out_path, text, flags);
    if (st == DEID_OK)
        st = write_row(run, e, x, n, after);
    if (st != DEID_OK) {
        unlink(n->out_path);
        if (json)
            unlink(n->json_path);
        if (us && n->mask_path)
            unlink(n->mask_path);
        if (us && n->png_path)
            unlink(n->png_path);
        if (text)
            unlink(n->text_path);
    }
    return st;
}

/* ---- one file ----------------------------------------------------------------------------- */

/* The ultrasound stage on one object: timings, and the low-confidence bookkeeping. */
static deid_status us_stage(deid_batch_worker *w, const deid_batch_entry *e, deid_dataset *ds,
                            deid_us_result *r)
{
    deid_batch_job *run = w->run;
    deid_status st = deid_us_process(ds, &run->us, r);
    w->seconds_decode += r->seconds_decode;
    w->seconds_detect += r->seconds_detect;
    w->seconds_mask += r->seconds_mask;
    w->seconds_encode += r->seconds_encode;
    char what[96];
    if (st != DEID_OK) {
        if (st == DEID_ERR_GENERIC && r->low_confidence) {
            w->us_low_confidence++;
            snprintf(what, sizeof what, "refused, confidence %.2f", r->confidence);
            deid__batch_note_low_confidence(run, e->path, what);
        }
        return st;
    }
    if (r->fallback != DEID_US_FALLBACK_NONE) {
        w->us_fallback++;
        snprintf(what, sizeof what, "%s fallback, confidence %.2f",
                 r->fallback == DEID_US_FALLBACK_REGIONS ? "regions" : "rectangle",
                 r->confidence);
        deid__batch_note_low_confidence(run, e->path, what);
        deid__batch_log(run, DEID_LOG_WARNING,
                        "%s: fan detection confidence %.2f < %.2f: masked with the %s fallback",
                        e->path, r->confidence, run->us.min_confidence,
                        r->fallback == DEID_US_FALLBACK_REGIONS ? "regions" : "rectangle");
    }
    if (r->warning && *r->warning &&
        (!run->us.model || strcmp(r->warning, deid_us_model_warning(run->us.model)) != 0))
        deid__batch_log(run, DEID_LOG_WARNING, "%s: %s", e->path, r->warning);
    return DEID_OK;
}

/* Add a text result to the worker's totals: every file searched counts its regions found and
 * merged and its OCR time; decisions count for files that passed, refusals for files whose
 * residual check failed. Returns the seconds spent outside detection (decoding, redaction,
 * encoding) of the `seconds` the call took. */
static double text_count(deid_batch_worker *w, const deid_text_result *res, deid_status st,
                         double seconds)
{
    if (!res)
        return seconds;
    deid_text_stats s;
    deid_text_result_stats(res, &s);
    double ocr = s.seconds_prepare + s.seconds_detect + s.seconds_ocr;
    w->text_files++;
    w->text_found += s.found;
    w->text_merged += s.merged;
    w->seconds_ocr += ocr;
    if (st == DEID_OK) {
        w->text_redacted += s.redacted;
        w->text_review += s.review;
        w->text_kept += s.kept;
    } else {
        w->text_residual_failed++; /* only a failed residual check returns a result */
    }
    return seconds > ocr ? seconds - ocr : 0;
}

/* The text stage on one object (after the ultrasound stage, before the profile). */
static deid_status text_stage(deid_batch_worker *w, deid_dataset *ds, deid_text_result **res)
{
    double t = deid__now();
    deid_status st = deid_text_process(w->text, ds, w->run->batch->text_phi, res);
    w->seconds_deid += text_count(w, *res, st, deid__now() - t);
    return st;
}

/* Did the text stage change the pixels (a region redacted, an overlay removed)? */
static int text_changed(const deid_text_result *res)
{
    deid_text_stats s;
    deid_text_result_stats(res, &s);
    return s.redacted > 0;
}

/* " text: N found, R redacted, V review" of a log line (never the text). */
static void text_note(const deid_text_result *res, char *buf, size_t cap)
{
    deid_text_stats s;
    deid_text_result_stats(res, &s);
    snprintf(buf, cap, "text: %zu found, %zu redacted, %zu review", s.merged, s.redacted,
             s.review);
}

/* One UID of a clip whose pixels were masked: a new image needs new Series and SOP Instance
 * UIDs, so they are derived from the original with another label than the header-only mapping
 * (deid-header and deid-us never write the same SOP Instance UID for different pixels), keyed
 * and deterministic (a resumed run writes the same ones). Not when UIDs are retained. */
static deid_status derive_uid(const deid_profile *p, deid_dataset *ds, uint32_t tag,
                              const char *original, char written[65])
{
    char label[160], uid[65];
    if (!original[0] || strcmp(original, written) == 0) /* absent, or --retain-uids */
        return DEID_OK;
    if (snprintf(label, sizeof label, "%s#pixels-masked", original) >= (int)sizeof label)
        return deid__fail(DEID_ERR_GENERIC, "batch", "UID too long");
    deid_status st = deid_profile_uid(p, label, uid);
    if (st == DEID_OK)
        st = deid_dataset_set_string(ds, tag, uid);
    if (st == DEID_OK)
        memcpy(written, uid, sizeof uid);
    return st;
}

static deid_status derive_pixel_uids(const deid_profile *p, deid_dataset *ds, const ids *x,
                                     deid_ids *after)
{
    deid_status st = derive_uid(p, ds, TAG_SERIES_UID, x->series, after->new_series_uid);
    if (st == DEID_OK)
        st = derive_uid(p, ds, TAG_SOP_INSTANCE, x->sop, after->new_sop_uid);
    return st;
}

static deid_batch_outcome run_one(deid_batch_worker *w, const deid_batch_entry *e,
                                  deid_dataset *ds, ids *x, names *n, deid_us_result *us,
                                  deid_text_result **text, int pixels_changed,
                                  deid_ids *after_out)
{
    deid_batch_job *run = w->run;
    const deid_batch *b = run->batch;
    char why[160];
    double t = deid__now();
    int selected = filter(b, ds, why, sizeof why);
    if (selected < 0)
        return fail(run, e->path, DEID_ERR_NOMEM);
    if (!selected)
        return skip(run, e->path, why);
    deid_status st = collect(ds, x);
    if (st == DEID_OK)
        st = make_names(run, e, x, 1, n);
    if (st != DEID_OK)
        return fail(run, e->path, st);
    if (b->resume && deid__keys_has_output(run->keys, n->out_path) && is_file(n->out_path, NULL))
        return skip(run, e->path, "already done");
    if ((st = claim_names(run, e, x, n)) != DEID_OK)
        return fail(run, e->path, st);
    w->seconds_deid += deid__now() - t;
    if (b->has_us && (st = us_stage(w, e, ds, us)) != DEID_OK)
        return fail(run, e->path, st);
    if (b->has_text && (st = text_stage(w, ds, text)) != DEID_OK)
        return fail(run, e->path, st);
    t = deid__now();
    deid_ids after;
    st = deid__profile_apply_ids(b->profile, ds, &after);
    /* Redacted pixels make a new image: new Series and SOP Instance UIDs as for deid-us. */
    if (st == DEID_OK &&
        (b->has_us || pixels_changed || (b->has_text && text_changed(*text))))
        st = derive_pixel_uids(b->profile, ds, x, &after);
    w->seconds_deid += deid__now() - t;
    if (st != DEID_OK)
        return fail(run, e->path, st);
    if (strcmp(after.pseudonym, n->pseudonym) != 0 || strcmp(after.instance, n->instance) != 0) {
        /* The name must match what the profile wrote into the object; never guess. */
        deid__fail(DEID_ERR_GENERIC, "batch", "internal error: output name does not match the "
                   "pseudonym written by the profile");
        return fail(run, e->path, DEID_ERR_GENERIC);
    }
    t = deid__now();
    st = write_outputs(w, e, x, n, ds, &after, b->has_us ? us : NULL,
                       b->has_text ? *text : NULL);
    w->seconds_write += deid__now() - t;
    if (st != DEID_OK)
        return fail(run, e->path, st);
    char note[96] = "";
    if (b->has_text)
        text_note(*text, note, sizeof note);
    if (b->has_us)
        deid__batch_log(run, DEID_LOG_INFO, "ok %s -> %s (pseudonym %s; %s %s, confidence %.2f%s%s%s%s)",
                        e->path, n->out_path, n->pseudonym, us->detector,
                        us->fan.kind == DEID_FAN_SECTOR ? "fan" : "rectangle", us->confidence,
                        us->fallback ? ", fallback " : "",
                        us->fallback == DEID_US_FALLBACK_REGIONS ? "regions"
                        : us->fallback ? "rectangle" : "", *note ? "; " : "", note);
    else
        deid__batch_log(run, DEID_LOG_INFO, "ok %s -> %s (pseudonym %s%s%s)", e->path,
                        n->out_path, n->pseudonym, *note ? "; " : "", note);
    if (after_out)
        *after_out = after;
    return DEID_BATCH_OK;
}

deid_batch_outcome deid__batch_process_dataset(deid_batch_worker *w, const deid_batch_entry *e,
                                               deid_dataset *ds, int pixels_changed,
                                               deid_ids *after)
{
    deid_batch_job *run = w->run;
    if (run->batch->resume && done_before(run, e))
        return skip(run, e->path, "already done");
    ids x = {0};
    names n = {{0}, {0}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    deid_batch_outcome o = run_one(w, e, ds, &x, &n, NULL, NULL, pixels_changed, after);
    names_free(&n);
    ids_free(&x);
    return o;
}

int deid__batch_done_before(const deid_batch_job *run, const deid_batch_entry *e)
{
    return done_before(run, e);
}

deid_batch_outcome deid__batch_fail(deid_batch_job *run, const char *path, deid_status st)
{
    return fail(run, path, st);
}

deid_batch_outcome deid__batch_skip(deid_batch_job *run, const char *path, const char *why)
{
    return skip(run, path, why);
}

/* ---- raster files (text stage) ------------------------------------------------------------ */

/* The stem of a file name: without its last extension ("a.b.png" -> "a.b"; "README" and
 * ".png" are stems). Returns its length. */
static size_t stem_len(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && dot != name ? (size_t)(dot - name) : strlen(name);
}

/* OUTPUT/<rel>/<prefix><name> and HEADERS/<rel>/<prefix><stem>_text.json; the n-th raster of
 * the same stem (e->dup, numbered by the driver in path order) is "<stem>_<n>.<ext>". */
static deid_status raster_names(const deid_batch_job *run, const deid_batch_entry *e, names *n)
{
    const deid_batch *b = run->batch;
    const char *name = strrchr(e->path, '/');
    name = name ? name + 1 : e->path;
    size_t stem = stem_len(name);
    deid_buf s = {0}, f = {0};
    int rc = e->dup > 1 ? deid__buf_printf(&s, "%.*s_%u", (int)stem, name, e->dup)
                        : deid__buf_printf(&s, "%.*s", (int)stem, name);
    if (rc == 0)
        rc = deid__buf_printf(&f, "%s%s", s.data, name + stem);
    const char *rel = b->flat ? "" : e->rel_dir;
    const char *prefix = b->prefix ? b->prefix : "";
    if (rc == 0) {
        n->out_dir = path_of(run->out_root, rel, NULL, NULL, NULL);
        n->out_path = path_of(run->out_root, rel, prefix, f.data, "");
        n->json_dir = path_of(run->hdr_root, rel, NULL, NULL, NULL);
        n->text_path = path_of(run->hdr_root, rel, prefix, s.data, "_text.json");
    }
    deid__buf_free(&s);
    deid__buf_free(&f);
    if (rc != 0 || !n->out_dir || !n->out_path || !n->json_dir || !n->text_path)
        return deid__fail(DEID_ERR_NOMEM, "batch", "out of memory");
    return DEID_OK;
}

int deid__batch_output_done(deid_batch_job *run, const char *output_path)
{
    if (deid__keys_has_output(run->keys, output_path))
        return 1;
    /* A raster: OUTPUT/<rel>/<prefix><stem>.<ext> -> HEADERS/<rel>/<prefix><stem>_text.json */
    size_t r = strlen(run->out_root);
    if (strncmp(output_path, run->out_root, r) != 0 || output_path[r] != '/')
        return 0;
    const char *rel = output_path + r + 1, *slash = strrchr(rel, '/');
    const char *name = slash ? slash + 1 : rel, *own = name;
    const char *prefix = run->batch->prefix ? run->batch->prefix : "";
    if (strncmp(own, prefix, strlen(prefix)) == 0)
        own += strlen(prefix);
    deid_buf report = {0};
    int done = deid__buf_printf(&report, "%s/%.*s%.*s_text.json", run->hdr_root,
                                (int)(own - rel), rel, (int)stem_len(own), own) == 0 &&
               is_file(report.data, NULL);
    deid__buf_free(&report);
    return done;
}

/* With --sync: the raster written by the text engine reaches the disk before its report. */
static deid_status sync_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        deid_status st = deid__fail(DEID_ERR_IO, "batch", "%s: cannot sync: %s", path,
                                    strerror(errno));
        if (fd >= 0)
            close(fd);
        return st;
    }
    close(fd);
    return DEID_OK;
}

/* A PNG, JPEG, TIFF or BMP file: text found and redacted by the engine, written in its format
 * under its own name; then its review rows, then its report, which marks it done: a resume
 * skips a raster whose report and output exist (rasters have no keys.csv row). */
static deid_batch_outcome run_raster(deid_batch_worker *w, const deid_batch_entry *e,
                                     names *n, deid_text_result **res)
{
    deid_batch_job *run = w->run;
    const deid_batch *b = run->batch;
    deid_status st = raster_names(run, e, n);
    if (st != DEID_OK)
        return fail(run, e->path, st);
    if (b->resume && is_file(n->text_path, NULL) && is_file(n->out_path, NULL))
        return skip(run, e->path, "already done");
    char other[4096];
    const char *mine[2] = {n->out_path, n->text_path};
    for (int i = 0; i < 2; i++) {
        int c = claim(run, mine[i], e->path, other, sizeof other);
        if (c < 0)
            return fail(run, e->path, DEID_ERR_NOMEM);
        if (c == 0) {
            deid__fail(DEID_ERR_GENERIC, "batch", "%s is already written for %s", mine[i],
                       other);
            return fail(run, e->path, DEID_ERR_GENERIC);
        }
    }
    uint64_t size = 0;
    if (is_file(e->path, &size))
        w->bytes_in += size;
    if ((st = deid__mkdirs(n->out_dir)) != DEID_OK)
        return fail(run, e->path, st);
    double t = deid__now();
    st = deid_text_process_file(w->text, e->path, n->out_path, b->text_phi, res);
    w->seconds_write += text_count(w, *res, st, deid__now() - t);
    if (st != DEID_OK)
        return fail(run, e->path, st);
    t = deid__now();
    unsigned flags = b->durable ? DEID_WRITE_SYNC : 0;
    if (b->durable)
        st = sync_file(n->out_path);
    if (st == DEID_OK)
        st = write_text(run, n, n->out_path, *res, flags);
    w->seconds_write += deid__now() - t;
    if (st != DEID_OK) {
        unlink(n->out_path);
        unlink(n->text_path);
        return fail(run, e->path, st);
    }
    if (is_file(n->out_path, &size))
        w->bytes_out += size;
    char note[96];
    text_note(*res, note, sizeof note);
    deid__batch_log(run, DEID_LOG_INFO, "ok %s -> %s (%s)", e->path, n->out_path, note);
    return DEID_BATCH_OK;
}

static deid_batch_outcome process_raster(deid_batch_worker *w, const deid_batch_entry *e)
{
    deid_clear_error();
    names n = {{0}, {0}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    deid_text_result *res = NULL;
    deid_batch_outcome o = run_raster(w, e, &n, &res);
    deid_text_result_free(res);
    names_free(&n);
    return o;
}

deid_batch_outcome deid__batch_process(deid_batch_worker *w, const deid_batch_entry *e)
{
    deid_batch_job *run = w->run;
    const deid_batch *b = run->batch;
    if (e->error) {
        deid__batch_log(run, DEID_LOG_ERROR, "%s: %s", e->path, e->error);
        return DEID_BATCH_FAILED;
    }
    if (b->has_text && e->raster != DEID_RASTER_UNKNOWN)
        return process_raster(w, e);
    if (b->resume && done_before(run, e))
        return skip(run, e->path, "already done");
    deid_clear_error();
    uint64_t size = 0;
    double t = deid__now();
    deid_dataset *ds = NULL;
    deid_status st = deid_dataset_read_file(e->path, b->read.version ? &b->read : NULL, &ds);
    w->seconds_read += deid__now() - t;
    if (st != DEID_OK)
        return fail(run, e->path, st);
    if (is_file(e->path, &size))
        w->bytes_in += size;
    ids x = {0};
    names n = {{0}, {0}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    deid_us_result us;
    memset(&us, 0, sizeof us);
    deid_text_result *text = NULL;
    deid_batch_outcome o = run_one(w, e, ds, &x, &n, &us, &text, 0, NULL);
    deid_text_result_free(text);
    deid_us_result_clear(&us);
    names_free(&n);
    ids_free(&x);
    deid_dataset_free(ds);
    return o;
}

/* ---- memory ------------------------------------------------------------------------------- */

deid_status deid_deidentify_memory(const deid_profile *profile, const void *data, size_t size,
                                   void **out, size_t *out_size)
{
    if (!profile || !data || !out || !out_size)
        return deid__fail(DEID_ERR_ARGUMENT, "batch",
                          "deid_deidentify_memory: profile, data, out and out_size are required");
    deid_dataset *ds = NULL;
    deid_status st = deid_dataset_read_memory(data, size, "memory", NULL, &ds);
    if (st != DEID_OK)
        return st;
    st = deid_profile_apply(profile, ds);
    if (st == DEID_OK)
        st = deid_dataset_write_memory(ds, out, out_size);
    deid_dataset_free(ds);
    return st;
}
