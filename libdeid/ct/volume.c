/* libdeid: the volume type (include/deid/ct.h): allocation, geometry, rescale. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "ct/ct_int.h"

#define M "ct"
#define MAX_VOXELS ((size_t)1 << 31)

deid_status deid_volume_new(const size_t dims[3], deid_volume **out)
{
    if (!dims || !out || !dims[0] || !dims[1] || !dims[2])
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_volume_new: NULL or zero dimension");
    size_t n;
    if (!deid__mul_size(dims[0], dims[1], &n) || !deid__mul_size(n, dims[2], &n) ||
        n > MAX_VOXELS)
        return deid__fail(DEID_ERR_LIMIT, M, "volume of %zu x %zu x %zu voxels is too large",
                          dims[0], dims[1], dims[2]);
    deid_volume *v = deid__calloc(1, sizeof *v);
    int32_t *vox = deid__calloc(n, sizeof *vox);
    if (!v || !vox) {
        free(v);
        free(vox);
        return DEID_ERR_NOMEM;
    }
    v->vox = vox;
    v->n = n;
    for (int a = 0; a < 3; a++) {
        v->geom.dims[a] = dims[a];
        v->geom.spacing[a] = 1.0;
        v->geom.direction[a * 3 + a] = 1.0;
    }
    v->slope = 1.0;
    *out = v;
    return DEID_OK;
}

void deid_volume_free(deid_volume *vol)
{
    if (!vol)
        return;
    free(vol->vox);
    free(vol);
}

deid_status deid_volume_copy(const deid_volume *vol, deid_volume **out)
{
    if (!vol || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_volume_copy: NULL argument");
    deid_volume *c;
    deid_status st = deid_volume_new(vol->geom.dims, &c);
    if (st != DEID_OK)
        return st;
    int32_t *vox = c->vox;
    *c = *vol;
    c->vox = vox;
    memcpy(c->vox, vol->vox, vol->n * sizeof *vol->vox);
    *out = c;
    return DEID_OK;
}

void deid_volume_get_geometry(const deid_volume *vol, deid_volume_geometry *geom)
{
    if (vol && geom)
        *geom = vol->geom;
}

deid_status deid_volume_set_geometry(deid_volume *vol, const deid_volume_geometry *geom)
{
    if (!vol || !geom)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_volume_set_geometry: NULL argument");
    for (int a = 0; a < 3; a++) {
        if (geom->dims[a] != vol->geom.dims[a])
            return deid__fail(DEID_ERR_ARGUMENT, M,
                              "volume geometry: dimensions %zu x %zu x %zu differ from the "
                              "volume's %zu x %zu x %zu",
                              geom->dims[0], geom->dims[1], geom->dims[2], vol->geom.dims[0],
                              vol->geom.dims[1], vol->geom.dims[2]);
        if (!(geom->spacing[a] > 0) || !isfinite(geom->spacing[a]))
            return deid__fail(DEID_ERR_ARGUMENT, M, "volume geometry: spacing %d is not > 0",
                              a);
        const double *d = geom->direction + 3 * a;
        double len = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
        if (!(fabs(len - 1.0) <= 1e-3))
            return deid__fail(DEID_ERR_ARGUMENT, M,
                              "volume geometry: direction %d is not a unit vector", a);
        if (!isfinite(geom->origin[a]))
            return deid__fail(DEID_ERR_ARGUMENT, M, "volume geometry: origin is not finite");
    }
    vol->geom = *geom;
    return DEID_OK;
}

int32_t *deid_volume_voxels(deid_volume *vol)
{
    return vol ? vol->vox : NULL;
}

size_t deid_volume_count(const deid_volume *vol)
{
    return vol ? vol->n : 0;
}

void deid_volume_get_rescale(const deid_volume *vol, double *slope, double *intercept)
{
    if (slope)
        *slope = vol ? vol->slope : 1.0;
    if (intercept)
        *intercept = vol ? vol->intercept : 0.0;
}

deid_status deid_volume_set_rescale(deid_volume *vol, double slope, double intercept,
                                    int hounsfield)
{
    if (!vol || slope == 0 || !isfinite(slope) || !isfinite(intercept))
        return deid__fail(DEID_ERR_ARGUMENT, M, "volume rescale: slope must be finite and "
                                                "non-zero");
    vol->slope = slope;
    vol->intercept = intercept;
    vol->hounsfield = hounsfield != 0;
    return DEID_OK;
}

int deid_volume_is_hounsfield(const deid_volume *vol)
{
    return vol && vol->hounsfield;
}

int32_t deid__vol_stored(const deid_volume *v, double value)
{
    double s = (value - v->intercept) / v->slope;
    s = floor(s + 0.5);
    if (!(s >= (double)INT32_MIN))
        return INT32_MIN;
    if (s > (double)INT32_MAX)
        return INT32_MAX;
    return (int32_t)s;
}

deid_status deid_ct_options_init(deid_ct_options *opts, unsigned version)
{
    if (!opts || version != DEID_CT_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, M, "unknown deid_ct_options version %u (this "
                          "library knows %d)", version, DEID_CT_OPTIONS_VERSION);
    deid_ct_options d = DEID_CT_OPTIONS_INIT;
    *opts = d;
    return DEID_OK;
}
