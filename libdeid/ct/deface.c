/* libdeid: face removal from CT / CBCT volumes (include/deid/ct.h).
 *
 * drown (face_deid_ct's drown_volume): body = the largest 6-connected component of the voxels
 * above the body threshold; outside = the voxels not in the body that reach the border of their
 * slice (slices across the superior axis, as face_deid_ct works slice by slice, so air inside
 * the head that only opens to the outside through the nostrils stays); the outside dilated by
 * the shell (a box of half-width shell_mm along each axis, i.e. Chebyshev distance, 2 voxels by
 * default: face_deid_ct's 3 x 3 x 3 element twice) is replaced.
 *
 * face: rays along the anterior axis from the front: from the skin (first body voxel) inwards
 * to the first bone voxel (never further: the skull and what it holds cannot be reached) and at
 * most FACE_DEPTH_MM, over the face's levels (rule in face_levels), plus a band of the air
 * around the marked tissue (air only: below the body threshold, so never brain); with `ears`
 * the same along the left-right axis on the ears' levels.
 *
 * model (CTA-DEFACE's way): a face-segmentation model marks the voxels, see ct/model.c; they
 * are replaced here like the other methods' (air by default). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "ct/ct_int.h"
#include "ct/morph.h"
#include "ct/ct_model.h"
#include "shim/torch_loader.h"

#define M "ct"

#define DROWN_BODY_HU -800.0
#define FACE_BODY_HU -500.0
#define FACE_BONE_HU 400.0    /* cortical bone 900+, diploe 500+; soft tissue next to bone
                                 blurs to 300-400 and belongs to the face */
#define TISSUE_LO_HU -150.0
#define TISSUE_HI_HU 50.0
#define FACE_DEPTH_MM 30.0    /* deepest voxel removed behind the skin (nose, eyes, lips) */
#define EAR_DEPTH_MM 30.0
#define PROBE_MM 100.0        /* bone search for the depth profile */
#define DEEP_MM 12.0          /* soft tissue thicker than this in front of the bone: face */
#define AIR_BAND 2u           /* voxels of air around the removed tissue */
#define SURFACE_MM 7.5        /* half-width of the window of the local skin surface */

deid_status deid_deface_options_init(deid_deface_options *opts, unsigned version)
{
    if (!opts || version != DEID_DEFACE_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "deid_deface_options_init: NULL options or unknown version %u",
                          version);
    memset(opts, 0, sizeof *opts);
    opts->version = DEID_DEFACE_OPTIONS_VERSION;
    opts->method = DEID_DEFACE_FACE;
    opts->replacer = -1;
    opts->body_threshold = NAN;
    return DEID_OK;
}

static deid_status check_options(const deid_deface_options *o)
{
    if (o->version != DEID_DEFACE_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deface options: unknown version %u",
                          o->version);
    if (o->method != DEID_DEFACE_FACE && o->method != DEID_DEFACE_DROWN &&
        o->method != DEID_DEFACE_MODEL)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deface options: unknown method %d", o->method);
    if (o->method == DEID_DEFACE_MODEL && (!o->model_path || !o->model_path[0]))
        return deid__fail(DEID_ERR_ARGUMENT, M, "deface options: the model method needs a "
                                                "model path");
    if (o->device && strcmp(o->device, "cpu") != 0 && strcmp(o->device, "mps") != 0 &&
        strncmp(o->device, "cuda", 4) != 0)
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "deface options: unknown device (cpu, cuda, cuda:N or mps)");
    if (o->replacer < -1 || o->replacer > DEID_REPLACE_VALUE)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deface options: unknown replacer %d",
                          o->replacer);
    if (o->replacer == DEID_REPLACE_VALUE && !isfinite(o->value))
        return deid__fail(DEID_ERR_ARGUMENT, M, "deface options: value is not finite");
    if (!isnan(o->body_threshold) && !isfinite(o->body_threshold))
        return deid__fail(DEID_ERR_ARGUMENT, M, "deface options: body_threshold is infinite");
    if (!(o->shell_mm >= 0 && o->shell_mm <= 200))
        return deid__fail(DEID_ERR_ARGUMENT, M, "deface options: shell_mm must be 0 to 200");
    return DEID_OK;
}

