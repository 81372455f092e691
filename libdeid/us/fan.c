/* Fan geometry: building it from corner points, its corners, and drawing it as a mask, in the
 * conventions of SlicerUltrasound's AnonymizeUltrasound module (see include/deid/us.h).
 * Python's round() rounds halves to even; nearbyint() in the default rounding mode does the
 * same, so the integers written here are the ones SlicerUltrasound would write. */
#include <math.h>
#include <string.h>
#include "core/core.h"
#include "us/us_int.h"

static const char *M = "us";

#define DEG (180.0 / 3.14159265358979323846)

typedef struct pt {
    double x, y; /* column, row */
} pt;

static int finite_all(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

/* Direction of the line from an upper to a lower point in [0, 180], as SlicerUltrasound
 * computes angle1 (left) and angle2 (right): the same line angle, normalised from different
 * sides, which only differs for a horizontal line (left 180, right 0). */
static double line_angle(pt top, pt bottom, int left)
{
    if (fabs(top.x - bottom.x) < 0.001)
        return 90.0;
    double a = atan((top.y - bottom.y) / (top.x - bottom.x)) * DEG;
    if (left) {
        a += 180.0;
        if (a > 180.0)
            a -= 180.0;
    } else if (a < 0.0) {
        a += 180.0;
    }
    return a;
}

static double dist(pt a, pt b) { return hypot(a.x - b.x, a.y - b.y); }

/* Geometry from the corners in the order upper-left, upper-right, lower-left, lower-right. */
static deid_status from_ordered(const pt q[4], deid_fan *f)
{
    pt tl = q[0], tr = q[1], bl = q[2], br = q[3];
    double tol = nearbyint(0.1 * fabs(tl.y - bl.y));
    if (fabs(tl.x - bl.x) < tol && fabs(tr.x - br.x) < tol) {
        f->kind = DEID_FAN_RECTANGLE;
        f->rectangle_left = nearbyint((tl.x + bl.x) / 2);
        f->rectangle_right = nearbyint((tr.x + br.x) / 2);
        f->rectangle_top = nearbyint((tl.y + tr.y) / 2);
        f->rectangle_bottom = nearbyint((bl.y + br.y) / 2);
        if (f->rectangle_left > f->rectangle_right || f->rectangle_top > f->rectangle_bottom)
            return deid__fail(DEID_ERR_ARGUMENT, M, "fan corners: empty rectangle");
        return DEID_OK;
    }
    /* Lines A x + B y + C = 0 through the left and the right pair; the apex is where they
     * meet. */
    double a1 = bl.y - tl.y, b1 = tl.x - bl.x, c1 = bl.x * tl.y - tl.x * bl.y;
    double a2 = br.y - tr.y, b2 = tr.x - br.x, c2 = br.x * tr.y - tr.x * br.y;
    double det = a1 * b2 - b1 * a2;
    if (det == 0.0)
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "fan corners: the left and right edges are parallel");
    pt apex = {(b1 * c2 - b2 * c1) / det, (a2 * c1 - a1 * c2) / det};
    f->kind = DEID_FAN_SECTOR;
    f->angle1 = line_angle(tl, bl, 1);
    f->angle2 = line_angle(tr, br, 0);
    f->center_rows_px = nearbyint(apex.y);
    f->center_cols_px = nearbyint(apex.x);
    f->radius1 = nearbyint((dist(tl, apex) + dist(tr, apex)) / 2);
    f->radius2 = nearbyint((dist(bl, apex) + dist(br, apex)) / 2);
    if (!isfinite(f->center_rows_px) || !isfinite(f->center_cols_px) || !isfinite(f->radius2) ||
        f->radius2 <= f->radius1)
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "fan corners: the lower corners are not farther from the apex than "
                          "the upper ones");
    return DEID_OK;
}

