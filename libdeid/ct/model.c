/* libdeid: the model defacing method, the way CTA-DEFACE works: a face segmentation (a
 * TorchScript model run through the libtorch shim) on a coarse patient-aligned grid, mapped
 * back to every voxel, thresholded and dilated; deid_volume_deface then replaces the voxels.
 *
 * The grid (train_face.py builds the same one for training, see its docstring): 64^3 points
 * 4 mm apart along L, P, S centred on the bounding box of the voxels above -500 HU (the
 * histogram's scale for uncalibrated volumes); values clamp((HU + 1000) / 2000, 0, 1.5),
 * trilinear, 0 (air) outside the volume. The model gives 64^3 face logits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "ct/ct_model.h"
#include "shim/torch_loader.h"

#define M "ct"
#define G DEID_CT_MODEL_GRID
#define GN ((size_t)G * G * G)

/* The 8 grid points around u (inside 0..hi on each axis; hi an integer) of a grid with row
 * stride sx and plane stride sx*sy: their linear indices and trilinear weights. */
static void trilinear(const double u[3], const double hi[3], size_t sx, size_t sy, size_t at[8],
                      double w[8])
{
    size_t i0[3], i1[3];
    double f[3];
    for (int r = 0; r < 3; r++) {
        double fl = floor(u[r]);
        f[r] = u[r] - fl;
        i0[r] = (size_t)fl;
        i1[r] = i0[r] + 1 > (size_t)hi[r] ? (size_t)hi[r] : i0[r] + 1;
    }
    for (int q = 0; q < 8; q++) {
        size_t x = q & 1 ? i1[0] : i0[0], y = q & 2 ? i1[1] : i0[1], z = q & 4 ? i1[2] : i0[2];
        at[q] = x + sx * (y + sy * z);
        w[q] = (q & 1 ? f[0] : 1 - f[0]) * (q & 2 ? f[1] : 1 - f[1]) * (q & 4 ? f[2] : 1 - f[2]);
    }
}

/* Modality value -> normalised grid value. */
typedef struct norm_map {
    double scale, shift; /* HU = value * scale + shift */
} norm_map;

static norm_map make_norm(const deid_volume *v, const deid__ct_levels *lv)
{
    norm_map n = {1.0, 0.0};
    if (!v->hounsfield && lv->tissue != lv->air) {
        n.scale = 1030.0 / (lv->tissue - lv->air);
        n.shift = -1000.0 - lv->air * n.scale;
    }
    return n;
}

static inline double norm_of(const deid_volume *v, norm_map n, int32_t s)
{
    double hu = deid__vol_value(v, s) * n.scale + n.shift;
    double x = (hu + 1000.0) / 2000.0;
    return x < 0 ? 0 : x > 1.5 ? 1.5 : x;
}

/* M (columns spacing[d] * direction[d]) and its inverse; -1 when singular. */
static int affine(const deid_volume *v, double m[3][3], double inv[3][3])
{
    const deid_volume_geometry *g = &v->geom;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            m[r][c] = g->spacing[c] * g->direction[3 * c + r];
    double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                 m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                 m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if (!(fabs(det) > 1e-12))
        return -1;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) {
            int r1 = (c + 1) % 3, r2 = (c + 2) % 3, c1 = (r + 1) % 3, c2 = (r + 2) % 3;
            inv[r][c] = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det;
        }
    return 0;
}

/* ---- body box ---------------------------------------------------------------------------- */

typedef struct box_ctx {
    const deid_volume *v;
    deid__above above;
    size_t *lo, *hi; /* per slice k: i min/max, j min/max (4 each... see below) */
} box_ctx;

/* Per slice k: lo[2k], lo[2k+1] = smallest i, j above the threshold; hi[...] the largest;
 * lo[2k] = SIZE_MAX when none. */
static void box_range(void *p, size_t k0, size_t k1)
{
    box_ctx *c = p;
    size_t nx = c->v->geom.dims[0], ny = c->v->geom.dims[1];
    for (size_t k = k0; k < k1; k++) {
        size_t imin = (size_t)-1, jmin = (size_t)-1, imax = 0, jmax = 0;
        const int32_t *s = c->v->vox + k * nx * ny;
        for (size_t j = 0; j < ny; j++, s += nx) {
            size_t a = (size_t)-1, b = 0;
            for (size_t i = 0; i < nx; i++)
                if (deid__is_above(c->above, s[i])) {
                    if (a == (size_t)-1)
                        a = i;
                    b = i;
                }
            if (a == (size_t)-1)
                continue;
            if (a < imin)
                imin = a;
            if (b > imax)
                imax = b;
            if (jmin == (size_t)-1)
                jmin = j;
            jmax = j;
        }
        c->lo[2 * k] = imin;
        c->lo[2 * k + 1] = jmin;
        c->hi[2 * k] = imax;
        c->hi[2 * k + 1] = jmax;
    }
}

