/* Batch runs over a small corpus written with the library itself: documented output names,
 * keys.csv rows, resume (skips finished files, recreates missing ones, never duplicates a row,
 * repairs a torn last line), one error line per bad file, filters, a clean failure for an
 * unwritable output directory, no temporary files left, no PHI in log lines. */
#define _XOPEN_SOURCE 700 /* mkdtemp, symlink */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "deid/deid.h"
#include "profile/profile_int.h"

/* ---- small file helpers ------------------------------------------------------------------ */

static char root[256];

static const char *at(const char *rel)
{
    static char bufs[8][1024];
    static int i;
    char *p = bufs[i++ % 8];
    snprintf(p, 1024, "%s/%s", root, rel);
    return p;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (size)
            *size = (size_t)n;
    }
    return buf;
}

static void spit(const char *path, const void *data, size_t size, const char *mode)
{
    FILE *f = fopen(path, mode);
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(data, 1, size, f) == size);
        fclose(f);
    }
}

static int contains(const void *data, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    const char *d = data;
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(d + i, needle, k) == 0)
            return 1;
    return 0;
}

static size_t count_lines(const char *path)
{
    char *s = slurp(path, NULL);
    size_t n = 0;
    for (char *p = s; p && *p; p++)
        n += *p == '\n';
    free(s);
    return n;
}

