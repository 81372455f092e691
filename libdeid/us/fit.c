/* Fitting a fan (sector or rectangle) to the live area of deid__live_map. The straight edges
 * come from RANSAC lines through the area's leftmost and rightmost point of each row (points
 * on the arcs, on text touching the area or on a Doppler box are outliers); the apex is where
 * they meet; the radii are medians, over rays from the apex through the middle of the sector,
 * of where each ray first enters and last leaves the area. A rectangle takes the edges' median
 * columns and the area's median first and last row. With both candidates, the one agreeing
 * best with the area wins. Everything is computed in image pixel coordinates. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "us/us_int.h"

static const char *M = "us";

#define DEG (180.0 / 3.14159265358979323846)
#define RANSAC_ITERATIONS 256
#define MIN_EDGE_POINTS 10
#define RAYS 181
#define EDGE_TOLERANCE 3.0 /* border points this close to a fitted edge are on it */
#define INNER_QUANTILE 0.2
#define MAX_APEX_FACTOR 20.0 /* an apex farther than this many image sizes: parallel edges */

typedef struct bpt {
    double y, x;
} bpt;

/* x = a + b y, fitted to n points of which `inliers` lie within the tolerance. */
typedef struct line {
    double a, b;
    size_t inliers, n;
    int ok;
} line;

typedef struct fitter {
    const deid_live_map *map;
    double s;          /* scale as a double */
    double tol;        /* inlier tolerance in image pixels */
    bpt *left, *right; /* border points per row (not those on the image border) */
    size_t nleft, nright;
    double yc, xc;     /* centroid of the area */
    int touches_left, touches_right; /* the area reaches the image's left / right column */
    line l[2], r[2]; /* per side: the best line, and the best among its outliers */
    uint8_t dark;     /* brightest-grey level below which a cell is background */
    uint64_t rng;
} fitter;

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1, nearest rank) of v[0..n) (reordered); n > 0. */
static double quantile(double *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, cmp_double);
    return v[(size_t)(q * (double)(n - 1) + 0.5)];
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- border points and lines ------------------------------------------------------------- */

static void border_points(fitter *f)
{
    const deid_live_map *m = f->map;
    double s = f->s, sy = 0, sx = 0;
    size_t count = 0;
    for (size_t i = 0; i < m->rows; i++) {
        const uint8_t *row = m->region + i * m->cols;
        size_t jl = 0, jr = m->cols;
        while (jl < m->cols && !row[jl])
            jl++;
        if (jl == m->cols)
            continue;
        while (!row[jr - 1])
            jr--;
        double y = s * (double)i + (s - 1) / 2;
        if (jl > 0)
            f->left[f->nleft++] = (bpt){y, s * (double)jl - 0.5};
        else
            f->touches_left = 1;
        if (jr < m->cols)
            f->right[f->nright++] = (bpt){y, s * (double)jr - 0.5};
        else
            f->touches_right = 1;
        for (size_t j = jl; j < jr; j++)
            if (row[j]) {
                sy += y;
                sx += s * (double)j + (s - 1) / 2;
                count++;
            }
    }
    f->yc = count ? sy / (double)count : 0;
    f->xc = count ? sx / (double)count : 0;
}

static size_t count_inliers(const bpt *p, size_t n, double a, double b, double tol)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += fabs(p[i].x - (a + b * p[i].y)) <= tol;
    return k;
}

/* Least squares x = a + b y over the points within tol of the current line. */
static void refit(const bpt *p, size_t n, double tol, line *l)
{
    double sy = 0, sx = 0, syy = 0, sxy = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(p[i].x - (l->a + l->b * p[i].y)) > tol)
            continue;
        sy += p[i].y;
        sx += p[i].x;
        syy += p[i].y * p[i].y;
        sxy += p[i].x * p[i].y;
        k++;
    }
    double den = k * syy - sy * sy;
    if (k < 2 || fabs(den) < 1e-9)
        return;
    l->b = (k * sxy - sy * sx) / den;
    l->a = (sx - l->b * sy) / k;
}

