/* Thread safety: several threads, each with its own handles (datasets, profiles, images,
 * volumes, series, batches), run the whole per-file path at the same time on real data, and
 * every output must be the same bytes as a single-threaded reference run: read from file and
 * memory, keyed profile apply (one profile per thread, same key), pseudonyms, write to file and
 * memory, the gateway call, DICOM JSON, decode of every transfer syntax at hand, colour
 * conversion, JPEG and uncompressed re-encoding, PNG/JPEG raster files, the QC overview, fan
 * detection, the ultrasound stage, the text stage's preprocessing and PHI matching, a CT series
 * made a volume, defaced (with the defacer's own worker threads), written back and exported,
 * and batches per thread (headers only, the ultrasound stage, the CT stage, and the text stage
 * with a Tesseract engine per worker when the build has it; two workers each) whose log
 * callback, called from the workers, must only name the thread's own folders. Then deid_last_error() per thread: in lock
 * step, each thread provokes its own failure (or clears its error) and must read back its own
 * message and code, never another thread's. Built with -DDEID_TSAN=ON (.ci/tsan.sh) the same
 * run is checked for data races. Uses tests/data/sample and, when present, ../shared/data. */
#define _XOPEN_SOURCE 700 /* pthread_barrier_t, strdup */
#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "check.h"
#include "deid/deid.h"
#include "text/prep.h"
#include "text/text_int.h"

#define NTHREADS 4
#define ERROR_ROUNDS 60
#define MAX_DIGESTS 160

/* ---- what one run produced --------------------------------------------------------------- */

typedef struct digest {
    char name[96];
    uint64_t size;
    uint64_t hash; /* FNV-1a 64 of the bytes */
} digest;

typedef struct result {
    digest d[MAX_DIGESTS];
    size_t n;
    int failures;
    char first_failure[768];
} result;

