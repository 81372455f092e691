/* libdeid: CT and CBCT volumes (built from a series or an enhanced multi-frame object, written
 * back), face removal (defacing) and volume export (NIfTI-1, NRRD), and a QC render. */
#ifndef DEID_CT_H
#define DEID_CT_H

#include <stddef.h>
#include <stdint.h>
#include "deid/export.h"
#include "deid/status.h"
#include "deid/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- volumes --------------------------------------------------------------------------------- */

/* A 3-D image: dims[0] columns (i) x dims[1] rows (j) x dims[2] slices (k) of stored values
 * (int32, i fastest, then j, then k), the modality rescale (value = stored * slope +
 * intercept, Hounsfield units for calibrated CT) and the geometry below. Opaque; not shared
 * between threads without locking. */
typedef struct deid_volume deid_volume;

/* Where a volume lies in the patient, in DICOM's patient coordinates (LPS, millimetres).
 * The centre of voxel (i, j, k) is at
 *   origin + i * spacing[0] * direction[0..2] + j * spacing[1] * direction[3..5]
 *          + k * spacing[2] * direction[6..8].
 * direction[0..2] is ImageOrientationPatient's row direction (along a row, increasing column),
 * direction[3..5] its column direction (down the rows), direction[6..8] the unit vector from
 * slice k to slice k+1 (for a series ordered along the normal, the cross product of the two;
 * with gantry tilt it is the actual slice-to-slice direction). origin is the
 * ImagePositionPatient of slice 0. Plain data: copy it freely. */
typedef struct deid_volume_geometry {
    size_t dims[3];       /* columns, rows, slices; each >= 1 */
    double spacing[3];    /* mm between column centres, row centres, slice centres; > 0 */
    double origin[3];     /* LPS position of the centre of voxel (0, 0, 0) */
    double direction[9];  /* unit vectors of i, j, k (see above) */
} deid_volume_geometry;

/* A new volume of `dims` (each >= 1; DEID_ERR_LIMIT when the voxel count overflows or
 * exceeds 2^31), voxels 0, spacing 1, origin 0, identity directions, slope 1, intercept 0,
 * not calibrated. On success *out is to be freed with deid_volume_free; on failure untouched.
 * DEID_ERR_ARGUMENT for a NULL or zero argument, DEID_ERR_NOMEM. */
DEID_API deid_status deid_volume_new(const size_t dims[3], deid_volume **out);

/* Free a volume; NULL is a no-op. */
DEID_API void deid_volume_free(deid_volume *vol);

/* A copy of `vol` (voxels, geometry, rescale, calibration). *out to free with
 * deid_volume_free; on failure untouched. DEID_ERR_ARGUMENT, DEID_ERR_NOMEM. */
DEID_API deid_status deid_volume_copy(const deid_volume *vol, deid_volume **out);

/* The volume's geometry into *geom. Both non-NULL. */
DEID_API void deid_volume_get_geometry(const deid_volume *vol, deid_volume_geometry *geom);

/* Set spacing, origin and direction from *geom (its dims must equal the volume's:
 * DEID_ERR_ARGUMENT otherwise, as for a spacing <= 0 or a direction that is not unit
 * length within 1e-3). */
DEID_API deid_status deid_volume_set_geometry(deid_volume *vol, const deid_volume_geometry *geom);

/* The voxels: dims[0] * dims[1] * dims[2] stored values, i fastest. Valid while the volume
 * lives; the caller may change them. Never NULL for a valid volume. */
DEID_API int32_t *deid_volume_voxels(deid_volume *vol);

/* Number of voxels (dims[0] * dims[1] * dims[2]). */
DEID_API size_t deid_volume_count(const deid_volume *vol);

/* The rescale: value = stored * slope + intercept. Either pointer may be NULL. */
DEID_API void deid_volume_get_rescale(const deid_volume *vol, double *slope, double *intercept);

