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

/* ---- the ultrasound stage: detect, mask, re-encode ----------------------------------------- */

/* Which fan detector deid_us_process uses. */
typedef enum deid_us_detector {
    DEID_US_DETECTOR_AUTO = 0,       /* the model when a model (path or handle) is given, else
                                        the model-free detector */
    DEID_US_DETECTOR_MODEL_FREE = 1, /* deid_fan_detect */
    DEID_US_DETECTOR_MODEL = 2       /* a TorchScript corner model (model_path, or the model
                                        shipped with libdeid when model_path is NULL) */
} deid_us_detector;

/* What deid_us_process does when the detection confidence is below min_confidence (or the
 * detector found nothing). */
typedef enum deid_us_fallback {
    DEID_US_FALLBACK_NONE = 0,      /* refuse the file: nothing is masked or written */
    DEID_US_FALLBACK_RECTANGLE = 1, /* mask with the bounding rectangle of the detected area
                                       (eroded), clipped to the Ultrasound Regions box when
                                       the object has one */
    DEID_US_FALLBACK_REGIONS = 2    /* mask with the bounding rectangle of the 2D regions of the
                                       Sequence of Ultrasound Regions (0018,6011); refused when
                                       the object has none */
} deid_us_fallback;

/* A loaded fan corner model (TorchScript), shared by every deid_us_process call that is given
 * it: load it once per run, not per file. Runs on one model are serialised internally, so one
 * model may be used from several threads. */
typedef struct deid_us_model deid_us_model;

/* Load a TorchScript corner model (input 1 x 1 x 240 x 320 grey 0..255, output 4 normalised
 * corners: SlicerUltrasound's convention, see libdeid/us/model/) from `path`, or the model
 * shipped with libdeid when `path` is NULL. `device` is "cpu" (also NULL), "cuda", "cuda:N" or
 * "mps"; an accelerator that is missing falls back to the CPU and deid_us_model_warning says
 * so. libdeid loads libtorch on first use only (the module libdeid_torch.so). On success
 * *out owns the model (free with deid_us_model_free). Errors: DEID_ERR_UNSUPPORTED (no
 * libtorch support in this build, or not a TorchScript model), DEID_ERR_IO (cannot read it, or
 * no shipped model), DEID_ERR_ARGUMENT (unknown device); *out untouched on failure. */
DEID_API deid_status deid_us_model_load(const char *path, const char *device,
                                        deid_us_model **out);

/* Why the requested device is not used ("" when it is, or for NULL); owned by the model. */
DEID_API const char *deid_us_model_warning(const deid_us_model *model);

/* Free a model. NULL is a no-op. */
DEID_API void deid_us_model_free(deid_us_model *model);

/* The learned detector, beside deid_fan_detect: run `model` on an 8-bit grey or RGB image (the
 * maximum over its frames, as the model was trained) and turn its four corners into *out.
 * *confidence (may be NULL) is the IoU of that fan with the image's live area as the
 * model-free detector sees it (the model gives no confidence of its own). A model handle runs
 * one image at a time (calls are serialised). Errors: DEID_ERR_ARGUMENT, DEID_ERR_UNSUPPORTED
 * (16-bit or palette input, the model failed, or its corners make no fan), DEID_ERR_NOMEM; out
 * and confidence untouched on failure. */
DEID_API deid_status deid_fan_detect_model(deid_us_model *model, const deid_image *img,
                                           deid_fan *out, double *confidence);

#define DEID_US_OPTIONS_VERSION 1
/* Options of deid_us_process (and of a batch's ultrasound stage, deid_batch_options.us). */
typedef struct deid_us_options {
    unsigned version;        /* DEID_US_OPTIONS_VERSION */
    int detector;            /* deid_us_detector; default DEID_US_DETECTOR_AUTO */
    const char *model_path;  /* TorchScript corner model; default NULL (auto: model-free; model:
                                the shipped model). Loaded on each deid_us_process call unless
                                `model` is set: a batch loads it once per run */
    const char *device;      /* model device: "cpu" (default, also NULL), "cuda", "cuda:N",
                                "mps"; missing accelerators fall back to the CPU with a
                                warning */
    double erosion_px;       /* the mask is shrunk by this many pixels from every border of the
                                detected area (>= 0); default 2 */
    double min_confidence;   /* detections below this (0..1) are not trusted: see fallback;
                                default 0.5 */
    int fallback;            /* deid_us_fallback; default DEID_US_FALLBACK_NONE (refuse) */
    deid_encode_options encode; /* output pixel encoding; default JPEG baseline, quality 95
                                   (version 0 = defaults; DEID_CODEC_UNCOMPRESSED = lossless) */
    const char *overview_dir; /* batch: write a QC overview PNG per file here; deid_us_process
                                 keeps the first frame before and after masking in the result
                                 when it is not NULL (see deid_us_write_overview); default NULL */
    int mask_json;           /* batch: write <name>_mask.json beside the header JSON; default 1 */
    deid_us_model *model;    /* a loaded model (borrowed; used instead of model_path); default
                                NULL */
    uint64_t max_samples;    /* limit on decoded samples per object (deid_image_decode);
                                default 0 = the decoder's default (2^31) */
} deid_us_options;
#define DEID_US_OPTIONS_INIT                                                                    \
    {DEID_US_OPTIONS_VERSION, DEID_US_DETECTOR_AUTO, NULL, NULL, 2.0, 0.5,                      \
     DEID_US_FALLBACK_NONE, DEID_ENCODE_OPTIONS_INIT, NULL, 1, NULL, 0}

