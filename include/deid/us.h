/* libdeid: ultrasound fan geometry, its mask, and a model-free fan detector. */
#ifndef DEID_US_H
#define DEID_US_H

#include <stddef.h>
#include <stdint.h>
#include "deid/export.h"
#include "deid/status.h"
#include "deid/dataset.h"
#include "deid/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kind of scan area: a sector (curvilinear and phased-array probes) or a rectangle (linear). */
typedef enum deid_fan_kind {
    DEID_FAN_SECTOR = 0,
    DEID_FAN_RECTANGLE = 1
} deid_fan_kind;

/* The area of an ultrasound image that carries scan data, in the conventions of the
 * SlicerUltrasound AnonymizeUltrasound module (and of its mask JSON files):
 * - Pixel coordinates are (row, column) of pixel centres, row 0 at the top, column 0 at the
 *   left; they may be negative or beyond the image (an apex above the first row).
 * - Angles are in degrees, measured from the +column direction (pointing right) towards the
 *   +row direction (pointing down), i.e. clockwise on screen: 90 points straight down. A fan
 *   opening downwards has both edge angles in [0, 180]. The sector covers the directions from
 *   min(angle1, angle2) to max(angle1, angle2) (OpenCV's ellipse sweep), so their order does
 *   not matter for the mask; 4-corner builds and the detector put the left edge's direction
 *   in angle1 (the larger for a downward fan), 3-corner builds sort them ascending, as
 *   SlicerUltrasound does.
 * - A sector pixel is inside when radius1 < distance to the apex <= radius2 and its direction
 *   lies in the angular range; radius1 is 0 for phased sectors whose apex is on the image.
 * - A rectangle pixel is inside when rectangle_top <= row <= rectangle_bottom and
 *   rectangle_left <= column <= rectangle_right (inclusive bounds).
 * The builders and the detector round centre, radii and rectangle sides to whole pixels, as
 * SlicerUltrasound writes them; angles keep their fraction. Plain data: copy it freely. */
typedef struct deid_fan {
    deid_fan_kind kind;     /* DEID_FAN_SECTOR ("fan" in JSON) or DEID_FAN_RECTANGLE */
    double center_rows_px;  /* sector: apex row */
    double center_cols_px;  /* sector: apex column */
    double radius1;         /* sector: inner radius in pixels (0 for an apex on the image) */
    double radius2;         /* sector: outer radius in pixels (> radius1) */
    double angle1;          /* sector: direction of one straight edge, degrees (see above) */
    double angle2;          /* sector: direction of the other straight edge, degrees */
    double rectangle_top;   /* rectangle: first row inside */
    double rectangle_left;  /* rectangle: first column inside */
    double rectangle_bottom; /* rectangle: last row inside */
    double rectangle_right; /* rectangle: last column inside */
    size_t image_size_rows; /* rows of the image the geometry belongs to (the mask's size) */
    size_t image_size_cols; /* columns of that image */
} deid_fan;

/* Build a geometry from 3 or 4 corner points, the way SlicerUltrasound's mask landmarks do.
 * `points` holds npoints pairs (row, column): pixels, or fractions of the image height and
 * width when `normalized` is non-zero (row = fraction * image_rows, column = fraction *
 * image_cols; what a corner-regressing model outputs).
 * - 4 points, in any order: each is assigned to the upper-left, upper-right, lower-left or
 *   lower-right quadrant around their mean (DEID_ERR_ARGUMENT when a quadrant stays empty).
 *   When both the left and the right pair are vertical within 10% of the height (column
 *   difference < round(0.1 * |row difference|)) the result is a rectangle whose sides are the
 *   rounded means of the pairs; otherwise a sector whose apex is where the left line
 *   (upper-left -> lower-left) meets the right line, angle1/angle2 the directions of the left
 *   and right lines, radius1/radius2 the mean distance of the upper/lower pair from the apex.
 *   Parallel lines that are not a rectangle give DEID_ERR_ARGUMENT.
 * - 3 points: the one with the smallest row is the apex; radius1 = 0, radius2 the mean
 *   distance of the other two from it, angles their directions in ascending order.
 * image_rows/image_cols become image_size_rows/cols. On failure *out is untouched. */
DEID_API deid_status deid_fan_from_corners(const double *points, size_t npoints, int normalized,
                                           size_t image_rows, size_t image_cols, deid_fan *out);

/* The four corners of a geometry as (row, column) pairs in corners[8]: upper-left,
 * upper-right, lower-left, lower-right. For a sector these are the points at radius1 and
 * radius2 along angle1 (left) and angle2 (right), as SlicerUltrasound's
 * scanconversion_config_to_corner_points computes them; with radius1 = 0 both upper corners
 * are the apex. Feeding them back to deid_fan_from_corners gives the same geometry.
 * DEID_ERR_ARGUMENT for a NULL argument or an unknown kind. */
DEID_API deid_status deid_fan_corners(const deid_fan *fan, double corners[8]);

