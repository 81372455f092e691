/* CT series and volumes: slices ordered along the normal from any add order, missing slices,
 * duplicates and gantry tilt reported, volumes from a real head CT series and a real enhanced
 * CT object, voxels written back into the slices, NIfTI-1 and NRRD written and read back. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "check.h"
#include "core/core.h"
#include "ct/ct_int.h"
#include "deid/ct.h"
#include "deid/deid.h"
#include "deid_config.h"
#include "dicom/dataset_int.h"
#include "pixel/pixel_int.h"

#define ROWS 12
#define COLS 16

static void set_us(deid_dataset *ds, uint32_t tag, unsigned v)
{
    uint8_t b[2] = {(uint8_t)(v & 0xFF), (uint8_t)(v >> 8)};
    CHECK_OK(deid_dataset_set(ds, tag, "US", b, 2));
}

static int32_t pattern(size_t i, size_t j, long k) { return (int32_t)(k * 100 + (long)(i * 3 + j) - 500); }

/* One CT slice (signed 16-bit, rescale 1/-1024) whose voxels follow pattern(., ., tagk). */
static deid_dataset *make_slice(size_t rows, size_t cols, const double ipp[3], const double *iop,
                                long inst, long tagk, const char *series)
{
    deid_dataset *ds = deid__dataset_new("synthetic");
    char v[200];
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0060), "CT"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0020, 0x000E), series));
    snprintf(v, sizeof v, "%ld", inst);
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0020, 0x0013), v));
    if (ipp) {
        snprintf(v, sizeof v, "%.6f\\%.6f\\%.6f", ipp[0], ipp[1], ipp[2]);
        CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0020, 0x0032), v));
    }
    if (iop) {
        snprintf(v, sizeof v, "%.6f\\%.6f\\%.6f\\%.6f\\%.6f\\%.6f", iop[0], iop[1], iop[2], iop[3],
                 iop[4], iop[5]);
        CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0020, 0x0037), v));
    }
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0028, 0x0030), "0.5\\0.75"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0028, 0x1052), "-1024"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0028, 0x1053), "1"));
    deid_image *img = deid__image_new(1, rows, cols, 1, 16, 1, "MONOCHROME2");
    int16_t *px = (int16_t *)(void *)img->data;
    for (size_t j = 0; j < rows; j++)
        for (size_t i = 0; i < cols; i++)
            px[j * cols + i] = (int16_t)pattern(i, j, tagk);
    deid_encode_options o = DEID_ENCODE_OPTIONS_INIT;
    o.codec = DEID_CODEC_UNCOMPRESSED;
    CHECK_OK(deid_dataset_set_pixels(ds, img, &o));
    deid_image_free(img);
    return ds;
}

static const double AXIAL[6] = {1, 0, 0, 0, 1, 0};

/* A series of n axial slices at z = z0 + k * dz (k in `ks`), added in a shuffled order. */
static deid_series *make_series(const long *ks, size_t n, double dz, double tilt_y)
{
    deid_series *s;
    CHECK_OK(deid_series_new(&s));
    for (size_t a = 0; a < n; a++) {
        size_t i = (a * 7 + 3) % n; /* a permutation when n is not a multiple of 7 */
        long k = ks[i];
        double ipp[3] = {-4.0, -3.0 + tilt_y * k, 10.0 + dz * (double)k};
        char path[32];
        snprintf(path, sizeof path, "slice%ld", k);
        CHECK_OK(deid_series_add(s, make_slice(ROWS, COLS, ipp, AXIAL, 100 - k, k, "2.25.1"),
                                 path));
    }
    return s;
}

static long slice_k(deid_series *s, size_t i)
{
    const char *p = deid_series_path(s, i);
    return p ? strtol(p + 5, NULL, 10) : -1;
}

