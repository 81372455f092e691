/* The CT stage of a batch (deid_batch_options.ct): the scanned files are grouped into series
 * (same directory, same SeriesInstanceUID, Modality CT, with pixels), one worker takes a
 * whole series: its slices become a volume (sorted along the normal), the face is removed,
 * the voxels go back into the slices, and each slice is written the way every file of a
 * batch is (profile, names, keys.csv row), or with its header kept. NIfTI, NRRD and a QC
 * render follow per series. A series fails as a whole: none of its slices is written when
 * one cannot be read or the volume cannot be defaced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "batch/batch_int.h"
#include "core/core.h"
#include "dicom/dataset_int.h"
#include "dicom/dicom_int.h"
#include "deid/deid.h"
#include "ct/ct_int.h"
#include "profile/profile_int.h"

#define M "batch"
#define TAG_MODALITY DEID_TAG(0x0008, 0x0060)
#define TAG_SERIES_UID DEID_TAG(0x0020, 0x000E)
#define TAG_NUMBER_OF_FRAMES DEID_TAG(0x0028, 0x0008)

/* ---- planning ------------------------------------------------------------------------------ */

typedef struct plan_item {
    char *key;   /* rel_dir "\n" SeriesInstanceUID of a CT slice with pixels, or NULL */
    size_t idx;  /* index in the scanned list */
} plan_item;

static int cmp_plan(const void *a, const void *b)
{
    const plan_item *p = a, *q = b;
    if (!p->key != !q->key)
        return p->key ? -1 : 1;
    if (p->key) {
        int c = strcmp(p->key, q->key);
        if (c)
            return c;
    }
    return (p->idx > q->idx) - (p->idx < q->idx);
}

/* The grouping key of one scanned file (NULL when it is no CT slice, or unreadable, or its
 * pixels could not be decoded: such files are units of their own and report why when
 * processed, and the series goes on without them). */
static char *key_of(const deid_batch_job *run, const deid_batch_entry *e)
{
    if (e->error)
        return NULL;
    const deid_batch *b = run->batch;
    deid_dataset *ds = NULL;
    if (deid_dataset_read_file(e->path, b->read.version ? &b->read : NULL, &ds) != DEID_OK) {
        deid_clear_error();
        return NULL;
    }
    char modality[17] = "", uid[65] = "";
    char *key = NULL;
    if (deid_dataset_get_string(ds, TAG_MODALITY, modality, sizeof modality) == DEID_OK &&
        !strcmp(modality, "CT") &&
        deid_dataset_get_string(ds, TAG_SERIES_UID, uid, sizeof uid) == DEID_OK && *uid &&
        deid__image_check(ds, 0) == DEID_OK) {
        deid_buf k = {0};
        if (deid__buf_printf(&k, "%s\n%s", b->flat ? "" : e->rel_dir, uid) == 0)
            key = k.data;
        else
            deid__buf_free(&k);
    }
    deid_clear_error();
    deid_dataset_free(ds);
    return key;
}

deid_status deid__batch_ct_plan(deid_batch_job *run)
{
    size_t n = run->list.n;
    if (!n)
        return DEID_OK;
    plan_item *items = deid__calloc(n, sizeof *items);
    deid_batch_entry *sorted = deid__malloc(n * sizeof *sorted);
    run->units = deid__calloc(n, sizeof *run->units);
    if (!items || !sorted || !run->units) {
        free(items);
        free(sorted);
        return DEID_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].idx = i;
        items[i].key = key_of(run, &run->list.v[i]);
    }
    qsort(items, n, sizeof *items, cmp_plan);
    size_t min = run->batch->ct.min_slices;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (items[i].key && j < n && items[j].key && !strcmp(items[i].key, items[j].key))
            j++;
        if (items[i].key && j - i >= min) {
            run->units[run->nunits++] = (deid_batch_unit){i, j - i, 1};
        } else {
            for (size_t k = i; k < j; k++)
                run->units[run->nunits++] = (deid_batch_unit){k, 1, 0};
        }
        i = j;
    }
    for (size_t i = 0; i < n; i++) {
        sorted[i] = run->list.v[items[i].idx];
        free(items[i].key);
    }
    memcpy(run->list.v, sorted, n * sizeof *sorted);
    free(sorted);
    free(items);
    return DEID_OK;
}