/* Draw the geometry into `mask` (image_size_rows x image_size_cols bytes, row-major; `size`
 * is the buffer's size and must be at least that): 1 inside, 0 outside. `erosion_px` > 0
 * shrinks the area by that Euclidean distance from every border (arcs, edges, sides): pixels
 * closer than that to the outside become 0; 0 draws the geometry as it is.
 * DEID_ERR_ARGUMENT for a NULL argument, an empty image size, a too small buffer, a negative or
 * non-finite value or radius2 <= radius1. Thread-safe; no allocation. */
DEID_API deid_status deid_fan_rasterize(const deid_fan *fan, double erosion_px, uint8_t *mask,
                                        size_t size);

/* The geometry as a SlicerUltrasound mask JSON object: {"mask_type": "fan", "angle1",
 * "angle2", "center_rows_px", "center_cols_px", "radius1", "radius2", "image_size_rows",
 * "image_size_cols"} for a sector (centre and radii as integers, rounded; angles as reals), or
 * {"mask_type": "rectangle", "rectangle_left", "rectangle_right", "rectangle_top",
 * "rectangle_bottom", "image_size_rows", "image_size_cols"} (integers). On success *json is a
 * NUL-terminated string to free with deid_free. */
DEID_API deid_status deid_fan_to_json(const deid_fan *fan, char **json);

/* Read a mask JSON object as written by deid_fan_to_json or SlicerUltrasound. mask_type
 * "fan" (also the default when absent) or "rectangle"; numbers may be integers or reals; other
 * members are ignored; image_size_rows/cols may be absent (then 0). DEID_ERR_ARGUMENT with the
 * reason for malformed JSON, a missing or non-numeric field, or an unknown mask_type. On
 * failure *out is untouched. */
DEID_API deid_status deid_fan_from_json(const char *json, deid_fan *out);

#define DEID_FAN_DETECT_OPTIONS_VERSION 1
/* Options of deid_fan_detect. A value of 0 means "use the default". */
typedef struct deid_fan_detect_options {
    unsigned version;       /* DEID_FAN_DETECT_OPTIONS_VERSION */
    unsigned max_frames;    /* frames sampled, evenly spread over the clip, for the temporal
                               statistics; default 32 */
    unsigned kind;          /* 0: decide between sector and rectangle (default);
                               1 + DEID_FAN_SECTOR: sector only; 1 + DEID_FAN_RECTANGLE:
                               rectangle only */
    unsigned ignore_regions; /* non-zero: do not use the dataset's Sequence of Ultrasound
                                Regions (0018,6011) as a prior; default 0 (use it) */
    uint64_t max_pixels;    /* images with more rows x columns than this are refused with
                               DEID_ERR_LIMIT; default 2^26 (64 Mpixel) */
} deid_fan_detect_options;
#define DEID_FAN_DETECT_OPTIONS_INIT {DEID_FAN_DETECT_OPTIONS_VERSION, 0, 0, 0, 0}

/* Fill `opts` with defaults for the given struct version. DEID_ERR_ARGUMENT for an unknown
 * version. */
DEID_API deid_status deid_fan_detect_options_init(deid_fan_detect_options *opts,
                                                  unsigned version);

/* Find the scan area of an ultrasound image without a model. Over a clip, pixels whose value
 * changes between sampled frames are live scan data; burned-in text, logos, scale and colour
 * bars do not change and never count, thin moving traces (ECG sweeps) are removed, the
 * largest live area is kept. Single frames (or frozen clips) use local texture instead. The
 * straight edges are RANSAC lines on the area's left and right borders, their intersection
 * the apex, the radii robust statistics over rays from the apex, so Doppler boxes, text
 * touching the area and ECG traces do not bend the fit; a rectangle is chosen when it explains
 * the area better. Bright static scan data continuous with the live area (a saturated near
 * field) joins it. When `ds` (may be NULL) has a Sequence of Ultrasound Regions with 2D
 * regions (RegionSpatialFormat 1), live data outside their bounding box is ignored, and a fan
 * whose deep part is black is extended to the box when its sides match the box's.
 * The image is read as decoded (deid_image_photometric): RGB by luminance, YBR by Y, PALETTE
 * COLOR by its index values, MONOCHROME1 inverted, 16-bit scaled to 8. Fans must open
 * downwards or upwards (as scanners display them). `opts` may be NULL for defaults.
 * On success *out is the geometry (image_size set) and, when `confidence` is not NULL,
 * *confidence in [0, 1]: the IoU of the fitted area with the live area, times the share of
 * border points on the fitted edges, times the share of live pixels inside. Clean clips score
 * above 0.9 (single frames above 0.75); below 0.5 the geometry explains the image poorly
 * (several sectors, a display crop, little live data) and should not be trusted to hide
 * burned-in text: refuse the file or use a conservative mask. Errors: DEID_ERR_NO_PIXELS (no
 * live area or no edges), DEID_ERR_UNSUPPORTED (images under 8x8), DEID_ERR_LIMIT,
 * DEID_ERR_ARGUMENT, DEID_ERR_NOMEM; outputs untouched on failure. The image and dataset are
 * only read; distinct images may be processed concurrently. */
DEID_API deid_status deid_fan_detect(const deid_image *img, const deid_dataset *ds,
                                     const deid_fan_detect_options *opts, deid_fan *out,
                                     double *confidence);

#ifdef __cplusplus
}
#endif
#endif