static void test_sort_and_report(void)
{
    long ks[10];
    for (long k = 0; k < 10; k++)
        ks[k] = k;
    deid_series *s = make_series(ks, 10, 2.5, 0);
    deid_series_report r;
    CHECK_OK(deid_series_sort(s, &r));
    CHECK(deid_series_count(s) == 10);
    for (size_t i = 0; i < 10; i++)
        CHECK(slice_k(s, i) == (long)i); /* by position, not by the reversed InstanceNumber */
    CHECK(r.slices == 10 && r.missing == 0 && r.duplicates == 0 && !r.uneven);
    CHECK(fabs(r.spacing - 2.5) < 1e-6 && fabs(r.spacing_min - 2.5) < 1e-6 &&
          fabs(r.spacing_max - 2.5) < 1e-6);
    CHECK(r.tilt_degrees < 0.01 && !r.mixed_sizes);
    CHECK(strstr(r.message, "10 slices, 2.50 mm") != NULL);
    CHECK(deid_series_dataset(s, 10) == NULL && deid_series_path(s, 10) == NULL);
    deid_series_free(s);

    /* slices 3 and 7, 8 missing; a duplicate of slice 5 */
    long gaps[] = {0, 1, 2, 4, 5, 5, 6, 9};
    s = make_series(gaps, 8, 2.5, 0);
    CHECK_OK(deid_series_sort(s, &r));
    CHECK(r.missing == 3 && r.duplicates == 1 && r.uneven);
    CHECK(fabs(r.spacing - 2.5) < 1e-6 && fabs(r.spacing_max - 7.5) < 1e-6);
    CHECK(strstr(r.message, "3 missing (first gap between slices 3 and 4)") != NULL);
    CHECK(strstr(r.message, "1 duplicate") != NULL);
    deid_volume *v;
    CHECK_OK(deid_volume_from_series(s, &v));
    deid_volume_geometry g;
    deid_volume_get_geometry(v, &g);
    CHECK(g.dims[2] == 8 && fabs(g.spacing[2] - 2.5) < 1e-9); /* the median with gaps */
    deid_volume_free(v);
    deid_series_free(s);

    /* gantry tilt of 15 degrees: y moves by dz * tan(15 deg) per slice */
    double t = tan(15.0 * 3.14159265358979 / 180.0) * 2.5;
    s = make_series(ks, 10, 2.5, t);
    CHECK_OK(deid_series_sort(s, &r));
    CHECK(fabs(r.tilt_degrees - 15.0) < 0.01);
    CHECK(strstr(r.message, "gantry tilt 15.0 degrees") != NULL);
    CHECK_OK(deid_volume_from_series(s, &v));
    deid_volume_get_geometry(v, &g);
    double len = sqrt(2.5 * 2.5 + t * t);
    CHECK(fabs(g.spacing[2] - len) < 1e-5);
    CHECK(fabs(g.direction[6]) < 1e-9 && fabs(g.direction[7] - t / len) < 1e-5 &&
          fabs(g.direction[8] - 2.5 / len) < 1e-5);
    /* voxel (0, 0, 9) lies at the last slice's position */
    CHECK(fabs(g.origin[1] + 9 * g.spacing[2] * g.direction[7] - (-3.0 + 9 * t)) < 1e-4);
    deid_volume_free(v);
    deid_series_free(s);
}

