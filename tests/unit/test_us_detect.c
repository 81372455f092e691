/* The model-free fan detector on clips synthesised here: a curvilinear fan with moving speckle,
 * a dark chamber, static burned-in text and an ECG sweep; a phased sector in RGB with a
 * colour Doppler box; a linear probe with a dark band, a live frame counter and Ultrasound
 * Regions; the same fan as a single frame. Each must give IoU >= 0.97 with the truth and leave
 * every burned-in text pixel outside the mask. A 100-frame 600x800 clip is timed. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/core.h"
#include "deid/deid.h"
#include "dicom/dataset_int.h"
#include "us/us_int.h"

#define PI 3.14159265358979323846

typedef struct clip {
    size_t rows, cols, frames, samples;
    uint8_t *pix;   /* frames x rows x cols x samples */
    uint8_t *truth; /* scan area */
    uint8_t *text;  /* burned-in text (must end up outside the mask) */
    uint8_t *ecg;   /* ECG trace pixels (must end up outside too) */
    deid_fan fan;
} clip;

static uint64_t hash3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t z = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull ^
                 (c + 0x94D049BB133111EBull);
    z ^= z >> 30;
    z *= 0xBF58476D1CE4E5B9ull;
    z ^= z >> 27;
    z *= 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unit(uint64_t h) { return (double)(h >> 11) / 9007199254740992.0; }

static int clip_new(clip *c, size_t rows, size_t cols, size_t frames, size_t samples,
                    const deid_fan *fan)
{
    memset(c, 0, sizeof *c);
    c->rows = rows;
    c->cols = cols;
    c->frames = frames;
    c->samples = samples;
    c->fan = *fan;
    c->fan.image_size_rows = rows;
    c->fan.image_size_cols = cols;
    size_t n = rows * cols;
    c->pix = calloc(frames * n * samples, 1);
    c->truth = malloc(n);
    c->text = calloc(n, 1);
    c->ecg = calloc(n, 1);
    if (!c->pix || !c->truth || !c->text || !c->ecg)
        return -1;
    CHECK_OK(deid_fan_rasterize(&c->fan, 0, c->truth, n));
    return 0;
}

static void clip_free(clip *c)
{
    free(c->pix);
    free(c->truth);
    free(c->text);
    free(c->ecg);
}

/* clip_new, failing the test (and freeing) when memory runs out; 1 on success. */
static int clip_make(clip *c, size_t rows, size_t cols, size_t frames, size_t samples,
                     const deid_fan *fan)
{
    if (clip_new(c, rows, cols, frames, samples, fan) == 0)
        return 1;
    CHECK(0);
    clip_free(c);
    return 0;
}

static void put(clip *c, size_t f, size_t i, size_t j, int r, int g, int b)
{
    uint8_t *p = c->pix + ((f * c->rows + i) * c->cols + j) * c->samples;
    if (c->samples == 1) {
        p[0] = (uint8_t)r;
    } else {
        p[0] = (uint8_t)r;
        p[1] = (uint8_t)g;
        p[2] = (uint8_t)b;
    }
}

/* Speckle inside the fan: a tissue pattern that drifts downwards over time times fresh
 * multiplicative noise per frame, dimmer with depth; a dark chamber that moves; in RGB, a
 * colour Doppler box (annular sub-sector) whose colours change every frame. Beyond the
 * relative depth `black_beyond` (1: none) the fan is black: no echo. */