/* Set the rescale (slope != 0: DEID_ERR_ARGUMENT otherwise) and whether values are calibrated
 * Hounsfield units (`hounsfield` non-zero: CT with RescaleType HU or absent; 0: CBCT or any
 * uncalibrated scale, for which the defacing methods take their thresholds from the
 * histogram). */
DEID_API deid_status deid_volume_set_rescale(deid_volume *vol, double slope, double intercept,
                                             int hounsfield);

/* Non-zero when the volume's values are calibrated Hounsfield units. */
DEID_API int deid_volume_is_hounsfield(const deid_volume *vol);

/* ---- series ---------------------------------------------------------------------------------- */

/* The slices of one image series (one SeriesInstanceUID), each a dataset with its source
 * path, put in order along the slice normal by deid_series_sort. Owns its datasets. Opaque;
 * not shared between threads without locking. */
typedef struct deid_series deid_series;

/* What deid_series_sort found about a series. Plain data. */
typedef struct deid_series_report {
    size_t slices;          /* slices in the series */
    size_t missing;         /* slices that the spacing says are missing (gaps of ~2x, 3x...) */
    size_t duplicates;      /* slices at the same position as another (kept, reported) */
    double spacing;         /* median distance between consecutive slice centres, mm */
    double spacing_min;     /* smallest distance between consecutive slices, mm */
    double spacing_max;     /* largest */
    int uneven;             /* 1 when spacing_max - spacing_min > 10% of spacing (or gaps) */
    double tilt_degrees;    /* gantry tilt: angle between the slice normal and the
                               slice-to-slice direction, degrees (0 for none) */
    int mixed_sizes;        /* 1 when the slices differ in rows, columns or orientation */
    char message[256];      /* one line for people ("34 slices, 5.0 mm, 1 missing
                               between slices 12 and 13"); never PHI */
} deid_series_report;

/* An empty series. *out to free with deid_series_free; on failure untouched. */
DEID_API deid_status deid_series_new(deid_series **out);

/* Free a series and the datasets it owns; NULL is a no-op. */
DEID_API void deid_series_free(deid_series *series);

/* Add a slice. On success the series owns `ds` (do not free it); `path` (may be NULL) is
 * copied and names the slice in messages. DEID_ERR_ARGUMENT when `ds` has no Pixel Data or
 * belongs to another SeriesInstanceUID than the slices already added. On failure the caller
 * still owns `ds`. */
DEID_API deid_status deid_series_add(deid_series *series, deid_dataset *ds, const char *path);

/* Number of slices; the i-th dataset (in the current order) and its path (NULL when none was
 * given). The pointers stay valid until the series is freed or sorted again; NULL when i is
 * out of range. */
DEID_API size_t deid_series_count(const deid_series *series);
DEID_API deid_dataset *deid_series_dataset(deid_series *series, size_t i);
DEID_API const char *deid_series_path(const deid_series *series, size_t i);

/* Put the slices in order along the slice normal (by ImagePositionPatient projected on the
 * normal of ImageOrientationPatient; InstanceNumber when those are absent) and describe the
 * series in *report (may be NULL). DEID_ERR_UNSUPPORTED for a series without slices. */
DEID_API deid_status deid_series_sort(deid_series *series, deid_series_report *report);

/* A volume from a sorted series: voxels from every slice's first frame (any transfer syntax
 * the dataset layer decodes; MONOCHROME1/2, 8 to 16 bits), geometry from the first and last
 * slice positions, spacing[2] their distance / (slices - 1) (the median spacing when there
 * are gaps), rescale from the first slice, Hounsfield when Modality is CT and RescaleType is
 * HU or absent. DEID_ERR_UNSUPPORTED for mixed sizes or orientations or colour slices;
 * DEID_ERR_NO_PIXELS; DEID_ERR_LIMIT; DEID_ERR_NOMEM. *out to free with deid_volume_free. */
DEID_API deid_status deid_volume_from_series(const deid_series *series, deid_volume **out);

/* A volume from one multi-frame object (Enhanced CT, Legacy Converted Enhanced CT, or any
 * multi-frame image with per-frame or shared Plane Position/Orientation), frames ordered
 * along the normal. Same errors as deid_volume_from_series. */