static void test_add_and_fallbacks(void)
{
    deid_series *s;
    CHECK_OK(deid_series_new(&s));
    double ipp[3] = {0, 0, 0};
    deid_dataset *a = make_slice(ROWS, COLS, ipp, AXIAL, 1, 0, "2.25.1");
    deid_dataset *b = make_slice(ROWS, COLS, ipp, AXIAL, 2, 1, "2.25.2");
    deid_dataset *c = deid__dataset_new("no pixels");
    CHECK_OK(deid_series_add(s, a, NULL));
    CHECK(deid_series_add(s, b, NULL) == DEID_ERR_ARGUMENT);
    CHECK(deid_series_add(s, c, "c") == DEID_ERR_ARGUMENT);
    CHECK(deid_series_path(s, 0) == NULL && deid_series_dataset(s, 0) == a);
    deid_dataset_free(b);
    deid_dataset_free(c);
    deid_series_free(s);

    deid_series *empty;
    CHECK_OK(deid_series_new(&empty));
    CHECK(deid_series_sort(empty, NULL) == DEID_ERR_UNSUPPORTED);
    deid_series_free(empty);

    /* no positions: InstanceNumber decides */
    CHECK_OK(deid_series_new(&s));
    long order[] = {3, 1, 2, 0};
    for (size_t i = 0; i < 4; i++) {
        char path[32];
        snprintf(path, sizeof path, "slice%ld", order[i]);
        CHECK_OK(deid_series_add(s, make_slice(ROWS, COLS, NULL, NULL, order[i] + 1, order[i],
                                               "2.25.3"),
                                 path));
    }
    deid_series_report r;
    CHECK_OK(deid_series_sort(s, &r));
    for (size_t i = 0; i < 4; i++)
        CHECK(slice_k(s, i) == (long)i);
    CHECK(strstr(r.message, "InstanceNumber") != NULL);
    deid_volume *v;
    CHECK_OK(deid_volume_from_series(s, &v));
    CHECK(v && deid_volume_voxels(v)[3 * ROWS * COLS] == pattern(0, 0, 3));
    deid_volume_free(v);
    deid_series_free(s);

    /* slices with their own rescale: converted to the first slice's */
    CHECK_OK(deid_series_new(&s));
    double q0[3] = {0, 0, 0}, q1[3] = {0, 0, 1};
    deid_dataset *other = make_slice(ROWS, COLS, q1, AXIAL, 2, 1, "2.25.5");
    CHECK_OK(deid_dataset_set_string(other, DEID_TAG(0x0028, 0x1052), "-1000"));
    CHECK_OK(deid_series_add(s, other, NULL));
    CHECK_OK(deid_series_add(s, make_slice(ROWS, COLS, q0, AXIAL, 1, 0, "2.25.5"), NULL));
    CHECK_OK(deid_volume_from_series(s, &v));
    CHECK(v && deid_volume_voxels(v)[ROWS * COLS + 1] == pattern(1, 0, 1) + 24 &&
          deid_volume_voxels(v)[1] == pattern(1, 0, 0));
    deid_volume_free(v);
    deid_series_free(s);

    /* mixed sizes */
    CHECK_OK(deid_series_new(&s));
    double p0[3] = {0, 0, 0}, p1[3] = {0, 0, 1};
    CHECK_OK(deid_series_add(s, make_slice(ROWS, COLS, p0, AXIAL, 1, 0, "2.25.4"), NULL));
    CHECK_OK(deid_series_add(s, make_slice(ROWS + 2, COLS, p1, AXIAL, 2, 1, "2.25.4"), NULL));
    CHECK_OK(deid_series_sort(s, &r));
    CHECK(r.mixed_sizes && strstr(r.message, "mixed") != NULL);
    v = NULL;
    CHECK(deid_volume_from_series(s, &v) == DEID_ERR_UNSUPPORTED && v == NULL);
    deid_series_free(s);
}