static uint64_t fnv1a(const void *data, size_t size)
{
    const uint8_t *p = data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void fail(result *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void fail(result *r, const char *fmt, ...)
{
    if (r->failures++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->first_failure, sizeof r->first_failure, fmt, ap);
        va_end(ap);
    }
}

/* T_OK: like CHECK_OK, but recorded in the thread's own result (check.h's counter is not
 * meant to be shared between threads). */
#define T_OK(r, expr)                                                                          \
    (((st_ = (expr)) == DEID_OK)                                                               \
         ? 1                                                                                   \
         : (fail((r), "%s:%d: %s: status %d: %s", __FILE__, __LINE__, #expr, (int)st_,         \
                 deid_last_error()),                                                           \
            0))
#define T_CHECK(r, cond)                                                                       \
    ((cond) ? 1 : (fail((r), "%s:%d: %s", __FILE__, __LINE__, #cond), 0))

static void record(result *r, const char *name, const void *data, size_t size)
{
    if (r->n == MAX_DIGESTS) {
        fail(r, "too many digests (%s)", name);
        return;
    }
    digest *d = &r->d[r->n++];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->size = size;
    d->hash = data ? fnv1a(data, size) : 0;
}

static void record_value(result *r, const char *name, double v)
{
    char s[64];
    snprintf(s, sizeof s, "%.17g", v);
    record(r, name, s, strlen(s));
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Put the lines of buf[0..n) in sorted order (a CSV file whose rows the workers append in the
 * order they finish); the length stays the same. */
static void sort_lines(uint8_t *buf, size_t n)
{
    char *copy = malloc(n + 1);
    char **lines = malloc((n + 1) * sizeof *lines);
    if (!copy || !lines) {
        free(copy);
        free(lines);
        return;
    }
    memcpy(copy, buf, n);
    copy[n] = '\0';
    size_t k = 0;
    for (char *s = copy, *e; *s; s = e + 1) {
        e = strchr(s, '\n');
        lines[k++] = s;
        if (!e)
            break;
        *e = '\0';
    }
    qsort(lines, k, sizeof *lines, cmp_line);
    size_t w = 0;
    for (size_t i = 0; i < k; i++) {
        size_t l = strlen(lines[i]);
        memcpy(buf + w, lines[i], l);
        w += l;
        if (w < n)
            buf[w++] = '\n';
    }
    free(lines);
    free(copy);
}

/* The bytes of a file, with every occurrence of `dir` (the run's own folder, which keys.csv
 * names) replaced by "<dir>" and, for a .csv file, its lines sorted; `dir` NULL: the bytes as
 * they are. */
static void record_file_in(result *r, const char *name, const char *path, const char *dir)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(r, "%s: cannot open %s", name, path);
        return;
    }
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *nb = realloc(buf, cap + 1);
            if (!nb)
                break;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0)
            break;
        n += got;
    }
    fclose(f);
    size_t dl = dir ? strlen(dir) : 0;
    if (buf && dl) {
        size_t w = 0;
        for (size_t i = 0; i < n;) {
            if (i + dl <= n && memcmp(buf + i, dir, dl) == 0) {
                memcpy(buf + w, "<dir>", 5); /* dl > 5: never overtakes i */
                w += 5;
                i += dl;
            } else {
                buf[w++] = buf[i++];
            }
        }
        n = w;
        size_t nl = strlen(path);
        if (nl > 4 && strcmp(path + nl - 4, ".csv") == 0)
            sort_lines(buf, n);
    }
    record(r, name, buf, n);
    free(buf);
}

static void record_file(result *r, const char *name, const char *path)
{
    record_file_in(r, name, path, NULL);
}

static void record_image(result *r, const char *name, deid_image *img)
{
    char s[160];
    snprintf(s, sizeof s, "%s geometry", name);
    char g[160];
    snprintf(g, sizeof g, "%zu %zu %zu %zu %u %d %s", deid_image_frames(img),
             deid_image_rows(img), deid_image_cols(img), deid_image_samples(img),
             deid_image_bits(img), deid_image_signed(img), deid_image_photometric(img));
    record(r, s, g, strlen(g));
    record(r, name, deid_image_data(img), deid_image_size_bytes(img));
}

static void record_dataset(result *r, const char *name, const deid_dataset *ds)
{
    void *data = NULL;
    size_t size = 0;
    deid_status st_;
    if (T_OK(r, deid_dataset_write_memory(ds, &data, &size)))
        record(r, name, data, size);
    deid_free(data);
}

/* ---- inputs (paths made by main before any thread starts) -------------------------------- */

static char sample[3][4096];     /* tests/data/sample CT slices */
static char sample_dir[4096];    /* their folder tree, the batch's input */
static const char *shared_root;  /* ../shared/data, or NULL */
static char tmp_root[4096];
static char us_input[4200];      /* two small ultrasound files (copies), or "" */
static int have_tesseract;       /* a text engine can be made (Tesseract and its "eng" data) */
static uint8_t key_bytes[DEID_KEY_BYTES];

static int shared_path(char *out, size_t cap, const char *relative)
{
    if (!shared_root)
        return 0;
    snprintf(out, cap, "%s/%s", shared_root, relative);
    struct stat sb;
    return stat(out, &sb) == 0;
}

static deid_status profile_new(deid_profile **out)
{
    deid_key *key = NULL;
    deid_status st = deid_key_from_bytes(key_bytes, sizeof key_bytes, &key);
    if (st != DEID_OK)
        return st;
    deid_profile_options o;
    deid_profile_options_init(&o, DEID_PROFILE_OPTIONS_VERSION);
    o.flags = DEID_OPT_RETAIN_LONGITUDINAL_MODIFIED_DATES | DEID_OPT_CLEAN_DESCRIPTORS;
    o.patient_name_prefix = "T";
    st = deid_profile_new(&o, key, out);
    deid_key_free(key); /* the profile holds its own copy */
    return st;
}

static int read_whole(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(n > 0 ? (size_t)n : 1);
    *size = n > 0 ? (size_t)n : 0;
    int ok = *data && fread(*data, 1, *size, f) == *size;
    fclose(f);
    return ok;
}

/* ---- the per-file path ------------------------------------------------------------------- */

/* Headers: read from file and from memory, profile, pseudonyms, JSON, write to memory and to a
 * file, the gateway call. */
static void headers(result *r, const deid_profile *p, const char *dir)
{
    deid_status st_;
    for (int i = 0; i < 3; i++) {
        char name[64];
        deid_dataset *a = NULL, *b = NULL;
        if (!T_OK(r, deid_dataset_read_file(sample[i], NULL, &a)))
            continue;
        uint8_t *raw = NULL;
        size_t raw_size = 0;
        T_CHECK(r, read_whole(sample[i], &raw, &raw_size));
        if (T_OK(r, deid_dataset_read_memory(raw, raw_size, "sample", NULL, &b))) {
            snprintf(name, sizeof name, "sample%d read memory", i);
            record_dataset(r, name, b);
            snprintf(name, sizeof name, "sample%d read file", i);
            record_dataset(r, name, a);
        }
        char pid[65] = "", pseudo[11] = "", uid[65] = "";
        int shift = 0;
        T_OK(r, deid_dataset_get_string(a, DEID_TAG(0x0010, 0x0020), pid, sizeof pid));
        T_OK(r, deid_profile_patient_pseudonym(p, pid, pseudo));
        T_OK(r, deid_profile_date_shift(p, pid, &shift));
        T_OK(r, deid_profile_uid(p, "1.2.826.0.1.3680043.9.7777.1", uid));
        snprintf(name, sizeof name, "sample%d pseudonyms", i);
        char all[160];
        snprintf(all, sizeof all, "%s %d %s", pseudo, shift, uid);
        record(r, name, all, strlen(all));

        if (T_OK(r, deid_profile_apply(p, a))) {
            snprintf(name, sizeof name, "sample%d applied", i);
            record_dataset(r, name, a);
            char *json = NULL;
            if (T_OK(r, deid_dataset_to_json(a, &json))) {
                snprintf(name, sizeof name, "sample%d json", i);
                record(r, name, json, strlen(json));
            }
            deid_free(json);
            char path[4200];
            snprintf(path, sizeof path, "%s/sample%d.dcm", dir, i);
            if (T_OK(r, deid_dataset_write_file(a, path))) {
                snprintf(name, sizeof name, "sample%d written file", i);
                record_file(r, name, path);
            }
        }
        void *out = NULL;
        size_t out_size = 0;
        if (T_OK(r, deid_deidentify_memory(p, raw, raw_size, &out, &out_size))) {
            snprintf(name, sizeof name, "sample%d gateway", i);
            record(r, name, out, out_size);
        }
        deid_free(out);
        free(raw);
        deid_dataset_free(a);
        deid_dataset_free(b);
    }
}

/* Many keyed values in a row: a hot loop in which threads overlap often, so that a scratch
 * buffer shared between threads gives wrong values even without ThreadSanitizer. */
static void keyed_values(result *r, const deid_profile *p)
{
    deid_status st_;
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 3000; i++) {
        char id[64], pseudo[11], uid[65];
        int shift = 0;
        snprintf(id, sizeof id, "1.2.826.0.1.3680043.9.7777.%d", i);
        if (!T_OK(r, deid_profile_uid(p, id, uid)) ||
            !T_OK(r, deid_profile_patient_pseudonym(p, id + 20, pseudo)) ||
            !T_OK(r, deid_profile_date_shift(p, id + 20, &shift)))
            break;
        char all[160];
        int n = snprintf(all, sizeof all, "%s %s %d|", uid, pseudo, shift);
        h = (h ^ fnv1a(all, (size_t)n)) * 1099511628211ull;
    }
    record(r, "keyed values", &h, sizeof h);
}