/* ---- replacing ------------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

typedef struct repl_ctx {
    deid_volume *v;
    const deid__bits *marked;
    uint8_t *mask;
    int random;
    int32_t lo, hi;    /* stored values: lo..hi at random, or lo */
    uint64_t key;
    size_t altered;    /* atomic */
} repl_ctx;

/* The random value of voxel `idx` depends on the seed and the index only, so the output is the
 * same for any number of threads. */
static void repl_range(void *p, size_t k0, size_t k1)
{
    repl_ctx *c = p;
    const deid__bits *b = c->marked;
    uint64_t span = (uint64_t)((int64_t)c->hi - c->lo) + 1;
    size_t altered = 0;
    for (size_t k = k0; k < k1; k++)
        for (size_t j = 0; j < b->ny; j++) {
            size_t base = (j + b->ny * k) * b->nx;
            const uint64_t *row = deid__bits_row(b, j, k);
            if (c->mask)
                memset(c->mask + base, 0, b->nx);
            for (size_t w = 0; w < b->words; w++)
                for (uint64_t x = row[w]; x; x &= x - 1) {
                    size_t idx = base + w * 64 + (size_t)__builtin_ctzll(x);
                    int32_t nv = c->lo;
                    if (c->random)
                        nv = (int32_t)(c->lo + (int64_t)(mix64(c->key ^ (idx * 0xD1B54A32D192ED03ull)) %
                                                         span));
                    if (c->v->vox[idx] != nv) {
                        c->v->vox[idx] = nv;
                        altered++;
                        if (c->mask)
                            c->mask[idx] = 1;
                    }
                }
        }
    __atomic_fetch_add(&c->altered, altered, __ATOMIC_RELAXED);
}

static size_t replace(deid_volume *v, const deid__bits *marked, uint8_t *mask, int replacer,
                      const deid_deface_options *o, const deid__ct_levels *lv, unsigned threads)
{
    repl_ctx c;
    memset(&c, 0, sizeof c);
    c.v = v;
    c.marked = marked;
    c.mask = mask;
    if (replacer == DEID_REPLACE_TISSUE) {
        int32_t a = deid__vol_stored(v, deid__ct_from_hu(v, lv, TISSUE_LO_HU));
        int32_t b = deid__vol_stored(v, deid__ct_from_hu(v, lv, TISSUE_HI_HU));
        c.lo = a < b ? a : b;
        c.hi = a < b ? b : a;
        c.random = 1;
        c.key = mix64(o->seed ^ 0x6465696463744455ull);
    } else {
        c.lo = c.hi = deid__vol_stored(v, replacer == DEID_REPLACE_AIR ? lv->air : o->value);
    }
    deid__ct_parallel(v->geom.dims[2], threads, repl_range, &c);
    return c.altered;
}

/* ---- body ------------------------------------------------------------------------------------ */

/* The largest 6-connected component above `threshold` into *body (allocated). */
static deid_status body_mask(const deid_volume *v, double threshold, unsigned threads,
                             deid__bits *body, size_t *count)
{
    deid_status st = deid__bits_new(body, v->geom.dims);
    if (st != DEID_OK)
        return st;
    deid__bits_threshold(v, deid__above_make(v, threshold), body, threads);
    st = deid__bits_largest(body, DEID_CONN_J | DEID_CONN_K, count, threads);
    if (st != DEID_OK)
        deid__bits_free(body);
    return st;
}

/* ---- drown ----------------------------------------------------------------------------------- */