/* ---- one unit -------------------------------------------------------------------------------- */

static void count(deid_batch_worker *w, deid_batch_outcome o)
{
    if (o == DEID_BATCH_OK)
        w->ok++;
    else if (o == DEID_BATCH_SKIPPED)
        w->skipped++;
    else
        w->failed++;
}

/* Path <root>/<rel>/<stem><ext>; NULL when out of memory. */
static char *out_path(const char *root, const char *rel, const char *stem, const char *ext)
{
    deid_buf p = {0};
    if (deid__buf_printf(&p, "%s%s%s/%s%s", root, *rel ? "/" : "", rel, stem, ext) != 0) {
        deid__buf_free(&p);
        return NULL;
    }
    return p.data;
}

/* The directory part of `path` created. */
static deid_status mkdirs_for(const char *path)
{
    char *dir = deid__strdup(path);
    if (!dir)
        return DEID_ERR_NOMEM;
    char *slash = strrchr(dir, '/');
    deid_status st = DEID_OK;
    if (slash && slash != dir) {
        *slash = '\0';
        st = deid__mkdirs(dir);
    }
    free(dir);
    return st;
}

/* Fail every file of the series with the one reason. */
static void fail_all(deid_batch_worker *w, const deid_batch_entry *v, size_t n,
                     const char *reason)
{
    for (size_t i = 0; i < n; i++) {
        deid__batch_log(w->run, DEID_LOG_ERROR, "%s: %s", v[i].path, reason);
        w->failed++;
    }
    w->ct_failed++;
}

/* Keep-headers mode: where an input is written (its own name, with the prefix); NULL when out
 * of memory. */
static char *kept_path(const deid_batch_job *run, const deid_batch_entry *e)
{
    const deid_batch *b = run->batch;
    const char *base = strrchr(e->path, '/');
    deid_buf stem = {0};
    if (deid__buf_printf(&stem, "%s%s", b->prefix ? b->prefix : "",
                         base ? base + 1 : e->path) != 0) {
        deid__buf_free(&stem);
        return NULL;
    }
    char *path = out_path(run->out_root, b->flat ? "" : e->rel_dir, stem.data, "");
    deid__buf_free(&stem);
    return path;
}

/* Keep-headers mode: the slice with its header as it was, under its input name. */
static deid_batch_outcome write_kept(deid_batch_worker *w, const deid_batch_entry *e,
                                     const deid_dataset *ds)
{
    deid_batch_job *run = w->run;
    const deid_batch *b = run->batch;
    char *path = kept_path(run, e);
    if (!path)
        return deid__batch_fail(run, e->path, DEID_ERR_NOMEM);
    deid_status st = mkdirs_for(path);
    if (st == DEID_OK)
        st = deid__dataset_write_file(ds, path, b->durable ? DEID_WRITE_SYNC : 0);
    deid_batch_outcome o;
    if (st != DEID_OK) {
        o = deid__batch_fail(run, e->path, st);
    } else {
        deid__batch_log(run, DEID_LOG_INFO, "ok %s -> %s (headers kept)", e->path, path);
        o = DEID_BATCH_OK;
    }
    free(path);
    return o;
}

/* One multi-frame object for the whole series (deid_ct_options.enhanced), written through the
 * profile as the series' first slice (its keys.csv row) or with the headers kept. The other
 * slices count as done with it. Returns the number of slices it holds (0 when it failed);
 * `name` receives the written Series Instance UID. */