static void fill_fan(clip *c, int doppler, double black_beyond)
{
    const deid_fan *fan = &c->fan;
    for (size_t f = 0; f < c->frames; f++)
        for (size_t i = 0; i < c->rows; i++)
            for (size_t j = 0; j < c->cols; j++) {
                if (!c->truth[i * c->cols + j])
                    continue;
                double y = (double)i, x = (double)j;
                double ty = y + 1.5 * (double)f;
                double tissue = 0.55 + 0.25 * sin(ty / 23.0) * cos(x / 31.0) +
                                0.2 * unit(hash3(7, (uint64_t)(ty / 3), (uint64_t)(x / 3)));
                double depth = fan->kind == DEID_FAN_SECTOR
                                   ? hypot(y - fan->center_rows_px, x - fan->center_cols_px) /
                                         fan->radius2
                                   : (y - fan->rectangle_top) /
                                         (fan->rectangle_bottom - fan->rectangle_top);
                double gain = 1.0 - 0.5 * depth;
                double noise = -log(1.0 - 0.999 * unit(hash3(f, i, j))); /* exponential */
                double v = 140.0 * tissue * gain * (0.35 + 0.65 * noise);
                double cy = 0.55 * (double)c->rows + 12 * sin((double)f / 5.0);
                double cx = 0.5 * (double)c->cols + 15 * cos((double)f / 7.0);
                if (hypot(y - cy, x - cx) < 0.08 * (double)c->rows)
                    v = 4.0 * unit(hash3(f + 99, i, j)); /* fluid: nearly black */
                if (depth > black_beyond)
                    v = 0;
                int g = v > 255 ? 255 : (int)v;
                put(c, f, i, j, g, g, g);
                if (doppler && fan->kind == DEID_FAN_SECTOR) {
                    double d = hypot(y - fan->center_rows_px, x - fan->center_cols_px);
                    double a = atan2(y - fan->center_rows_px, x - fan->center_cols_px) * 180 / PI;
                    if (d > 0.3 * fan->radius2 && d < 0.75 * fan->radius2 && a > 80 && a < 100) {
                        double u = unit(hash3(f + 7, i / 4, j / 4));
                        if (u > 0.5)
                            put(c, f, i, j, (int)(255 * u), 40, 20);
                        else if (u > 0.2)
                            put(c, f, i, j, 20, 60, (int)(255 * (1 - u)));
                    }
                }
            }
}

/* Static text: random 5x7 glyphs, 2x scaled, in a line starting at (row, col). */
static void text_line(clip *c, size_t row, size_t col, size_t nchar, uint64_t seed)
{
    for (size_t k = 0; k < nchar; k++)
        for (int gy = 0; gy < 7; gy++)
            for (int gx = 0; gx < 5; gx++) {
                if (unit(hash3(seed, k, (uint64_t)(gy * 5 + gx))) < 0.45)
                    continue;
                for (int d = 0; d < 4; d++) {
                    size_t i = row + (size_t)(2 * gy + d / 2), j = col + k * 12 + (size_t)(2 * gx + d % 2);
                    if (i >= c->rows || j >= c->cols)
                        continue;
                    c->text[i * c->cols + j] = 1;
                    for (size_t f = 0; f < c->frames; f++)
                        put(c, f, i, j, 235, 235, 235);
                }
            }
}

/* A static grey bar (the scanner's grey map) and a solid logo block. */
static void bar(clip *c, size_t top, size_t left, size_t h, size_t w)
{
    for (size_t i = top; i < top + h && i < c->rows; i++)
        for (size_t j = left; j < left + w && j < c->cols; j++) {
            int v = 255 - (int)(255 * (i - top) / h);
            c->text[i * c->cols + j] = 1;
            for (size_t f = 0; f < c->frames; f++)
                put(c, f, i, j, v, v, v);
        }
}

/* An ECG sweep: a 2-pixel trace redrawn left to right, the sweep position moving with the
 * frame, the old trace (shifted phase) to its right. */
static void ecg(clip *c, size_t base, size_t left, size_t right)
{
    for (size_t f = 0; f < c->frames; f++) {
        size_t sweep = left + (f * 37) % (right - left);
        for (size_t j = left; j < right; j++) {
            double ph = (double)j / 40.0 + (j < sweep ? 0.0 : 2.1);
            double beat = fmod(ph, 6.0);
            double y = 3 * sin(ph) + (beat < 0.3 ? -18 * sin(beat / 0.3 * PI) : 0);
            size_t i = (size_t)((double)base + y);
            for (size_t t = 0; t < 2; t++) {
                c->ecg[(i + t) * c->cols + j] = 1;
                put(c, f, i + t, j, 40, 200, 60);
            }
        }
    }
}

/* A frame counter that changes every frame: live, but text. */
static void counter(clip *c, size_t row, size_t col)
{
    for (size_t f = 0; f < c->frames; f++)
        for (int gy = 0; gy < 14; gy++)
            for (int gx = 0; gx < 36; gx++) {
                size_t i = row + (size_t)gy, j = col + (size_t)gx;
                c->text[i * c->cols + j] = 1;
                int on = unit(hash3(f / 2 + 1000, (uint64_t)gy / 2, (uint64_t)gx / 2)) > 0.5;
                put(c, f, i, j, on ? 220 : 0, on ? 220 : 0, on ? 220 : 0);
            }
}

