/* Fan geometry: corners -> geometry -> corners round trips in SlicerUltrasound's conventions,
 * mask JSON round trips (and files as SlicerUltrasound writes them), mask areas against the
 * analytic area of the sector, erosion. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "deid/deid.h"
#include "us/us_int.h"

#define PI 3.14159265358979323846

static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

static int same_fan(const deid_fan *a, const deid_fan *b, double tol)
{
    if (a->kind != b->kind || a->image_size_rows != b->image_size_rows ||
        a->image_size_cols != b->image_size_cols)
        return 0;
    if (a->kind == DEID_FAN_RECTANGLE)
        return near(a->rectangle_top, b->rectangle_top, tol) &&
               near(a->rectangle_left, b->rectangle_left, tol) &&
               near(a->rectangle_bottom, b->rectangle_bottom, tol) &&
               near(a->rectangle_right, b->rectangle_right, tol);
    return near(a->center_rows_px, b->center_rows_px, tol) &&
           near(a->center_cols_px, b->center_cols_px, tol) && near(a->radius1, b->radius1, tol) &&
           near(a->radius2, b->radius2, tol) && near(a->angle1, b->angle1, tol) &&
           near(a->angle2, b->angle2, tol);
}

/* A curvilinear fan from 4 corners (given out of order): apex, angles and radii as
 * SlicerUltrasound computes them; its corners give the same geometry back. */
static void test_four_corners(void)
{
    /* apex (-120.3, 400.2), edges at 120 (left) and 60 degrees, radii 200 and 640 */
    double cr = -120.3, cc = 400.2, c[8];
    double a1 = 120 * PI / 180, a2 = 60 * PI / 180;
    double pts[8] = {cr + 640 * sin(a2), cc + 640 * cos(a2),  /* lower right */
                     cr + 200 * sin(a1), cc + 200 * cos(a1),  /* upper left */
                     cr + 640 * sin(a1), cc + 640 * cos(a1),  /* lower left */
                     cr + 200 * sin(a2), cc + 200 * cos(a2)}; /* upper right */
    deid_fan f, g;
    CHECK_OK(deid_fan_from_corners(pts, 4, 0, 600, 800, &f));
    CHECK(f.kind == DEID_FAN_SECTOR);
    CHECK(f.center_rows_px == -120 && f.center_cols_px == 400); /* rounded like Python */
    CHECK(f.radius1 == 200 && f.radius2 == 640);
    CHECK(near(f.angle1, 120, 1e-9) && near(f.angle2, 60, 1e-9));
    CHECK(f.image_size_rows == 600 && f.image_size_cols == 800);
    CHECK_OK(deid_fan_corners(&f, c));
    for (int k = 0; k < 4; k++) { /* upper-left, upper-right, lower-left, lower-right */
        static const int src[4] = {1, 3, 2, 0};
        CHECK(near(c[2 * k], pts[2 * src[k]], 1.0) && near(c[2 * k + 1], pts[2 * src[k] + 1], 1.0));
    }
    CHECK_OK(deid_fan_from_corners(c, 4, 0, 600, 800, &g));
    CHECK(same_fan(&f, &g, 1e-6));

    /* The same corners normalised by the image size. */
    double norm[8];
    for (int k = 0; k < 4; k++) {
        norm[2 * k] = pts[2 * k] / 600.0;
        norm[2 * k + 1] = pts[2 * k + 1] / 800.0;
    }
    CHECK_OK(deid_fan_from_corners(norm, 4, 1, 600, 800, &g));
    CHECK(same_fan(&f, &g, 1e-6));
    CHECK(deid_fan_from_corners(norm, 4, 1, 0, 0, &g) == DEID_ERR_ARGUMENT);

    /* Three points on one side of their centre: no quadrant assignment. */
    double bad[8] = {0, 0, 0, 10, 0, 20, 50, 30};
    CHECK(deid_fan_from_corners(bad, 4, 0, 100, 100, &g) == DEID_ERR_ARGUMENT);
    CHECK(same_fan(&f, &g, 1e-6)); /* untouched on failure */
    /* Parallel slanted edges are neither a sector nor a rectangle. */
    double par[8] = {0, 0, 0, 50, 100, 30, 100, 80};
    CHECK(deid_fan_from_corners(par, 4, 0, 200, 200, &g) == DEID_ERR_ARGUMENT);
    CHECK(deid_fan_from_corners(pts, 5, 0, 600, 800, &g) == DEID_ERR_ARGUMENT);
}

