/* libdeid internal: the model defacing method (ct/model.c), called by deid_volume_deface. */
#ifndef DEID_CT_MODEL_H
#define DEID_CT_MODEL_H

#include "ct/morph.h"

/* Points per axis and spacing (mm) of the canonical grid the face model sees (see
 * libdeid/ct/model/train_face.py, which must build the same grid). */
#define DEID_CT_MODEL_GRID 64
#define DEID_CT_MODEL_STEP_MM 4.0
/* Body threshold for the grid's centre, in Hounsfield units (or the histogram's scale). */
#define DEID_CT_MODEL_BODY_HU (-500.0)

/* The canonical input of `v` (DEID_CT_MODEL_GRID^3 floats, x fastest, then y, then z, LPS
 * axes, values clamp((HU + 1000) / 2000, 0, 1.5), 0 outside the volume) into `grid`, and the
 * grid's centre (LPS mm) into centre[3]. `lv` gives the scale of an uncalibrated volume.
 * DEID_ERR_UNSUPPORTED when the geometry is singular. */
deid_status deid__ct_model_input(const deid_volume *v, const deid__ct_levels *lv,
                                 unsigned threads, float *grid, double centre[3]);

/* Run the face model of o->model_path on o->device over `v` and set in *marked (allocated here,
 * the volume's size, freed by the caller with deid__bits_free) the voxels to replace: the
 * model's face probability interpolated at each voxel > 0.5, dilated by one voxel. `device_out`
 * (size bytes) gets the device used. DEID_ERR_UNSUPPORTED without the torch module or for a
 * model that does not take the grid, DEID_ERR_IO, DEID_ERR_ARGUMENT (unknown device),
 * DEID_ERR_NOMEM. */
deid_status deid__ct_model_mark(const deid_volume *v, const deid_deface_options *o,
                                const deid__ct_levels *lv, unsigned threads, deid__bits *marked,
                                char *device_out, size_t size);

#endif