static size_t write_enhanced(deid_batch_worker *w, const deid_batch_entry *v, size_t n,
                             deid_series *s, const deid_volume *vol, char *name, size_t cap)
{
    deid_batch_job *run = w->run;
    const deid_batch *b = run->batch;
    deid_dataset *enh = NULL;
    deid_status st = deid_volume_to_enhanced(vol, s, b->ct.enhanced == 2, &enh);
    if (st != DEID_OK) {
        const char *why = deid_last_error();
        for (size_t i = 0; i < n; i++) {
            deid__batch_log(run, DEID_LOG_ERROR, "%s: series not written: %s", v[i].path, why);
            w->failed++;
        }
        return 0;
    }
    deid_batch_outcome o;
    if (b->ct.keep_headers) {
        o = write_kept(w, &v[0], enh);
        if (o == DEID_BATCH_OK)
            deid_dataset_get_string(enh, TAG_SERIES_UID, name, cap);
    } else {
        deid_ids after;
        memset(&after, 0, sizeof after);
        o = deid__batch_process_dataset(w, &v[0], enh, 1, &after);
        if (o == DEID_BATCH_OK)
            snprintf(name, cap, "%s", after.new_series_uid);
    }
    deid_dataset_free(enh);
    count(w, o);
    for (size_t i = 1; i < n; i++) {
        if (o == DEID_BATCH_FAILED)
            deid__batch_log(run, DEID_LOG_ERROR, "%s: series not written (see %s)", v[i].path,
                            v[0].path);
        count(w, o);
    }
    if (o == DEID_BATCH_OK)
        deid__batch_log(run, DEID_LOG_INFO, "series in %s: %zu slices in one %s object",
                        *v[0].rel_dir && !b->flat ? v[0].rel_dir : ".", n,
                        b->ct.enhanced == 2 ? "Enhanced CT" : "Legacy Converted Enhanced CT");
    return o == DEID_BATCH_OK ? n : 0;
}

/* The QC copy (when renders are asked for) and the defacing of one volume, logged. */
static deid_status deface(deid_batch_worker *w, const char *rel, deid_volume *vol,
                          deid_volume **before)
{
    deid_batch_job *run = w->run;
    const deid_batch *b = run->batch;
    deid_status st = DEID_OK;
    if (b->ct_qc_dir)
        st = deid_volume_copy(vol, before);
    if (st != DEID_OK || !b->ct.deface)
        return st;
    deid_deface_report dr;
    memset(&dr, 0, sizeof dr);
    st = deid_volume_deface(vol, &b->ct.face, NULL, &dr);
    w->seconds_deface += dr.seconds;
    if (st == DEID_OK) {
        w->ct_altered += dr.altered;
        deid__batch_log(run, DEID_LOG_INFO, "deface %s: %s", *rel ? rel : ".", dr.message);
    }
    return st;
}

/* Resume: is every slice of the series written already? */
static int series_done(deid_batch_worker *w, const deid_batch_entry *v, size_t n)
{
    deid_batch_job *run = w->run;
    const deid_batch *b = run->batch;
    if (!b->resume || !b->ct.dicom)
        return 0;
    for (size_t i = 0; i < (b->ct.enhanced ? 1 : n); i++) {
        if (!b->ct.keep_headers) {
            if (!deid__batch_done_before(run, &v[i]))
                return 0;
            continue;
        }
        char *path = kept_path(run, &v[i]);
        struct stat sb;
        int there = path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
        free(path);
        if (!there)
            return 0;
    }
    return 1;
}

/* NIfTI, NRRD and QC render of one series, named `name`. Failures are logged; they fail the
 * series' count but not its DICOM files (already written). */