static line fit_line(fitter *f, const bpt *p, size_t n)
{
    line best = {0, 0, 0, n, 0};
    if (n < MIN_EDGE_POINTS)
        return best;
    double span = p[n - 1].y - p[0].y; /* points come in row order */
    for (int it = 0; it < RANSAC_ITERATIONS; it++) {
        size_t i = (size_t)(next_random(&f->rng) % n), j = (size_t)(next_random(&f->rng) % n);
        if (fabs(p[j].y - p[i].y) < span / 8 || p[j].y == p[i].y)
            continue;
        double b = (p[j].x - p[i].x) / (p[j].y - p[i].y), a = p[i].x - b * p[i].y;
        size_t k = count_inliers(p, n, a, b, f->tol);
        if (k > best.inliers) {
            best.a = a;
            best.b = b;
            best.inliers = k;
        }
    }
    if (best.inliers < MIN_EDGE_POINTS)
        return best;
    for (int round = 0; round < 3; round++)
        refit(p, n, f->tol, &best);
    best.inliers = count_inliers(p, n, best.a, best.b, f->tol);
    best.ok = best.inliers >= MIN_EDGE_POINTS;
    return best;
}

/* The best line and the best line through the first one's outliers (a display crop or an
 * arc can hold as many border points as the true edge). */
static void fit_lines(fitter *f, const bpt *p, size_t n, line out[2])
{
    out[0] = fit_line(f, p, n);
    out[1] = (line){0, 0, 0, 0, 0};
    if (!out[0].ok)
        return;
    bpt *q = deid__malloc((n ? n : 1) * sizeof *q);
    if (!q)
        return;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(p[i].x - (out[0].a + out[0].b * p[i].y)) > f->tol)
            q[m++] = p[i];
    out[1] = fit_line(f, q, m);
    if (out[1].ok && out[1].inliers * 10 < n)
        out[1].ok = 0;
    free(q);
}

/* ---- candidates ---------------------------------------------------------------------------- */

static int region_at(const deid_live_map *m, double y, double x)
{
    if (y < -0.5 || x < -0.5)
        return -1;
    size_t i = (size_t)(y + 0.5) / m->scale, j = (size_t)(x + 0.5) / m->scale;
    if (i >= m->rows || j >= m->cols)
        return -1;
    return m->region[i * m->cols + j];
}

/* Is the cell under image point (y, x) brighter than background in some sampled frame? */
static int bright_at(const fitter *f, double y, double x)
{
    const deid_live_map *m = f->map;
    if (y < -0.5 || x < -0.5)
        return 0;
    size_t i = (size_t)(y + 0.5) / m->scale, j = (size_t)(x + 0.5) / m->scale;
    if (i >= m->rows || j >= m->cols)
        return 0;
    return m->bright[i * m->cols + j] > f->dark;
}

/* Where a ray from (y0, x0) along (uy, ux) is within the work grid: [*t0, *t1], t >= 0. */
static int ray_box(const deid_live_map *m, double y0, double x0, double uy, double ux,
                   double *t0, double *t1)
{
    double lo = 0, hi = INFINITY;
    double ymax = (double)(m->rows * m->scale) - 0.5, xmax = (double)(m->cols * m->scale) - 0.5;
    double o[2] = {y0, x0}, u[2] = {uy, ux}, mx[2] = {ymax, xmax};
    for (int k = 0; k < 2; k++) {
        if (fabs(u[k]) < 1e-12) {
            if (o[k] < -0.5 || o[k] > mx[k])
                return 0;
            continue;
        }
        double a = (-0.5 - o[k]) / u[k], b = (mx[k] - o[k]) / u[k];
        if (a > b) {
            double t = a;
            a = b;
            b = t;
        }
        lo = fmax(lo, a);
        hi = fmin(hi, b);
    }
    *t0 = lo;
    *t1 = hi - 1e-6;
    return hi > lo;
}

typedef struct radii {
    double *inner, *outer; /* per-ray estimates (unclipped) */
    size_t ninner, nouter, hits;
    double inner_min, outer_max; /* over clipped rays: entry and exit distances */
} radii;