/* Fill `opts` with defaults; DEID_ERR_ARGUMENT for an unknown version. */
DEID_API deid_status deid_us_options_init(deid_us_options *opts, unsigned version);

/* What deid_us_process did to one object. */
typedef struct deid_us_result {
    deid_fan fan;            /* the geometry masked with (the fallback's rectangle when one
                                was used) */
    const char *detector;    /* static: "model-free" or "model" */
    double confidence;       /* the detector's confidence in [0, 1] (model: IoU of its fan
                                with the live area the model-free detector sees) */
    int low_confidence;      /* 1 when confidence < min_confidence or the detector failed */
    int fallback;            /* deid_us_fallback applied (NONE: the detection was used) */
    size_t frames, rows, cols;
    double seconds_decode, seconds_detect, seconds_mask, seconds_encode;
    double inference_ms;     /* model forward pass; 0 for the model-free detector */
    const char *warning;     /* static or the model's text ("" when none): device fallback */
    deid_image *overview_original; /* first frame before masking (RGB when the input was
                                      palette/YBR), only when opts->overview_dir is set */
    deid_image *overview_masked;   /* the same frame after masking */
    uint8_t *mask;                 /* rows x cols, 1 = kept; with the overview images */
} deid_us_result;

/* The ultrasound stage on one object in memory, the same for a batch, a binding and a gateway:
 * requires Modality US (DEID_ERR_UNSUPPORTED otherwise); decodes every frame; expands PALETTE
 * COLOR and YBR to RGB; finds the scan area (model-free deid_fan_detect, or the corner model on
 * the maximum over frames in grey resized to 240 x 320); rasterises it with opts->erosion_px;
 * sets every pixel outside to 0 in every frame and sample; replaces Pixel Data with the result
 * encoded per opts->encode (deid_dataset_set_pixels, header made consistent). The header is
 * not de-identified: apply the profile afterwards. A detection below opts->min_confidence
 * (or none at all) takes opts->fallback; with DEID_US_FALLBACK_NONE (or a regions fallback
 * without regions) the call fails with DEID_ERR_GENERIC and a message such as "fan detection
 * confidence 0.31 < 0.50: not written (use --fallback rectangle|regions)", ds is unchanged and
 * - an exception to the usual rule - *res is filled (low_confidence 1, nothing owned) so that
 * the caller can report the geometry. On success *res is filled and owns the overview images
 * when requested: release them with deid_us_result_clear. On any other failure ds is
 * unchanged and *res untouched. Errors: DEID_ERR_UNSUPPORTED (not US, pixel format, no
 * libtorch for the model), DEID_ERR_NO_PIXELS, DEID_ERR_LIMIT, DEID_ERR_ARGUMENT,
 * DEID_ERR_NOMEM, DEID_ERR_GENERIC (low confidence). `opts` may be NULL for defaults. The
 * dataset is modified in place; distinct datasets may be processed concurrently (a shared
 * model serialises its runs). */
DEID_API DEID_NODISCARD deid_status deid_us_process(deid_dataset *ds,
                                                    const deid_us_options *opts,
                                                    deid_us_result *res);

/* Free what a result owns (overview images, mask) and zero those fields. NULL is a no-op. */
DEID_API void deid_us_result_clear(deid_us_result *res);

/* The result's mask JSON: deid_fan_to_json's object plus "detector", "confidence" and, when
 * one was used, "fallback" ("rectangle" | "regions"). On success *json is a NUL-terminated
 * string to free with deid_free. Errors: DEID_ERR_ARGUMENT, DEID_ERR_NOMEM. */
DEID_API deid_status deid_us_result_json(const deid_us_result *res, char **json);

/* Write the result's QC overview PNG to `path` (atomically): the first frame before | after
 * masking, the mask outline, and the caption "detector: model-free  confidence 0.93" (plus the
 * fallback when one was used). DEID_ERR_ARGUMENT when the result holds no overview (the
 * stage ran without overview_dir); DEID_ERR_IO, DEID_ERR_NOMEM. */
DEID_API deid_status deid_us_write_overview(const deid_us_result *res, const char *path);

#ifdef __cplusplus
}
#endif
#endif
