/* libdeid internal: what the files of ct/ share (the volume and series structures), and what
 * the layers above (batch, tools) may use besides include/deid/ct.h. */
#ifndef DEID_CT_INT_H
#define DEID_CT_INT_H

#include <stddef.h>
#include <stdint.h>
#include "deid/ct.h"
#include "dicom/dataset_int.h"

struct deid_volume {
    deid_volume_geometry geom;
    double slope, intercept;
    int hounsfield;       /* calibrated HU */
    int32_t *vox;         /* geom.dims[0] * dims[1] * dims[2], i fastest */
    size_t n;             /* voxel count */
};

typedef struct deid__slice {
    deid_dataset *ds;
    char *path;
    double pos;           /* position along the slice normal (mm), or InstanceNumber */
} deid__slice;

struct deid_series {
    deid__slice *v;
    size_t n, cap;
    char *series_uid;     /* of the first slice added (NULL when it had none) */
    double normal[3];     /* slice normal of the first slice (unit), set by deid_series_sort */
    int sorted;
};

/* Value of stored voxel s in modality units. */
static inline double deid__vol_value(const deid_volume *v, int32_t s)
{
    return s * v->slope + v->intercept;
}

/* Write a volume back into the multi-frame object it came from (deid_volume_from_dataset):
 * each frame takes the volume slice at its position (frames matching none are left as they
 * were and counted in *unmatched, may be NULL), converted to the frame's rescale and clamped
 * to the object's bits; Pixel Data re-encoded uncompressed. DEID_ERR_ARGUMENT when sizes
 * differ; decoding errors as deid_image_decode. */
/* deid_volume_from_series, removing each slice's Pixel Data once its voxels are in the volume,
 * so that a series is never held twice (the batch, which writes the volume back). */
deid_status deid__volume_from_series_taking_pixels(deid_series *series, deid_volume **out);

/* deid_series_set_volume one slice at a time, so that the batch can write each slice and drop
 * its pixels before the next one gets the volume's: _new checks the sizes and finds each
 * slice's volume slice (*unmatched: slices with none); _slice(i) gives slice i (series order,
 * as deid_series_dataset) its voxels, or leaves an unmatched slice as it is. */
typedef struct deid__series_writeback deid__series_writeback;
deid_status deid__series_writeback_new(deid_series *series, const deid_volume *vol,
                                       deid__series_writeback **out, size_t *unmatched);
deid_status deid__series_writeback_slice(deid__series_writeback *wb, size_t i);
void deid__series_writeback_free(deid__series_writeback *wb);

deid_status deid__dataset_set_volume(deid_dataset *ds, const deid_volume *vol, size_t *unmatched);

/* Attribute reading shared by series.c and enhanced.c (dicom/dataset_int.h items; `it` may
 * be NULL): the text of `tag` without padding ("" when absent, a sequence or too long for
 * `cap`), and up to `max` numbers of a DS/IS value ("a\\b\\c") with the count read. */
const char *deid__ct_text(const deid_item *it, uint32_t tag, char *buf, size_t cap);
size_t deid__ct_numbers(const deid_item *it, uint32_t tag, double *out, size_t max);

/* The stored value nearest to modality value `value`, clamped to int32. */
int32_t deid__vol_stored(const deid_volume *v, double value);

#endif