static void cast(const fitter *f, double cr, double cc, double theta, radii *r)
{
    const deid_live_map *m = f->map;
    double uy = sin(theta / DEG), ux = cos(theta / DEG), t0, t1, h = 0.5;
    if (!ray_box(m, cr, cc, uy, ux, &t0, &t1))
        return;
    double first = -1, last = -1;
    int in_first = 0, in_last = 0;
    for (double t = t0; t <= t1; t += h) {
        int v = region_at(m, cr + t * uy, cc + t * ux);
        if (v != 1)
            continue;
        if (first < 0) {
            first = t;
            in_first = t == t0 && t0 > 0;
        }
        last = t;
        in_last = t + h > t1;
    }
    if (first < 0)
        return;
    /* Scan data that does not change (saturated near field, static reverberation) but is
     * bright and continuous with the live area belongs to it: walk inwards through it. */
    while (first - h >= t0 && bright_at(f, cr + (first - h) * uy, cc + (first - h) * ux))
        first -= h;
    in_first = first - h < t0 && t0 > 0;
    r->hits++;
    if (in_first)
        r->inner_min = fmin(r->inner_min, t0);
    else
        r->inner[r->ninner++] = first - h / 2;
    if (in_last)
        r->outer_max = fmax(r->outer_max, t1);
    else
        r->outer[r->nouter++] = last + h / 2;
}

/* Direction (degrees) of line l going from the apex towards the area's centroid. */
static double edge_angle(const fitter *f, const line *l, double cr, double cc)
{
    double dx = l->b, dy = 1.0;
    if (dx * (f->xc - cc) + dy * (f->yc - cr) < 0) {
        dx = -dx;
        dy = -dy;
    }
    return atan2(dy, dx) * DEG;
}

/* Express a as the angle nearest to c (within 180 degrees). */
static double near_angle(double a, double c)
{
    while (a - c > 180.0)
        a -= 360.0;
    while (a - c < -180.0)
        a += 360.0;
    return a;
}

static int sector_candidate(fitter *f, const line *L, const line *R, deid_fan *fan)
{
    const deid_live_map *m = f->map;
    if (!L->ok || !R->ok || fabs(L->b - R->b) < 1e-4)
        return 0;
    double cr = (R->a - L->a) / (L->b - R->b), cc = L->a + L->b * cr;
    double size = (double)(m->image_rows + m->image_cols);
    if (!isfinite(cr) || !isfinite(cc) || fabs(cr) > MAX_APEX_FACTOR * size ||
        fabs(cc) > MAX_APEX_FACTOR * size)
        return 0;
    double centre = atan2(f->yc - cr, f->xc - cc) * DEG;
    double a1 = near_angle(edge_angle(f, L, cr, cc), centre);
    double a2 = near_angle(edge_angle(f, R, cr, cc), centre);
    if (fmax(a1, a2) < 0) {
        a1 += 360;
        a2 += 360;
    }
    double lo = fmin(a1, a2), hi = fmax(a1, a2), span = hi - lo;
    double mid = near_angle(centre, (lo + hi) / 2);
    if (span < 2.0 || span >= 180.0 || mid < lo || mid > hi)
        return 0; /* the edges do not enclose the area */
    double inner[RAYS], outer[RAYS];
    radii r = {inner, outer, 0, 0, 0, INFINITY, 0};
    for (int k = 0; k < RAYS; k++)
        cast(f, cr, cc, lo + span * (0.1 + 0.8 * k / (RAYS - 1.0)), &r);
    if (r.hits < RAYS / 4)
        return 0;
    /* The inner arc from a low quantile: where the top of the area is not an arc (a phased
     * sector cropped by the display), the median would cut the apex off. */
    double r1 = 2 * r.ninner >= r.hits ? quantile(inner, r.ninner, INNER_QUANTILE)
                                       : fmax(0, r.inner_min);
    double r2 = 5 * r.nouter >= r.hits ? median(outer, r.nouter) : r.outer_max;
    if (!isfinite(r1) || !(r2 > 0))
        return 0;
    r1 = nearbyint(r1);
    r2 = nearbyint(r2);
    if (r1 < fmax(3.0 * f->s, 0.05 * r2))
        r1 = 0; /* a phased array's apex, blunted by the cleanup */
    if (r2 <= r1)
        return 0;
    memset(fan, 0, sizeof *fan);
    fan->kind = DEID_FAN_SECTOR;
    fan->center_rows_px = nearbyint(cr);
    fan->center_cols_px = nearbyint(cc);
    fan->radius1 = r1;
    fan->radius2 = r2;
    fan->angle1 = a1; /* the left edge, as 4-corner builds do */
    fan->angle2 = a2;
    return 1;
}