static int series_files(deid_batch_worker *w, const char *rel, const char *name,
                        const deid_volume *before, const deid_volume *vol)
{
    deid_batch_job *run = w->run;
    const deid_ct_options *c = &run->batch->ct;
    int ok = 1;
    for (int k = 0; k < 3; k++) {
        const char *root = k == 0 ? c->nifti_dir : k == 1 ? (c->nifti_dir ? c->nifti_dir
                                                                       : run->hdr_root)
                                                          : c->qc_dir;
        if (!root || (k == 1 && !c->nrrd))
            continue;
        char *path = out_path(root, rel, name, k == 0 ? ".nii.gz" : k == 1 ? ".nrrd" : ".png");
        deid_status st = path ? mkdirs_for(path) : DEID_ERR_NOMEM;
        if (st == DEID_OK)
            st = k == 0 ? deid_volume_write_nifti(vol, path)
                 : k == 1 ? deid_volume_write_nrrd(vol, path, 1)
                          : deid_volume_render_qc(before, vol, path);
        if (st != DEID_OK) {
            deid__batch_log(run, DEID_LOG_ERROR, "%s: %s", path ? path : name,
                            deid_last_error());
            ok = 0;
        } else {
            deid__batch_log(run, DEID_LOG_INFO, "wrote %s", path);
        }
        free(path);
    }
    return ok;
}

/* The end of a volume (series or multi-frame object) whose DICOM outputs are done: its
 * NIfTI, NRRD and QC files when it was written (`name`, NULL when it was not), the series
 * counters, and the volumes freed. */
static void finish(deid_batch_worker *w, const char *rel, const char *name,
                   deid_volume *before, deid_volume *vol)
{
    int ok = name != NULL;
    if (ok && *name)
        ok = series_files(w, rel, name, before ? before : vol, vol);
    if (ok)
        w->ct_series++;
    else
        w->ct_failed++;
    deid_volume_free(before);
    deid_volume_free(vol);
}

/* One multi-frame CT object (Enhanced CT, Legacy Converted, or any multi-frame CT): its
 * frames are the volume; defaced, written back into the same object, then written like a
 * series' slice (profile) or with its header kept. */
static void multiframe(deid_batch_worker *w, const deid_batch_entry *e, deid_dataset *ds)
{
    deid_batch_job *run = w->run;
    const deid_batch *b = run->batch;
    const char *rel = b->flat ? "" : e->rel_dir;
    if (series_done(w, e, 1)) {
        count(w, deid__batch_skip(run, e->path, "already done"));
        return;
    }
    deid_volume *vol = NULL, *before = NULL;
    size_t unmatched = 0;
    deid_status st = deid_volume_from_dataset(ds, &vol);
    if (st == DEID_OK) {
        deid_volume_geometry g;
        deid_volume_get_geometry(vol, &g);
        deid__batch_log(run, DEID_LOG_INFO, "volume in %s: one object of %zu frames",
                        *rel ? rel : ".", g.dims[2]);
        st = deface(w, rel, vol, &before);
    }
    if (st == DEID_OK && b->ct.dicom)
        st = deid__dataset_set_volume(ds, vol, &unmatched);
    if (st == DEID_OK && unmatched && b->ct.deface)
        st = deid__fail(DEID_ERR_UNSUPPORTED, M, "%zu frames match no slice of the volume, so "
                        "their face could not be removed", unmatched);
    if (st != DEID_OK) {
        count(w, deid__batch_fail(run, e->path, st));
        w->ct_failed++;
        deid_volume_free(before);
        deid_volume_free(vol);
        return;
    }
    char name[DEID_IDS_UID + 1] = "";
    deid_batch_outcome o = DEID_BATCH_OK;
    if (!b->ct.dicom) {
        char uid[65] = "";
        if (deid_dataset_get_string(ds, TAG_SERIES_UID, uid, sizeof uid) == DEID_OK)
            deid_profile_uid(b->profile, uid, name);
        deid_clear_error();
    } else if (b->ct.keep_headers) {
        o = write_kept(w, e, ds);
        deid_dataset_get_string(ds, TAG_SERIES_UID, name, sizeof name);
        deid_clear_error();
    } else {
        deid_ids after;
        memset(&after, 0, sizeof after);
        o = deid__batch_process_dataset(w, e, ds, 1, &after);
        if (o == DEID_BATCH_OK)
            snprintf(name, sizeof name, "%s", after.new_series_uid);
    }
    count(w, o);
    finish(w, rel, o == DEID_BATCH_OK ? name : NULL, before, vol);
}

