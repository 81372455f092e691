/* A volume written as one multi-frame object (deid_volume_to_enhanced): Legacy Converted
 * Enhanced CT and Enhanced CT from a small synthetic series and from the real 34-slice head CT,
 * with the SOP class, frame count, per-frame positions, dimension index, pixels and the volume
 * read back checked, no attribute value that the source did not hold, no private element, and
 * dciodvfy without an error line (when dicom3tools is installed). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "ct/ct_int.h"
#include "deid/ct.h"
#include "deid/deid.h"
#include "dicom/dataset_int.h"
#include "pixel/pixel_int.h"

#define ROWS 6
#define COLS 8
#define SLICES 5
#define LEGACY "1.2.840.10008.5.1.4.1.1.2.2"
#define ENHANCED "1.2.840.10008.5.1.4.1.1.2.1"

static void set(deid_dataset *ds, uint16_t g, uint16_t e, const char *v)
{
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(g, e), v));
}

static int16_t voxel(size_t i, size_t j, size_t k)
{
    return (int16_t)((int)(k * 200 + j * 10 + i) - 900);
}

/* Slice k of an oblique series (rows tilted 37 degrees), 2.5 mm apart along the normal;
 * signed pixels voxel(.,.,k). */
static deid_dataset *make_slice(size_t k)
{
    deid_dataset *ds = deid__dataset_new("synthetic");
    char v[200];
    set(ds, 0x0008, 0x0008, "ORIGINAL\\PRIMARY\\AXIAL");
    set(ds, 0x0008, 0x0016, "1.2.840.10008.5.1.4.1.1.2");
    snprintf(v, sizeof v, "2.25.1000%zu", k);
    set(ds, 0x0008, 0x0018, v);
    set(ds, 0x0008, 0x0020, "20200102");
    set(ds, 0x0008, 0x0030, "101500");
    set(ds, 0x0008, 0x0022, "20200102");
    set(ds, 0x0008, 0x0032, "101600");
    set(ds, 0x0008, 0x0023, "20200102");
    set(ds, 0x0008, 0x0033, "101700");
    set(ds, 0x0008, 0x0060, "CT");
    set(ds, 0x0008, 0x0070, "Acme");
    set(ds, 0x0008, 0x0080, "General Hospital");
    set(ds, 0x0010, 0x0010, "Doe^Jane");
    set(ds, 0x0010, 0x0020, "ID123");
    set(ds, 0x0010, 0x0030, "19700101");
    set(ds, 0x0010, 0x2180, "Painter"); /* Occupation: not a module the object keeps */
    set(ds, 0x0018, 0x0050, "2.5");
    set(ds, 0x0018, 0x5100, "HFS");
    set(ds, 0x0020, 0x000D, "2.25.2001");
    set(ds, 0x0020, 0x000E, "2.25.2002");
    set(ds, 0x0020, 0x0052, "2.25.2003");
    snprintf(v, sizeof v, "%zu", SLICES - k); /* instance numbers run the other way */
    set(ds, 0x0020, 0x0013, v);
    double n[3] = {0, 0.6, 0.8}; /* row x column of the orientation below */
    snprintf(v, sizeof v, "%.4f\\%.4f\\%.4f", -20 + 2.5 * k * n[0], -30 + 2.5 * k * n[1],
             40 + 2.5 * k * n[2]);
    set(ds, 0x0020, 0x0032, v);
    set(ds, 0x0020, 0x0037, "1\\0\\0\\0\\0.8\\-0.6");
    set(ds, 0x0028, 0x0030, "0.75\\0.5");
    set(ds, 0x0028, 0x1050, "40");
    set(ds, 0x0028, 0x1051, "400");
    set(ds, 0x0028, 0x1052, "-1024");
    set(ds, 0x0028, 0x1053, "1");
    set(ds, 0x0028, 0x1054, "HU");
    CHECK_OK(deid_dataset_set(ds, DEID_TAG(0x0009, 0x0010), "LO", "ACME 1", 6));
    CHECK_OK(deid_dataset_set(ds, DEID_TAG(0x0009, 0x1001), "LO", "secret", 6));
    deid_image *img = deid__image_new(1, ROWS, COLS, 1, 16, 1, "MONOCHROME2");
    int16_t *px = (int16_t *)(void *)img->data;
    for (size_t j = 0; j < ROWS; j++)
        for (size_t i = 0; i < COLS; i++)
            px[j * COLS + i] = voxel(i, j, k);
    deid_encode_options o = DEID_ENCODE_OPTIONS_INIT;
    o.codec = DEID_CODEC_UNCOMPRESSED;
    CHECK_OK(deid_dataset_set_pixels(ds, img, &o));
    deid_image_free(img);
    return ds;
}