/* Decode, colour conversion, re-encoding (JPEG baseline and uncompressed), raster files and
 * the QC overview on one object. */
static void pixels(result *r, const char *label, const char *path, const char *dir,
                   size_t max_frames)
{
    deid_status st_;
    char name[160];
    deid_dataset *ds = NULL;
    if (!T_OK(r, deid_dataset_read_file(path, NULL, &ds)))
        return;
    deid_image *img = NULL, *rgb = NULL;
    if (T_OK(r, deid_image_decode(ds, 0, max_frames, 0, &img))) {
        snprintf(name, sizeof name, "%s decoded", label);
        record_image(r, name, img);
        if (T_OK(r, deid_image_to_rgb(img, ds, &rgb))) {
            snprintf(name, sizeof name, "%s rgb", label);
            record_image(r, name, rgb);
        }
    }
    if (rgb && deid_image_bits(rgb) == 8) {
        deid_encode_options eo;
        deid_encode_options_init(&eo, DEID_ENCODE_OPTIONS_VERSION);
        eo.quality = 90;
        deid_dataset *copy = NULL;
        void *bytes = NULL;
        size_t size = 0;
        /* JPEG baseline: the encoder, then the decoder on what it wrote. */
        if (T_OK(r, deid_dataset_write_memory(ds, &bytes, &size)) &&
            T_OK(r, deid_dataset_read_memory(bytes, size, label, NULL, &copy)) &&
            T_OK(r, deid_dataset_set_pixels(copy, rgb, &eo))) {
            snprintf(name, sizeof name, "%s jpeg", label);
            record_dataset(r, name, copy);
            deid_image *back = NULL;
            if (T_OK(r, deid_image_decode(copy, 0, 0, 0, &back))) {
                snprintf(name, sizeof name, "%s jpeg decoded", label);
                record_image(r, name, back);
            }
            deid_image_free(back);
        }
        deid_dataset_free(copy);
        copy = NULL;
        eo.codec = DEID_CODEC_UNCOMPRESSED;
        if (T_OK(r, deid_dataset_read_memory(bytes, size, label, NULL, &copy)) &&
            T_OK(r, deid_dataset_set_pixels(copy, rgb, &eo))) {
            snprintf(name, sizeof name, "%s uncompressed", label);
            record_dataset(r, name, copy);
        }
        deid_dataset_free(copy);
        deid_free(bytes);

        char file[4300];
        const int formats[] = {DEID_RASTER_PNG, DEID_RASTER_JPEG};
        for (int f = 0; f < 2; f++) {
            snprintf(file, sizeof file, "%s/%s.%s", dir, label, f ? "jpg" : "png");
            if (T_OK(r, deid_image_write_raster(rgb, 0, file, formats[f], 85))) {
                snprintf(name, sizeof name, "%s raster %d", label, f);
                record_file(r, name, file);
                deid_image *again = NULL;
                int format = 0;
                if (T_OK(r, deid_image_read_raster(file, 0, &again, &format))) {
                    snprintf(name, sizeof name, "%s raster %d read", label, f);
                    record_image(r, name, again);
                }
                deid_image_free(again);
            }
        }
        snprintf(file, sizeof file, "%s/%s_overview.png", dir, label);
        if (T_OK(r, deid_overview_png(rgb, rgb, NULL, "threads", file))) {
            snprintf(name, sizeof name, "%s overview", label);
            record_file(r, name, file);
        }
    }
    deid_image_free(rgb);
    deid_image_free(img);
    deid_dataset_free(ds);
}