/* ---- canonical input ---------------------------------------------------------------------- */

typedef struct in_ctx {
    const deid_volume *v;
    norm_map nm;
    double inv[3][3], centre[3];
    float *grid;
} in_ctx;

static void input_range(void *p, size_t c0, size_t c1)
{
    in_ctx *c = p;
    const deid_volume_geometry *g = &c->v->geom;
    size_t nx = g->dims[0], ny = g->dims[1];
    double n[3] = {(double)g->dims[0] - 1, (double)g->dims[1] - 1, (double)g->dims[2] - 1};
    for (size_t zc = c0; zc < c1; zc++)
        for (size_t yc = 0; yc < G; yc++)
            for (size_t xc = 0; xc < G; xc++) {
                double pt[3] = {c->centre[0] + ((double)xc - 31.5) * DEID_CT_MODEL_STEP_MM,
                                c->centre[1] + ((double)yc - 31.5) * DEID_CT_MODEL_STEP_MM,
                                c->centre[2] + ((double)zc - 31.5) * DEID_CT_MODEL_STEP_MM};
                double d[3] = {pt[0] - g->origin[0], pt[1] - g->origin[1], pt[2] - g->origin[2]};
                double u[3];
                int inside = 1;
                for (int r = 0; r < 3; r++) {
                    u[r] = c->inv[r][0] * d[0] + c->inv[r][1] * d[1] + c->inv[r][2] * d[2];
                    if (!(u[r] >= 0 && u[r] <= n[r]))
                        inside = 0;
                }
                double acc = 0;
                if (inside) {
                    size_t at[8];
                    double w[8];
                    trilinear(u, n, nx, ny, at, w);
                    for (int q = 0; q < 8; q++)
                        acc += w[q] * norm_of(c->v, c->nm, c->v->vox[at[q]]);
                }
                c->grid[xc + G * (yc + G * zc)] = (float)acc;
            }
}

deid_status deid__ct_model_input(const deid_volume *v, const deid__ct_levels *lv,
                                 unsigned threads, float *grid, double centre[3])
{
    in_ctx c;
    memset(&c, 0, sizeof c);
    double m[3][3];
    if (affine(v, m, c.inv) != 0)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "model: the volume's geometry is singular");
    c.v = v;
    c.nm = make_norm(v, lv);
    c.grid = grid;
    double body_t = v->hounsfield ? DEID_CT_MODEL_BODY_HU
                                  : deid__ct_from_hu(v, lv, DEID_CT_MODEL_BODY_HU);
    size_t nz = v->geom.dims[2];
    size_t *lo = deid__malloc(4 * nz * sizeof *lo);
    if (!lo)
        return deid__fail(DEID_ERR_NOMEM, M, "model: out of memory");
    box_ctx b = {v, deid__above_make(v, body_t), lo, lo + 2 * nz};
    deid__ct_parallel(nz, threads, box_range, &b);
    double bl[3] = {0, 0, 0}, bh[3] = {(double)v->geom.dims[0] - 1,
                                       (double)v->geom.dims[1] - 1, (double)nz - 1};
    size_t imin = (size_t)-1, jmin = (size_t)-1, kmin = (size_t)-1, imax = 0, jmax = 0,
           kmax = 0;
    for (size_t k = 0; k < nz; k++) {
        if (b.lo[2 * k] == (size_t)-1)
            continue;
        if (kmin == (size_t)-1)
            kmin = k;
        kmax = k;
        imin = b.lo[2 * k] < imin ? b.lo[2 * k] : imin;
        jmin = b.lo[2 * k + 1] < jmin ? b.lo[2 * k + 1] : jmin;
        imax = b.hi[2 * k] > imax ? b.hi[2 * k] : imax;
        jmax = b.hi[2 * k + 1] > jmax ? b.hi[2 * k + 1] : jmax;
    }
    free(lo);
    if (kmin != (size_t)-1) {
        bl[0] = (double)imin, bl[1] = (double)jmin, bl[2] = (double)kmin;
        bh[0] = (double)imax, bh[1] = (double)jmax, bh[2] = (double)kmax;
    }
    double pmin[3] = {INFINITY, INFINITY, INFINITY}, pmax[3] = {-INFINITY, -INFINITY, -INFINITY};
    for (int q = 0; q < 8; q++) {
        double idx[3] = {q & 1 ? bh[0] : bl[0], q & 2 ? bh[1] : bl[1], q & 4 ? bh[2] : bl[2]};
        for (int r = 0; r < 3; r++) {
            double p = v->geom.origin[r] + m[r][0] * idx[0] + m[r][1] * idx[1] + m[r][2] * idx[2];
            pmin[r] = p < pmin[r] ? p : pmin[r];
            pmax[r] = p > pmax[r] ? p : pmax[r];
        }
    }
    for (int r = 0; r < 3; r++)
        c.centre[r] = centre[r] = 0.5 * (pmin[r] + pmax[r]);
    deid__ct_parallel(G, threads, input_range, &c);
    return DEID_OK;
}