DEID_API deid_status deid_volume_from_dataset(const deid_dataset *ds, deid_volume **out);

/* Write the volume's voxels back into the series' slices (Pixel Data replaced, encoded
 * uncompressed explicit VR little endian whatever the slice's transfer syntax was; the pixel
 * module made consistent: each slice keeps its rescale, bits and signedness when the values fit,
 * Bits Stored widens when they need more, values no 16-bit type holds are clamped).
 * Slice k of the volume goes to the slice whose position along the normal is nearest to it;
 * when the counts differ (a volume resampled, a series with extra slices) each slice takes
 * the nearest volume slice, and slices farther than half a spacing from any volume slice
 * are left unchanged and counted in *unmatched (may be NULL). Rows and columns must match
 * (DEID_ERR_ARGUMENT). A failure part way leaves the slices before it written. */
DEID_API DEID_NODISCARD deid_status deid_series_set_volume(deid_series *series,
                                                           const deid_volume *vol,
                                                           size_t *unmatched);

/* ---- export ---------------------------------------------------------------------------------- */

/* Write a NIfTI-1 file (`path` ending .nii or .nii.gz; gzip for .gz) through niftilib:
 * int16 when the stored values fit (else int32), scl_slope/scl_inter from the rescale,
 * qform and sform (code 1, scanner) from the geometry converted from LPS to RAS, xyzt units
 * mm. Voxels and affine are the ones dcm2niix writes for the same series: like dcm2niix, the
 * file's rows are in reverse order (its row 0 is the volume's last row, so its j axis points
 * opposite to direction[3..5] from the last row), while i and k keep the volume's directions.
 * Written to a temporary file and renamed. DEID_ERR_ARGUMENT for another extension;
 * DEID_ERR_IO naming the path; DEID_ERR_UNSUPPORTED when built without niftilib. */
DEID_API DEID_NODISCARD deid_status deid_volume_write_nifti(const deid_volume *vol,
                                                            const char *path);

/* Write a NRRD file (`path` ending .nrrd: attached header; raw or gzip encoding by
 * `gzip`): type int16 when the values fit (else int32), space left-posterior-superior, space
 * directions and space origin from the geometry. Values are in modality units (Hounsfield
 * for CT) when the rescale is an integer shift (slope 1, integer intercept); otherwise the
 * stored values are written with "rescale slope:=" and "rescale intercept:=" key/value lines.
 * Written to a temporary file and renamed. DEID_ERR_ARGUMENT for another extension;
 * DEID_ERR_IO. */
DEID_API DEID_NODISCARD deid_status deid_volume_write_nrrd(const deid_volume *vol,
                                                           const char *path, int gzip);

/* A single-file multi-frame object holding the whole volume: Legacy Converted Enhanced CT
 * Image Storage (1.2.840.10008.5.1.4.1.1.2.2) when `enhanced` is 0, Enhanced CT Image
 * Storage (1.2.840.10008.5.1.4.1.1.2.1) when non-zero. Patient, study, series, equipment and
 * frame-of-reference attributes come from the series' first sorted slice (`series` as
 * sorted by deid_series_sort, slices matching the volume; it is only read); the frames are
 * the volume's slices in order, with shared Pixel Measures, Plane Orientation and Pixel Value
 * Transformation functional groups, per-frame Frame Content (with a dimension index on
 * position) and Plane Position groups, a Dimension Organization/Index on Image Position
 * Patient, new SOP Instance UID, uncompressed 16-bit pixels. The object passes dciodvfy
 * without error. *out to free with deid_dataset_free; on failure untouched.
 * DEID_ERR_ARGUMENT when the series does not match the volume (rows, columns), DEID_ERR_LIMIT
 * when the pixel data would exceed 4 GiB, DEID_ERR_NOMEM. */
DEID_API deid_status deid_volume_to_enhanced(const deid_volume *vol, const deid_series *series,
                                             int enhanced, deid_dataset **out);

/* ---- defacing -------------------------------------------------------------------------------- */