/* Fan detection on the decoded frames, and the whole ultrasound stage (detect, mask, JPEG). */
static void ultrasound(result *r, const char *label, const char *path, size_t max_frames)
{
    deid_status st_;
    char name[160];
    deid_dataset *ds = NULL;
    if (!T_OK(r, deid_dataset_read_file(path, NULL, &ds)))
        return;
    deid_image *img = NULL, *rgb = NULL;
    if (T_OK(r, deid_image_decode(ds, 0, max_frames, 0, &img)) &&
        T_OK(r, deid_image_to_rgb(img, ds, &rgb))) {
        deid_fan fan;
        double conf = -1;
        if (T_OK(r, deid_fan_detect(rgb, ds, NULL, &fan, &conf))) {
            char *json = NULL;
            if (T_OK(r, deid_fan_to_json(&fan, &json))) {
                snprintf(name, sizeof name, "%s fan", label);
                record(r, name, json, strlen(json));
            }
            deid_free(json);
            snprintf(name, sizeof name, "%s fan confidence", label);
            record_value(r, name, conf);
            size_t n = fan.image_size_rows * fan.image_size_cols;
            uint8_t *mask = malloc(n ? n : 1);
            if (mask && T_OK(r, deid_fan_rasterize(&fan, 2.0, mask, n))) {
                snprintf(name, sizeof name, "%s fan mask", label);
                record(r, name, mask, n);
            }
            free(mask);
        }
    }
    deid_image_free(rgb);
    deid_image_free(img);

    /* The stage on the whole object (every frame), with a rectangle fallback so that a
     * low-confidence frame still gives an output to compare. */
    deid_us_options uo;
    deid_us_options_init(&uo, DEID_US_OPTIONS_VERSION);
    uo.fallback = DEID_US_FALLBACK_RECTANGLE;
    deid_us_result res;
    memset(&res, 0, sizeof res);
    if (T_OK(r, deid_us_process(ds, &uo, &res))) {
        snprintf(name, sizeof name, "%s us stage", label);
        record_dataset(r, name, ds);
        char *json = NULL;
        if (T_OK(r, deid_us_result_json(&res, &json))) {
            snprintf(name, sizeof name, "%s us stage json", label);
            record(r, name, json, strlen(json));
        }
        deid_free(json);
    }
    deid_us_result_clear(&res);
    deid_dataset_free(ds);
}

/* The text stage without Tesseract: detection planes, top-hats, CLAHE; PHI terms from the
 * header matched against strings. */
static void text(result *r, const char *label, const char *path)
{
    deid_status st_;
    char name[160];
    deid_dataset *ds = NULL;
    if (!T_OK(r, deid_dataset_read_file(path, NULL, &ds)))
        return;
    deid_image *img = NULL, *rgb = NULL;
    if (T_OK(r, deid_image_decode(ds, 0, 0, 0, &img)) &&
        T_OK(r, deid_image_to_rgb(img, ds, &rgb))) {
        for (size_t f = 0; f < deid_image_frames(rgb); f++) {
            deid_text_frame fr;
            if (!T_OK(r, deid__text_frame_from_image(rgb, f, &fr)))
                continue;
            size_t n = fr.rows * fr.cols;
            uint8_t *out = malloc(n ? n : 1);
            snprintf(name, sizeof name, "%s frame %zu grey", label, f);
            record(r, name, fr.grey, n);
            if (out && T_OK(r, deid__text_tophat(fr.grey, out, fr.rows, fr.cols, 15, 0))) {
                snprintf(name, sizeof name, "%s frame %zu tophat", label, f);
                record(r, name, out, n);
            }
            if (out && T_OK(r, deid__text_tophat(fr.grey, out, fr.rows, fr.cols, 15, 1))) {
                snprintf(name, sizeof name, "%s frame %zu blackhat", label, f);
                record(r, name, out, n);
            }
            if (out && T_OK(r, deid__text_clahe(fr.grey, out, fr.rows, fr.cols, 8, 2.0))) {
                snprintf(name, sizeof name, "%s frame %zu clahe", label, f);
                record(r, name, out, n);
            }
            free(out);
            deid__text_frame_clear(&fr);
        }
    }
    deid_image_free(rgb);
    deid_image_free(img);

    deid_text_phi *phi = NULL;
    if (T_OK(r, deid_text_phi_new(&phi))) {
        T_OK(r, deid_text_phi_add_dataset(phi, ds));
        T_OK(r, deid_text_phi_add(phi, DEID_TEXT_PHI_NAME, "DOE^JOHN"));
        T_OK(r, deid_text_phi_add(phi, DEID_TEXT_PHI_DATE, "19700405"));
        const char *probes[] = {"JOHN D0E", "05-Apr-1970", "L 5 cm", "Dr Smith"};
        char m[64];
        int k = snprintf(m, sizeof m, "%zu:", deid_text_phi_count(phi));
        for (size_t i = 0; i < 4; i++)
            k += snprintf(m + k, sizeof m - (size_t)k, " %d",
                          deid_text_phi_match(phi, probes[i]));
        snprintf(name, sizeof name, "%s phi", label);
        record(r, name, m, strlen(m));
    }
    deid_text_phi_free(phi);
    deid_dataset_free(ds);
}