/* A file that is no slice of a CT volume: say why. */
static void single(deid_batch_worker *w, const deid_batch_entry *e)
{
    deid_batch_job *run = w->run;
    if (e->error) {
        deid__batch_log(run, DEID_LOG_ERROR, "%s: %s", e->path, e->error);
        w->failed++;
        return;
    }
    deid_dataset *ds = NULL;
    deid_status st = deid_dataset_read_file(e->path, run->batch->read.version ? &run->batch->read
                                                                              : NULL, &ds);
    if (st != DEID_OK) {
        count(w, deid__batch_fail(run, e->path, st));
        return;
    }
    char modality[17] = "", nf[16] = "";
    deid_dataset_get_string(ds, TAG_MODALITY, modality, sizeof modality);
    deid_dataset_get_string(ds, TAG_NUMBER_OF_FRAMES, nf, sizeof nf);
    deid_clear_error();
    int ct = !strcmp(modality, "CT");
    long frames = strtol(nf, NULL, 10);
    /* A CT object whose pixels are missing or cannot be what its header says is an error */
    st = ct ? deid__image_check(ds, 0) : DEID_OK;
    if (st == DEID_OK && ct && frames > 0 && (size_t)frames >= run->batch->ct.min_slices)
        multiframe(w, e, ds);
    deid_dataset_free(ds);
    if (st != DEID_OK)
        count(w, deid__batch_fail(run, e->path, st));
    if (st != DEID_OK || (ct && frames > 0 && (size_t)frames >= run->batch->ct.min_slices))
        return;
    char why[96];
    if (!ct)
        snprintf(why, sizeof why, "not CT");
    else
        snprintf(why, sizeof why, "not a volume (its series has fewer than %zu slices here)",
                 run->batch->ct.min_slices);
    count(w, deid__batch_skip(run, e->path, why));
}