/* Corners in any order, sorted into quadrants around their mean as SlicerUltrasound does. */
static deid_status from_four(const pt p[4], deid_fan *f)
{
    pt cg = {(p[0].x + p[1].x + p[2].x + p[3].x) / 4, (p[0].y + p[1].y + p[2].y + p[3].y) / 4};
    pt q[4]; /* upper-left, upper-right, lower-left, lower-right */
    int seen[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        int k = (p[i].x >= cg.x) + 2 * (p[i].y >= cg.y);
        q[k] = p[i];
        seen[k] = 1;
    }
    if (!seen[0] || !seen[1] || !seen[2] || !seen[3])
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "fan corners: need two upper and two lower points, one left and one "
                          "right of their centre each");
    return from_ordered(q, f);
}

static deid_status from_three(const pt p[3], deid_fan *f)
{
    /* Sorted by row, ties keeping their order (Python's sorted is stable). */
    int o[3] = {0, 1, 2};
    for (int i = 1; i < 3; i++)
        for (int j = i; j > 0 && p[o[j]].y < p[o[j - 1]].y; j--) {
            int t = o[j];
            o[j] = o[j - 1];
            o[j - 1] = t;
        }
    pt apex = p[o[0]], l = p[o[1]], r = p[o[2]];
    double a1 = atan2(l.y - apex.y, l.x - apex.x) * DEG;
    double a2 = atan2(r.y - apex.y, r.x - apex.x) * DEG;
    f->kind = DEID_FAN_SECTOR;
    f->angle1 = a1 <= a2 ? a1 : a2;
    f->angle2 = a1 <= a2 ? a2 : a1;
    f->center_rows_px = nearbyint(apex.y);
    f->center_cols_px = nearbyint(apex.x);
    f->radius1 = 0;
    f->radius2 = nearbyint((dist(l, apex) + dist(r, apex)) / 2);
    if (f->radius2 <= 0)
        return deid__fail(DEID_ERR_ARGUMENT, M, "fan corners: the three points coincide");
    return DEID_OK;
}

static deid_status from_points(const double *points, size_t npoints, int normalized,
                               size_t image_rows, size_t image_cols, int ordered, deid_fan *out)
{
    if (!points || !out || (npoints != 3 && npoints != 4))
        return deid__fail(DEID_ERR_ARGUMENT, M, "fan corners: need 3 or 4 points");
    if (!finite_all(points, 2 * npoints))
        return deid__fail(DEID_ERR_ARGUMENT, M, "fan corners: non-finite coordinate");
    if (normalized && (!image_rows || !image_cols))
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "fan corners: normalised points need the image size");
    pt p[4];
    for (size_t i = 0; i < npoints; i++) {
        p[i].y = points[2 * i] * (normalized ? (double)image_rows : 1.0);
        p[i].x = points[2 * i + 1] * (normalized ? (double)image_cols : 1.0);
    }
    deid_fan f;
    memset(&f, 0, sizeof f);
    deid_status st = npoints == 3 ? from_three(p, &f) : ordered ? from_ordered(p, &f)
                                                                : from_four(p, &f);
    if (st != DEID_OK)
        return st;
    f.image_size_rows = image_rows;
    f.image_size_cols = image_cols;
    *out = f;
    return DEID_OK;
}

deid_status deid_fan_from_corners(const double *points, size_t npoints, int normalized,
                                  size_t image_rows, size_t image_cols, deid_fan *out)
{
    return from_points(points, npoints, normalized, image_rows, image_cols, 0, out);
}

deid_status deid__fan_from_ordered_corners(const double points[8], int normalized,
                                           size_t image_rows, size_t image_cols, deid_fan *out)
{
    return from_points(points, 4, normalized, image_rows, image_cols, 1, out);
}

deid_status deid_fan_corners(const deid_fan *fan, double corners[8])
{
    if (!fan || !corners)
        return deid__fail(DEID_ERR_ARGUMENT, M, "fan corners: NULL argument");
    if (fan->kind == DEID_FAN_RECTANGLE) {
        double t = fan->rectangle_top, l = fan->rectangle_left;
        double b = fan->rectangle_bottom, r = fan->rectangle_right;
        double c[8] = {t, l, t, r, b, l, b, r};
        memcpy(corners, c, sizeof c);
        return DEID_OK;
    }
    if (fan->kind != DEID_FAN_SECTOR)
        return deid__fail(DEID_ERR_ARGUMENT, M, "fan corners: unknown kind %d", (int)fan->kind);
    double c1 = cos(fan->angle1 / DEG), s1 = sin(fan->angle1 / DEG);
    double c2 = cos(fan->angle2 / DEG), s2 = sin(fan->angle2 / DEG);
    double cr = fan->center_rows_px, cc = fan->center_cols_px;
    double r1 = fan->radius1, r2 = fan->radius2;
    double c[8] = {cr + r1 * s1, cc + r1 * c1, cr + r1 * s2, cc + r1 * c2,
                   cr + r2 * s1, cc + r2 * c1, cr + r2 * s2, cc + r2 * c2};
    memcpy(corners, c, sizeof c);
    return DEID_OK;
}