/* A CT series: sort, volume, deface (the defacer's own threads), written back, NRRD. */
static void ct(result *r, const char *dir)
{
    deid_status st_;
    deid_series *s = NULL;
    if (!T_OK(r, deid_series_new(&s)))
        return;
    for (int i = 2; i >= 0; i--) { /* reversed: the sort has work to do */
        deid_dataset *ds = NULL;
        if (T_OK(r, deid_dataset_read_file(sample[i], NULL, &ds)) &&
            !T_OK(r, deid_series_add(s, ds, sample[i])))
            deid_dataset_free(ds);
    }
    deid_series_report rep;
    deid_volume *v = NULL;
    if (T_OK(r, deid_series_sort(s, &rep)) && T_OK(r, deid_volume_from_series(s, &v))) {
        record(r, "ct series report", rep.message, strlen(rep.message));
        record(r, "ct volume", deid_volume_voxels(v), deid_volume_count(v) * sizeof(int32_t));
        deid_deface_options o;
        deid_deface_options_init(&o, DEID_DEFACE_OPTIONS_VERSION);
        o.method = DEID_DEFACE_DROWN;
        o.body_threshold = -1100; /* the synthetic slices are mostly below -800 HU */
        o.threads = 2;
        size_t n = deid_volume_count(v);
        uint8_t *mask = malloc(n);
        deid_deface_report dr;
        if (mask && T_OK(r, deid_volume_deface(v, &o, mask, &dr))) {
            record(r, "ct defaced", deid_volume_voxels(v), n * sizeof(int32_t));
            record(r, "ct deface mask", mask, n);
            char a[64];
            snprintf(a, sizeof a, "%zu", dr.altered);
            record(r, "ct altered", a, strlen(a));
            size_t unmatched = 0;
            if (T_OK(r, deid_series_set_volume(s, v, &unmatched)))
                for (size_t i = 0; i < deid_series_count(s); i++) {
                    char name[64];
                    snprintf(name, sizeof name, "ct slice %zu", i);
                    record_dataset(r, name, deid_series_dataset(s, i));
                }
            char path[4300];
            snprintf(path, sizeof path, "%s/volume.nrrd", dir);
            if (T_OK(r, deid_volume_write_nrrd(v, path, 1)))
                record_file(r, "ct nrrd", path);
        }
        free(mask);
    }
    deid_volume_free(v);
    deid_series_free(s);
}

static void enhanced_ct(result *r, const char *path)
{
    deid_status st_;
    deid_dataset *ds = NULL;
    deid_volume *v = NULL;
    if (T_OK(r, deid_dataset_read_file(path, NULL, &ds)) &&
        T_OK(r, deid_volume_from_dataset(ds, &v))) {
        record(r, "enhanced volume", deid_volume_voxels(v),
               deid_volume_count(v) * sizeof(int32_t));
        deid_volume_geometry g;
        deid_volume_get_geometry(v, &g);
        record(r, "enhanced geometry", &g, sizeof g);
    }
    deid_volume_free(v);
    deid_dataset_free(ds);
}

/* ---- a batch per thread, with its own log callback --------------------------------------- */

typedef struct logbook {
    const char *dir; /* the thread's own folder */
    atomic_int lines, mine, foreign;
} logbook;

/* Called by the batch's workers, several at once. Every path under the test's folder that a
 * line names must be in this thread's own folder (or the shared input folder). */