/* How to remove the face. */
typedef enum deid_deface_method {
    DEID_DEFACE_FACE = 0,  /* only the facial soft tissue and the air just in front of it (nose,
                              lips, eyes, chin; ears with `ears`), to a depth that stops outside
                              the bone; the skull and everything inside it never change */
    DEID_DEFACE_DROWN = 1, /* face_deid_ct's drown_volume: everything outside the body's
                              dilated largest component and a shell of the body surface are
                              replaced */
    DEID_DEFACE_MODEL = 2  /* CTA-DEFACE's way: a TorchScript face-segmentation model
                              (`model_path`, e.g. libdeid/ct/model/face.pt) run through the
                              libtorch module on a 64^3 grid of 4 mm around the body; voxels
                              whose interpolated face probability is > 0.5, dilated by one
                              voxel, are replaced. DEID_ERR_UNSUPPORTED when libdeid has no
                              libtorch module */
} deid_deface_method;

/* What replaces removed voxels. */
typedef enum deid_deface_replacer {
    DEID_REPLACE_TISSUE = 0, /* values drawn at random from the volume's own skin/fat range
                                (HU -150..50 for calibrated CT; the soft-tissue peak of the
                                histogram otherwise), so a render shows a smooth blob */
    DEID_REPLACE_AIR = 1,    /* the volume's air value (-1000 HU, or the histogram's air peak) */
    DEID_REPLACE_VALUE = 2   /* `value` (in modality units: HU for calibrated CT) */
} deid_deface_replacer;

#define DEID_DEFACE_OPTIONS_VERSION 1
/* Options of deid_volume_deface. */
typedef struct deid_deface_options {
    unsigned version;        /* DEID_DEFACE_OPTIONS_VERSION */
    int method;              /* deid_deface_method; default DEID_DEFACE_FACE */
    int replacer;            /* deid_deface_replacer; default DEID_REPLACE_TISSUE for drown,
                                DEID_REPLACE_AIR for face and model */
    double value;            /* DEID_REPLACE_VALUE: the value, modality units; default 0 */
    double body_threshold;   /* drown and face: voxels above it are body, modality units;
                                default NaN = -800 HU (drown) or -500 HU (face) for calibrated
                                CT, else from the histogram */
    double shell_mm;         /* drown: thickness of the replaced body surface, mm, as the
                                half-width of a box (diagonals reach up to 1.7 times as far);
                                default 0 = the dilation face_deid_ct uses (its 3 x 3 x 3
                                structuring element applied twice, 2 voxels) */
    int ears;                /* face: also remove the ears (default 0) */
    uint64_t seed;           /* random replacer: the stream's seed (default 0: a fixed seed, so
                                the same volume gives the same output) */
    unsigned threads;        /* worker threads; default 0 = all cores */
    const char *model_path;  /* model: the TorchScript file (required: DEID_ERR_ARGUMENT when
                                NULL with DEID_DEFACE_MODEL); borrowed, only read during the
                                call; default NULL */
    const char *device;      /* model: "cpu" (default, NULL), "cuda", "cuda:N" or "mps"; a
                                missing accelerator falls back to the CPU */
} deid_deface_options;

#define DEID_DEFACE_OPTIONS_INIT                                                                 \
    {DEID_DEFACE_OPTIONS_VERSION, DEID_DEFACE_FACE, -1, 0.0, 0.0 / 0.0, 0.0, 0, 0, 0, NULL, NULL}

/* Fill `opts` with defaults; DEID_ERR_ARGUMENT for an unknown version. */
DEID_API deid_status deid_deface_options_init(deid_deface_options *opts, unsigned version);

/* What a deface did. Plain data. */
typedef struct deid_deface_report {
    size_t altered;          /* voxels whose value changed */
    int face_found;          /* face method: 1 when the face was located */
    int anterior_axis;       /* face method: the volume axis (0 = i, 1 = j, 2 = k) and sign
                                (+1/-1 in anterior_sign) pointing anterior, from the geometry */
    int anterior_sign;
    int superior_axis;       /* same for superior */
    int superior_sign;
    double body_threshold;   /* threshold used, modality units */
    double bone_threshold;   /* face method: bone threshold used, modality units */
    double seconds;          /* wall time */
    char message[256];       /* one line for people; never PHI */
} deid_deface_report;