/* Nearly vertical pairs (within 10% of the height) make a rectangle of the rounded means. */
static void test_rectangle_corners(void)
{
    double pts[8] = {60.2, 100.4, 61, 700, 550, 103, 549.6, 699.2};
    deid_fan f, g;
    double c[8];
    CHECK_OK(deid_fan_from_corners(pts, 4, 0, 600, 800, &f));
    CHECK(f.kind == DEID_FAN_RECTANGLE);
    CHECK(f.rectangle_left == 102 && f.rectangle_right == 700); /* round(101.7), round(699.6) */
    CHECK(f.rectangle_top == 61 && f.rectangle_bottom == 550);  /* round(60.6), round(549.8) */
    CHECK_OK(deid_fan_corners(&f, c));
    CHECK(c[0] == 61 && c[1] == 102 && c[6] == 550 && c[7] == 700);
    CHECK_OK(deid_fan_from_corners(c, 4, 0, 600, 800, &g));
    CHECK(same_fan(&f, &g, 0));
}

/* 3 points: the top one is the apex, radius1 0, the angles ascending. */
static void test_three_corners(void)
{
    double pts[6] = {400, 150, 10.4, 320.6, 420, 500}; /* lower left, apex, lower right */
    deid_fan f, g;
    double c[8];
    CHECK_OK(deid_fan_from_corners(pts, 3, 0, 480, 640, &f));
    CHECK(f.kind == DEID_FAN_SECTOR && f.radius1 == 0);
    CHECK(f.center_rows_px == 10 && f.center_cols_px == 321);
    CHECK(f.angle1 < f.angle2);
    double d1 = hypot(400 - 10.4, 150 - 320.6), d2 = hypot(420 - 10.4, 500 - 320.6);
    CHECK(f.radius2 == nearbyint((d1 + d2) / 2));
    CHECK(near(f.angle2, atan2(400 - 10.4, 150 - 320.6) * 180 / PI, 1e-9));
    CHECK_OK(deid_fan_corners(&f, c));
    CHECK(c[0] == 10 && c[1] == 321 && c[2] == 10 && c[3] == 321); /* both upper = apex */
    double back[6] = {c[0], c[1], c[4], c[5], c[6], c[7]};
    CHECK_OK(deid_fan_from_corners(back, 3, 0, 480, 640, &g));
    CHECK(same_fan(&f, &g, 1e-6));
}

static void json_round_trip(const deid_fan *f)
{
    char *json = NULL;
    deid_fan g;
    CHECK_OK(deid_fan_to_json(f, &json));
    CHECK(json && strstr(json, "\"mask_type\"") && strstr(json, "\"image_size_rows\": 600"));
    CHECK_OK(deid_fan_from_json(json, &g));
    CHECK(same_fan(f, &g, 0));
    deid_free(json);
}