static void on_log(void *user, deid_log_level level, const char *module, const char *message)
{
    logbook *l = user;
    (void)level;
    (void)module;
    atomic_fetch_add(&l->lines, 1);
    if (strstr(message, l->dir))
        atomic_fetch_add(&l->mine, 1);
    size_t root = strlen(tmp_root), own = strlen(l->dir);
    for (const char *m = strstr(message, tmp_root); m; m = strstr(m + 1, tmp_root)) {
        int ours = strncmp(m, l->dir, own) == 0 && (m[own] == '/' || m[own] == '\0');
        int input = strncmp(m + root, "/us-in", 6) == 0 && (m[root + 6] == '/' ||
                                                             m[root + 6] == ' ' ||
                                                             m[root + 6] == '\0');
        if (!ours && !input && atomic_fetch_add(&l->foreign, 1) == 0)
            fprintf(stderr, "a batch's log line names another thread's folder: %s\n", m);
    }
}

typedef struct pathlist {
    char **v;
    size_t n, cap;
} pathlist;

static void list_files(const char *dir, const char *rel, pathlist *pl)
{
    char path[4300];
    snprintf(path, sizeof path, "%s%s%s", dir, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char sub[4300], full[8700];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        snprintf(full, sizeof full, "%s/%s", dir, sub);
        struct stat sb;
        if (stat(full, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            list_files(dir, sub, pl);
        } else if (S_ISREG(sb.st_mode)) {
            if (pl->n == pl->cap) {
                pl->cap = pl->cap ? pl->cap * 2 : 16;
                char **nv = realloc(pl->v, pl->cap * sizeof *nv);
                if (!nv)
                    break;
                pl->v = nv;
            }
            pl->v[pl->n++] = strdup(sub);
        }
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A batch with two workers over `input`, with the ultrasound, CT or text stage when given;
 * every file it writes is recorded. */
static void batch(result *r, const deid_profile *p, const char *dir, const char *label,
                  const char *input, const deid_us_options *us, const deid_ct_options *ct,
                  const deid_text_options *text, size_t expect_ok)
{
    deid_status st_;
    char out[4300], hdr[4300];
    snprintf(out, sizeof out, "%s/%s-out", dir, label);
    snprintf(hdr, sizeof hdr, "%s/%s-headers", dir, label);
    logbook l = {dir, 0, 0, 0};
    deid_batch_options o;
    deid_batch_options_init(&o, DEID_BATCH_OPTIONS_VERSION);
    o.input = input;
    o.output_dir = out;
    o.headers_dir = hdr;
    o.workers = 2;
    o.log = on_log;
    o.log_user = &l;
    o.us = us;
    o.ct = ct;
    o.text = text;
    deid_batch *b = NULL;
    deid_batch_summary s;
    if (T_OK(r, deid_batch_new(&o, p, &b)) && T_OK(r, deid_batch_run(b, &s))) {
        if (!T_CHECK(r, s.ok == expect_ok && s.failed == 0))
            fail(r, "%s: %zu ok, %zu failed, %zu skipped", label, s.ok, s.failed, s.skipped);
        T_CHECK(r, atomic_load(&l.mine) >= 1);
        T_CHECK(r, atomic_load(&l.foreign) == 0);
        char name[96], c[64];
        snprintf(c, sizeof c, "%d lines", atomic_load(&l.lines));
        snprintf(name, sizeof name, "%s log", label);
        record(r, name, c, strlen(c));
        /* Every output, by its path under the output folders (keys.csv included). */
        const char *roots[2] = {out, hdr};
        for (int k = 0; k < 2; k++) {
            pathlist pl = {NULL, 0, 0};
            list_files(roots[k], "", &pl);
            qsort(pl.v, pl.n, sizeof *pl.v, cmp_str);
            for (size_t i = 0; i < pl.n; i++) {
                char path[8700];
                snprintf(path, sizeof path, "%s/%s", roots[k], pl.v[i]);
                snprintf(name, sizeof name, "%s %d %.70s", label, k, pl.v[i]);
                record_file_in(r, name, path, dir);
                free(pl.v[i]);
            }
            free(pl.v);
        }
    }
    deid_batch_free(b);
}

/* Everything above, with handles of this call only. */
static void work(result *r, const char *dir)
{
    deid_status st_;
    deid_profile *p = NULL;
    if (!T_OK(r, profile_new(&p)))
        return;
    char path[4096];
    headers(r, p, dir);
    keyed_values(r, p);
    pixels(r, "sample", sample[0], dir, 0);
    if (shared_path(path, sizeof path, "us/pydicom-data_OBXXXX1A_rle_2frame.dcm"))
        pixels(r, "us-rle-palette", path, dir, 0);
    if (shared_path(path, sizeof path, "us/pydicom-data_US1_J2KR.dcm"))
        pixels(r, "us-j2k", path, dir, 0);
    if (shared_path(path, sizeof path, "ct/head_ct_5mm/I2.dcm"))
        pixels(r, "ct-jpeg-lossless", path, dir, 0);
    if (shared_path(path, sizeof path, "us/orthanc_Issue19_ATL_sector.dcm"))
        ultrasound(r, "us-atl", path, 0);
    if (shared_path(path, sizeof path, "us/pydicom-data_OBXXXX1A_rle_2frame.dcm"))
        ultrasound(r, "us-rle", path, 0);
    if (shared_path(path, sizeof path, "text/dicompixelanon_XA_GE_JPEG_02_with_Overlays.dcm"))
        text(r, "xa", path);
    else
        text(r, "sample", sample[0]);
    ct(r, dir);
    if (shared_path(path, sizeof path, "ct/pydicom-data_eCT_Supplemental_enhancedCT.dcm"))
        enhanced_ct(r, path);
    batch(r, p, dir, "batch", sample_dir, NULL, NULL, NULL, 3);
    deid_us_options uo;
    deid_us_options_init(&uo, DEID_US_OPTIONS_VERSION);
    uo.fallback = DEID_US_FALLBACK_RECTANGLE;
    if (us_input[0])
        batch(r, p, dir, "us-batch", us_input, &uo, NULL, NULL, 2);
    deid_ct_options co;
    deid_ct_options_init(&co, DEID_CT_OPTIONS_VERSION);
    co.face.version = DEID_DEFACE_OPTIONS_VERSION;
    co.face.method = DEID_DEFACE_DROWN;
    co.face.body_threshold = -1100;
    co.face.threads = 2;
    batch(r, p, dir, "ct-batch", sample_dir, NULL, &co, NULL, 3);
    if (have_tesseract) { /* a text engine per worker */
        deid_text_options to;
        deid_text_options_init(&to, DEID_TEXT_OPTIONS_VERSION);
        batch(r, p, dir, "text-batch", sample_dir, NULL, NULL, &to, 3);
    }
    deid_profile_free(p);
}

/* ---- deid_last_error() per thread -------------------------------------------------------- */

static pthread_barrier_t barrier;
static const uint8_t garbage[64] = "this is not a DICOM object, only text that no reader takes";

/* In each round every thread, at the same time, either clears its error or provokes a failure
 * whose message names the thread and the round; after a barrier each reads its own back. A
 * last-error buffer shared between threads would show all of them the same message. */
static void errors(result *r, int t)
{
    for (int round = 0; round < ERROR_ROUNDS; round++) {
        char marker[96];
        snprintf(marker, sizeof marker, "thread%d-round%d", t, round);
        int clear = (round + t) % 3 == 0;
        deid_status want = DEID_OK;
        if (clear) {
            deid_clear_error();
        } else if (t % 2 == 0) {
            char path[4300];
            snprintf(path, sizeof path, "%s/missing/%s.dcm", tmp_root, marker);
            deid_dataset *ds = NULL;
            want = deid_dataset_read_file(path, NULL, &ds);
            T_CHECK(r, want != DEID_OK && ds == NULL);
        } else {
            deid_dataset *ds = NULL;
            want = deid_dataset_read_memory(garbage, sizeof garbage, marker, NULL, &ds);
            T_CHECK(r, want != DEID_OK && ds == NULL);
        }
        pthread_barrier_wait(&barrier);
        char seen[1100];
        snprintf(seen, sizeof seen, "%s", deid_last_error());
        deid_status code = deid_last_error_code();
        if (clear) {
            if (seen[0] != '\0' || code != DEID_OK)
                fail(r, "thread %d round %d: cleared, but deid_last_error() is \"%s\" (%d)", t,
                     round, seen, (int)code);
        } else if (!strstr(seen, marker) || code != want) {
            fail(r, "thread %d round %d: expected its own error (%s, status %d), saw \"%s\" "
                    "(status %d)",
                 t, round, marker, (int)want, seen, (int)code);
        }
        pthread_barrier_wait(&barrier);
    }
}

/* ---- threads ----------------------------------------------------------------------------- */

typedef struct job {
    int t;
    char dir[4200];
    result res;
} job;

static void *thread_main(void *arg)
{
    job *j = arg;
    pthread_barrier_wait(&barrier); /* all start the work together */
    work(&j->res, j->dir);
    pthread_barrier_wait(&barrier);
    errors(&j->res, j->t);
    return NULL;
}

static int make_dir(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmp_root, name);
    if (mkdir(out, 0700) != 0) {
        perror(out);
        return 0;
    }
    return 1;
}

/* The thread's digests must be the reference's, name for name, byte for byte. */
static void compare(const result *ref, const result *got, int t)
{
    if (got->failures)
        fprintf(stderr, "thread %d: %d failure(s), first: %s\n", t, got->failures,
                got->first_failure);
    CHECK(got->failures == 0);
    if (got->n != ref->n)
        fprintf(stderr, "thread %d: %zu outputs, reference %zu\n", t, got->n, ref->n);
    CHECK(got->n == ref->n);
    for (size_t i = 0; i < ref->n && i < got->n; i++) {
        const digest *a = &ref->d[i], *b = &got->d[i];
        if (strcmp(a->name, b->name) || a->size != b->size || a->hash != b->hash) {
            fprintf(stderr,
                    "thread %d: output %zu differs: reference \"%s\" %llu bytes %016llx, "
                    "thread \"%s\" %llu bytes %016llx\n",
                    t, i, a->name, (unsigned long long)a->size, (unsigned long long)a->hash,
                    b->name, (unsigned long long)b->size, (unsigned long long)b->hash);
            check_failures++;
        }
    }
}

int main(void)
{
    const char *src = getenv("DEID_SOURCE_DIR");
    if (!src)
        src = ".";
    if (strlen(src) > 2048) {
        fprintf(stderr, "DEID_SOURCE_DIR is too long\n");
        return 1;
    }
    snprintf(sample_dir, sizeof sample_dir, "%s/tests/data/sample/dicom", src);
    for (int i = 0; i < 3; i++)
        snprintf(sample[i], sizeof sample[i], "%.3000s/patient1/ct/IM000%d.dcm", sample_dir,
                 i + 1);
    shared_root = getenv("DEID_SHARED_DATA");
    if (shared_root && !check_shared("us"))
        shared_root = NULL; /* check_shared said it is skipped */
    for (size_t i = 0; i < sizeof key_bytes; i++)
        key_bytes[i] = (uint8_t)(i * 7 + 3);
    const char *tmp = check_tmpdir("deid_threads");
    if (!tmp)
        return 1;
    snprintf(tmp_root, sizeof tmp_root, "%s", tmp);

    /* The ultrasound batch's input: two small files from ../shared/data/us. */
    const char *us_files[2] = {"us/orthanc_Issue19_ATL_sector.dcm",
                               "us/pydicom-data_OBXXXX1A_rle_2frame.dcm"};
    char from[4096];
    if (shared_path(from, sizeof from, us_files[0]) &&
        make_dir(us_input, sizeof us_input, "us-in"))
        for (int i = 0; i < 2; i++) {
            uint8_t *data = NULL;
            size_t size = 0;
            char to[4400];
            snprintf(to, sizeof to, "%s/%d.dcm", us_input, i);
            FILE *f = NULL;
            int ok = shared_path(from, sizeof from, us_files[i]) &&
                     read_whole(from, &data, &size) && (f = fopen(to, "wb")) != NULL &&
                     fwrite(data, 1, size, f) == size;
            if (f && fclose(f) != 0)
                ok = 0;
            free(data);
            CHECK(ok);
            if (!ok)
                us_input[0] = '\0';
        }

    /* The text stage's batch runs Tesseract (one engine per worker) when this build has it. */
    deid_text_engine *engine = NULL;
    have_tesseract = deid_text_engine_new(NULL, &engine) == DEID_OK;
    if (!have_tesseract)
        printf("note: no text engine (%s): the text batch is skipped\n", deid_last_error());
    deid_text_engine_free(engine);

    /* The reference: the same work on this thread alone. */
    static result ref;
    char dir[4200];
    if (!make_dir(dir, sizeof dir, "reference"))
        return 1;
    work(&ref, dir);
    if (ref.failures)
        fprintf(stderr, "reference run: %d failure(s), first: %s\n", ref.failures,
                ref.first_failure);
    CHECK(ref.failures == 0);
    printf("reference run: %zu outputs\n", ref.n);
    CHECK(ref.n > 40);

    static job jobs[NTHREADS];
    pthread_t th[NTHREADS];
    CHECK(pthread_barrier_init(&barrier, NULL, NTHREADS) == 0);
    int started = 0;
    for (int t = 0; t < NTHREADS; t++) {
        jobs[t].t = t;
        char name[32];
        snprintf(name, sizeof name, "thread%d", t);
        if (!make_dir(jobs[t].dir, sizeof jobs[t].dir, name))
            return 1;
    }
    for (int t = 0; t < NTHREADS; t++) {
        if (pthread_create(&th[t], NULL, thread_main, &jobs[t]) != 0) {
            /* The barrier waits for NTHREADS: without them all, stop here. */
            fprintf(stderr, "cannot start thread %d\n", t);
            return 1;
        }
        started++;
    }
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&barrier);
    for (int t = 0; t < NTHREADS; t++)
        compare(&ref, &jobs[t].res, t);
    printf("%d threads: %zu outputs each, compared with the reference\n", NTHREADS, ref.n);
    return check_done("test_threads");
}