static deid_status drown(const deid_volume *v, const deid_deface_options *o, const int axis[3],
                         int axes_ok, double body_t, unsigned threads, deid__bits *marked)
{
    deid__bits body;
    size_t count;
    deid_status st = body_mask(v, body_t, threads, &body, &count);
    if (st != DEID_OK)
        return st;
    if (count == 0) {
        deid__bits_free(&body);
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "drown: no voxel above the body threshold");
    }
    /* slices across the superior axis: k for axial, j for coronal and sagittal series; a
     * volume whose superior axis is i (or unknown) is filled in 3-D */
    unsigned conn = DEID_CONN_J | DEID_CONN_K;
    if (axes_ok && axis[2] == 2)
        conn = DEID_CONN_J;
    else if (axes_ok && axis[2] == 1)
        conn = DEID_CONN_K;
    st = deid__bits_new(marked, v->geom.dims);
    if (st == DEID_OK)
        st = deid__bits_outside(&body, conn, marked, threads);
    deid__bits_free(&body);
    if (st != DEID_OK) {
        deid__bits_free(marked);
        return st;
    }
    unsigned r[3];
    for (int a = 0; a < 3; a++)
        r[a] = o->shell_mm > 0 ? (unsigned)floor(o->shell_mm / v->geom.spacing[a] + 0.5) : 2u;
    st = deid__bits_dilate(marked, r, threads);
    if (st != DEID_OK)
        deid__bits_free(marked);
    return st;
}

/* ---- face ------------------------------------------------------------------------------------ */

/* Rays in face coordinates: t along the anterior axis from the front (0 = most anterior
 * index), u along the superior axis from the top (0 = most superior), l along left-right. */
typedef struct face_ctx {
    const deid_volume *v;
    const deid__bits *body;
    deid__bits *marked;
    deid__above bone;
    int ax[3];            /* volume axis of A (t), S (u), L (l) */
    int flip[3];          /* 1 when t / u / l run against the volume index */
    size_t n[3];          /* extents along t, u, l */
    double sp[3];         /* spacing along t, u, l */
    int32_t *E, *H, *X;   /* per ray (u * n[2] + l): entry, bone hit, exit; -1 none */
    int32_t *S;           /* per ray: the most anterior entry within SURFACE_MM (the local
                             skin surface, bridging nostrils and the mouth) */
    size_t probe, cap;    /* voxels along t */
    size_t u0, u1;        /* face levels [u0, u1] */
    int32_t *mid;         /* per level: middle of the body along t */
    /* ears */
    size_t ear_u0, ear_u1, ear_cap, ear_half;
} face_ctx;

static inline void face_coord(const face_ctx *f, size_t t, size_t u, size_t l, size_t c[3])
{
    c[f->ax[0]] = f->flip[0] ? f->n[0] - 1 - t : t;
    c[f->ax[1]] = f->flip[1] ? f->n[1] - 1 - u : u;
    c[f->ax[2]] = f->flip[2] ? f->n[2] - 1 - l : l;
}

static inline int in_body(const face_ctx *f, const size_t c[3])
{
    return deid__bits_get(f->body, c[0], c[1], c[2]);
}

static inline int is_bone(const face_ctx *f, const size_t c[3])
{
    const deid_volume_geometry *g = &f->v->geom;
    return deid__is_above(f->bone, f->v->vox[c[0] + g->dims[0] * (c[1] + g->dims[1] * c[2])]);
}

static void probe_range(void *p, size_t u0, size_t u1)
{
    face_ctx *f = p;
    size_t c[3];
    for (size_t u = u0; u < u1; u++)
        for (size_t l = 0; l < f->n[2]; l++) {
            size_t r = u * f->n[2] + l;
            int32_t e = -1, h = -1, x = -1;
            for (size_t t = 0; t < f->n[0]; t++) {
                face_coord(f, t, u, l, c);
                if (in_body(f, c)) {
                    e = (int32_t)t;
                    break;
                }
            }
            if (e >= 0) {
                size_t end = (size_t)e + f->probe < f->n[0] ? (size_t)e + f->probe : f->n[0];
                for (size_t t = (size_t)e; t < end; t++) {
                    face_coord(f, t, u, l, c);
                    if (is_bone(f, c)) {
                        h = (int32_t)t;
                        break;
                    }
                }
                for (size_t t = f->n[0]; t-- > (size_t)e;) {
                    face_coord(f, t, u, l, c);
                    if (in_body(f, c)) {
                        x = (int32_t)t;
                        break;
                    }
                }
            }
            f->E[r] = e;
            f->H[r] = h;
            f->X[r] = x;
        }
}