static void test_volume_and_write_back(void)
{
    long ks[10];
    for (long k = 0; k < 10; k++)
        ks[k] = k;
    deid_series *s = make_series(ks, 10, 2.5, 0);
    CHECK_OK(deid_series_sort(s, NULL));
    deid_volume *v;
    CHECK_OK(deid_volume_from_series(s, &v));
    deid_volume_geometry g;
    deid_volume_get_geometry(v, &g);
    CHECK(g.dims[0] == COLS && g.dims[1] == ROWS && g.dims[2] == 10);
    CHECK(g.spacing[0] == 0.75 && g.spacing[1] == 0.5 && fabs(g.spacing[2] - 2.5) < 1e-9);
    CHECK(g.origin[0] == -4.0 && g.origin[1] == -3.0 && g.origin[2] == 10.0);
    CHECK(g.direction[0] == 1 && g.direction[4] == 1 && fabs(g.direction[8] - 1) < 1e-12);
    double slope, icpt;
    deid_volume_get_rescale(v, &slope, &icpt);
    CHECK(slope == 1 && icpt == -1024 && deid_volume_is_hounsfield(v));
    int32_t *vox = deid_volume_voxels(v);
    int same = 1;
    for (size_t k = 0; k < 10; k++)
        for (size_t j = 0; j < ROWS; j++)
            for (size_t i = 0; i < COLS; i++)
                same &= vox[(k * ROWS + j) * COLS + i] == pattern(i, j, (long)k);
    CHECK(same);

    /* change the voxels, write them back, read the volume again */
    for (size_t n = 0; n < deid_volume_count(v); n++)
        vox[n] = vox[n] * 2 + 1;
    vox[5] = 40000; /* with negative values in the slice: no 16-bit type holds both */
    size_t unmatched = 99;
    CHECK_OK(deid_series_set_volume(s, v, &unmatched));
    CHECK(unmatched == 0);
    deid_volume *w;
    CHECK_OK(deid_volume_from_series(s, &w));
    int32_t *wv = deid_volume_voxels(w);
    size_t diff = 0;
    for (size_t n = 0; n < deid_volume_count(v); n++)
        diff += wv[n] != vox[n];
    CHECK(diff == 1 && wv[5] == 32767); /* the one value no 16-bit slice holds is clamped */
    CHECK(!strcmp(deid_dataset_transfer_syntax(deid_series_dataset(s, 0)),
                  "1.2.840.10008.1.2.1"));
    deid_volume_free(w);

    /* a volume of the first 5 slices: the other 5 are left as they are */
    size_t d5[3] = {COLS, ROWS, 5};
    deid_volume *half;
    CHECK_OK(deid_volume_new(d5, &half));
    deid_volume_geometry gh = g;
    gh.dims[2] = 5;
    CHECK_OK(deid_volume_set_geometry(half, &gh));
    CHECK_OK(deid_volume_set_rescale(half, 1, -1024, 1));
    for (size_t n = 0; n < deid_volume_count(half); n++)
        deid_volume_voxels(half)[n] = 7;
    CHECK_OK(deid_series_set_volume(s, half, &unmatched));
    CHECK(unmatched == 5);
    CHECK_OK(deid_volume_from_series(s, &w));
    wv = deid_volume_voxels(w);
    CHECK(wv[0] == 7 && wv[5 * ROWS * COLS - 1] == 7 && wv[5 * ROWS * COLS] == vox[5 * ROWS * COLS]);
    deid_volume_free(w);

    /* a volume twice as dense: each slice takes its nearest volume slice */
    size_t d19[3] = {COLS, ROWS, 19};
    deid_volume *dense;
    CHECK_OK(deid_volume_new(d19, &dense));
    gh = g;
    gh.dims[2] = 19;
    gh.spacing[2] = 1.25;
    CHECK_OK(deid_volume_set_geometry(dense, &gh));
    CHECK_OK(deid_volume_set_rescale(dense, 1, -1024, 1));
    for (size_t k = 0; k < 19; k++)
        for (size_t n = 0; n < ROWS * COLS; n++)
            deid_volume_voxels(dense)[k * ROWS * COLS + n] = (int32_t)k;
    CHECK_OK(deid_series_set_volume(s, dense, &unmatched));
    CHECK(unmatched == 0);
    CHECK_OK(deid_volume_from_series(s, &w));
    CHECK(deid_volume_voxels(w)[9 * ROWS * COLS] == 18 && deid_volume_voxels(w)[ROWS * COLS] == 2);
    deid_volume_free(w);
    deid_volume_free(dense);

    /* another rescale in the volume: the slices keep theirs, values convert */
    CHECK_OK(deid_volume_set_rescale(half, 2, -1000, 1));
    CHECK_OK(deid_series_set_volume(s, half, &unmatched));
    CHECK_OK(deid_volume_from_series(s, &w));
    CHECK(deid_volume_voxels(w)[0] == 7 * 2 - 1000 + 1024);
    deid_volume_free(w);

    /* 12 bits stored, values that need 16: Bits Stored follows */
    deid_dataset *ds0 = deid_series_dataset(s, 0);
    set_us(ds0, DEID_TAG(0x0028, 0x0101), 12);
    set_us(ds0, DEID_TAG(0x0028, 0x0102), 11);
    CHECK_OK(deid_volume_set_rescale(half, 1, -1024, 1));
    deid_volume_voxels(half)[0] = 3000;
    CHECK_OK(deid_series_set_volume(s, half, NULL));
    deid_image *img;
    CHECK_OK(deid_image_decode(ds0, 0, 1, 0, &img));
    CHECK(((int16_t *)deid_image_data(img))[0] == 3000);
    deid_image_free(img);

    /* rows that differ */
    size_t dbad[3] = {COLS, ROWS + 1, 10};
    deid_volume *bad;
    CHECK_OK(deid_volume_new(dbad, &bad));
    CHECK(deid_series_set_volume(s, bad, NULL) == DEID_ERR_ARGUMENT);
    deid_volume_free(bad);
    deid_volume_free(half);
    deid_volume_free(v);
    deid_series_free(s);
}