/* Median x of the points within tol of line l (all points when the line failed). */
static double edge_median(const fitter *f, const bpt *p, size_t n, const line *l)
{
    double *v = deid__malloc(n * sizeof *v);
    if (!v)
        return NAN;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!l->ok || fabs(p[i].x - (l->a + l->b * p[i].y)) <= f->tol)
            v[k++] = p[i].x;
    double med = k ? median(v, k) : NAN;
    free(v);
    return med;
}

/* Median first (top) or last row of the area over the middle 80% of [c0, c1]; NAN when most
 * columns reach the image border there. */
static double column_extent(const fitter *f, double c0, double c1, int top)
{
    const deid_live_map *m = f->map;
    double w = c1 - c0;
    long j0 = (long)((c0 + 0.1 * w) / f->s), j1 = (long)((c1 - 0.1 * w) / f->s);
    if (j0 < 0)
        j0 = 0;
    if (j1 >= (long)m->cols)
        j1 = (long)m->cols - 1;
    if (j1 < j0)
        return NAN;
    double *v = deid__malloc((size_t)(j1 - j0 + 1) * sizeof *v);
    if (!v)
        return NAN;
    size_t k = 0, clipped = 0;
    for (long j = j0; j <= j1; j++) {
        size_t i, found = 0;
        for (size_t q = 0; q < m->rows; q++) {
            i = top ? q : m->rows - 1 - q;
            if (m->region[i * m->cols + (size_t)j]) {
                found = 1;
                break;
            }
        }
        if (!found)
            continue;
        /* As for rays: bright cells continuous with the area above its top belong to it. */
        while (top && i > 0 && m->bright[(i - 1) * m->cols + (size_t)j] > f->dark)
            i--;
        if (top ? i == 0 : i == m->rows - 1)
            clipped++;
        else
            v[k++] = top ? f->s * (double)i : f->s * (double)i + f->s - 1;
    }
    double med = k > clipped ? median(v, k) : NAN;
    free(v);
    return med;
}

/* Is work row i a row of scan data by its brightest grey: bright over nearly all of
 * [left, right] and dark just outside both sides? (A row of text is never that continuous and
 * does not stop at the area's sides.) */
static int image_row(const fitter *f, size_t i, double left, double right)
{
    const deid_live_map *m = f->map;
    const uint8_t *b = m->bright + i * m->cols;
    long j0 = (long)((left + 2) / f->s), j1 = (long)((right - 2) / f->s);
    long fl0 = (long)((left - 6) / f->s), fl1 = (long)((left - 3) / f->s);
    long fr0 = (long)((right + 3) / f->s), fr1 = (long)((right + 6) / f->s);
    if (j1 <= j0 || fl0 < 0 || fr1 >= (long)m->cols)
        return 0;
    size_t lit = 0;
    for (long j = j0; j <= j1; j++)
        lit += b[j] > f->dark;
    for (long j = fl0; j <= fl1; j++)
        if (b[j] > f->dark)
            return 0;
    for (long j = fr0; j <= fr1; j++)
        if (b[j] > f->dark)
            return 0;
    return lit * 10 >= (size_t)(j1 - j0 + 1) * 9;
}

/* A linear probe's near field can be static and separated from the live area by a dark band
 * (reverberation with the probe in air): extend the rectangle to the farthest rows above and
 * below that are scan data by image_row. */
static void extend_rows(const fitter *f, double left, double right, double *top, double *bottom)
{
    const deid_live_map *m = f->map;
    long t = (long)(*top / f->s), b = (long)(*bottom / f->s);
    for (long i = 0; i < t; i++)
        if (image_row(f, (size_t)i, left, right)) {
            *top = f->s * (double)i;
            break;
        }
    for (long i = (long)m->rows - 1; i > b; i--)
        if (image_row(f, (size_t)i, left, right)) {
            *bottom = f->s * (double)i + f->s - 1;
            break;
        }
}

