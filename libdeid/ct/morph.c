/* libdeid: bit-packed masks for the defacing methods: thresholding, connected components on
 * runs (union-find over the runs of set bits along i, so a head of 512 x 512 x 300 voxels is
 * labelled through a few hundred thousand runs rather than 78 million voxels), box dilation
 * with word shifts and row ORs, histogram landmarks, and a small parallel loop. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/core.h"
#include "ct/morph.h"

#define M "ct"
#define MAX_THREADS 64u

/* ---- threads ------------------------------------------------------------------------------- */

unsigned deid__ct_threads(unsigned requested)
{
    if (requested == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        requested = cores > 0 ? (unsigned)cores : 1u;
    }
    return requested > MAX_THREADS ? MAX_THREADS : requested;
}

typedef struct job {
    deid__ct_range_fn fn;
    void *ctx;
    size_t begin, end;
} job;

static void *job_main(void *p)
{
    job *j = p;
    j->fn(j->ctx, j->begin, j->end);
    return NULL;
}

void deid__ct_parallel(size_t n, unsigned threads, deid__ct_range_fn fn, void *ctx)
{
    if (n == 0)
        return;
    size_t t = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    if (t > n)
        t = n;
    if (t == 1) {
        fn(ctx, 0, n);
        return;
    }
    job jobs[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (size_t u = 0; u < t; u++)
        jobs[u] = (job){fn, ctx, n * u / t, n * (u + 1) / t};
    for (size_t u = 1; u < t; u++)
        started[u] = pthread_create(&th[u], NULL, job_main, &jobs[u]) == 0;
    fn(ctx, jobs[0].begin, jobs[0].end);
    for (size_t u = 1; u < t; u++) {
        if (started[u])
            pthread_join(th[u], NULL);
        else
            fn(ctx, jobs[u].begin, jobs[u].end);
    }
}

/* ---- masks ----------------------------------------------------------------------------------- */

deid_status deid__bits_new(deid__bits *b, const size_t dims[3])
{
    size_t rows, n;
    b->nx = dims[0];
    b->ny = dims[1];
    b->nz = dims[2];
    b->words = (dims[0] + 63) / 64;
    b->w = NULL;
    if (!deid__mul_size(dims[1], dims[2], &rows) || !deid__mul_size(rows, b->words, &n))
        return deid__fail(DEID_ERR_LIMIT, M, "mask size overflows");
    b->w = deid__calloc(n ? n : 1, sizeof *b->w);
    return b->w ? DEID_OK : DEID_ERR_NOMEM;
}

void deid__bits_free(deid__bits *b)
{
    free(b->w);
    b->w = NULL;
}

static uint64_t last_word_mask(size_t nx)
{
    return (nx & 63) ? (((uint64_t)1 << (nx & 63)) - 1) : ~(uint64_t)0;
}

deid__above deid__above_make(const deid_volume *v, double threshold)
{
    deid__above a;
    a.sign = v->slope < 0 ? -1 : 1;
    double x = floor((threshold - v->intercept) / fabs(v->slope));
    if (!(x > -4.0e18))
        x = -4.0e18;
    if (x > 4.0e18)
        x = 4.0e18;
    a.key = (int64_t)x;
    return a;
}

typedef struct thr_ctx {
    const deid_volume *v;
    deid__above a;
    deid__bits *out;
} thr_ctx;

static void thr_range(void *p, size_t k0, size_t k1)
{
    thr_ctx *c = p;
    const deid__bits *b = c->out;
    for (size_t k = k0; k < k1; k++)
        for (size_t j = 0; j < b->ny; j++) {
            const int32_t *src = c->v->vox + (j + b->ny * k) * b->nx;
            uint64_t *row = deid__bits_row(b, j, k);
            for (size_t w = 0; w < b->words; w++) {
                size_t i0 = w * 64, i1 = i0 + 64 < b->nx ? i0 + 64 : b->nx;
                uint64_t x = 0;
                for (size_t i = i0; i < i1; i++)
                    x |= (uint64_t)deid__is_above(c->a, src[i]) << (i - i0);
                row[w] = x;
            }
        }
}

void deid__bits_threshold(const deid_volume *v, deid__above a, deid__bits *out, unsigned threads)
{
    thr_ctx c = {v, a, out};
    deid__ct_parallel(out->nz, threads, thr_range, &c);
}

size_t deid__bits_count(const deid__bits *b)
{
    size_t n = 0, total = b->ny * b->nz * b->words;
    for (size_t x = 0; x < total; x++)
        n += (size_t)__builtin_popcountll(b->w[x]);
    return n;
}

/* ---- runs and components --------------------------------------------------------------------- */

typedef struct run {
    uint32_t start, end; /* [start, end) along i */
} run;

typedef struct runs {
    const deid__bits *b;
    int invert;          /* runs of the clear bits */
    size_t *off;         /* rows + 1: runs of row r are [off[r], off[r + 1]) */
    run *v;
    uint32_t *parent;
} runs;

static inline uint64_t word_of(const runs *R, const uint64_t *row, size_t w)
{
    uint64_t x = row[w];
    if (R->invert) {
        x = ~x;
        if (w + 1 == R->b->words)
            x &= last_word_mask(R->b->nx);
    }
    return x;
}

static void count_range(void *p, size_t k0, size_t k1)
{
    runs *R = p;
    const deid__bits *b = R->b;
    for (size_t k = k0; k < k1; k++)
        for (size_t j = 0; j < b->ny; j++) {
            const uint64_t *row = deid__bits_row(b, j, k);
            uint64_t carry = 0;
            size_t n = 0;
            for (size_t w = 0; w < b->words; w++) {
                uint64_t x = word_of(R, row, w);
                n += (size_t)__builtin_popcountll(x & ~((x << 1) | carry));
                carry = x >> 63;
            }
            R->off[j + b->ny * k + 1] = n;
        }
}

static void fill_range(void *p, size_t k0, size_t k1)
{
    runs *R = p;
    const deid__bits *b = R->b;
    for (size_t k = k0; k < k1; k++)
        for (size_t j = 0; j < b->ny; j++) {
            const uint64_t *row = deid__bits_row(b, j, k);
            size_t r = j + b->ny * k, ns = R->off[r], ne = R->off[r];
            uint64_t carry = 0;
            for (size_t w = 0; w < b->words; w++) {
                uint64_t x = word_of(R, row, w);
                uint64_t next = w + 1 < b->words ? word_of(R, row, w + 1) : 0;
                uint64_t starts = x & ~((x << 1) | carry);
                uint64_t ends = x & ~((x >> 1) | (next << 63));
                carry = x >> 63;
                while (starts) {
                    R->v[ns++].start = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(starts));
                    starts &= starts - 1;
                }
                while (ends) {
                    R->v[ne++].end = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(ends) + 1);
                    ends &= ends - 1;
                }
            }
        }
}