/* S = E's minimum over a window of +-SURFACE_MM along u and l (separable); rays without an
 * entry count as +infinity. */
static void local_surface(face_ctx *f, int32_t *tmp)
{
    size_t nu = f->n[1], nl = f->n[2];
    size_t hu = (size_t)(SURFACE_MM / f->sp[1] + 0.5), hl = (size_t)(SURFACE_MM / f->sp[2] + 0.5);
    for (size_t u = 0; u < nu; u++)
        for (size_t l = 0; l < nl; l++) {
            int32_t m = INT32_MAX;
            size_t a = l > hl ? l - hl : 0, b = l + hl < nl ? l + hl : nl - 1;
            for (size_t q = a; q <= b; q++) {
                int32_t e = f->E[u * nl + q];
                if (e >= 0 && e < m)
                    m = e;
            }
            tmp[u * nl + l] = m;
        }
    for (size_t u = 0; u < nu; u++)
        for (size_t l = 0; l < nl; l++) {
            int32_t m = INT32_MAX;
            size_t a = u > hu ? u - hu : 0, b = u + hu < nu ? u + hu : nu - 1;
            for (size_t q = a; q <= b; q++)
                m = tmp[q * nl + l] < m ? tmp[q * nl + l] : m;
            f->S[u * nl + l] = m;
        }
}

/* Per level: body extent along l and t, and the share of the central rays (middle half of the
 * width, entering in the front half) whose soft tissue in front of the bone is deeper than
 * DEEP_MM (the face) rather than skin over bone (forehead, vertex excepted). */
typedef struct level {
    int body;
    double width_mm;
    int32_t front, back, cfront; /* cfront: most anterior entry of the central rays */
    double deep;
} level;

static void level_stats(const face_ctx *f, size_t u, level *lv)
{
    memset(lv, 0, sizeof *lv);
    size_t nl = f->n[2], lmin = nl, lmax = 0;
    int32_t front = INT32_MAX, back = -1;
    for (size_t l = 0; l < nl; l++) {
        size_t r = u * nl + l;
        if (f->E[r] < 0)
            continue;
        lmin = l < lmin ? l : lmin;
        lmax = l;
        front = f->E[r] < front ? f->E[r] : front;
        back = f->X[r] > back ? f->X[r] : back;
    }
    if (lmin > lmax)
        return;
    lv->body = 1;
    lv->width_mm = (double)(lmax - lmin + 1) * f->sp[2];
    lv->front = front;
    lv->back = back;
    int32_t mid = (front + back) / 2;
    size_t w = lmax - lmin + 1, n = 0, deep = 0;
    lv->cfront = INT32_MAX;
    for (size_t l = lmin + w / 4; l <= lmax - w / 4; l++) {
        size_t r = u * nl + l;
        if (f->E[r] < 0 || f->E[r] >= mid)
            continue;
        n++;
        lv->cfront = f->E[r] < lv->cfront ? f->E[r] : lv->cfront;
        if (f->H[r] < 0 || (double)(f->H[r] - f->E[r]) * f->sp[0] >= DEEP_MM)
            deep++;
    }
    lv->deep = n ? (double)deep / (double)n : 0;
}