/* Background level of the brightest-grey map: a quarter of the area's median, at least 8. */
static uint8_t dark_level(const deid_live_map *m)
{
    size_t hist[256] = {0}, n = 0;
    for (size_t p = 0; p < m->rows * m->cols; p++)
        if (m->region[p]) {
            hist[m->bright[p]]++;
            n++;
        }
    size_t acc = 0;
    int med = 0;
    while (med < 255 && (acc += hist[med]) * 2 < n)
        med++;
    return (uint8_t)(med / 4 > 8 ? med / 4 : 8);
}

static int rectangle_candidate(fitter *f, deid_fan *fan)
{
    const deid_live_map *m = f->map;
    double left = f->nleft ? edge_median(f, f->left, f->nleft, &f->l[0]) + 0.5 : NAN;
    double right = f->nright ? edge_median(f, f->right, f->nright, &f->r[0]) - 0.5 : NAN;
    if (isnan(left) && f->touches_left)
        left = 0;
    if (isnan(right) && f->touches_right)
        right = (double)m->image_cols - 1;
    if (!isfinite(left) || !isfinite(right) || right - left < 2)
        return 0;
    double top = column_extent(f, left, right, 1), bottom = column_extent(f, left, right, 0);
    if (isnan(top))
        top = 0;
    if (isnan(bottom))
        bottom = (double)m->image_rows - 1;
    if (bottom - top < 2)
        return 0;
    memset(fan, 0, sizeof *fan);
    fan->kind = DEID_FAN_RECTANGLE;
    fan->rectangle_left = nearbyint(left);
    fan->rectangle_right = nearbyint(right);
    fan->rectangle_top = nearbyint(top);
    fan->rectangle_bottom = nearbyint(bottom);
    return 1;
}

/* ---- scoring ------------------------------------------------------------------------------- */

typedef struct score {
    double iou, coverage, edges;
} score;

/* Agreement of a candidate with the area (IoU over work cells) and the share of live cells it
 * holds. */
static void area_score(const fitter *f, const deid_fan *fan, score *sc)
{
    const deid_live_map *m = f->map;
    deid_fan_prep p;
    sc->iou = sc->coverage = 0;
    if (deid__fan_prepare(fan, 0, &p) != 0)
        return;
    size_t inter = 0, uni = 0, live_in = 0;
    double s = f->s;
    for (size_t i = 0; i < m->rows; i++)
        for (size_t j = 0; j < m->cols; j++) {
            size_t q = i * m->cols + j;
            int in = deid__fan_inside(&p, s * (double)i + (s - 1) / 2, s * (double)j + (s - 1) / 2);
            inter += (size_t)(in && m->region[q]);
            uni += (size_t)(in || m->region[q]);
            live_in += (size_t)(in && m->live[q]);
        }
    sc->iou = uni ? (double)inter / (double)uni : 0;
    sc->coverage = m->live_count ? (double)live_in / (double)m->live_count : 0;
}

/* Share of the border points, in the rows where the candidate has straight edges, that lie
 * on those edges. */
static double edge_score(const fitter *f, const deid_fan *fan)
{
    double c[8];
    if (deid_fan_corners(fan, c) != DEID_OK)
        return 0;
    size_t n = 0, k = 0;
    for (int side = 0; side < 2; side++) {
        const bpt *p = side ? f->right : f->left;
        size_t np = side ? f->nright : f->nleft;
        /* The edge runs from the corner at radius1 to the one at radius2 (c: upper-left,
         * upper-right, lower-left, lower-right as (row, col)). */
        double ya = c[side ? 2 : 0], yb = c[side ? 6 : 4];
        double y0 = fmin(ya, yb) + 2, y1 = fmax(ya, yb) - 2;
        for (size_t i = 0; i < np; i++) {
            if (p[i].y < y0 || p[i].y > y1)
                continue;
            double x;
            if (fan->kind == DEID_FAN_RECTANGLE) {
                x = side ? fan->rectangle_right + 0.5 : fan->rectangle_left - 0.5;
            } else {
                double a = (side ? fan->angle2 : fan->angle1) / DEG;
                if (fabs(sin(a)) < 1e-9)
                    continue;
                x = fan->center_cols_px + (p[i].y - fan->center_rows_px) * cos(a) / sin(a);
            }
            n++;
            k += fabs(p[i].x - x) <= EDGE_TOLERANCE * f->s;
        }
    }
    return n ? (double)k / (double)n : 0;
}

