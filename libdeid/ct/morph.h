/* libdeid internal: binary volume operations the defacing methods share (bit-packed masks,
 * run-based connected components, box dilation, a parallel loop, histogram thresholds,
 * anatomical axes from the geometry). */
#ifndef DEID_CT_MORPH_H
#define DEID_CT_MORPH_H

#include <stddef.h>
#include <stdint.h>
#include "ct/ct_int.h"

/* ---- threads ------------------------------------------------------------------------------- */

/* Worker count for `requested` (0: all online cores), at least 1, at most 64. */
unsigned deid__ct_threads(unsigned requested);

/* fn(ctx, begin, end) over [0, n) split in contiguous chunks on up to `threads` threads (the
 * caller runs one chunk; a thread that cannot be started runs in the caller). */
typedef void (*deid__ct_range_fn)(void *ctx, size_t begin, size_t end);
void deid__ct_parallel(size_t n, unsigned threads, deid__ct_range_fn fn, void *ctx);

/* ---- bit-packed masks ---------------------------------------------------------------------- */

/* One bit per voxel; each row (fixed j, k) is `words` 64-bit words, voxel i at bit i % 64 of
 * word i / 64 (bits past nx are 0). Row r = j + ny * k. */
typedef struct deid__bits {
    size_t nx, ny, nz, words;
    uint64_t *w;
} deid__bits;

/* Allocate a zeroed mask of the volume's size (DEID_ERR_NOMEM). */
deid_status deid__bits_new(deid__bits *b, const size_t dims[3]);
void deid__bits_free(deid__bits *b);

static inline uint64_t *deid__bits_row(const deid__bits *b, size_t j, size_t k)
{
    return b->w + (j + b->ny * k) * b->words;
}

static inline int deid__bits_get(const deid__bits *b, size_t i, size_t j, size_t k)
{
    return (int)((deid__bits_row(b, j, k)[i >> 6] >> (i & 63)) & 1u);
}

/* Thread-safe set (atomic OR). */
static inline void deid__bits_set(deid__bits *b, size_t i, size_t j, size_t k)
{
    __atomic_fetch_or(&deid__bits_row(b, j, k)[i >> 6], (uint64_t)1 << (i & 63),
                      __ATOMIC_RELAXED);
}

/* A comparison of a voxel's modality value with a threshold done on stored values:
 * value > t  <=>  sign * stored > key. */
typedef struct deid__above {
    int64_t key;
    int sign;
} deid__above;

deid__above deid__above_make(const deid_volume *v, double threshold);

static inline int deid__is_above(deid__above a, int32_t stored)
{
    return (int64_t)a.sign * stored > a.key;
}

/* out (allocated zeroed, same size) = voxels whose value is above `a`. */
void deid__bits_threshold(const deid_volume *v, deid__above a, deid__bits *out, unsigned threads);

/* Connectivity for deid__bits_components: which neighbour rows join runs (runs along i always
 * join their i-neighbours). */
#define DEID_CONN_J 1u /* rows j-1 / j+1 of the same slice */
#define DEID_CONN_K 2u /* slices k-1 / k+1 of the same row */

/* Keep in `b` only its largest connected component (6-connectivity when conn is
 * DEID_CONN_J | DEID_CONN_K). *count (may be NULL) gets its voxel count. DEID_ERR_NOMEM. */
deid_status deid__bits_largest(deid__bits *b, unsigned conn, size_t *count, unsigned threads);

/* out (zeroed, same size) = the voxels NOT in `b` that are connected through voxels not in
 * `b` (with `conn`) to the border of the grid, a border being the i ends and the j ends (with
 * DEID_CONN_J) and the k ends (with DEID_CONN_K): with conn = DEID_CONN_J the outside of
 * each k slice separately. DEID_ERR_NOMEM. */
deid_status deid__bits_outside(const deid__bits *b, unsigned conn, deid__bits *out,
                               unsigned threads);

/* Dilate `b` in place by a box of half-widths r[0..2] voxels (Chebyshev distance per axis).
 * DEID_ERR_NOMEM. */
deid_status deid__bits_dilate(deid__bits *b, const unsigned r[3], unsigned threads);

/* Number of set bits. */
size_t deid__bits_count(const deid__bits *b);

/* ---- axes and thresholds ------------------------------------------------------------------- */

/* For patient axis p (0 = x/Left, 1 = y/Posterior, 2 = z/Superior): the volume axis whose
 * direction has the largest absolute component on it, and the sign (+1 when increasing index
 * goes towards +p). Returns -1 when two patient axes pick the same volume axis. */
int deid__ct_axes(const deid_volume *v, int axis[3], int sign[3]);

/* Landmarks of a volume's histogram, modality units: air and soft-tissue peaks (uncalibrated
 * volumes: the two main peaks of the smoothed histogram, leaving out the padding of the field
 * of view; calibrated: -1000 and 30 HU). */
typedef struct deid__ct_levels {
    double air, tissue;
} deid__ct_levels;

/* DEID_ERR_UNSUPPORTED when the histogram has no separate air and tissue peaks. */
deid_status deid__ct_levels_find(const deid_volume *v, unsigned threads, deid__ct_levels *out);

/* Modality value of `hu` on the volume's scale: itself for calibrated volumes, else the linear
 * map that puts the air peak at -1000 and the tissue peak at 30. */
double deid__ct_from_hu(const deid_volume *v, const deid__ct_levels *lv, double hu);

/* Otsu's threshold (modality units) over the voxels whose value is above `floor`; NaN when
 * fewer than 2 distinct values are there. */
double deid__ct_otsu_above(const deid_volume *v, double floor, unsigned threads);

#endif