/* First level u in [from, to) where pred holds for `run` consecutive levels; `to` when none. */
static size_t find_run(const level *lv, size_t from, size_t to, size_t run, int want_deep)
{
    size_t count = 0;
    for (size_t u = from; u < to; u++) {
        int ok = lv[u].body && (want_deep ? lv[u].deep >= 0.35 : lv[u].deep < 0.25);
        count = ok ? count + 1 : 0;
        if (count >= run)
            return u + 1 - run;
    }
    return to;
}

/* The face's levels. From the top of the head down: the vertex (rays graze the scalp, deep),
 * then the forehead (skin over the frontal bone: few deep rays), then the orbits, nose and
 * mouth (eyes and nose in front of the bone: many deep rays). The face starts where the deep
 * rays come back below the forehead; 15 mm above that (the eyebrows) is the top of what is
 * removed. It ends at the neck: the first level whose front is 40 mm behind the most anterior
 * point of the face (nose tip; the chin is 10-20 mm behind it, the neck 50 or more) at least
 * 45 mm below the face start, at most 165 mm below it (the chin). Without a
 * vertex in the volume (top slice cut through a wide head) or without the forehead / face
 * sequence, everything from the top down to the neck is removed and face_found is 0. */
static int face_levels(face_ctx *f, const level *lv, size_t *top_out)
{
    size_t nu = f->n[1];
    double su = f->sp[1];
    size_t top = 0;
    while (top < nu && !(lv[top].body && lv[top].width_mm >= 20.0))
        top++;
    *top_out = top;
    if (top == nu)
        return -1;
    size_t run = (size_t)ceil(5.0 / su);
    run = run < 1 ? 1 : run;
    int found = 0;
    size_t start = top;
    int vertex = lv[top].width_mm < 90.0 || top > 0;
    if (vertex) {
        size_t lim = top + (size_t)(90.0 / su);
        lim = lim < nu ? lim : nu;
        size_t fh = find_run(lv, top, lim, run, 0);
        if (fh < lim) {
            size_t lim2 = top + (size_t)(160.0 / su);
            lim2 = lim2 < nu ? lim2 : nu;
            size_t eye = find_run(lv, fh, lim2, run, 1);
            if (eye < lim2) {
                found = 1;
                size_t up = (size_t)(15.0 / su + 0.5);
                start = eye > top + up ? eye - up : top;
            }
        }
    }
    size_t bottom = nu - 1;
    size_t from = start + (size_t)((found ? 45.0 : 30.0) / su);
    size_t lim = found ? start + (size_t)(165.0 / su) : nu;
    int32_t most = INT32_MAX;
    for (size_t u = start; u < nu && u <= lim; u++) {
        if (!lv[u].body || lv[u].cfront == INT32_MAX)
            continue;
        most = lv[u].cfront < most ? lv[u].cfront : most;
        if (u >= from && (double)(lv[u].cfront - most) * f->sp[0] >= 40.0) {
            bottom = u;
            break;
        }
        bottom = u;
    }
    f->u0 = start;
    f->u1 = bottom;
    return found;
}

static void mark_range(void *p, size_t u0, size_t u1)
{
    face_ctx *f = p;
    size_t c[3];
    for (size_t u = u0; u < u1; u++) {
        if (u < f->u0 || u > f->u1)
            continue;
        for (size_t l = 0; l < f->n[2]; l++) {
            size_t r = u * f->n[2] + l;
            int32_t e = f->E[r];
            if (e < 0 || e >= f->mid[u])
                continue;
            /* a ray through an opening (nostril, parted lips) first meets the body deep inside
             * (nasal cavity, pharynx): only near the local skin surface is it face */
            size_t s = (size_t)f->S[r];
            if ((size_t)e > s + f->cap)
                continue;
            size_t end = (size_t)e + f->cap; /* exclusive */
            if (end > s + f->cap + f->cap / 2)
                end = s + f->cap + f->cap / 2;
            if (f->H[r] >= 0 && (size_t)f->H[r] < end)
                end = (size_t)f->H[r];
            end = end < f->n[0] ? end : f->n[0];
            for (size_t t = (size_t)e; t < end; t++) {
                face_coord(f, t, u, l, c);
                deid__bits_set(f->marked, c[0], c[1], c[2]);
            }
        }
    }
}