static void mkdir_p(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        chmod(path, 0755);
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Files under path whose name contains `needle` (e.g. ".tmp"), recursively, not following
 * links. */
static int count_named(const char *path, const char *needle)
{
    int n = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char sub[1024];
        struct stat st;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            n += count_named(sub, needle);
        else if (strstr(e->d_name, needle))
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* ---- a minimal Part 10 object, written through the library ------------------------------ */

typedef struct buf {
    unsigned char d[4096];
    size_t n;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void u16(buf *b, unsigned v)
{
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    put(b, x, 2);
}

static void u32(buf *b, unsigned long v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(b, x, 4);
}

/* Explicit VR little endian element; text padded to even length. */
static void el(buf *b, unsigned g, unsigned e, const char *vr, const void *v, size_t n)
{
    int uid = !strcmp(vr, "UI"), bin = !strcmp(vr, "OB") || !strcmp(vr, "US") ||
                                       !strcmp(vr, "UL");
    size_t padded = n + (n & 1);
    u16(b, g);
    u16(b, e);
    put(b, vr, 2);
    if (!strcmp(vr, "OB")) {
        u16(b, 0);
        u32(b, padded);
    } else {
        u16(b, (unsigned)padded);
    }
    put(b, v, n);
    if (n & 1)
        put(b, uid || bin ? "\0" : " ", 1);
}

static void str(buf *b, unsigned g, unsigned e, const char *vr, const char *s)
{
    el(b, g, e, vr, s, strlen(s));
}

static void us(buf *b, unsigned g, unsigned e, unsigned v)
{
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    el(b, g, e, "US", x, 2);
}

typedef struct object {
    const char *patient_id, *patient_name, *modality, *sop, *study, *series;
    int frames; /* 0: no Number of Frames element */
} object;

static void part10(const object *o, buf *b)
{
    const char *sop_class = o->frames > 1 ? "1.2.840.10008.5.1.4.1.1.3.1"
                                          : "1.2.840.10008.5.1.4.1.1.6.1";
    buf meta = {{0}, 0};
    el(&meta, 0x0002, 0x0001, "OB", "\0\1", 2);
    str(&meta, 0x0002, 0x0002, "UI", sop_class);
    str(&meta, 0x0002, 0x0003, "UI", o->sop);
    str(&meta, 0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1");
    str(&meta, 0x0002, 0x0012, "UI", "1.2.3.4.5");
    b->n = 0;
    memset(b->d, 0, 128);
    b->n = 128;
    put(b, "DICM", 4);
    u16(b, 0x0002);
    u16(b, 0x0000);
    put(b, "UL", 2);
    u16(b, 4);
    u32(b, meta.n);
    put(b, meta.d, meta.n);
    str(b, 0x0008, 0x0016, "UI", sop_class);
    str(b, 0x0008, 0x0018, "UI", o->sop);
    str(b, 0x0008, 0x0020, "DA", "20240102");
    str(b, 0x0008, 0x0060, "CS", o->modality);
    str(b, 0x0010, 0x0010, "PN", o->patient_name);
    str(b, 0x0010, 0x0020, "LO", o->patient_id);
    str(b, 0x0010, 0x0030, "DA", "19700203");
    str(b, 0x0020, 0x000D, "UI", o->study);
    str(b, 0x0020, 0x000E, "UI", o->series);
    us(b, 0x0028, 0x0002, 1);
    str(b, 0x0028, 0x0004, "CS", "MONOCHROME2");
    int frames = o->frames ? o->frames : 1;
    if (o->frames) {
        char f[16];
        snprintf(f, sizeof f, "%d", o->frames);
        str(b, 0x0028, 0x0008, "IS", f);
    }
    us(b, 0x0028, 0x0010, 2);
    us(b, 0x0028, 0x0011, 2);
    us(b, 0x0028, 0x0100, 8);
    us(b, 0x0028, 0x0101, 8);
    us(b, 0x0028, 0x0102, 7);
    us(b, 0x0028, 0x0103, 0);
    unsigned char px[64] = {0};
    el(b, 0x7FE0, 0x0010, "OB", px, (size_t)frames * 4);
}

static void write_object(const object *o, const char *path)
{
    buf b;
    part10(o, &b);
    deid_dataset *ds = NULL;
    CHECK_OK(deid_dataset_read_memory(b.d, b.n, "test object", NULL, &ds));
    if (ds)
        CHECK_OK(deid_dataset_write_file(ds, path));
    deid_dataset_free(ds);
}

/* The corpus: two files of patient A (one multi-frame), one CT of patient B in a deeper
 * directory, a text file and an empty file. */
static const object corpus[] = {
    {"PID-A", "DOE^JANE", "US", "1.2.826.0.1.3680043.2.1125.1.1", "1.2.826.0.1.3680043.2.1125.9.1",
     "1.2.826.0.1.3680043.2.1125.8.1", 3},
    {"PID-A", "DOE^JANE", "US", "1.2.826.0.1.3680043.2.1125.1.2", "1.2.826.0.1.3680043.2.1125.9.1",
     "1.2.826.0.1.3680043.2.1125.8.1", 0},
    {"", "ROE^RICHARD", "CT", "1.2.826.0.1.3680043.2.1125.1.3", "1.2.826.0.1.3680043.2.1125.9.2",
     "1.2.826.0.1.3680043.2.1125.8.2", 1},
};
static const char *const corpus_paths[] = {"in/a/1.dcm", "in/a/2.dcm", "in/b/c/3.dcm"};
static const char *const phi[] = {"PID-A", "DOE^JANE", "ROE^RICHARD", "20240102", "19700203",
                                  "1.2.826.0.1.3680043.2.1125"};

static void make_corpus(void)
{
    mkdir_p(at("in/a"));
    mkdir_p(at("in/b/c"));
    for (size_t i = 0; i < 3; i++)
        write_object(&corpus[i], at(corpus_paths[i]));
    spit(at("in/b/notes.txt"), "not a DICOM file\n", 17, "wb");
    spit(at("in/empty.dcm"), "", 0, "wb");
}

/* Output name of corpus object i as docs/design.md defines it. */
static void expected_name(const deid_profile *p, size_t i, const char *prefix, char *out,
                          size_t cap)
{
    char pseudonym[11] = "", instance[9] = "";
    const object *o = &corpus[i];
    CHECK_OK(deid_profile_patient_pseudonym(p, *o->patient_id ? o->patient_id : o->patient_name,
                                            pseudonym));
    CHECK(deid__profile_instance_hash(p, o->sop, instance) == 0);
    snprintf(out, cap, "%s%s_%s", prefix ? prefix : "", pseudonym, instance);
}

/* ---- log capture ------------------------------------------------------------------------- */

typedef struct logbook {
    pthread_mutex_t lock;
    int errors, warnings, infos;
    int phi; /* a line containing an original identifier */
    char last_error[1024];
} logbook;

static void on_log(void *user, deid_log_level level, const char *module, const char *message)
{
    logbook *l = user;
    (void)module;
    pthread_mutex_lock(&l->lock);
    if (level == DEID_LOG_ERROR) {
        l->errors++;
        snprintf(l->last_error, sizeof l->last_error, "%s", message);
    } else if (level == DEID_LOG_WARNING) {
        l->warnings++;
    } else {
        l->infos++;
    }
    for (size_t i = 0; i < sizeof phi / sizeof phi[0]; i++)
        if (strstr(message, phi[i])) {
            fprintf(stderr, "PHI in log line: %s\n", message);
            l->phi++;
        }
    pthread_mutex_unlock(&l->lock);
}

static deid_batch_summary run(const deid_profile *p, deid_batch_options *o, logbook *l,
                              deid_status expect)
{
    deid_batch_summary s;
    memset(&s, 0, sizeof s);
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
    o->log = on_log;
    o->log_user = l;
    deid_batch *b = NULL;
    CHECK_OK(deid_batch_new(o, p, &b));
    if (b) {
        deid_status st = deid_batch_run(b, &s);
        if (st != expect)
            fprintf(stderr, "deid_batch_run: status %d (expected %d): %s\n", (int)st, (int)expect,
                    deid_last_error());
        CHECK(st == expect);
    }
    deid_batch_free(b);
    pthread_mutex_destroy(&l->lock);
    CHECK(l->phi == 0);
    return s;
}

static void options(deid_batch_options *o, const char *in, const char *out, const char *hdr)
{
    CHECK_OK(deid_batch_options_init(o, DEID_BATCH_OPTIONS_VERSION));
    o->input = in;
    o->output_dir = out;
    o->headers_dir = hdr;
    o->workers = 2;
}

/* ---- cases ------------------------------------------------------------------------------- */

static void test_arguments(const deid_profile *p)
{
    deid_batch_options o;
    deid_batch *b = NULL;
    CHECK(deid_batch_options_init(&o, 999) == DEID_ERR_ARGUMENT);
    CHECK(deid_batch_options_init(NULL, DEID_BATCH_OPTIONS_VERSION) == DEID_ERR_ARGUMENT);
    options(&o, NULL, at("out"), NULL);
    CHECK(deid_batch_new(&o, p, &b) == DEID_ERR_ARGUMENT && b == NULL);
    options(&o, at("in"), NULL, NULL);
    CHECK(deid_batch_new(&o, p, &b) == DEID_ERR_ARGUMENT && b == NULL);
    options(&o, at("in"), at("out"), NULL);
    CHECK(deid_batch_new(&o, NULL, &b) == DEID_ERR_ARGUMENT && b == NULL);
    o.filename_prefix = "a/b";
    CHECK(deid_batch_new(&o, p, &b) == DEID_ERR_ARGUMENT && b == NULL);
    o.filename_prefix = NULL;
    o.version = 42;
    CHECK(deid_batch_new(&o, p, &b) == DEID_ERR_ARGUMENT && b == NULL);
    deid_batch_free(NULL);
}

/* First run, then the resume cases on the same trees. */
static void test_run_and_resume(const deid_profile *p)
{
    char name[3][64], path[1024];
    for (size_t i = 0; i < 3; i++)
        expected_name(p, i, NULL, name[i], sizeof name[i]);
    const char *out = at("out"), *hdr = at("hdr"), *keys = at("hdr/keys.csv");
    deid_batch_options o;
    logbook l;
    options(&o, at("in"), out, hdr);
    o.log_path = at("run.log");
    deid_batch_summary s = run(p, &o, &l, DEID_OK);
    CHECK(s.found == 5 && s.ok == 3 && s.failed == 2 && s.skipped == 0);
    CHECK(l.errors == 2);
    CHECK(s.bytes_in > 0 && s.bytes_out > 0 && s.seconds_total > 0);
    static const char *const dirs[] = {"a", "a", "b/c"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s/%s.dcm", out, dirs[i], name[i]);
        CHECK(exists(path));
        snprintf(path, sizeof path, "%s/%s/%s_DICOMHeader.json", hdr, dirs[i], name[i]);
        CHECK(exists(path));
        /* The output carries no original identifier. */
        snprintf(path, sizeof path, "%s/%s/%s.dcm", out, dirs[i], name[i]);
        size_t n = 0;
        char *data = slurp(path, &n);
        CHECK(data != NULL);
        for (size_t k = 0; data && k < sizeof phi / sizeof phi[0]; k++)
            CHECK(!contains(data, n, phi[k]));
        free(data);
    }
    struct stat st;
    CHECK(stat(keys, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(count_lines(keys) == 4);
    char *log = slurp(at("run.log"), NULL);
    CHECK(log && strstr(log, "stage totals") && strstr(log, "summary"));
    CHECK(log && strstr(log, "ok ") && strstr(log, name[2]));
    for (size_t k = 0; log && k < sizeof phi / sizeof phi[0]; k++)
        CHECK(strstr(log, phi[k]) == NULL);
    free(log);

    /* Resume with nothing left to do: every file skipped, no new row. */
    o.resume = 1;
    s = run(p, &o, &l, DEID_OK);
    CHECK(s.ok == 0 && s.skipped == 3 && s.failed == 2);
    CHECK(count_lines(keys) == 4);

    /* An output lost after its row was written: recreated, the row not repeated. */
    snprintf(path, sizeof path, "%s/a/%s.dcm", out, name[1]);
    unlink(path);
    s = run(p, &o, &l, DEID_OK);
    CHECK(s.ok == 1 && s.skipped == 2);
    CHECK(exists(path));
    CHECK(count_lines(keys) == 4);

    /* A crash after the output but before the row: the row is missing, the file is redone. */
    size_t n = 0;
    char *k = slurp(keys, &n);
    char *cut = k ? k + n - 1 : NULL;
    while (cut && cut > k && cut[-1] != '\n')
        cut--;
    if (k) {
        spit(keys, k, (size_t)(cut - k), "wb");
        CHECK(count_lines(keys) == 3);
    }
    free(k);
    s = run(p, &o, &l, DEID_OK);
    CHECK(s.ok == 1 && s.skipped == 2);
    CHECK(count_lines(keys) == 4);

    /* A torn last line (crash during the row write) is cut off; rows stay unique. */
    const char *torn = "/somewhere/x.dcm,\"half a quoted\nfield";
    spit(keys, torn, strlen(torn), "ab");
    s = run(p, &o, &l, DEID_OK);
    CHECK(s.ok == 0 && s.skipped == 3);
    CHECK(l.warnings >= 1);
    CHECK(count_lines(keys) == 4);
    k = slurp(keys, &n);
    CHECK(k && n > 0 && k[n - 1] == '\n' && !strstr(k, "half a quoted"));
    free(k);

    /* A fresh run (no resume) replaces keys.csv rather than appending to it. */
    o.resume = 0;
    s = run(p, &o, &l, DEID_OK);
    CHECK(s.ok == 3 && s.failed == 2);
    CHECK(count_lines(keys) == 4);
    CHECK(l.warnings >= 1);

    CHECK(count_named(out, ".tmp") == 0);
    CHECK(count_named(hdr, ".tmp") == 0);
    remove_tree(out);
    remove_tree(hdr);
}

static void test_layouts_and_filters(const deid_profile *p)
{
    char name[3][64], path[1024];
    for (size_t i = 0; i < 3; i++)
        expected_name(p, i, "X_", name[i], sizeof name[i]);
    deid_batch_options o;
    logbook l;

    /* Flat, with a prefix, no JSON; headers default to the output directory. */
    options(&o, at("in"), at("flat"), NULL);
    o.flat = 1;
    o.filename_prefix = "X_";
    o.write_json = 0;
    deid_batch_summary s = run(p, &o, &l, DEID_OK);
    CHECK(s.ok == 3);
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s.dcm", at("flat"), name[i]);
        CHECK(exists(path));
        snprintf(path, sizeof path, "%s/%s_DICOMHeader.json", at("flat"), name[i]);
        CHECK(!exists(path));
    }
    CHECK(exists(at("flat/keys.csv")));
    remove_tree(at("flat"));

    /* Filters: modality, single frame, SOP class. */
    options(&o, at("in"), at("f1"), NULL);
    o.modalities = "ct, mr";
    s = run(p, &o, &l, DEID_OK);
    CHECK(s.ok == 1 && s.skipped == 2 && s.failed == 2);
    options(&o, at("in"), at("f2"), NULL);
    o.skip_single_frame = 1;
    s = run(p, &o, &l, DEID_OK);
    CHECK(s.ok == 1 && s.skipped == 2);
    options(&o, at("in"), at("f3"), NULL);
    o.sop_classes = "1.2.840.10008.5.1.4.1.1.6.1";
    s = run(p, &o, &l, DEID_OK);
    CHECK(s.ok == 2 && s.skipped == 1);
    remove_tree(at("f1"));
    remove_tree(at("f2"));
    remove_tree(at("f3"));

    /* A single file as input: its output lies directly in the output directory. */
    expected_name(p, 2, NULL, name[2], sizeof name[2]);
    options(&o, at("in/b/c/3.dcm"), at("single"), NULL);
    s = run(p, &o, &l, DEID_OK);
    CHECK(s.found == 1 && s.ok == 1);
    snprintf(path, sizeof path, "%s/%s.dcm", at("single"), name[2]);
    CHECK(exists(path));
    remove_tree(at("single"));
}

/* Outputs inside the input tree and a symlink loop are not scanned. */
static void test_scan(const deid_profile *p)
{
    deid_batch_options o;
    logbook l;
    CHECK(symlink("..", at("in/b/loop")) == 0);
    options(&o, at("in"), at("in/out"), at("in/hdr"));
    deid_batch_summary s = run(p, &o, &l, DEID_OK);
    CHECK(s.found == 5 && s.ok == 3);
    s = run(p, &o, &l, DEID_OK);
    CHECK(s.found == 5 && s.ok == 3);
    remove_tree(at("in/out"));
    remove_tree(at("in/hdr"));
    unlink(at("in/b/loop"));

    if (geteuid() != 0) { /* root reads every directory */
        mkdir_p(at("in/locked"));
        chmod(at("in/locked"), 0);
        options(&o, at("in"), at("lk"), NULL);
        s = run(p, &o, &l, DEID_OK);
        CHECK(s.ok == 3 && s.failed == 3 && l.errors == 3);
        chmod(at("in/locked"), 0755);
        rmdir(at("in/locked"));
        remove_tree(at("lk"));
    }
}

/* An output directory that cannot be created: the run does not start, nothing is written. */
static void test_unwritable(const deid_profile *p)
{
    deid_batch_options o;
    logbook l;
    spit(at("plainfile"), "x", 1, "wb");
    options(&o, at("in"), at("plainfile/out"), NULL);
    deid_batch_summary s = run(p, &o, &l, DEID_ERR_IO);
    CHECK(s.ok == 0 && s.failed == 0);
    CHECK(strlen(deid_last_error()) > 0);
    options(&o, at("missing-input"), at("never"), NULL);
    s = run(p, &o, &l, DEID_ERR_IO);
    CHECK(!exists(at("never")));
    unlink(at("plainfile"));
}

/* The same object twice (a copy): both written, the second with "_2"; a warning, no failure. */
static void test_duplicates(const deid_profile *p)
{
    char name[64], path[1024];
    expected_name(p, 0, NULL, name, sizeof name);
    mkdir_p(at("dup"));
    write_object(&corpus[0], at("dup/x.dcm"));
    write_object(&corpus[0], at("dup/y.dcm"));
    deid_batch_options o;
    logbook l;
    options(&o, at("dup"), at("dup-out"), NULL);
    deid_batch_summary s = run(p, &o, &l, DEID_OK);
    CHECK(s.ok == 2 && s.failed == 0 && l.warnings == 1);
    snprintf(path, sizeof path, "%s/%s.dcm", at("dup-out"), name);
    CHECK(exists(path));
    snprintf(path, sizeof path, "%s/%s_2.dcm", at("dup-out"), name);
    CHECK(exists(path));
    snprintf(path, sizeof path, "%s/%s_2_DICOMHeader.json", at("dup-out"), name);
    CHECK(exists(path));
    CHECK(count_lines(at("dup-out/keys.csv")) == 3);
    /* Resuming finds both done. */
    o.resume = 1;
    s = run(p, &o, &l, DEID_OK);
    CHECK(s.ok == 0 && s.skipped == 2);
    CHECK(count_lines(at("dup-out/keys.csv")) == 3);
    remove_tree(at("dup-out"));
    remove_tree(at("dup"));
}

static int cancel_at_once(void *user, const deid_progress *progress)
{
    int *calls = user;
    (*calls)++;
    return progress->done < progress->total;
}

static void test_cancel(const deid_profile *p)
{
    mkdir_p(at("many"));
    for (int i = 0; i < 60; i++) {
        char sop[64], path[64];
        snprintf(sop, sizeof sop, "1.2.3.4.%d", i);
        snprintf(path, sizeof path, "many/%03d.dcm", i);
        object o = corpus[0];
        o.sop = sop;
        write_object(&o, at(path));
    }
    deid_batch_options o;
    logbook l;
    int calls = 0;
    options(&o, at("many"), at("many-out"), NULL);
    o.workers = 1;
    o.write_json = 0;
    o.progress = cancel_at_once;
    o.progress_user = &calls;
    deid_batch_summary s = run(p, &o, &l, DEID_ERR_CANCELLED);
    CHECK(calls >= 1);
    CHECK(s.found == 60 && s.ok + s.skipped + s.failed < 60);
    CHECK(count_lines(at("many-out/keys.csv")) == 1 + s.ok);
    CHECK(count_named(at("many-out"), ".tmp") == 0);
    /* Resume finishes the rest. */
    o.progress = NULL;
    o.resume = 1;
    s = run(p, &o, &l, DEID_OK);
    CHECK(s.ok + s.skipped == 60);
    CHECK(count_lines(at("many-out/keys.csv")) == 61);
    remove_tree(at("many-out"));
    remove_tree(at("many"));
}

static void test_memory(const deid_profile *p)
{
    buf b;
    part10(&corpus[0], &b);
    void *out = NULL;
    size_t n = 0;
    CHECK_OK(deid_deidentify_memory(p, b.d, b.n, &out, &n));
    CHECK(out != NULL && n > 132);
    for (size_t k = 0; out && k < sizeof phi / sizeof phi[0]; k++)
        CHECK(!contains(out, n, phi[k]));
    deid_dataset *ds = NULL;
    CHECK_OK(deid_dataset_read_memory(out, n, "output", NULL, &ds));
    deid_dataset_free(ds);
    deid_free(out);
    out = NULL;
    CHECK(deid_deidentify_memory(p, "nonsense", 8, &out, &n) != DEID_OK && out == NULL);
}

/* Real files from ../shared/data when present. */
static void test_shared(const deid_profile *p)
{
    const char *dir = check_shared("ct/head_ct_5mm/I10.dcm");
    if (!dir)
        return;
    mkdir_p(at("real"));
    static const char *const files[] = {"I10.dcm", "I11.dcm", "I12.dcm"};
    for (size_t i = 0; i < 3; i++) {
        char src[1024];
        snprintf(src, sizeof src, "%s/ct/head_ct_5mm/%s", getenv("DEID_SHARED_DATA"), files[i]);
        size_t n = 0;
        char *data = slurp(src, &n);
        CHECK(data != NULL);
        char dst[64];
        snprintf(dst, sizeof dst, "real/%s", files[i]);
        if (data)
            spit(at(dst), data, n, "wb");
        free(data);
    }
    deid_batch_options o;
    logbook l;
    options(&o, at("real"), at("real-out"), NULL);
    deid_batch_summary s = run(p, &o, &l, DEID_OK);
    CHECK(s.found == 3 && s.ok == 3 && s.failed == 0);
    if (s.failed)
        fprintf(stderr, "shared data: %s\n", l.last_error);
    CHECK(count_lines(at("real-out/keys.csv")) == 4);
    remove_tree(at("real-out"));
    remove_tree(at("real"));
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/deid_test_batch.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    unsigned char bytes[DEID_KEY_BYTES];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)(i * 7 + 1);
    deid_key *key = NULL;
    deid_profile *p = NULL;
    CHECK_OK(deid_key_from_bytes(bytes, sizeof bytes, &key));
    deid_profile_options po;
    CHECK_OK(deid_profile_options_init(&po, DEID_PROFILE_OPTIONS_VERSION));
    CHECK_OK(deid_profile_new(&po, key, &p));
    deid_key_free(key);
    if (p) {
        make_corpus();
        test_arguments(p);
        test_run_and_resume(p);
        test_layouts_and_filters(p);
        test_scan(p);
        test_unwritable(p);
        test_duplicates(p);
        test_cancel(p);
        test_memory(p);
        test_shared(p);
    }
    deid_profile_free(p);
    remove_tree(root);
    return check_done("test_batch");
}