static void test_json(void)
{
    deid_fan f = {DEID_FAN_SECTOR, -120, 400, 200, 640, 121.234567890123, 58.5, 0, 0, 0, 0,
                  600, 800};
    json_round_trip(&f);
    char *json = NULL;
    CHECK_OK(deid_fan_to_json(&f, &json));
    CHECK(strstr(json, "\"center_rows_px\": -120,") && strstr(json, "\"radius2\": 640,"));
    CHECK(strstr(json, "\"mask_type\": \"fan\""));
    deid_free(json);
    deid_fan r = {DEID_FAN_RECTANGLE, 0, 0, 0, 0, 0, 0, 31, 10, 592, 788, 600, 800};
    json_round_trip(&r);
    CHECK_OK(deid_fan_to_json(&r, &json));
    CHECK(strstr(json, "\"rectangle_left\": 10") && strstr(json, "\"rectangle\""));
    CHECK(!strstr(json, "radius1"));
    deid_free(json);

    /* As SlicerUltrasound's module saves it: extra members, reals for some integers. */
    const char *slicer = "{\"SOPInstanceUID\": \"1.2.3\", \"GrayscaleConversion\": false, "
                         "\"mask_type\": \"fan\", \"angle1\": 124.5, \"angle2\": 55.5, "
                         "\"center_rows_px\": 12, \"center_cols_px\": 399.0, \"radius1\": 0, "
                         "\"radius2\": 520, \"image_size_rows\": 600, \"image_size_cols\": 800}";
    deid_fan g;
    CHECK_OK(deid_fan_from_json(slicer, &g));
    CHECK(g.kind == DEID_FAN_SECTOR && g.center_cols_px == 399 && g.radius2 == 520);
    CHECK(g.angle1 == 124.5 && g.image_size_cols == 800);
    /* No mask_type: a fan; no image size: 0 (rasterize then refuses). */
    CHECK_OK(deid_fan_from_json("{\"angle1\": 1, \"angle2\": 2, \"center_rows_px\": 0, "
                                "\"center_cols_px\": 0, \"radius1\": 0, \"radius2\": 5, "
                                "\"image_size_rows\": null}",
                                &g));
    CHECK(g.kind == DEID_FAN_SECTOR && g.image_size_rows == 0);
    uint8_t one;
    CHECK(deid_fan_rasterize(&g, 0, &one, 1) == DEID_ERR_ARGUMENT);

    deid_fan keep = g;
    CHECK(deid_fan_from_json("{\"mask_type\": \"trapezoid\"}", &g) == DEID_ERR_ARGUMENT);
    CHECK(deid_fan_from_json("{\"mask_type\": \"rectangle\", \"rectangle_left\": 1}", &g) ==
          DEID_ERR_ARGUMENT);
    CHECK(strstr(deid_last_error(), "rectangle_right") != NULL);
    CHECK(deid_fan_from_json("{\"mask_type\": \"fan\", \"angle1\": \"90\"}", &g) ==
          DEID_ERR_ARGUMENT);
    CHECK(deid_fan_from_json("[1, 2]", &g) == DEID_ERR_ARGUMENT);
    CHECK(deid_fan_from_json("{\"mask_type\": ", &g) == DEID_ERR_ARGUMENT);
    CHECK(same_fan(&keep, &g, 0));
    deid_fan nan_fan = f;
    nan_fan.angle1 = NAN;
    CHECK(deid_fan_to_json(&nan_fan, &json) == DEID_ERR_ARGUMENT);
}

static size_t count(const uint8_t *m, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += m[i];
    return k;
}

/* Mask areas match the analytic area within 1%; erosion keeps a subset that is smaller by
 * about the eroded border. */