/* A legacy multi-frame object: one position, orientation and SpacingBetweenSlices. */
static void test_legacy_multiframe(void)
{
    deid_dataset *ds = deid__dataset_new("legacy");
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0060), "CT"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0020, 0x0032), "1\\2\\3"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0020, 0x0037), "0\\1\\0\\0\\0\\-1"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0018, 0x0088), "4"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0028, 0x0030), "1\\1"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0028, 0x1054), "OD"));
    deid_image *img = deid__image_new(3, 4, 5, 1, 8, 0, "MONOCHROME2");
    for (size_t n = 0; n < img->size; n++)
        img->data[n] = (uint8_t)(n / 20);
    deid_encode_options o = DEID_ENCODE_OPTIONS_INIT;
    o.codec = DEID_CODEC_UNCOMPRESSED;
    CHECK_OK(deid_dataset_set_pixels(ds, img, &o));
    deid_image_free(img);
    deid_volume *v;
    CHECK_OK(deid_volume_from_dataset(ds, &v));
    deid_volume_geometry g;
    deid_volume_get_geometry(v, &g);
    /* normal of (0,1,0) x (0,0,-1) = (-1,0,0): frames step along -x */
    CHECK(g.dims[0] == 5 && g.dims[1] == 4 && g.dims[2] == 3);
    CHECK(fabs(g.spacing[2] - 4) < 1e-9 && fabs(g.direction[6] + 1) < 1e-9);
    CHECK(g.origin[0] == 1 && g.origin[1] == 2 && g.origin[2] == 3);
    CHECK(deid_volume_voxels(v)[2 * 20] == 2 && !deid_volume_is_hounsfield(v));
    deid_volume_free(v);
    deid_dataset_free(ds);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

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
    qsort(names, n, sizeof *names, cmp_str); /* I10, I11, ... I2: not slice order */
    deid_series *s;
    CHECK_OK(deid_series_new(&s));
    for (size_t i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", base, names[i]);
        deid_dataset *ds = NULL;
        CHECK_OK(deid_dataset_read_file(path, NULL, &ds));
        CHECK_OK(deid_series_add(s, ds, names[i]));
        free(names[i]);
    }
    deid_series_report r;
    CHECK_OK(deid_series_sort(s, &r));
    fprintf(stderr, "head_ct_5mm: %s\n", r.message);
    CHECK(r.slices == 34 && r.missing == 0 && r.duplicates == 0 && !r.uneven && !r.mixed_sizes);
    CHECK(fabs(r.spacing - 5.0) < 1e-3 && r.tilt_degrees < 0.01);
    CHECK(!strcmp(deid_series_path(s, 0), "I2.dcm") && !strcmp(deid_series_path(s, 33), "I35.dcm"));
    double t0 = deid__now();
    deid_volume *v;
    CHECK_OK(deid_volume_from_series(s, &v));
    fprintf(stderr, "head_ct_5mm: volume in %.3f s (decoding included)\n", deid__now() - t0);
    deid_volume_geometry g;
    deid_volume_get_geometry(v, &g);
    CHECK(g.dims[0] == 512 && g.dims[1] == 512 && g.dims[2] == 34);
    CHECK(fabs(g.origin[0] + 122.2) < 1e-9 && fabs(g.origin[1] + 107.1) < 1e-9 &&
          fabs(g.origin[2] + 19.25) < 1e-9);
    CHECK(fabs(g.spacing[0] - 0.488281) < 1e-9 && fabs(g.spacing[2] - 5.0) < 1e-9);
    CHECK(g.direction[0] == 1 && g.direction[4] == 1 && fabs(g.direction[8] - 1) < 1e-12);
    double slope, icpt;
    deid_volume_get_rescale(v, &slope, &icpt);
    CHECK(slope == 1 && icpt == -1024 && deid_volume_is_hounsfield(v));
    /* voxels equal each sorted slice decoded on its own */
    size_t plane = 512 * 512, bad = 0;
    int32_t *vox = deid_volume_voxels(v);
    for (size_t k = 0; k < 34; k++) {
        deid_image *img;
        CHECK_OK(deid_image_decode(deid_series_dataset(s, k), 0, 1, 0, &img));
        const int16_t *px = deid_image_data(img);
        for (size_t i = 0; i < plane; i++)
            bad += vox[k * plane + i] != px[i];
        deid_image_free(img);
    }
    CHECK(bad == 0);
    /* written back (JPEG lossless -> uncompressed) and read again: identical */
    size_t unmatched = 1;
    CHECK_OK(deid_series_set_volume(s, v, &unmatched));
    CHECK(unmatched == 0);
    deid_volume *w;
    CHECK_OK(deid_volume_from_series(s, &w));
    CHECK(w && !memcmp(deid_volume_voxels(w), vox, deid_volume_count(v) * sizeof *vox));
    deid_volume_free(w);
    deid_volume_free(v);
    deid_series_free(s);
}

