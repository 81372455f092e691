/* The fan detector on the real ultrasound files of ../shared/data/us (skipped when absent):
 * every file decodes, the detector returns a geometry of the image's size covering a
 * plausible share of it, with a confidence in [0, 1]. The geometry per file is printed (the
 * figures the project notes quote), with the mask JSON. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/core.h"
#include "deid/deid.h"

/* What each file is known to show (PROVENANCE.tsv and a look at the pixels). */
static const struct expect {
    const char *name;
    int kind; /* -1: either */
} expected[] = {
    {"deid-data_GREYSCALE_CINE.dcm", DEID_FAN_RECTANGLE},   /* Philips linear L12-5 */
    {"orthanc_Issue16_HP_echo_34f.dcm", DEID_FAN_SECTOR},   /* HP phased echo */
    {"orthanc_Issue19_ATL_sector.dcm", DEID_FAN_SECTOR},    /* ATL phased, single frame */
    {"pydicom-data_OBXXXX1A_rle_2frame.dcm", DEID_FAN_SECTOR}, /* Philips C5-1 curvilinear */
    {"dbdicom_UltrasoundPaletteColor_0020.dcm", DEID_FAN_SECTOR}, /* two sectors */
    {"pydicom-data_US1_UNCR.dcm", -1},                     /* GE linear + power Doppler */
    {"pydicom-data_US1_J2KR.dcm", -1},
};

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void detect_file(const char *dir, const char *name)
{
    char path[8192];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        CHECK(0);
        return;
    }
    deid_dataset *ds = NULL;
    CHECK_OK(deid_dataset_read_file(path, NULL, &ds));
    if (!ds)
        return;
    deid_image *img = NULL;
    double t0 = deid__now();
    CHECK_OK(deid_image_decode(ds, 0, 0, 0, &img));
    double t1 = deid__now();
    if (!img) {
        deid_dataset_free(ds);
        return;
    }
    deid_fan fan;
    double conf = -1;
    deid_status st = deid_fan_detect(img, ds, NULL, &fan, &conf);
    double t2 = deid__now();
    CHECK_OK(st);
    size_t rows = deid_image_rows(img), cols = deid_image_cols(img);
    printf("%s: %zu frames %zux%zu %s\n", name, deid_image_frames(img), rows, cols,
           deid_image_photometric(img));
    if (st == DEID_OK) {
        uint8_t *mask = malloc(rows * cols);
        size_t in = 0;
        if (mask && deid_fan_rasterize(&fan, 0, mask, rows * cols) == DEID_OK)
            for (size_t p = 0; p < rows * cols; p++)
                in += mask[p];
        free(mask);
        double share = (double)in / (double)(rows * cols);
        if (fan.kind == DEID_FAN_SECTOR)
            printf("  fan: apex (row %.0f, col %.0f) radius1 %.0f radius2 %.0f angle1 %.2f "
                   "angle2 %.2f",
                   fan.center_rows_px, fan.center_cols_px, fan.radius1, fan.radius2, fan.angle1,
                   fan.angle2);
        else
            printf("  rectangle: top %.0f left %.0f bottom %.0f right %.0f", fan.rectangle_top,
                   fan.rectangle_left, fan.rectangle_bottom, fan.rectangle_right);
        printf("; %.1f%% of the image; confidence %.3f; decode %.0f ms, detect %.1f ms\n",
               100 * share, conf, 1000 * (t1 - t0), 1000 * (t2 - t1));
        char *json = NULL;
        CHECK_OK(deid_fan_to_json(&fan, &json));
        if (json) {
            for (char *c = json; *c; c++)
                if (*c == '\n')
                    *c = ' ';
            printf("  %s\n", json);
        }
        deid_free(json);
        CHECK(fan.image_size_rows == rows && fan.image_size_cols == cols);
        CHECK(conf >= 0 && conf <= 1);
        CHECK(share > 0.05 && share < 0.95);
        for (size_t k = 0; k < sizeof expected / sizeof expected[0]; k++)
            if (!strcmp(expected[k].name, name) && expected[k].kind >= 0)
                CHECK(fan.kind == (deid_fan_kind)expected[k].kind);
    }
    deid_image_free(img);
    deid_dataset_free(ds);
}

int main(void)
{
    const char *dir = check_shared("us");
    if (!dir)
        return check_done("test_us_real");
    char root[4096];
    snprintf(root, sizeof root, "%s", dir);
    DIR *d = opendir(root);
    CHECK(d != NULL);
    if (!d)
        return check_done("test_us_real");
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t len = strlen(e->d_name);
        if (len > 4 && !strcmp(e->d_name + len - 4, ".dcm"))
            names[n++] = deid__strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    for (size_t k = 0; k < n; k++) {
        if (names[k])
            detect_file(root, names[k]);
        free(names[k]);
    }
    return check_done("test_us_real");
}