/* Ears: rays along l from both sides, on the ears' levels, within ear_half of the head's
 * middle along t; skin to the first bone, at most EAR_DEPTH_MM. */
static void ear_range(void *p, size_t u0, size_t u1)
{
    face_ctx *f = p;
    size_t c[3];
    for (size_t u = u0; u < u1; u++) {
        if (u < f->ear_u0 || u > f->ear_u1 || f->mid[u] < 0)
            continue;
        size_t m = (size_t)f->mid[u];
        size_t t0 = m > f->ear_half ? m - f->ear_half : 0;
        size_t t1 = m + f->ear_half < f->n[0] ? m + f->ear_half : f->n[0] - 1;
        for (size_t t = t0; t <= t1; t++)
            for (int side = 0; side < 2; side++) {
                size_t nl = f->n[2], e = nl;
                for (size_t q = 0; q < nl; q++) {
                    face_coord(f, t, u, side ? nl - 1 - q : q, c);
                    if (in_body(f, c)) {
                        e = q;
                        break;
                    }
                }
                if (e == nl)
                    continue;
                for (size_t q = e; q < nl && q < e + f->ear_cap; q++) {
                    face_coord(f, t, u, side ? nl - 1 - q : q, c);
                    if (is_bone(f, c))
                        break;
                    deid__bits_set(f->marked, c[0], c[1], c[2]);
                }
            }
    }
}

typedef struct face_result {
    int found;
    double top_mm, bottom_mm; /* face levels below the head's top */
} face_result;