/* The SLICES slices added out of order, but slice `skip` (none when >= SLICES). */
static deid_series *make_series(size_t skip)
{
    deid_series *s;
    CHECK_OK(deid_series_new(&s));
    for (size_t a = 0; a < SLICES; a++)
        if ((a * 3 + 1) % SLICES != skip)
            CHECK_OK(deid_series_add(s, make_slice((a * 3 + 1) % SLICES), NULL));
    CHECK_OK(deid_series_sort(s, NULL));
    return s;
}

/* ---- reading the object -------------------------------------------------------------------- */

static const deid_item *seq_item(const deid_item *it, uint32_t tag, size_t i)
{
    const deid_elem *e = it ? deid__item_find(it, tag) : NULL;
    return e && e->vr == DEID_VR_SQ && i < e->nitems ? &e->items[i] : NULL;
}

static size_t seq_count(const deid_item *it, uint32_t tag)
{
    const deid_elem *e = deid__item_find(it, tag);
    return e && e->vr == DEID_VR_SQ ? e->nitems : 0;
}

static const char *text(const deid_item *it, uint32_t tag, char *buf, size_t cap)
{
    const deid_elem *e = it ? deid__item_find(it, tag) : NULL;
    buf[0] = '\0';
    if (e && e->value)
        deid__elem_text(e, buf, cap);
    return buf;
}

static uint32_t ul(const deid_item *it, uint32_t tag)
{
    const deid_elem *e = it ? deid__item_find(it, tag) : NULL;
    if (!e || !e->value || e->len != 4)
        return 0;
    return (uint32_t)e->value[0] | (uint32_t)e->value[1] << 8 | (uint32_t)e->value[2] << 16 |
           (uint32_t)e->value[3] << 24;
}

/* An AT value as a tag. */
static uint32_t at(const deid_item *it, uint32_t tag)
{
    uint32_t v = ul(it, tag);
    return (v & 0xFFFFu) << 16 | v >> 16;
}

/* ---- checks -------------------------------------------------------------------------------- */

/* dciodvfy's verdict: the number of "Error" lines (errors and warnings are printed), -1 when
 * it is not installed. */