/* Remove the face from `vol` in place with `opts` (NULL: defaults). `mask` (may be NULL)
 * receives deid_volume_count bytes: 1 where a voxel was replaced, 0 elsewhere. *report (may
 * be NULL) says what was done. DEID_ERR_ARGUMENT for a bad option; DEID_ERR_UNSUPPORTED when
 * the face method cannot tell the patient's orientation (an identity geometry is taken as
 * axial LPS slices) or finds no head; DEID_ERR_NOMEM. On failure the volume is unchanged. */
DEID_API DEID_NODISCARD deid_status deid_volume_deface(deid_volume *vol,
                                                       const deid_deface_options *opts,
                                                       uint8_t *mask,
                                                       deid_deface_report *report);

/* ---- QC render --------------------------------------------------------------------------------- */

/* A PNG for a reviewer: front and side views of the skin surface (ray-cast along the
 * patient's anterior-posterior and left-right axes to the first voxel above the skin
 * threshold, shaded by depth and surface normal), `before` in the top row and `after` (may
 * be NULL: one row) in the bottom row, square pixels from the spacing. Written to a
 * temporary file and renamed; DEID_ERR_IO naming the path. */
DEID_API DEID_NODISCARD deid_status deid_volume_render_qc(const deid_volume *before,
                                                          const deid_volume *after,
                                                          const char *png_path);

/* ---- batches (deid_batch_options.ct) ----------------------------------------------------------- */

#define DEID_CT_OPTIONS_VERSION 1
/* What a batch does with each CT series (deid_batch_options.ct): the slices of one series
 * (same directory, same SeriesInstanceUID, Modality CT) become a volume, are defaced, and are
 * written back as DICOM (and/or NIfTI, NRRD, a QC render). */
typedef struct deid_ct_options {
    unsigned version;         /* DEID_CT_OPTIONS_VERSION */
    int deface;               /* 1 (default): remove the face with `face`; 0: volumes are
                                 written as read (conversion only) */
    deid_deface_options face; /* method, replacer...; version 0 = defaults */
    int keep_headers;         /* 1: DICOM slices keep their headers as they were (only Pixel
                                 Data is replaced) and their input names; default 0: headers
                                 go through the batch's profile like every other tool's */
    int dicom;                /* 1 (default): write the DICOM slices; 0: no DICOM output */
    int enhanced;             /* with dicom: 0 (default): one file per slice; 1: one Legacy
                                 Converted Enhanced CT file per series; 2: one Enhanced CT
                                 file per series (deid_volume_to_enhanced, then the profile
                                 unless keep_headers); its keys.csv row names the first
                                 slice's path */
    const char *nifti_dir;    /* write <nifti_dir>/<relative dir>/<series>.nii.gz (named
                                 after the written Series Instance UID); NULL = none */
    int nrrd;                 /* 1: also <series>.nrrd beside the NIfTI file (in nifti_dir,
                                 or the headers directory without one); default 0 */
    const char *qc_dir;       /* a QC render per series, <qc_dir>/<relative dir>/<series>.png;
                                 NULL = none */
    size_t min_slices;        /* a series with fewer slices is not a volume: its files are
                                 skipped; default 0 = 3 */
} deid_ct_options;

#define DEID_CT_OPTIONS_INIT                                                                     \
    {DEID_CT_OPTIONS_VERSION, 1, DEID_DEFACE_OPTIONS_INIT, 0, 1, 0, NULL, 0, NULL, 0}

/* Fill `opts` with defaults; DEID_ERR_ARGUMENT for an unknown version. */
DEID_API deid_status deid_ct_options_init(deid_ct_options *opts, unsigned version);

#ifdef __cplusplus
}
#endif
#endif