static void test_enhanced_ct(void)
{
    deid_dataset *ds = check_load_shared("ct/pydicom-data_eCT_Supplemental_enhancedCT.dcm");
    if (!ds)
        return;
    deid_volume *v;
    CHECK_OK(deid_volume_from_dataset(ds, &v));
    deid_volume_geometry g;
    deid_volume_get_geometry(v, &g);
    CHECK(g.dims[0] == 512 && g.dims[1] == 512 && g.dims[2] == 2);
    /* normal (-1,0,0) x (0,1,0) = (0,0,-1): frame 2 (z -149) comes first */
    CHECK(g.origin[0] == 99.5 && g.origin[1] == -301.5 && g.origin[2] == -149);
    CHECK(g.direction[0] == -1 && g.direction[4] == 1 && fabs(g.direction[8] + 1) < 1e-12);
    CHECK(fabs(g.spacing[0] - 0.388672) < 1e-9 && fabs(g.spacing[2] - 10) < 1e-9);
    CHECK(!deid_volume_is_hounsfield(v)); /* Rescale Type US */
    deid_image *img;
    CHECK_OK(deid_image_decode(ds, 0, 0, 0, &img));
    size_t plane = 512 * 512, bad = 0;
    const uint16_t *px = deid_image_data(img);
    for (size_t i = 0; i < plane; i++)
        bad += deid_volume_voxels(v)[i] != px[plane + i] ||
               deid_volume_voxels(v)[plane + i] != px[i];
    CHECK(bad == 0);
    deid_image_free(img);
    deid_volume_free(v);
    deid_dataset_free(ds);
}

/* One-slice objects, uncompressed and JPEG 2000 lossless: the same one-slice volume. */
static void test_single_slices(void)
{
    deid_dataset *a = check_load_shared("ct/pydicom-data_693_UNCR_CQ500_headCT.dcm");
    deid_dataset *b = check_load_shared("ct/pydicom-data_693_J2KR_CQ500_headCT.dcm");
    if (a && b) {
        deid_volume *va = NULL, *vb = NULL;
        CHECK_OK(deid_volume_from_dataset(a, &va));
        CHECK_OK(deid_volume_from_dataset(b, &vb));
        deid_volume_geometry g;
        deid_volume_get_geometry(va, &g);
        CHECK(g.dims[0] == 512 && g.dims[1] == 512 && g.dims[2] == 1);
        CHECK(g.origin[0] == -122.5 && g.origin[1] == -112.4 && g.origin[2] == 47);
        CHECK(va && vb && !memcmp(deid_volume_voxels(va), deid_volume_voxels(vb),
                                  512 * 512 * sizeof(int32_t)));
        deid_series *s;
        CHECK_OK(deid_series_new(&s));
        CHECK_OK(deid_series_add(s, b, "j2kr"));
        b = NULL;
        deid_series_report r;
        CHECK_OK(deid_series_sort(s, &r));
        CHECK(r.slices == 1 && r.missing == 0 && !strcmp(r.message, "1 slice, 0.00 mm"));
        deid_volume_free(vb);
        CHECK_OK(deid_volume_from_series(s, &vb));
        CHECK(vb && !memcmp(deid_volume_voxels(va), deid_volume_voxels(vb),
                            512 * 512 * sizeof(int32_t)));
        deid_volume_free(va);
        deid_volume_free(vb);
        deid_series_free(s);
    }
    deid_dataset_free(a);
    deid_dataset_free(b);
}