int deid__fan_prepare(const deid_fan *fan, double m, deid_fan_prep *p)
{
    memset(p, 0, sizeof *p);
    if (!isfinite(m) || m < 0)
        return -1;
    if (fan->kind == DEID_FAN_RECTANGLE) {
        double v[4] = {fan->rectangle_top, fan->rectangle_left, fan->rectangle_bottom,
                       fan->rectangle_right};
        if (!finite_all(v, 4) || v[0] > v[2] || v[1] > v[3])
            return -1;
        /* The area reaches half a pixel beyond the first and last centres inside. */
        double e = m > 0 ? m - 0.5 : 0.0;
        p->rectangle = 1;
        p->top = v[0] + e;
        p->left = v[1] + e;
        p->bottom = v[2] - e;
        p->right = v[3] - e;
        return 0;
    }
    if (fan->kind != DEID_FAN_SECTOR)
        return -1;
    double v[6] = {fan->center_rows_px, fan->center_cols_px, fan->radius1, fan->radius2,
                   fan->angle1, fan->angle2};
    if (!finite_all(v, 6) || fan->radius1 < 0 || fan->radius2 <= fan->radius1)
        return -1;
    double lo = fmin(fan->angle1, fan->angle2), hi = fmax(fan->angle1, fan->angle2);
    double rin = fan->radius1 + m, rout = fan->radius2 - m;
    p->cr = fan->center_rows_px;
    p->cc = fan->center_cols_px;
    p->rin2 = rin * rin;
    p->rin_strict = m == 0;
    p->rout2 = rout > 0 ? rout * rout : -1.0; /* eroded away: nothing is inside */
    p->lo_x = cos(lo / DEG);
    p->lo_y = sin(lo / DEG);
    p->hi_x = cos(hi / DEG);
    p->hi_y = sin(hi / DEG);
    p->margin = m;
    p->wide = hi - lo >= 360.0 ? 2 : hi - lo > 180.0 ? 1 : 0;
    return 0;
}

deid_status deid_fan_rasterize(const deid_fan *fan, double erosion_px, uint8_t *mask,
                               size_t size)
{
    if (!fan || !mask)
        return deid__fail(DEID_ERR_ARGUMENT, M, "fan mask: NULL argument");
    size_t rows = fan->image_size_rows, cols = fan->image_size_cols, n;
    if (!rows || !cols || !deid__mul_size(rows, cols, &n))
        return deid__fail(DEID_ERR_ARGUMENT, M, "fan mask: image size %zux%zu", rows, cols);
    if (size < n)
        return deid__fail(DEID_ERR_ARGUMENT, M, "fan mask: buffer of %zu bytes for %zux%zu",
                          size, rows, cols);
    deid_fan_prep p;
    if (deid__fan_prepare(fan, erosion_px, &p) != 0)
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "fan mask: invalid geometry or erosion (non-finite value, "
                          "radius2 <= radius1 or empty rectangle)");
    for (size_t r = 0; r < rows; r++) {
        uint8_t *row = mask + r * cols;
        for (size_t c = 0; c < cols; c++)
            row[c] = (uint8_t)deid__fan_inside(&p, (double)r, (double)c);
    }
    return DEID_OK;
}

double deid__mask_iou(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t inter = 0, uni = 0;
    for (size_t i = 0; i < n; i++) {
        int x = a[i] != 0, y = b[i] != 0;
        inter += (size_t)(x & y);
        uni += (size_t)(x | y);
    }
    return uni ? (double)inter / (double)uni : 1.0;
}