static int dciodvfy_errors(const char *path, const char *label)
{
    if (system("command -v dciodvfy >/dev/null 2>&1") != 0) {
        fprintf(stderr, "%s: dciodvfy not installed (dicom3tools): check skipped\n", label);
        return -1;
    }
    char cmd[4200], line[1024];
    snprintf(cmd, sizeof cmd, "dciodvfy '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p)
        return -1;
    int errors = 0, warnings = 0;
    while (fgets(line, sizeof line, p)) {
        if (!strncmp(line, "Error", 5)) {
            errors++;
            fprintf(stderr, "%s: dciodvfy: %s", label, line);
        } else if (!strncmp(line, "Warning", 7)) {
            warnings++;
            fprintf(stderr, "%s: dciodvfy: %s", label, line);
        }
    }
    pclose(p);
    fprintf(stderr, "%s: dciodvfy: %d errors, %d warnings\n", label, errors, warnings);
    return errors;
}

/* Geometry, rescale and stored values of `out` read back equal those of `v`. */
static void check_round_trip(const deid_dataset *out, const deid_volume *v)
{
    deid_volume *w = NULL;
    CHECK_OK(deid_volume_from_dataset(out, &w));
    if (!w)
        return;
    deid_volume_geometry a, b;
    deid_volume_get_geometry(v, &a);
    deid_volume_get_geometry(w, &b);
    CHECK(a.dims[0] == b.dims[0] && a.dims[1] == b.dims[1] && a.dims[2] == b.dims[2]);
    double err = 0;
    for (int c = 0; c < 3; c++)
        err = fmax(err, fmax(fabs(a.origin[c] - b.origin[c]), fabs(a.spacing[c] - b.spacing[c])));
    for (int c = 0; c < 9; c++)
        err = fmax(err, fabs(a.direction[c] - b.direction[c]));
    CHECK(err < 1e-6);
    double s1, i1, s2, i2;
    deid_volume_get_rescale(v, &s1, &i1);
    deid_volume_get_rescale(w, &s2, &i2);
    CHECK(s1 == s2 && i1 == i2 && deid_volume_is_hounsfield(v) == deid_volume_is_hounsfield(w));
    CHECK(deid_volume_count(v) == deid_volume_count(w) &&
          !memcmp(deid_volume_voxels((deid_volume *)v), deid_volume_voxels(w),
                  deid_volume_count(v) * sizeof(int32_t)));
    deid_volume_free(w);
}

/* Frames, positions, dimension index and pixels of `out` against the volume. */
static void check_frames(const deid_dataset *out, const deid_volume *v, int enhanced)
{
    char buf[256];
    const deid_item *root = &out->root;
    CHECK(!strcmp(text(root, 0x00080016u, buf, sizeof buf), enhanced ? ENHANCED : LEGACY));
    deid_volume_geometry g;
    deid_volume_get_geometry(v, &g);
    CHECK(atoi(text(root, 0x00280008u, buf, sizeof buf)) == (int)g.dims[2]);
    CHECK(seq_count(root, 0x52009230u) == g.dims[2]);
    /* one dimension: Image Position (Patient) in the Plane Position Sequence */
    const deid_item *dim = seq_item(root, 0x00209222u, 0);
    CHECK(seq_count(root, 0x00209222u) == 1 && at(dim, 0x00209165u) == 0x00200032u &&
          at(dim, 0x00209167u) == 0x00209113u);
    char org[80], org2[80];
    text(seq_item(root, 0x00209221u, 0), 0x00209164u, org, sizeof org);
    CHECK(org[0] && !strcmp(org, text(dim, 0x00209164u, org2, sizeof org2)));
    /* shared: orientation, spacing, rescale */
    const deid_item *shared = seq_item(root, 0x52009229u, 0);
    double d[6];
    CHECK(sscanf(text(seq_item(shared, 0x00209116u, 0), 0x00200037u, buf, sizeof buf),
                 "%lf\\%lf\\%lf\\%lf\\%lf\\%lf", &d[0], &d[1], &d[2], &d[3], &d[4], &d[5]) == 6);
    for (int c = 0; c < 6; c++)
        CHECK(fabs(d[c] - g.direction[c]) < 1e-9);
    CHECK(sscanf(text(seq_item(shared, 0x00289110u, 0), 0x00280030u, buf, sizeof buf),
                 "%lf\\%lf", &d[0], &d[1]) == 2 &&
          fabs(d[0] - g.spacing[1]) < 1e-9 && fabs(d[1] - g.spacing[0]) < 1e-9);
    CHECK(!strcmp(text(seq_item(shared, 0x00289145u, 0), 0x00281054u, buf, sizeof buf), "HU"));
    /* per frame: position origin + k * spacing * normal, index k + 1 */
    size_t bad_pos = 0, bad_index = 0;
    for (size_t k = 0; k < g.dims[2]; k++) {
        const deid_item *fg = seq_item(root, 0x52009230u, k);
        double p[3] = {NAN, NAN, NAN};
        sscanf(text(seq_item(fg, 0x00209113u, 0), 0x00200032u, buf, sizeof buf), "%lf\\%lf\\%lf",
               &p[0], &p[1], &p[2]);
        for (int c = 0; c < 3; c++)
            if (!(fabs(p[c] - (g.origin[c] + (double)k * g.spacing[2] * g.direction[6 + c])) <
                  1e-6))
                bad_pos++;
        const deid_item *fc = seq_item(fg, 0x00209111u, 0);
        if (ul(fc, 0x00209157u) != k + 1 || ul(fc, 0x00209057u) != k + 1)
            bad_index++;
    }
    CHECK(bad_pos == 0 && bad_index == 0);
    /* pixels: the stored values, frame after frame */
    deid_image *img = NULL;
    CHECK_OK(deid_image_decode(out, 0, 0, 0, &img));
    if (img) {
        CHECK(deid_image_frames(img) == g.dims[2] && deid_image_rows(img) == g.dims[1] &&
              deid_image_cols(img) == g.dims[0] && deid_image_bits(img) == 16);
        const int16_t *px = deid_image_data(img);
        const int32_t *vox = deid_volume_voxels((deid_volume *)v);
        size_t bad = 0;
        for (size_t i = 0; i < deid_volume_count(v); i++)
            bad += px[i] != vox[i];
        CHECK(bad == 0);
        deid_image_free(img);
    }
}

/* Values the function makes rather than copies. */
static int generated(uint32_t tag)
{
    static const uint32_t made[] = {
        0x00080008u, 0x00080016u, 0x00080018u, 0x0008002Au, 0x00089205u, 0x00089206u,
        0x00089207u, 0x00081090u, 0x00181000u, 0x00181020u, 0x00189004u, 0x00200013u,
        0x00209311u, 0x00280301u, 0x00282110u, 0x20500020u,
    };
    for (size_t i = 0; i < sizeof made / sizeof *made; i++)
        if (made[i] == tag)
            return 1;
    return tag >> 16 == 0x0028 || tag >> 16 == 0x0002; /* the pixel module, the meta header */
}

typedef struct phi_check {
    const deid_dataset *src;
    size_t invented, private_elems, nested_pn;
} phi_check;

static int visit(void *user, const deid_element_info *e)
{
    phi_check *c = user;
    if (e->tag >> 16 & 1)
        c->private_elems++;
    if (e->depth > 0) {
        c->nested_pn += !strcmp(e->vr, "PN");
        return 0;
    }
    if (!e->value || !e->size || !strcmp(e->vr, "SQ") || e->tag == 0x7FE00010u || generated(e->tag))
        return 0;
    const void *sv;
    size_t sn;
    if (deid_dataset_get(c->src, e->tag, &sv, &sn) != DEID_OK || sn != e->size ||
        memcmp(sv, e->value, sn)) {
        fprintf(stderr, "not from the source: (%04X,%04X)\n", (unsigned)(e->tag >> 16),
                (unsigned)(e->tag & 0xFFFF));
        c->invented++;
    }
    return 0;
}

/* Every top-level value is the first slice's (or one the function makes), nothing private,
 * no person's name in a sequence, the Occupation left behind, UNKNOWN for the missing model. */
static void check_no_invented(const deid_dataset *out, const deid_dataset *first)
{
    phi_check c = {first, 0, 0, 0};
    CHECK_OK(deid_dataset_walk(out, visit, &c));
    CHECK(c.invented == 0 && c.private_elems == 0 && c.nested_pn == 0);
    char buf[80];
    CHECK(!deid_dataset_has(out, DEID_TAG(0x0010, 0x2180)));
    CHECK_OK(deid_dataset_get_string(out, DEID_TAG(0x0010, 0x0010), buf, sizeof buf));
    CHECK(!strcmp(buf, "Doe^Jane"));
    CHECK(deid_dataset_get_string(out, DEID_TAG(0x0008, 0x1090), buf, sizeof buf) == DEID_OK &&
          !strcmp(buf, "UNKNOWN"));
    /* type 2 attributes the source lacked are present and empty */
    const void *v;
    size_t n = 1;
    CHECK(deid_dataset_get(out, DEID_TAG(0x0010, 0x0040), &v, &n) == DEID_OK && n == 0);
}

static void test_synthetic(void)
{
    deid_series *s = make_series(SLICES);
    deid_volume *v = NULL;
    CHECK_OK(deid_volume_from_series(s, &v));
    if (!v) {
        deid_series_free(s);
        return;
    }
    deid_volume_geometry g;
    deid_volume_get_geometry(v, &g);
    CHECK(g.dims[0] == COLS && g.dims[1] == ROWS && g.dims[2] == SLICES);
    const char *dir = check_tmpdir("ct_enhanced");
    for (int enhanced = 0; enhanced < 2; enhanced++) {
        deid_dataset *out = NULL;
        CHECK_OK(deid_volume_to_enhanced(v, s, enhanced, &out));
        if (!out)
            continue;
        check_frames(out, v, enhanced);
        check_round_trip(out, v);
        check_no_invented(out, deid_series_dataset(s, 0));
        const deid_item *fg = seq_item(&out->root, 0x52009230u, 0);
        if (!enhanced) { /* frame 0 was converted from the first sorted slice */
            char a[80], b[80];
            text(seq_item(fg, 0x00209172u, 0), 0x00081155u, a, sizeof a);
            text(&deid_series_dataset(s, 0)->root, 0x00080018u, b, sizeof b);
            CHECK(a[0] && !strcmp(a, b));
        }
        /* the same inputs give the same UIDs; other voxels other ones */
        char uid1[80], uid2[80], uid3[80];
        deid_dataset *again = NULL;
        CHECK_OK(deid_volume_to_enhanced(v, s, enhanced, &again));
        text(&out->root, 0x00080018u, uid1, sizeof uid1);
        text(again ? &again->root : &out->root, 0x00080018u, uid2, sizeof uid2);
        CHECK(!strncmp(uid1, "2.25.", 5) && !strcmp(uid1, uid2));
        deid_dataset_free(again);
        deid_volume_voxels(v)[7] += 1;
        again = NULL;
        CHECK_OK(deid_volume_to_enhanced(v, s, enhanced, &again));
        deid_volume_voxels(v)[7] -= 1;
        text(again ? &again->root : &out->root, 0x00080018u, uid3, sizeof uid3);
        CHECK(strcmp(uid1, uid3) != 0);
        deid_dataset_free(again);
        if (dir) {
            char path[4200];
            snprintf(path, sizeof path, "%s/synthetic_%d.dcm", dir, enhanced);
            CHECK_OK(deid_dataset_write_file(out, path));
            CHECK(dciodvfy_errors(path, enhanced ? "synthetic enhanced" : "synthetic legacy") <= 0);
        }
        deid_dataset_free(out);
    }
    /* a volume of other rows and columns than the slices; NULLs */
    size_t dims[3] = {COLS + 1, ROWS, SLICES};
    deid_volume *w;
    CHECK_OK(deid_volume_new(dims, &w));
    deid_dataset *none = NULL;
    CHECK(deid_volume_to_enhanced(w, s, 0, &none) == DEID_ERR_ARGUMENT && none == NULL);
    CHECK(deid_volume_to_enhanced(NULL, s, 0, &none) == DEID_ERR_ARGUMENT);
    CHECK(deid_volume_to_enhanced(v, s, 0, NULL) == DEID_ERR_ARGUMENT);
    deid_volume_free(w);
    /* values beyond 16 bits signed but within a 16-bit span: shifted, same modality values */
    int32_t *vox = deid_volume_voxels(v);
    for (size_t i = 0; i < deid_volume_count(v); i++)
        vox[i] += 40000;
    deid_dataset *out = NULL;
    CHECK_OK(deid_volume_to_enhanced(v, s, 0, &out));
    deid_volume *back = NULL;
    if (out)
        CHECK_OK(deid_volume_from_dataset(out, &back));
    if (back) {
        double s1, i1, s2, i2;
        deid_volume_get_rescale(v, &s1, &i1);
        deid_volume_get_rescale(back, &s2, &i2);
        size_t bad = 0;
        for (size_t i = 0; i < deid_volume_count(v); i++)
            bad += vox[i] * s1 + i1 != deid_volume_voxels(back)[i] * s2 + i2;
        CHECK(bad == 0 && deid_volume_count(back) == deid_volume_count(v));
    }
    deid_volume_free(back);
    deid_dataset_free(out);
    vox[0] = -40000; /* now they span more than 16 bits */
    CHECK(deid_volume_to_enhanced(v, s, 0, &none) == DEID_ERR_UNSUPPORTED && none == NULL);
    /* MONOCHROME1 slices: kept in Legacy Converted, refused by Enhanced CT (MONOCHROME2 only) */
    vox[0] = 40000;
    CHECK_OK(deid_dataset_set_string(deid_series_dataset(s, 0), DEID_TAG(0x0028, 0x0004),
                                     "MONOCHROME1"));
    CHECK(deid_volume_to_enhanced(v, s, 1, &none) == DEID_ERR_UNSUPPORTED && none == NULL);
    char pi[20] = "";
    out = NULL;
    CHECK_OK(deid_volume_to_enhanced(v, s, 0, &out));
    CHECK(out && deid_dataset_get_string(out, DEID_TAG(0x0028, 0x0004), pi, sizeof pi) == DEID_OK &&
          !strcmp(pi, "MONOCHROME1"));
    deid_dataset_free(out);
    deid_volume_free(v);
    deid_series_free(s);
}

/* A series with a missing slice: the volume's filled frame takes the nearest slice as its
 * conversion source, every frame has its own position. */
static void test_missing_slice(void)
{
    deid_series *s = make_series(2);
    deid_volume *v = NULL;
    CHECK_OK(deid_volume_from_series(s, &v));
    deid_dataset *out = NULL;
    if (v)
        CHECK_OK(deid_volume_to_enhanced(v, s, 0, &out));
    if (out) {
        check_frames(out, v, 0);
        check_round_trip(out, v);
        const char *dir = check_tmpdir("ct_enhanced");
        char path[4200];
        snprintf(path, sizeof path, "%s/missing.dcm", dir ? dir : "/tmp");
        CHECK_OK(deid_dataset_write_file(out, path));
        CHECK(dciodvfy_errors(path, "missing slice legacy") <= 0);
    }
    deid_dataset_free(out);
    deid_volume_free(v);
    deid_series_free(s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The real 34-slice head CT: both SOP classes, dciodvfy clean, the volume read back equal. */
static void test_head_ct(void)
{
    const char *dir = check_shared("ct/head_ct_5mm");
    if (!dir)
        return;
    char base[4096];
    snprintf(base, sizeof base, "%s", dir);
    DIR *d = opendir(base);
    CHECK(d != NULL);
    if (!d)
        return;
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64)
        if (strstr(e->d_name, ".dcm"))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    deid_series *s;
    CHECK_OK(deid_series_new(&s));
    for (size_t i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", base, names[i]);
        deid_dataset *ds = NULL;
        CHECK_OK(deid_dataset_read_file(path, NULL, &ds));
        if (ds)
            CHECK_OK(deid_series_add(s, ds, names[i]));
        free(names[i]);
    }
    CHECK_OK(deid_series_sort(s, NULL));
    deid_volume *v = NULL;
    CHECK_OK(deid_volume_from_series(s, &v));
    const char *tmp = check_tmpdir("ct_enhanced");
    for (int enhanced = 0; v && enhanced < 2; enhanced++) {
        deid_dataset *out = NULL;
        CHECK_OK(deid_volume_to_enhanced(v, s, enhanced, &out));
        if (!out)
            continue;
        check_frames(out, v, enhanced);
        char path[4200];
        snprintf(path, sizeof path, "%s/head_%d.dcm", tmp ? tmp : "/tmp", enhanced);
        CHECK_OK(deid_dataset_write_file(out, path));
        deid_dataset *back = NULL;
        CHECK_OK(deid_dataset_read_file(path, NULL, &back));
        if (back)
            check_round_trip(back, v);
        deid_dataset_free(back);
        CHECK(dciodvfy_errors(path, enhanced ? "head_ct_5mm enhanced" : "head_ct_5mm legacy") <= 0);
        deid_dataset_free(out);
    }
    deid_volume_free(v);
    deid_series_free(s);
}

int main(void)
{
    test_synthetic();
    test_missing_slice();
    test_head_ct();
    return check_done("test_ct_enhanced");
}