/* ---- back to the voxels ------------------------------------------------------------------- */

typedef struct out_ctx {
    const deid_volume *v;
    const float *prob;  /* GN probabilities */
    double a[3][3];     /* canonical index = a * (i, j, k) + a0 */
    double a0[3];
    deid__bits *marked;
} out_ctx;

static void mark_range(void *p, size_t k0, size_t k1)
{
    out_ctx *c = p;
    const size_t nx = c->v->geom.dims[0], ny = c->v->geom.dims[1];
    for (size_t k = k0; k < k1; k++)
        for (size_t j = 0; j < ny; j++) {
            uint64_t *row = deid__bits_row(c->marked, j, k);
            double b[3];
            for (int r = 0; r < 3; r++)
                b[r] = c->a0[r] + c->a[r][1] * (double)j + c->a[r][2] * (double)k;
            for (size_t i = 0; i < nx; i++) {
                double u[3];
                int inside = 1;
                for (int r = 0; r < 3; r++) {
                    u[r] = b[r] + c->a[r][0] * (double)i;
                    if (!(u[r] >= 0 && u[r] <= G - 1))
                        inside = 0;
                }
                if (!inside)
                    continue;
                static const double last[3] = {G - 1, G - 1, G - 1};
                size_t at[8];
                double w[8], acc = 0;
                trilinear(u, last, G, G, at, w);
                for (int q = 0; q < 8; q++)
                    acc += w[q] * c->prob[at[q]];
                if (acc > 0.5)
                    row[i >> 6] |= (uint64_t)1 << (i & 63);
            }
        }
}

deid_status deid__ct_model_mark(const deid_volume *v, const deid_deface_options *o,
                                const deid__ct_levels *lv, unsigned threads, deid__bits *marked,
                                char *device_out, size_t size)
{
    if (!o->model_path)
        return deid__fail(DEID_ERR_ARGUMENT, M, "model: no model path");
    if (!deid__torch_available())
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "model: this build has no libtorch support (libdeid_torch.so not "
                          "found or not loadable)");
    deid__torch_model *model = NULL;
    deid_status st = deid__torch_model_load(o->model_path, o->device, &model);
    if (st != DEID_OK)
        return st;
    size_t mc = 0, mh = 0, mw = 0;
    deid__torch_model_input(model, &mc, &mh, &mw);
    if (mc != G || mh != G || mw != G) {
        deid__torch_model_free(model);
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "model: the model takes %zu x %zu x %zu, not the %d^3 face grid", mc,
                          mh, mw, G);
    }
    if (device_out && size)
        snprintf(device_out, size, "%s", deid__torch_model_device(model));
    float *grid = deid__malloc(2 * GN * sizeof *grid);
    if (!grid) {
        deid__torch_model_free(model);
        return deid__fail(DEID_ERR_NOMEM, M, "model: out of memory");
    }
    float *prob = grid + GN;
    double centre[3];
    st = deid__ct_model_input(v, lv, threads, grid, centre);
    if (st == DEID_OK)
        st = deid__torch_model_run_map(model, grid, G, G, G, prob, GN);
    deid__torch_model_free(model);
    if (st == DEID_OK)
        st = deid__bits_new(marked, v->geom.dims);
    if (st != DEID_OK) {
        free(grid);
        return st;
    }
    for (size_t n = 0; n < GN; n++)
        prob[n] = (float)(1.0 / (1.0 + exp(-(double)prob[n])));

    out_ctx c;
    memset(&c, 0, sizeof c);
    double m[3][3], inv[3][3];
    affine(v, m, inv); /* not singular: deid__ct_model_input checked */
    for (int r = 0; r < 3; r++) {
        for (int q = 0; q < 3; q++)
            c.a[r][q] = m[r][q] / DEID_CT_MODEL_STEP_MM;
        c.a0[r] = (v->geom.origin[r] - centre[r]) / DEID_CT_MODEL_STEP_MM + 31.5;
    }
    c.v = v;
    c.prob = prob;
    c.marked = marked;
    deid__ct_parallel(v->geom.dims[2], threads, mark_range, &c);
    free(grid);
    const unsigned r[3] = {1, 1, 1};
    st = deid__bits_dilate(marked, r, threads);
    if (st != DEID_OK)
        deid__bits_free(marked);
    return st;
}