static void set_us(deid_dataset *ds, uint32_t tag, unsigned v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    CHECK_OK(deid_dataset_set(ds, tag, "US", b, 2));
}

static void put_ul(deid_item *it, uint32_t tag, uint16_t vr, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    deid_elem *e = deid__item_put(it, tag, vr);
    CHECK(e && deid__elem_set(e, b, vr == DEID_VR('U', 'S') ? 2 : 4) == 0);
}

/* The clip as a DICOM object; region (top, left, bottom, right) adds a 2D Ultrasound Region
 * when not NULL. */
static deid_dataset *to_dataset(const clip *c, const long *region)
{
    deid_dataset *ds = deid__dataset_new("synthetic-us");
    if (!ds)
        return NULL;
    ds->transfer_syntax = deid__strdup("1.2.840.10008.1.2.1");
    char frames[24];
    snprintf(frames, sizeof frames, "%zu", c->frames);
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0060), "US"));
    set_us(ds, DEID_TAG(0x0028, 0x0002), (unsigned)c->samples);
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0028, 0x0004),
                                     c->samples == 3 ? "RGB" : "MONOCHROME2"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0028, 0x0008), frames));
    set_us(ds, DEID_TAG(0x0028, 0x0010), (unsigned)c->rows);
    set_us(ds, DEID_TAG(0x0028, 0x0011), (unsigned)c->cols);
    set_us(ds, DEID_TAG(0x0028, 0x0100), 8);
    set_us(ds, DEID_TAG(0x0028, 0x0101), 8);
    set_us(ds, DEID_TAG(0x0028, 0x0102), 7);
    set_us(ds, DEID_TAG(0x0028, 0x0103), 0);
    CHECK_OK(deid_dataset_set(ds, DEID_TAG(0x7FE0, 0x0010), "OB", c->pix,
                              c->frames * c->rows * c->cols * c->samples));
    if (region) {
        deid_elem *seq = deid__item_put(&ds->root, 0x00186011u, DEID_VR_SQ);
        deid_item *it = seq ? deid__elem_add_item(seq) : NULL;
        CHECK(it != NULL);
        if (it) {
            put_ul(it, 0x00186012u, DEID_VR('U', 'S'), 1);
            put_ul(it, 0x00186018u, DEID_VR('U', 'L'), (uint32_t)region[1]);
            put_ul(it, 0x0018601Au, DEID_VR('U', 'L'), (uint32_t)region[0]);
            put_ul(it, 0x0018601Cu, DEID_VR('U', 'L'), (uint32_t)region[3]);
            put_ul(it, 0x0018601Eu, DEID_VR('U', 'L'), (uint32_t)region[2]);
        }
    }
    return ds;
}

static void print_fan(const char *name, const deid_fan *f, double conf)
{
    if (f->kind == DEID_FAN_SECTOR)
        printf("%s: fan apex (%.0f, %.0f) radius1 %.0f radius2 %.0f angle1 %.2f angle2 %.2f "
               "confidence %.3f\n",
               name, f->center_rows_px, f->center_cols_px, f->radius1, f->radius2, f->angle1,
               f->angle2, conf);
    else
        printf("%s: rectangle top %.0f left %.0f bottom %.0f right %.0f confidence %.3f\n", name,
               f->rectangle_top, f->rectangle_left, f->rectangle_bottom, f->rectangle_right,
               conf);
}