static deid_status face(const deid_volume *v, const deid_deface_options *o, const int axis[3],
                        const int sign[3], double body_t, double bone_t, unsigned threads,
                        deid__bits *marked, face_result *res)
{
    face_ctx f;
    memset(&f, 0, sizeof f);
    f.v = v;
    f.bone = deid__above_make(v, bone_t);
    /* t runs posterior (anterior is -y: the front is the high index when the index goes
     * anterior, i.e. sign[1] < 0); u runs inferior; l runs along the volume index */
    f.ax[0] = axis[1];
    f.flip[0] = sign[1] < 0;
    f.ax[1] = axis[2];
    f.flip[1] = sign[2] > 0;
    f.ax[2] = axis[0];
    f.flip[2] = 0;
    for (int a = 0; a < 3; a++) {
        f.n[a] = v->geom.dims[f.ax[a]];
        f.sp[a] = v->geom.spacing[f.ax[a]];
    }
    f.probe = (size_t)ceil(PROBE_MM / f.sp[0]);
    f.cap = (size_t)ceil(FACE_DEPTH_MM / f.sp[0]);

    deid__bits body;
    size_t count;
    deid_status st = body_mask(v, body_t, threads, &body, &count);
    if (st != DEID_OK)
        return st;
    f.body = &body;
    size_t rays = f.n[1] * f.n[2];
    f.E = deid__malloc(rays * sizeof *f.E);
    f.H = deid__malloc(rays * sizeof *f.H);
    f.X = deid__malloc(rays * sizeof *f.X);
    f.S = deid__malloc(rays * sizeof *f.S);
    int32_t *tmp = deid__malloc(rays * sizeof *tmp);
    f.mid = deid__malloc(f.n[1] * sizeof *f.mid);
    level *lv = deid__calloc(f.n[1], sizeof *lv);
    if (!f.E || !f.H || !f.X || !f.S || !tmp || !f.mid || !lv) {
        st = DEID_ERR_NOMEM;
        goto done;
    }
    if (count < 1000) {
        st = deid__fail(DEID_ERR_UNSUPPORTED, M, "face: no head above the body threshold");
        goto done;
    }
    deid__ct_parallel(f.n[1], threads, probe_range, &f);
    size_t bone_rays = 0;
    for (size_t r = 0; r < rays; r++)
        bone_rays += f.H[r] >= 0;
    if (bone_rays == 0) {
        st = deid__fail(DEID_ERR_UNSUPPORTED, M,
                        "face: no bone in front of the head (bone threshold too high?)");
        goto done;
    }
    local_surface(&f, tmp);
    for (size_t u = 0; u < f.n[1]; u++) {
        level_stats(&f, u, &lv[u]);
        f.mid[u] = lv[u].body ? (lv[u].front + lv[u].back) / 2 : -1;
    }
    size_t top;
    int found = face_levels(&f, lv, &top);
    if (found < 0) {
        st = deid__fail(DEID_ERR_UNSUPPORTED, M, "face: no head found");
        goto done;
    }
    res->found = found;
    res->top_mm = (double)(f.u0 - top) * f.sp[1];
    res->bottom_mm = (double)(f.u1 - top) * f.sp[1];
    st = deid__bits_new(marked, v->geom.dims);
    if (st != DEID_OK)
        goto done;
    f.marked = marked;
    deid__ct_parallel(f.n[1], threads, mark_range, &f);
    if (o->ears) {
        /* ears: from about the eyebrows to 70 mm below them (the auricle's extent) */
        f.ear_u0 = f.u0;
        f.ear_u1 = f.u0 + (size_t)(85.0 / f.sp[1]);
        f.ear_cap = (size_t)ceil(EAR_DEPTH_MM / f.sp[2]);
        f.ear_half = (size_t)ceil(45.0 / f.sp[0]);
        deid__ct_parallel(f.n[1], threads, ear_range, &f);
    }
    /* the air around the removed tissue: partial-volume voxels of the face's outline below the
     * body threshold would still draw it in a render with a lower threshold */
    deid__bits band;
    st = deid__bits_new(&band, v->geom.dims);
    if (st == DEID_OK) {
        size_t words = marked->ny * marked->nz * marked->words;
        memcpy(band.w, marked->w, words * sizeof *band.w);
        unsigned r[3] = {AIR_BAND, AIR_BAND, AIR_BAND};
        st = deid__bits_dilate(&band, r, threads);
        if (st == DEID_OK)
            for (size_t x = 0; x < words; x++)
                marked->w[x] |= band.w[x] & ~body.w[x];
        deid__bits_free(&band);
    }
    if (st != DEID_OK)
        deid__bits_free(marked);
done:
    free(f.E);
    free(f.H);
    free(f.X);
    free(f.S);
    free(tmp);
    free(f.mid);
    free(lv);
    deid__bits_free(&body);
    return st;
}

/* ---- entry point ----------------------------------------------------------------------------- */

static const char *replacer_name(int r)
{
    return r == DEID_REPLACE_TISSUE ? "tissue" : r == DEID_REPLACE_AIR ? "air" : "value";
}

