/* libdeid internal: what the files of us/ share (geometry tests, the live-area map, the fit),
 * and what the layers above (batch, tools) may use besides include/deid/us.h. */
#ifndef DEID_US_INT_H
#define DEID_US_INT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "deid/us.h"

/* ---- geometry (fan.c) --------------------------------------------------------------------- */

/* A geometry prepared for many inside tests: unit edge directions, squared radii, the
 * erosion margin folded in. */
typedef struct deid_fan_prep {
    int rectangle;
    double cr, cc;           /* apex (row, col) */
    double rin2, rout2;      /* squared radial bounds: inside when rin2 < d^2 <= rout2 */
    int rin_strict;          /* 1: d^2 must exceed rin2; 0: d^2 >= rin2 (eroded bound) */
    double lo_x, lo_y;       /* unit direction of the smaller angle (x = col, y = row) */
    double hi_x, hi_y;       /* unit direction of the larger angle */
    double margin;           /* required distance from each straight edge */
    int wide;                /* span > 180: union of half-planes; 2: full circle */
    double top, left, bottom, right; /* rectangle bounds on pixel centres, erosion folded in */
} deid_fan_prep;

/* Prepare `fan` (eroded by erosion_px >= 0) for deid__fan_inside. -1 when the geometry is
 * invalid (non-finite numbers, radius2 <= radius1, negative radius, empty rectangle). */
int deid__fan_prepare(const deid_fan *fan, double erosion_px, deid_fan_prep *p);

/* Is the pixel centre (row, col) inside? */
static inline int deid__fan_inside(const deid_fan_prep *p, double row, double col)
{
    if (p->rectangle)
        return row >= p->top && row <= p->bottom && col >= p->left && col <= p->right;
    double x = col - p->cc, y = row - p->cr;
    double d2 = x * x + y * y;
    if (d2 > p->rout2 || (p->rin_strict ? d2 <= p->rin2 : d2 < p->rin2))
        return 0;
    if (p->wide == 2)
        return 1;
    double a = p->lo_x * y - p->lo_y * x; /* distance from the lo edge, into the sector */
    double b = x * p->hi_y - y * p->hi_x; /* distance from the hi edge, into the sector */
    if (p->wide)
        return a >= p->margin || b >= p->margin;
    return a >= p->margin && b >= p->margin;
}

/* Intersection over union of two masks of n bytes (non-zero = inside); 1 when both are
 * empty. */
double deid__mask_iou(const uint8_t *a, const uint8_t *b, size_t n);

/* ---- mask JSON (fan_json.c) --------------------------------------------------------------- */

/* The mask JSON object of deid_fan_to_json, for callers that add members (detector,
 * confidence) before writing it. NULL on out of memory or an invalid geometry (error set). */
json_t *deid__fan_json(const deid_fan *fan);

/* ---- live-area map (live.c) --------------------------------------------------------------- */

/* A box of image pixels (inclusive) the live data must lie in; all zero for none. */
typedef struct deid_box {
    long top, left, bottom, right;
    int valid;
} deid_box;

/* Union of the 2D regions (Region Spatial Format 1) of the Sequence of Ultrasound Regions
 * (0018,6011), clipped to the image; valid 0 when there is none. ds may be NULL. */
deid_box deid__us_regions_box(const deid_dataset *ds, size_t rows, size_t cols);

/* Where the image carries live scan data, on a work grid of `scale` x `scale` image pixels
 * per cell (scale 1 up to ~1 Mpixel). Cell (i, j) covers image rows scale*i .. scale*i+scale-1;
 * its centre is at image row scale*i + (scale-1)/2. */
typedef struct deid_live_map {
    size_t rows, cols;        /* work grid */
    unsigned scale;
    size_t image_rows, image_cols;
    int temporal;             /* 1: from frame differences; 0: from single-frame texture */
    uint8_t *live;            /* thresholded live pixels before any cleanup */
    uint8_t *region;          /* cleaned scan area: largest live component + companions,
                                 holes filled */
    uint8_t *bright;          /* brightest grey of each cell over the sampled frames */
    size_t live_count, region_count;
    deid_box prior;           /* the Ultrasound Regions box used (valid 0 when none) */
} deid_live_map;

/* Build the live map of img from up to max_frames sampled frames; `prior` (may be NULL or
 * invalid) zeroes live data outside it. DEID_ERR_NO_PIXELS when nothing is live. */
deid_status deid__live_map(const deid_image *img, unsigned max_frames, const deid_box *prior,
                           deid_live_map *map);
void deid__live_map_free(deid_live_map *map);

/* ---- fit (fit.c) -------------------------------------------------------------------------- */

/* Fit a sector and/or a rectangle to map->region (kind: 0 either, 1 + DEID_FAN_SECTOR,
 * 1 + DEID_FAN_RECTANGLE) and score it. DEID_ERR_NO_PIXELS when no edge can be fitted. */
deid_status deid__fan_fit(const deid_live_map *map, unsigned kind, deid_fan *out,
                          double *confidence);

/* deid_fan_from_corners for 4 points already in the order upper-left, upper-right, lower-left,
 * lower-right (a corner model's output): no sorting into quadrants, which fails for phased
 * sectors whose two upper corners both sit at the apex. */
deid_status deid__fan_from_ordered_corners(const double points[8], int normalized,
                                           size_t image_rows, size_t image_cols, deid_fan *out);

#endif