/* Detect on the clip; IoU with the truth, text and ECG pixels outside, a confident result. */
static double check_clip_opts(const char *name, clip *c, const long *region, deid_fan_kind kind,
                              const deid_fan_detect_options *opts, int expect_good)
{
    deid_dataset *ds = to_dataset(c, region);
    deid_image *img = NULL;
    CHECK_OK(deid_image_decode(ds, 0, 0, 0, &img));
    if (!img) {
        deid_dataset_free(ds);
        return 0;
    }
    deid_fan fan;
    double conf = -1;
    double t0 = deid__now();
    CHECK_OK(deid_fan_detect(img, ds, opts, &fan, &conf));
    double ms = 1000 * (deid__now() - t0);
    deid_image_free(img);
    deid_dataset_free(ds);
    size_t n = c->rows * c->cols;
    uint8_t *mask = malloc(n);
    if (!mask) {
        CHECK(0);
        return 0;
    }
    CHECK_OK(deid_fan_rasterize(&fan, 0, mask, n));
    double iou = deid__mask_iou(mask, c->truth, n);
    size_t text_in = 0, ecg_in = 0;
    for (size_t p = 0; p < n; p++) {
        text_in += c->text[p] && mask[p];
        ecg_in += c->ecg[p] && mask[p];
    }
    print_fan(name, &fan, conf);
    print_fan("  truth", &c->fan, 1);
    printf("  IoU %.4f, text pixels inside %zu, ECG pixels inside %zu, %.1f ms\n", iou, text_in,
           ecg_in, ms);
    CHECK(fan.kind == kind);
    CHECK(fan.image_size_rows == c->rows && fan.image_size_cols == c->cols);
    CHECK(text_in == 0);
    CHECK(ecg_in == 0);
    CHECK(conf >= 0 && conf <= 1.0);
    if (expect_good) {
        CHECK(iou >= 0.97);
        CHECK(conf >= 0.7);
    }
    free(mask);
    return iou;
}

static void check_clip(const char *name, clip *c, const long *region, deid_fan_kind kind)
{
    check_clip_opts(name, c, region, kind, NULL, 1);
}

static const deid_fan curvilinear = {DEID_FAN_SECTOR, -100, 400, 180, 600, 125, 55,
                                     0, 0, 0, 0, 600, 800};

static void decorate_curvilinear(clip *c)
{
    text_line(c, 8, 8, 14, 1);     /* name */
    text_line(c, 28, 8, 10, 2);    /* ID */
    text_line(c, 8, 600, 15, 3);   /* date, time */
    text_line(c, 200, 8, 6, 4);    /* settings down the left */
    text_line(c, 220, 8, 6, 5);
    text_line(c, 240, 8, 5, 6);
    text_line(c, 520, 8, 12, 7);   /* below the fan */
    bar(c, 120, 760, 200, 14);     /* grey map */
    bar(c, 40, 360, 12, 80);       /* logo above the apex */
    ecg(c, 565, 230, 780);
}

static void test_curvilinear(size_t frames, const char *name)
{
    clip c;
    if (!clip_make(&c, 600, 800, frames, 1, &curvilinear))
        return;
    fill_fan(&c, 0, 1);
    decorate_curvilinear(&c);
    check_clip(name, &c, NULL, DEID_FAN_SECTOR);
    clip_free(&c);
}

static void test_phased(void)
{
    const deid_fan phased = {DEID_FAN_SECTOR, 30, 320, 0, 400, 135, 45, 0, 0, 0, 0, 480, 640};
    clip c;
    if (!clip_make(&c, 480, 640, 30, 3, &phased))
        return;
    fill_fan(&c, 1, 1);
    text_line(&c, 4, 6, 16, 11);
    text_line(&c, 4, 420, 16, 12);
    text_line(&c, 60, 560, 5, 13);
    text_line(&c, 80, 560, 5, 14);
    text_line(&c, 100, 560, 5, 15);
    bar(&c, 120, 620, 150, 10);
    ecg(&c, 458, 40, 600);
    check_clip("phased RGB + Doppler", &c, NULL, DEID_FAN_SECTOR);
    clip_free(&c);
}

static void test_linear(void)
{
    const deid_fan linear = {DEID_FAN_RECTANGLE, 0, 0, 0, 0, 0, 0, 70, 100, 549, 699, 600, 800};
    clip c;
    if (!clip_make(&c, 600, 800, 24, 1, &linear))
        return;
    fill_fan(&c, 0, 1);
    /* A band of static near-black rows across the image (an anechoic layer). */
    for (size_t f = 0; f < c.frames; f++)
        for (size_t i = 180; i < 230; i++)
            for (size_t j = 100; j <= 699; j++)
                put(&c, f, i, j, 2, 2, 2);
    for (int k = 0; k < 4; k++)
        text_line(&c, 8, 8 + (size_t)k * 200, 14, 20 + (uint64_t)k);
    text_line(&c, 100, 8, 6, 30);
    text_line(&c, 120, 8, 6, 31);
    bar(&c, 100, 740, 200, 12);
    counter(&c, 570, 740);
    long region[4] = {31, 10, 592, 788}; /* loose, like the real Philips header */
    check_clip("linear", &c, region, DEID_FAN_RECTANGLE);
    clip_free(&c);
}