static uint32_t find(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static void unite(uint32_t *parent, uint32_t a, uint32_t b)
{
    a = find(parent, a);
    b = find(parent, b);
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

/* Join the overlapping runs of rows r and q. */
static void join_rows(runs *R, size_t r, size_t q)
{
    size_t a = R->off[r], ae = R->off[r + 1], c = R->off[q], ce = R->off[q + 1];
    while (a < ae && c < ce) {
        if (R->v[a].start < R->v[c].end && R->v[c].start < R->v[a].end)
            unite(R->parent, (uint32_t)a, (uint32_t)c);
        if (R->v[a].end < R->v[c].end)
            a++;
        else
            c++;
    }
}

static void runs_free(runs *R)
{
    free(R->off);
    free(R->v);
    free(R->parent);
}

/* Runs of `b` (or of its clear bits) labelled with union-find under `conn`; afterwards
 * parent[x] is the root of run x (flattened). */
static deid_status runs_label(runs *R, const deid__bits *b, int invert, unsigned conn,
                              unsigned threads)
{
    memset(R, 0, sizeof *R);
    R->b = b;
    R->invert = invert;
    size_t rows = b->ny * b->nz;
    R->off = deid__calloc(rows + 1, sizeof *R->off);
    if (!R->off)
        return DEID_ERR_NOMEM;
    deid__ct_parallel(b->nz, threads, count_range, R);
    for (size_t r = 0; r < rows; r++)
        R->off[r + 1] += R->off[r];
    size_t n = R->off[rows];
    if (n >= UINT32_MAX) {
        runs_free(R);
        return deid__fail(DEID_ERR_LIMIT, M, "mask has too many runs");
    }
    R->v = deid__malloc((n ? n : 1) * sizeof *R->v);
    R->parent = deid__malloc((n ? n : 1) * sizeof *R->parent);
    if (!R->v || !R->parent) {
        runs_free(R);
        return DEID_ERR_NOMEM;
    }
    deid__ct_parallel(b->nz, threads, fill_range, R);
    for (size_t x = 0; x < n; x++)
        R->parent[x] = (uint32_t)x;
    for (size_t k = 0; k < b->nz; k++)
        for (size_t j = 0; j < b->ny; j++) {
            size_t r = j + b->ny * k;
            if ((conn & DEID_CONN_J) && j > 0)
                join_rows(R, r, r - 1);
            if ((conn & DEID_CONN_K) && k > 0)
                join_rows(R, r, r - b->ny);
        }
    for (size_t x = 0; x < n; x++)
        R->parent[x] = find(R->parent, (uint32_t)x);
    return DEID_OK;
}

static void set_span(uint64_t *row, size_t s, size_t e)
{
    while (s < e) {
        size_t w = s >> 6, b0 = s & 63, b1 = (e - (w << 6)) < 64 ? e - (w << 6) : 64;
        uint64_t m = (b1 == 64 ? ~(uint64_t)0 : (((uint64_t)1 << b1) - 1)) &
                     ~(((uint64_t)1 << b0) - 1);
        row[w] |= m;
        s = (w + 1) << 6;
    }
}

typedef struct paint_ctx {
    const runs *R;
    const uint8_t *keep; /* per root */
    deid__bits *out;
} paint_ctx;

static void paint_range(void *p, size_t k0, size_t k1)
{
    paint_ctx *c = p;
    deid__bits *o = c->out;
    for (size_t k = k0; k < k1; k++)
        for (size_t j = 0; j < o->ny; j++) {
            size_t r = j + o->ny * k;
            uint64_t *row = deid__bits_row(o, j, k);
            memset(row, 0, o->words * sizeof *row);
            for (size_t x = c->R->off[r]; x < c->R->off[r + 1]; x++)
                if (c->keep[c->R->parent[x]])
                    set_span(row, c->R->v[x].start, c->R->v[x].end);
        }
}

deid_status deid__bits_largest(deid__bits *b, unsigned conn, size_t *count, unsigned threads)
{
    runs R;
    deid_status st = runs_label(&R, b, 0, conn, threads);
    if (st != DEID_OK)
        return st;
    size_t n = R.off[b->ny * b->nz];
    size_t *size = deid__calloc(n ? n : 1, sizeof *size);
    uint8_t *keep = deid__calloc(n ? n : 1, 1);
    if (!size || !keep) {
        free(size);
        free(keep);
        runs_free(&R);
        return DEID_ERR_NOMEM;
    }
    size_t best = 0, best_size = 0;
    for (size_t x = 0; x < n; x++) {
        size_t root = R.parent[x];
        size[root] += R.v[x].end - R.v[x].start;
        if (size[root] > best_size) {
            best_size = size[root];
            best = root;
        }
    }
    if (best_size)
        keep[best] = 1;
    paint_ctx c = {&R, keep, b};
    deid__ct_parallel(b->nz, threads, paint_range, &c);
    if (count)
        *count = best_size;
    free(size);
    free(keep);
    runs_free(&R);
    return DEID_OK;
}

deid_status deid__bits_outside(const deid__bits *b, unsigned conn, deid__bits *out,
                               unsigned threads)
{
    runs R;
    deid_status st = runs_label(&R, b, 1, conn, threads);
    if (st != DEID_OK)
        return st;
    size_t n = R.off[b->ny * b->nz];
    uint8_t *keep = deid__calloc(n ? n : 1, 1);
    if (!keep) {
        runs_free(&R);
        return DEID_ERR_NOMEM;
    }
    for (size_t k = 0; k < b->nz; k++)
        for (size_t j = 0; j < b->ny; j++) {
            size_t r = j + b->ny * k;
            int edge_row = ((conn & DEID_CONN_J) && (j == 0 || j + 1 == b->ny)) ||
                           ((conn & DEID_CONN_K) && (k == 0 || k + 1 == b->nz));
            for (size_t x = R.off[r]; x < R.off[r + 1]; x++)
                if (edge_row || R.v[x].start == 0 || R.v[x].end == b->nx)
                    keep[R.parent[x]] = 1;
        }
    paint_ctx c = {&R, keep, out};
    deid__ct_parallel(b->nz, threads, paint_range, &c);
    free(keep);
    runs_free(&R);
    return DEID_OK;
}

/* ---- dilation -------------------------------------------------------------------------------- */

typedef struct dil_ctx {
    const deid__bits *b;
    uint64_t *dst;
    unsigned r;
    int axis;
} dil_ctx;

static void dil_i_range(void *p, size_t k0, size_t k1)
{
    dil_ctx *c = p;
    const deid__bits *b = c->b;
    uint64_t lastmask = last_word_mask(b->nx);
    for (size_t k = k0; k < k1; k++)
        for (size_t j = 0; j < b->ny; j++) {
            uint64_t *row = deid__bits_row(b, j, k);
            for (unsigned pass = 0; pass < c->r; pass++) {
                uint64_t prev = 0;
                for (size_t w = 0; w < b->words; w++) {
                    uint64_t x = row[w], next = w + 1 < b->words ? row[w + 1] : 0;
                    row[w] = x | (x << 1) | (prev >> 63) | (x >> 1) | (next << 63);
                    prev = x;
                }
                row[b->words - 1] &= lastmask;
            }
        }
}

/* dst row (j, k) = OR of source rows within r along j (axis 1) or k (axis 2). */
static void dil_jk_range(void *p, size_t k0, size_t k1)
{
    dil_ctx *c = p;
    const deid__bits *b = c->b;
    size_t W = b->words, n = c->axis == 1 ? b->ny : b->nz;
    for (size_t k = k0; k < k1; k++)
        for (size_t j = 0; j < b->ny; j++) {
            uint64_t *d = c->dst + (j + b->ny * k) * W;
            size_t at = c->axis == 1 ? j : k;
            size_t lo = at > c->r ? at - c->r : 0, hi = at + c->r < n ? at + c->r : n - 1;
            memset(d, 0, W * sizeof *d);
            for (size_t q = lo; q <= hi; q++) {
                const uint64_t *s =
                    c->axis == 1 ? deid__bits_row(b, q, k) : deid__bits_row(b, j, q);
                for (size_t w = 0; w < W; w++)
                    d[w] |= s[w];
            }
        }
}

deid_status deid__bits_dilate(deid__bits *b, const unsigned r[3], unsigned threads)
{
    dil_ctx c = {b, NULL, r[0], 0};
    if (r[0])
        deid__ct_parallel(b->nz, threads, dil_i_range, &c);
    if (!r[1] && !r[2])
        return DEID_OK;
    uint64_t *tmp = deid__malloc(b->ny * b->nz * b->words * sizeof *tmp);
    if (!tmp)
        return DEID_ERR_NOMEM;
    for (int axis = 1; axis <= 2; axis++) {
        if (!r[axis])
            continue;
        c.dst = tmp;
        c.r = r[axis];
        c.axis = axis;
        deid__ct_parallel(b->nz, threads, dil_jk_range, &c);
        uint64_t *old = b->w;
        b->w = tmp;
        tmp = old;
    }
    free(tmp);
    return DEID_OK;
}

/* ---- axes ------------------------------------------------------------------------------------ */

int deid__ct_axes(const deid_volume *v, int axis[3], int sign[3])
{
    for (int p = 0; p < 3; p++) {
        int best = 0;
        for (int a = 1; a < 3; a++)
            if (fabs(v->geom.direction[a * 3 + p]) > fabs(v->geom.direction[best * 3 + p]))
                best = a;
        axis[p] = best;
        sign[p] = v->geom.direction[best * 3 + p] < 0 ? -1 : 1;
        if (v->geom.direction[best * 3 + p] == 0)
            return -1;
    }
    if (axis[0] == axis[1] || axis[0] == axis[2] || axis[1] == axis[2])
        return -1;
    return 0;
}

/* ---- histograms ------------------------------------------------------------------------------ */

#define NBINS 4096

typedef struct hist_ctx {
    const deid_volume *v;
    int64_t lo, range;    /* stored values lo .. lo + range - 1 */
    size_t nbins;
    uint64_t mul;         /* bin = (stored - lo) * mul >> 32 */
    size_t step;          /* every step-th voxel: peaks and thresholds need no more */
    deid__above floor;    /* only voxels above it (histogram of the body) */
    int use_floor;
    uint64_t *h;          /* threads x nbins */
    unsigned threads;
    int32_t *mins, *maxs; /* per chunk min / max (range pass) */
    size_t *seen;
    int pass;             /* 0: min/max, 1: histogram */
} hist_ctx;

static void hist_range(void *p, size_t b0, size_t b1)
{
    hist_ctx *c = p;
    /* chunk index from the range start (deid__ct_parallel splits n * u / t) */
    size_t n = c->v->n, t = c->threads, u = 0;
    while (u + 1 < t && n * (u + 1) / t <= b0)
        u++;
    const int32_t *x = c->v->vox;
    if (c->pass == 0) {
        int32_t mn = INT32_MAX, mx = INT32_MIN;
        size_t seen = 0;
        for (size_t i = b0 - b0 % c->step; i < b1; i += c->step) {
            if (i < b0 || (c->use_floor && !deid__is_above(c->floor, x[i])))
                continue;
            mn = x[i] < mn ? x[i] : mn;
            mx = x[i] > mx ? x[i] : mx;
            seen++;
        }
        c->mins[u] = mn;
        c->maxs[u] = mx;
        c->seen[u] = seen;
        return;
    }
    uint64_t *h = c->h + u * c->nbins;
    for (size_t i = b0 - b0 % c->step; i < b1; i += c->step) {
        if (i < b0 || (c->use_floor && !deid__is_above(c->floor, x[i])))
            continue;
        h[(size_t)(((uint64_t)((int64_t)x[i] - c->lo) * c->mul) >> 32)]++;
    }
}

/* Histogram of the stored values (above `floor` when use_floor) into *h (nbins, free()), the
 * stored range in *lo / *range. DEID_ERR_UNSUPPORTED when no voxel counts. */
static deid_status histogram(const deid_volume *v, int use_floor, deid__above floor,
                             unsigned threads, uint64_t **hout, size_t *nbins, int64_t *lo,
                             int64_t *range)
{
    hist_ctx c;
    memset(&c, 0, sizeof c);
    c.v = v;
    c.use_floor = use_floor;
    c.floor = floor;
    c.threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    c.step = v->n / ((size_t)1 << 23) + 1;
    if (c.threads > v->n)
        c.threads = (unsigned)v->n;
    int32_t mins[MAX_THREADS], maxs[MAX_THREADS];
    size_t seen[MAX_THREADS];
    c.mins = mins;
    c.maxs = maxs;
    c.seen = seen;
    deid__ct_parallel(v->n, c.threads, hist_range, &c);
    int32_t mn = INT32_MAX, mx = INT32_MIN;
    size_t total = 0;
    for (unsigned u = 0; u < c.threads; u++) {
        total += seen[u];
        if (seen[u]) {
            mn = mins[u] < mn ? mins[u] : mn;
            mx = maxs[u] > mx ? maxs[u] : mx;
        }
    }
    if (!total)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "volume histogram: no voxels");
    c.lo = mn;
    c.range = (int64_t)mx - mn + 1;
    c.nbins = c.range < NBINS ? (size_t)c.range : NBINS;
    c.mul = ((uint64_t)c.nbins << 32) / (uint64_t)c.range;
    c.h = deid__calloc((size_t)c.threads * c.nbins, sizeof *c.h);
    if (!c.h)
        return DEID_ERR_NOMEM;
    c.pass = 1;
    deid__ct_parallel(v->n, c.threads, hist_range, &c);
    for (unsigned u = 1; u < c.threads; u++)
        for (size_t b = 0; b < c.nbins; b++)
            c.h[b] += c.h[u * c.nbins + b];
    *hout = c.h;
    *nbins = c.nbins;
    *lo = c.lo;
    *range = c.range;
    return DEID_OK;
}

/* Otsu's split: bins [0, split) and [split, nbins); weights w. 0 when none. */
static size_t otsu(const double *w, size_t nbins)
{
    double total = 0, sum = 0;
    for (size_t b = 0; b < nbins; b++) {
        total += w[b];
        sum += w[b] * (double)b;
    }
    double w0 = 0, s0 = 0, best = -1;
    size_t split = 0;
    for (size_t b = 0; b + 1 < nbins; b++) {
        w0 += w[b];
        s0 += w[b] * (double)b;
        double w1 = total - w0;
        if (w0 <= 0 || w1 <= 0)
            continue;
        double m0 = s0 / w0, m1 = (sum - s0) / w1;
        double between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if (between > best) {
            best = between;
            split = b + 1;
        }
    }
    return split;
}

static double bin_value(const deid_volume *v, int64_t lo, int64_t range, size_t nbins, double b)
{
    double stored = (double)lo + b * (double)range / (double)nbins;
    return stored * v->slope + v->intercept;
}

/* The two main peaks of a histogram smoothed over nbins / 200 bins: the highest, and the
 * highest at least 15 % of the occupied range (0.5th to 99.5th percentile) away from it.
 * Returns -1 when there is no second peak. */
static int two_peaks(const uint64_t *h, size_t nbins, size_t *p, size_t *q, uint64_t *total)
{
    uint64_t n = 0;
    for (size_t b = 0; b < nbins; b++)
        n += h[b];
    *total = n;
    if (n == 0)
        return -1;
    size_t lo = 0, hi = nbins - 1;
    uint64_t acc = 0;
    while (lo < nbins && (acc += h[lo]) < n / 200)
        lo++;
    acc = 0;
    while (hi > 0 && (acc += h[hi]) < n / 200)
        hi--;
    if (hi <= lo)
        return -1;
    size_t half = nbins / 400;
    double best = -1, second = -1;
    *p = *q = lo;
    double *sm = malloc(nbins * sizeof *sm);
    if (!sm)
        return -1;
    uint64_t run = 0;
    for (size_t b = 0; b < nbins + half; b++) {
        if (b < nbins)
            run += h[b];
        if (b >= 2 * half + 1)
            run -= h[b - 2 * half - 1];
        if (b >= half)
            sm[b - half] = (double)run;
    }
    for (size_t b = lo; b <= hi; b++)
        if (sm[b] > best) {
            best = sm[b];
            *p = b;
        }
    size_t sep = (hi - lo) * 15 / 100;
    for (size_t b = lo; b <= hi; b++)
        if ((b + sep < *p || b > *p + sep) && sm[b] > second) {
            second = sm[b];
            *q = b;
        }
    free(sm);
    return second > 0 ? 0 : -1;
}

deid_status deid__ct_levels_find(const deid_volume *v, unsigned threads, deid__ct_levels *out)
{
    if (v->hounsfield) {
        out->air = -1000.0;
        out->tissue = 30.0;
        return DEID_OK;
    }
    uint64_t *h;
    size_t nbins;
    int64_t lo, range;
    deid__above none = {0, 1};
    deid_status st = histogram(v, 0, none, threads, &h, &nbins, &lo, &range);
    if (st != DEID_OK)
        return st;
    /* The padding outside a reconstruction's field of view (one value, the lowest) would be
     * taken for the air peak: leave out a spike in the lowest bin unless it is the air itself
     * (nothing else lies below the middle of the two peaks). */
    uint64_t low = h[0];
    int dropped = 0;
    if (nbins > 2 && low > v->n / 200) {
        h[0] = 0;
        dropped = 1;
    }
    size_t p = 0, q = 0;
    int ok = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        uint64_t total;
        ok = two_peaks(h, nbins, &p, &q, &total);
        if (ok != 0 || !dropped)
            break;
        size_t a = p < q ? p : q, mid = (p + q) / 2;
        uint64_t below = 0;
        for (size_t b = 0; b < mid; b++)
            below += h[b];
        if (below >= total / 100 && a > 0)
            break;
        h[0] = low; /* the lowest value is the air itself */
        dropped = 0;
    }
    deid_status result = DEID_OK;
    if (ok != 0) {
        result = deid__fail(DEID_ERR_UNSUPPORTED, M,
                            "volume histogram has no separate air and tissue peaks");
    } else {
        double p0 = bin_value(v, lo, range, nbins, (double)p + 0.5);
        double p1 = bin_value(v, lo, range, nbins, (double)q + 0.5);
        out->air = p0 < p1 ? p0 : p1;
        out->tissue = p0 < p1 ? p1 : p0;
    }
    free(h);
    return result;
}

double deid__ct_from_hu(const deid_volume *v, const deid__ct_levels *lv, double hu)
{
    if (v->hounsfield)
        return hu;
    return lv->air + (hu + 1000.0) * (lv->tissue - lv->air) / 1030.0;
}

double deid__ct_otsu_above(const deid_volume *v, double floor, unsigned threads)
{
    uint64_t *h;
    size_t nbins;
    int64_t lo, range;
    if (histogram(v, 1, deid__above_make(v, floor), threads, &h, &nbins, &lo, &range) != DEID_OK)
        return NAN;
    double *w = deid__malloc(nbins * sizeof *w);
    double t = NAN;
    if (w) {
        for (size_t b = 0; b < nbins; b++)
            w[b] = (double)h[b];
        size_t split = otsu(w, nbins);
        if (split > 0 && split < nbins)
            t = bin_value(v, lo, range, nbins, (double)split);
        free(w);
    }
    free(h);
    return t;
}