/* ---- export --------------------------------------------------------------------------------- */

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *b = NULL;
    size_t cap = 0, len = 0, got;
    do {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            b = realloc(b, cap);
        }
        got = fread(b + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    *n = len;
    return b;
}

/* The bytes of a gzip file (gzread). */
static uint8_t *slurp_gz(const char *path, size_t *n)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *b = NULL;
    size_t cap = 0, len = 0;
    int got;
    do {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            b = realloc(b, cap);
        }
        got = gzread(f, b + len, (unsigned)(cap - len));
        if (got > 0)
            len += (size_t)got;
    } while (got > 0);
    gzclose(f);
    *n = len;
    return b;
}

static deid_volume *small_volume(int wide)
{
    size_t dims[3] = {5, 4, 3};
    deid_volume *v;
    CHECK_OK(deid_volume_new(dims, &v));
    deid_volume_geometry g;
    deid_volume_get_geometry(v, &g);
    g.spacing[0] = 0.5;
    g.spacing[1] = 0.75;
    g.spacing[2] = 2;
    g.origin[0] = -10;
    g.origin[1] = 20;
    g.origin[2] = 30;
    CHECK_OK(deid_volume_set_geometry(v, &g));
    CHECK_OK(deid_volume_set_rescale(v, 1, -1024, 1));
    for (size_t n = 0; n < deid_volume_count(v); n++)
        deid_volume_voxels(v)[n] = (int32_t)n * (wide ? 5000 : 7) - 3;
    return v;
}

static float f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

static int16_t i16(const uint8_t *p)
{
    int16_t v;
    memcpy(&v, p, 2);
    return v;
}

static void check_nifti(const uint8_t *b, size_t n, const deid_volume *v, int wide)
{
    CHECK(n >= 352);
    if (n < 352)
        return;
    int32_t sizeof_hdr;
    memcpy(&sizeof_hdr, b, 4);
    CHECK(sizeof_hdr == 348 && !memcmp(b + 344, "n+1", 4));
    CHECK(i16(b + 40) == 3 && i16(b + 42) == 5 && i16(b + 44) == 4 && i16(b + 46) == 3);
    CHECK(i16(b + 70) == (wide ? 8 : 4) && i16(b + 72) == (wide ? 32 : 16));
    CHECK(f32(b + 108) == 352 && f32(b + 112) == 1 && f32(b + 116) == -1024);
    CHECK(i16(b + 252) == 1 && i16(b + 254) == 1);
    CHECK(f32(b + 80) == 0.5f && f32(b + 84) == 0.75f && f32(b + 88) == 2);
    /* rows flipped like dcm2niix: RAS = (-x, -y, z); j runs from the last row */
    float want[3][4] = {{-0.5f, 0, 0, 10}, {0, 0.75f, 0, -(20 + 3 * 0.75f)}, {0, 0, 2, 30}};
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            CHECK(fabsf(f32(b + 280 + 16 * r + 4 * c) - want[r][c]) < 1e-5f);
    size_t bytes = wide ? 4 : 2, bad = 0;
    CHECK(n == 352 + 60 * bytes);
    if (n != 352 + 60 * bytes)
        return;
    const int32_t *vox = deid_volume_voxels((deid_volume *)v);
    for (size_t k = 0; k < 3; k++)
        for (size_t j = 0; j < 4; j++)
            for (size_t i = 0; i < 5; i++) {
                const uint8_t *p = b + 352 + ((k * 4 + j) * 5 + i) * bytes;
                int32_t got;
                if (wide)
                    memcpy(&got, p, 4);
                else
                    got = i16(p);
                bad += got != vox[(k * 4 + (3 - j)) * 5 + i];
            }
    CHECK(bad == 0);
}