static void test_rasterize(void)
{
    const size_t rows = 1000, cols = 1400, n = rows * cols;
    uint8_t *m = malloc(n), *e = malloc(n);
    if (!m || !e) {
        CHECK(0);
        free(m);
        free(e);
        return;
    }
    struct {
        double cr, cc, r1, r2, a1, a2;
    } cases[] = {
        {-150, 700, 250, 900, 125, 55},    /* curvilinear, apex above the image */
        {20, 700, 0, 700, 135, 45},        /* phased, apex on the image */
        {30.5, 650.25, 40, 500, 20, 100},  /* skewed, fractional apex */
        {500, 700, 100, 450, -60, 240},    /* wider than 180 degrees */
        {500, 700, 100, 450, 0, 360},      /* full annulus */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        deid_fan f = {DEID_FAN_SECTOR, cases[k].cr, cases[k].cc, cases[k].r1, cases[k].r2,
                      cases[k].a1, cases[k].a2, 0, 0, 0, 0, rows, cols};
        CHECK_OK(deid_fan_rasterize(&f, 0, m, n));
        double span = fabs(cases[k].a1 - cases[k].a2);
        double area = PI * (f.radius2 * f.radius2 - f.radius1 * f.radius1) * span / 360.0;
        double got = (double)count(m, n);
        printf("sector %zu: %.0f pixels, analytic %.0f (%.3f%%)\n", k, got, area,
               100 * (got - area) / area);
        CHECK(fabs(got - area) <= 0.01 * area);
        const double erosion = 6;
        CHECK_OK(deid_fan_rasterize(&f, erosion, e, n));
        size_t sub = 1;
        for (size_t i = 0; i < n; i++)
            sub &= !e[i] || m[i];
        CHECK(sub);
        double eroded = (double)count(e, n);
        CHECK(eroded < got);
        if (span < 180) {
            /* An eroded annular sector: radii moved in, edges moved in by the erosion. */
            double r1 = f.radius1 + erosion, r2 = f.radius2 - erosion;
            double lost = erosion * 2 * (r2 - r1); /* the two edges, roughly */
            double expect = PI * (r2 * r2 - r1 * r1) * span / 360.0 - lost;
            printf("  eroded by %.0f: %.0f pixels, approx %.0f\n", erosion, eroded, expect);
            CHECK(fabs(eroded - expect) <= 0.03 * expect);
        }
    }
    deid_fan r = {DEID_FAN_RECTANGLE, 0, 0, 0, 0, 0, 0, 31, 10, 592, 788, rows, cols};
    CHECK_OK(deid_fan_rasterize(&r, 0, m, n));
    CHECK(count(m, n) == (592 - 31 + 1) * (788 - 10 + 1));
    CHECK(m[31 * cols + 10] && !m[30 * cols + 10] && m[592 * cols + 788] && !m[592 * cols + 789]);
    CHECK_OK(deid_fan_rasterize(&r, 3, m, n));
    CHECK(count(m, n) == (592 - 31 - 5) * (788 - 10 - 5));
    CHECK(deid_fan_rasterize(&r, 0, m, n - 1) == DEID_ERR_ARGUMENT);
    CHECK(deid_fan_rasterize(&r, -1, m, n) == DEID_ERR_ARGUMENT);
    deid_fan bad = {DEID_FAN_SECTOR, 0, 0, 50, 50, 0, 90, 0, 0, 0, 0, rows, cols};
    CHECK(deid_fan_rasterize(&bad, 0, m, n) == DEID_ERR_ARGUMENT);

    /* The apex pixel of a phased sector is outside, as SlicerUltrasound's radius-0 circle
     * makes it. */
    deid_fan p = {DEID_FAN_SECTOR, 10, 20, 0, 30, 45, 135, 0, 0, 0, 0, 64, 64};
    CHECK_OK(deid_fan_rasterize(&p, 0, m, 64 * 64));
    CHECK(!m[10 * 64 + 20] && m[11 * 64 + 20] && m[30 * 64 + 20] && !m[41 * 64 + 20]);
    free(m);
    free(e);
}

static void test_iou(void)
{
    uint8_t a[4] = {1, 1, 0, 0}, b[4] = {0, 1, 1, 0}, z[4] = {0, 0, 0, 0};
    CHECK(near(deid__mask_iou(a, b, 4), 1.0 / 3, 1e-12));
    CHECK(deid__mask_iou(z, z, 4) == 1.0);
    CHECK(deid__mask_iou(a, a, 4) == 1.0);
}

int main(void)
{
    test_four_corners();
    test_rectangle_corners();
    test_three_corners();
    test_json();
    test_rasterize();
    test_iou();
    return check_done("test_us_fan");
}