deid_status deid_volume_deface(deid_volume *vol, const deid_deface_options *opts, uint8_t *mask,
                               deid_deface_report *report)
{
    double t0 = deid__now();
    deid_deface_options defaults;
    deid_deface_options_init(&defaults, DEID_DEFACE_OPTIONS_VERSION);
    const deid_deface_options *o = opts ? opts : &defaults;
    if (!vol)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_volume_deface: NULL volume");
    deid_status st = check_options(o);
    if (st != DEID_OK)
        return st;
    unsigned threads = deid__ct_threads(o->threads);
    int replacer = o->replacer >= 0 ? o->replacer
                   : o->method == DEID_DEFACE_DROWN ? DEID_REPLACE_TISSUE
                                                    : DEID_REPLACE_AIR;
    if (o->method == DEID_DEFACE_MODEL && !deid__torch_available())
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "model: this build has no libtorch support (libdeid_torch.so not "
                          "found or not loadable)");
    int axis[3], sign[3];
    int axes_ok = deid__ct_axes(vol, axis, sign) == 0;
    if (o->method == DEID_DEFACE_FACE && !axes_ok)
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "face: the geometry does not tell the patient's orientation");

    deid__ct_levels lv;
    /* an uncalibrated volume needs its histogram unless every level is given */
    if (vol->hounsfield || o->method != DEID_DEFACE_DROWN || isnan(o->body_threshold) ||
        replacer != DEID_REPLACE_VALUE) {
        st = deid__ct_levels_find(vol, threads, &lv);
        if (st != DEID_OK)
            return st;
    } else {
        lv.air = -1000.0;
        lv.tissue = 30.0;
    }
    double body_t = o->body_threshold;
    if (isnan(body_t))
        body_t = vol->hounsfield ? (o->method == DEID_DEFACE_DROWN ? DROWN_BODY_HU
                                                                   : FACE_BODY_HU)
                                 : 0.5 * (lv.air + lv.tissue);
    double bone_t = NAN;
    deid__bits marked;
    face_result fr = {0, 0, 0};
    char device[32] = "";
    if (o->method == DEID_DEFACE_MODEL) {
        body_t = vol->hounsfield ? DEID_CT_MODEL_BODY_HU
                                 : deid__ct_from_hu(vol, &lv, DEID_CT_MODEL_BODY_HU);
        st = deid__ct_model_mark(vol, o, &lv, threads, &marked, device, sizeof device);
    } else if (o->method == DEID_DEFACE_DROWN) {
        st = drown(vol, o, axis, axes_ok, body_t, threads, &marked);
    } else {
        if (vol->hounsfield) {
            bone_t = FACE_BONE_HU;
        } else {
            /* between soft tissue and bone over the body; kept within 150..600 HU of the
             * scale the air and tissue peaks give (250..600 HU), for a head with little bone
             * in view */
            double lo = deid__ct_from_hu(vol, &lv, 250.0), hi = deid__ct_from_hu(vol, &lv, 600.0);
            bone_t = deid__ct_otsu_above(vol, body_t, threads);
            if (isnan(bone_t))
                bone_t = deid__ct_from_hu(vol, &lv, FACE_BONE_HU);
            bone_t = bone_t < lo ? lo : bone_t > hi ? hi : bone_t;
        }
        st = face(vol, o, axis, sign, body_t, bone_t, threads, &marked, &fr);
    }
    if (st != DEID_OK)
        return st;
    size_t altered = replace(vol, &marked, mask, replacer, o, &lv, threads);
    deid__bits_free(&marked);

    if (report) {
        memset(report, 0, sizeof *report);
        report->altered = altered;
        report->face_found = fr.found;
        report->anterior_axis = axes_ok ? axis[1] : -1;
        report->anterior_sign = axes_ok ? -sign[1] : 0;
        report->superior_axis = axes_ok ? axis[2] : -1;
        report->superior_sign = axes_ok ? sign[2] : 0;
        report->body_threshold = body_t;
        report->bone_threshold = bone_t;
        report->seconds = deid__now() - t0;
        if (o->method == DEID_DEFACE_MODEL)
            snprintf(report->message, sizeof report->message,
                     "model: %zu voxels replaced (%s) where the face model (on %s) found face",
                     altered, replacer_name(replacer), device);
        else if (o->method == DEID_DEFACE_DROWN)
            snprintf(report->message, sizeof report->message,
                     "drown: %zu voxels replaced (%s) outside the body and its surface shell",
                     altered, replacer_name(replacer));
        else
            snprintf(report->message, sizeof report->message,
                     "face: %zu voxels replaced (%s), %.0f to %.0f mm below the top of the "
                     "head%s%s",
                     altered, replacer_name(replacer), fr.top_mm, fr.bottom_mm,
                     fr.found ? "" : " (face level not found: the whole front)",
                     o->ears ? ", ears" : "");
    }
    return DEID_OK;
}