static void test_nifti(void)
{
    const char *dir = check_tmpdir("ct_volume");
    if (!dir)
        return;
    char path[4200];
    for (int wide = 0; wide < 2; wide++)
        for (int gz = 0; gz < 2; gz++) {
            deid_volume *v = small_volume(wide);
            snprintf(path, sizeof path, "%s/v%d.nii%s", dir, wide, gz ? ".gz" : "");
            deid_status st = deid_volume_write_nifti(v, path);
#if DEID_HAVE_NIFTI
            CHECK_OK(st);
            size_t n = 0;
            uint8_t *b = gz ? slurp_gz(path, &n) : slurp(path, &n);
            CHECK(b != NULL);
            if (b)
                check_nifti(b, n, v, wide);
            if (gz) { /* really gzipped */
                uint8_t *raw = slurp(path, &n);
                CHECK(raw && n > 2 && raw[0] == 0x1f && raw[1] == 0x8b);
                free(raw);
            }
            free(b);
#else
            CHECK(st == DEID_ERR_UNSUPPORTED);
#endif
            deid_volume_free(v);
        }
    deid_volume *v = small_volume(0);
    CHECK(deid_volume_write_nifti(v, "/nonexistent-dir/x/v.nii") ==
          (DEID_HAVE_NIFTI ? DEID_ERR_IO : DEID_ERR_UNSUPPORTED));
    if (DEID_HAVE_NIFTI)
        CHECK(strstr(deid_last_error(), "/nonexistent-dir/x") != NULL);
    snprintf(path, sizeof path, "%s/v.img", dir);
    CHECK(deid_volume_write_nifti(v, path) != DEID_OK);
    deid_volume_free(v);
}

static void test_nrrd(void)
{
    const char *dir = check_tmpdir("ct_volume");
    if (!dir)
        return;
    char path[4200];
    for (int gz = 0; gz < 2; gz++) {
        deid_volume *v = small_volume(0);
        snprintf(path, sizeof path, "%s/v%d.nrrd", dir, gz);
        CHECK_OK(deid_volume_write_nrrd(v, path, gz));
        size_t n = 0;
        uint8_t *b = slurp(path, &n);
        CHECK(b && n > 10 && !memcmp(b, "NRRD0004\n", 9));
        if (!b)
            continue;
        char *end = strstr((char *)b, "\n\n");
        CHECK(end != NULL);
        if (!end) {
            free(b);
            continue;
        }
        end[1] = '\0';
        const char *h = (const char *)b;
        CHECK(strstr(h, "type: int16\n") && strstr(h, "sizes: 5 4 3\n"));
        CHECK(strstr(h, "space: left-posterior-superior\n"));
        CHECK(strstr(h, "space directions: (0.5,0,0) (0,0.75,0) (0,0,2)\n"));
        CHECK(strstr(h, "space origin: (-10,20,30)\n"));
        CHECK(strstr(h, gz ? "encoding: gzip\n" : "encoding: raw\n"));
        const uint8_t *data = (const uint8_t *)end + 2;
        size_t dn = n - (size_t)(data - b);
        uint8_t raw[120];
        if (gz) {
            z_stream z;
            memset(&z, 0, sizeof z);
            CHECK(inflateInit2(&z, 31) == Z_OK);
            z.next_in = (Bytef *)(uintptr_t)data;
            z.avail_in = (uInt)dn;
            z.next_out = raw;
            z.avail_out = sizeof raw;
            CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END && z.total_out == sizeof raw);
            inflateEnd(&z);
        } else {
            CHECK(dn == sizeof raw);
            memcpy(raw, data, dn < sizeof raw ? dn : sizeof raw);
        }
        size_t bad = 0; /* values in Hounsfield units: stored - 1024 */
        for (size_t i = 0; i < 60; i++)
            bad += i16(raw + 2 * i) != deid_volume_voxels(v)[i] - 1024;
        CHECK(bad == 0);
        free(b);
        deid_volume_free(v);
    }
    deid_volume *v = small_volume(1);
    snprintf(path, sizeof path, "%s/wide.nrrd", dir);
    CHECK_OK(deid_volume_write_nrrd(v, path, 0));
    size_t n = 0;
    uint8_t *b = slurp(path, &n);
    CHECK(b && strstr((char *)b, "type: int32\n"));
    free(b);
    CHECK(deid_volume_write_nrrd(v, "/nonexistent-dir/x/v.nrrd", 1) == DEID_ERR_IO);
    deid_volume_free(v);
}

int main(void)
{
    test_sort_and_report();
    test_add_and_fallbacks();
    test_volume_and_write_back();
    test_legacy_multiframe();
    test_head_ct();
    test_enhanced_ct();
    test_single_slices();
    test_nifti();
    test_nrrd();
    return check_done("test_ct_volume");
}