/* A fan whose deep half has no echo (black, static): the live area ends half way down. The
 * Ultrasound Regions box (the scan area's bounding box) gives the outer radius back. */
static void test_regions_prior(void)
{
    clip c;
    if (!clip_make(&c, 600, 800, 16, 1, &curvilinear))
        return;
    fill_fan(&c, 0, 0.55);
    decorate_curvilinear(&c);
    long box[4] = {(long)c.rows, (long)c.cols, 0, 0}; /* top, left, bottom, right */
    for (size_t i = 0; i < c.rows; i++)
        for (size_t j = 0; j < c.cols; j++)
            if (c.truth[i * c.cols + j]) {
                box[0] = (long)i < box[0] ? (long)i : box[0];
                box[1] = (long)j < box[1] ? (long)j : box[1];
                box[2] = (long)i > box[2] ? (long)i : box[2];
                box[3] = (long)j > box[3] ? (long)j : box[3];
            }
    deid_fan_detect_options o = DEID_FAN_DETECT_OPTIONS_INIT;
    o.ignore_regions = 1;
    double without = check_clip_opts("black deep half, regions ignored", &c, box,
                                      DEID_FAN_SECTOR, &o, 0);
    CHECK(without < 0.9);
    check_clip("black deep half, with regions", &c, box, DEID_FAN_SECTOR);
    clip_free(&c);
}

/* A 100-frame 600x800 clip: detection samples frames, well under a second. */
static void test_speed(void)
{
    clip c;
    if (!clip_make(&c, 600, 800, 100, 1, &curvilinear))
        return;
    fill_fan(&c, 0, 1);
    decorate_curvilinear(&c);
    deid_dataset *ds = to_dataset(&c, NULL);
    clip_free(&c);
    deid_image *img = NULL;
    CHECK_OK(deid_image_decode(ds, 0, 0, 0, &img));
    deid_dataset_free(ds);
    deid_fan fan;
    double conf, best = 1e9;
    for (int k = 0; k < 3; k++) {
        double t0 = deid__now();
        CHECK_OK(deid_fan_detect(img, NULL, NULL, &fan, &conf));
        double t = deid__now() - t0;
        best = t < best ? t : best;
    }
    printf("100-frame 600x800 clip: detection %.1f ms (best of 3)\n", 1000 * best);
    CHECK(best < 1.0);
    deid_image_free(img);
}

static void test_options(void)
{
    deid_fan_detect_options o;
    CHECK_OK(deid_fan_detect_options_init(&o, DEID_FAN_DETECT_OPTIONS_VERSION));
    CHECK(o.version == DEID_FAN_DETECT_OPTIONS_VERSION && o.max_frames == 0);
    CHECK(deid_fan_detect_options_init(&o, 99) == DEID_ERR_ARGUMENT);
    deid_fan fan;
    CHECK(deid_fan_detect(NULL, NULL, NULL, &fan, NULL) == DEID_ERR_ARGUMENT);
    /* A black clip has no live area. */
    clip c;
    const deid_fan tiny = {DEID_FAN_RECTANGLE, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 64, 64};
    if (!clip_make(&c, 64, 64, 3, 1, &tiny))
        return;
    deid_dataset *ds = to_dataset(&c, NULL);
    deid_image *img = NULL;
    CHECK_OK(deid_image_decode(ds, 0, 0, 0, &img));
    CHECK(deid_fan_detect(img, ds, NULL, &fan, NULL) == DEID_ERR_NO_PIXELS);
    o.version = 7;
    CHECK(deid_fan_detect(img, ds, &o, &fan, NULL) == DEID_ERR_ARGUMENT);
    o.version = DEID_FAN_DETECT_OPTIONS_VERSION;
    o.max_pixels = 100;
    CHECK(deid_fan_detect(img, ds, &o, &fan, NULL) == DEID_ERR_LIMIT);
    deid_image_free(img);
    deid_dataset_free(ds);
    clip_free(&c);
}

int main(void)
{
    test_curvilinear(40, "curvilinear");
    test_curvilinear(1, "curvilinear single frame");
    test_phased();
    test_linear();
    test_regions_prior();
    test_speed();
    test_options();
    return check_done("test_us_detect");
}