void deid__batch_ct_unit(deid_batch_worker *w, const deid_batch_unit *u)
{
    deid_batch_job *run = w->run;
    const deid_batch *b = run->batch;
    const deid_batch_entry *v = &run->list.v[u->start];
    if (!u->series) {
        single(w, v);
        return;
    }
    size_t n = u->count;
    const char *rel = b->flat ? "" : v[0].rel_dir;
    if (series_done(w, v, n)) {
        for (size_t i = 0; i < n; i++)
            count(w, deid__batch_skip(run, v[i].path, "already done"));
        return;
    }
    deid_series *s = NULL;
    deid_volume *vol = NULL, *before = NULL;
    char reason[512] = "";
    deid_status st = deid_series_new(&s);
    double t = deid__now();
    for (size_t i = 0; i < n && st == DEID_OK; i++) {
        deid_dataset *ds = NULL;
        st = deid_dataset_read_file(v[i].path, b->read.version ? &b->read : NULL, &ds);
        struct stat sb;
        if (st == DEID_OK && stat(v[i].path, &sb) == 0)
            w->bytes_in += (uint64_t)sb.st_size;
        if (st == DEID_OK && (st = deid_series_add(s, ds, v[i].path)) != DEID_OK)
            deid_dataset_free(ds);
        if (st != DEID_OK)
            snprintf(reason, sizeof reason, "series not written: %s", deid_last_error());
    }
    w->seconds_read += deid__now() - t;
    deid_series_report rep;
    memset(&rep, 0, sizeof rep);
    if (st == DEID_OK && (st = deid_series_sort(s, &rep)) == DEID_OK)
        deid__batch_log(run, DEID_LOG_INFO, "series in %s: %s", *rel ? rel : ".", rep.message);
    /* When defacing, every slice gets the volume's pixels back (a slice that would not fails
     * the series), so each slice's own pixels go once they are in the volume: a series costs
     * its volume and headers, not its pixels twice. */
    if (st == DEID_OK)
        st = b->ct.deface ? deid__volume_from_series_taking_pixels(s, &vol)
                          : deid_volume_from_series(s, &vol);
    if (st == DEID_OK)
        st = deface(w, rel, vol, &before);
    size_t unmatched = 0;
    deid__series_writeback *wb = NULL; /* each slice gets the volume's voxels as it is written */
    if (st == DEID_OK && b->ct.dicom)
        st = deid__series_writeback_new(s, vol, &wb, &unmatched);
    if (st == DEID_OK && unmatched && b->ct.deface) { /* never write a slice not defaced */
        snprintf(reason, sizeof reason, "series not written: %zu slices match no slice of "
                 "its volume, so their face could not be removed", unmatched);
        st = DEID_ERR_UNSUPPORTED;
    }
    if (st != DEID_OK) {
        if (!*reason)
            snprintf(reason, sizeof reason, "series not written: %s", deid_last_error());
        fail_all(w, v, n, reason);
        deid__series_writeback_free(wb);
        deid_volume_free(before);
        deid_volume_free(vol);
        deid_series_free(s);
        return;
    }
    if (unmatched)
        deid__batch_log(run, DEID_LOG_WARNING, "series in %s: %zu slices match no volume slice "
                        "(written as they were, not defacing)", *rel ? rel : ".", unmatched);
    /* The slices, in series order; each finds its scanned entry by path. */
    char name[DEID_IDS_UID + 1] = "";
    size_t written = 0;
    if (b->ct.dicom && b->ct.enhanced) {
        written = write_enhanced(w, v, n, s, vol, name, sizeof name);
        goto volumes;
    }
    for (size_t i = 0; i < deid_series_count(s); i++) {
        const char *path = deid_series_path(s, i);
        const deid_batch_entry *e = NULL;
        for (size_t k = 0; k < n && !e; k++)
            if (path && !strcmp(v[k].path, path))
                e = &v[k];
        deid_dataset *ds = deid_series_dataset(s, i);
        if (!e || !ds)
            continue;
        if (!*name && b->ct.keep_headers)
            deid_dataset_get_string(ds, TAG_SERIES_UID, name, sizeof name);
        if (!b->ct.dicom) {
            written++;
            continue;
        }
        deid_batch_outcome o;
        deid_status wst = deid__series_writeback_slice(wb, i);
        if (wst != DEID_OK) {
            o = deid__batch_fail(run, e->path, wst);
        } else if (b->ct.keep_headers) {
            o = write_kept(w, e, ds);
        } else {
            deid_ids after;
            memset(&after, 0, sizeof after);
            o = deid__batch_process_dataset(w, e, ds, 1, &after);
            if (o == DEID_BATCH_OK && !*name)
                snprintf(name, sizeof name, "%s", after.new_series_uid);
        }
        /* written: its pixels are in the file, and the volume still has them */
        if (b->ct.deface && deid_dataset_remove(ds, DEID_TAG(0x7FE0, 0x0010)) != DEID_OK)
            deid_clear_error();
        written += o != DEID_BATCH_FAILED;
        count(w, o);
    }
volumes:
    if (!b->ct.dicom) {
        /* no DICOM: the volume files are the outputs; name them by the keyed series UID */
        char uid[65] = "";
        deid_dataset *first = deid_series_dataset(s, 0);
        if (first && deid_dataset_get_string(first, TAG_SERIES_UID, uid, sizeof uid) == DEID_OK)
            deid_profile_uid(b->profile, uid, name);
        w->ok += n;
    }
    deid_clear_error();
    deid__series_writeback_free(wb);
    finish(w, rel, written ? name : NULL, before, vol);
    deid_series_free(s);
}