/* The Ultrasound Regions box, when present, is the scan area's bounding box: a fan whose
 * deep part is black (no echo) ends above the box's bottom. Extend it there when its sides
 * then meet the box's sides (or the box is cut by the image border on that side). */
static void extend_to_prior(const fitter *f, deid_fan *fan)
{
    const deid_live_map *m = f->map;
    const deid_box *b = &m->prior;
    if (!b->valid)
        return;
    double tol = 0.03 * (double)(m->image_rows > m->image_cols ? m->image_rows : m->image_cols);
    double last = (double)m->image_cols - 1;
    if (fan->kind == DEID_FAN_RECTANGLE) {
        if (fabs(fan->rectangle_left - (double)b->left) <= tol &&
            fabs(fan->rectangle_right - (double)b->right) <= tol &&
            (double)b->bottom > fan->rectangle_bottom)
            fan->rectangle_bottom = (double)b->bottom;
        return;
    }
    double lo = fmin(fan->angle1, fan->angle2), hi = fmax(fan->angle1, fan->angle2);
    double r2 = nearbyint((double)b->bottom - fan->center_rows_px);
    if (lo > 90 || hi < 90 || r2 <= fan->radius2)
        return;
    double xl = fan->center_cols_px + r2 * cos(hi / DEG), xr = fan->center_cols_px + r2 * cos(lo / DEG);
    int left_ok = fabs(xl - (double)b->left) <= tol || (b->left == 0 && xl <= tol);
    int right_ok = fabs(xr - (double)b->right) <= tol || ((double)b->right >= last && xr >= last - tol);
    if (left_ok && right_ok)
        fan->radius2 = r2;
}

deid_status deid__fan_fit(const deid_live_map *map, unsigned kind, deid_fan *out,
                          double *confidence)
{
    fitter f;
    memset(&f, 0, sizeof f);
    f.map = map;
    f.s = map->scale;
    f.tol = fmax(1.5, 0.75 * f.s);
    f.rng = 0x9E3779B97F4A7C15ull; /* fixed: the same clip always gives the same geometry */
    f.dark = dark_level(map);
    f.left = deid__malloc(2 * map->rows * sizeof *f.left);
    if (!f.left)
        return DEID_ERR_NOMEM;
    f.right = f.left + map->rows;
    border_points(&f);
    fit_lines(&f, f.left, f.nleft, f.l);
    fit_lines(&f, f.right, f.nright, f.r);

    deid_fan cand[2];
    int have[2] = {0, 0};
    score sc[2] = {{0, 0, 0}, {0, 0, 0}};
    for (int i = 0; i < 4 && kind != 1 + DEID_FAN_RECTANGLE; i++) {
        deid_fan s;
        score ss;
        if (!sector_candidate(&f, &f.l[i / 2], &f.r[i % 2], &s))
            continue;
        s.image_size_rows = map->image_rows;
        s.image_size_cols = map->image_cols;
        area_score(&f, &s, &ss);
        if (!have[0] || ss.iou > sc[0].iou) {
            cand[0] = s;
            sc[0] = ss;
            have[0] = 1;
        }
    }
    if (kind != 1 + DEID_FAN_SECTOR && rectangle_candidate(&f, &cand[1])) {
        have[1] = 1;
        cand[1].image_size_rows = map->image_rows;
        cand[1].image_size_cols = map->image_cols;
        area_score(&f, &cand[1], &sc[1]);
    }
    int pick = have[0] && (!have[1] || sc[0].iou > sc[1].iou) ? 0 : 1;
    if (!have[pick]) {
        free(f.left);
        return deid__fail(DEID_ERR_NO_PIXELS, M,
                          "fan detection: no straight edges found around the live area");
    }
    sc[pick].edges = edge_score(&f, &cand[pick]);
    /* Scored as fitted to the live area; then extended by the weaker evidence. */
    if (pick == 1)
        extend_rows(&f, cand[1].rectangle_left, cand[1].rectangle_right,
                    &cand[1].rectangle_top, &cand[1].rectangle_bottom);
    extend_to_prior(&f, &cand[pick]);
    free(f.left);
    double c = sc[pick].iou * sc[pick].coverage * sc[pick].edges;
    *out = cand[pick];
    *confidence = c < 0 ? 0 : c > 1 ? 1 : c;
    return DEID_OK;
}
