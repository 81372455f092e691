/* Where an ultrasound image carries live scan data. Over a clip, scan data changes from frame
 * to frame while burned-in text, logos, scale and colour bars do not: the mean absolute
 * difference between sampled frames (streamed, one grey frame at a time) separates them. A
 * single frame (or a clip whose frames do not change) falls back to local texture: speckle
 * has a high local standard deviation, the flat background none. The thresholded map is then
 * cleaned (closing, opening: thin moving traces such as ECG sweeps go), its largest component
 * kept with the components stacked above or below it (a dark band across a linear image
 * splits it), and holes (dark chambers, Doppler box outlines) filled. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "us/us_int.h"

static const char *M = "us";

#define WORK_PIXELS 1200000u /* larger images are averaged down to about this many cells */
#define TEXTURE_RADIUS 3     /* local standard deviation over 7x7 cells */
#define CLOSE_RADIUS 2
#define OPEN_RADIUS 3
#define TEMPORAL_FLOOR 1.0   /* grey levels (of 255): below this nothing is live */
#define TEXTURE_FLOOR 2.5
#define MIN_TEMPORAL_SHARE 0.01 /* live share of the image below which frames are "frozen" */
#define MAX_TEMPORAL_SHARE 0.9  /* above it the whole picture changed (a cut, an inversion) */
#define MAX_PAIR_CHANGE 80.0 /* mean grey change over the image beyond which a pair is a cut */
#define HYSTERESIS_RATIO 6.0 /* cells above 1/6 of the threshold join a live area */
#define COMPANION_SHARE 0.1  /* components this large (vs the largest) may join it */

/* ---- grey frames ------------------------------------------------------------------------ */

typedef enum lum_kind { LUM_MONO, LUM_MONO_INV, LUM_RGB, LUM_FIRST } lum_kind;

typedef struct frame_src {
    const uint8_t *data;
    size_t rows, cols, samples, frame_bytes;
    unsigned bits;
    int is_signed;
    lum_kind kind;
    double scale16; /* 16-bit samples times this give 0..255 */
} frame_src;

static double sample_at(const frame_src *s, const uint8_t *frame, size_t i)
{
    if (s->bits == 8)
        return frame[i];
    uint16_t u;
    memcpy(&u, frame + 2 * i, 2);
    double v = s->is_signed ? (double)(int16_t)u + 32768.0 : (double)u;
    return v * s->scale16;
}

static double luminance(const frame_src *s, const uint8_t *frame, size_t px)
{
    size_t i = px * s->samples;
    switch (s->kind) {
    case LUM_RGB:
        return 0.299 * sample_at(s, frame, i) + 0.587 * sample_at(s, frame, i + 1) +
               0.114 * sample_at(s, frame, i + 2);
    case LUM_MONO_INV:
        return 255.0 - sample_at(s, frame, i);
    default:
        return sample_at(s, frame, i);
    }
}

/* 8-bit frames at full resolution, the common case, without the per-sample dispatch. */
static int grey_frame_fast(const frame_src *s, const uint8_t *frame, const deid_live_map *map,
                           float *out)
{
    size_t n = map->rows * map->cols;
    if (s->bits != 8 || map->scale != 1 || map->cols != s->cols)
        return 0;
    switch (s->kind) {
    case LUM_MONO:
        for (size_t p = 0; p < n; p++)
            out[p] = frame[p];
        return 1;
    case LUM_MONO_INV:
        for (size_t p = 0; p < n; p++)
            out[p] = (float)(255 - frame[p]);
        return 1;
    case LUM_FIRST:
        for (size_t p = 0; p < n; p++)
            out[p] = frame[3 * p];
        return 1;
    case LUM_RGB:
        for (size_t p = 0; p < n; p++)
            out[p] = 0.299f * frame[3 * p] + 0.587f * frame[3 * p + 1] + 0.114f * frame[3 * p + 2];
        return 1;
    }
    return 0;
}

/* Grey value of frame f averaged over scale x scale blocks into out (map->rows x cols). */
static void grey_frame(const frame_src *s, size_t f, const deid_live_map *map, float *out)
{
    const uint8_t *frame = s->data + f * s->frame_bytes;
    if (grey_frame_fast(s, frame, map, out))
        return;
    unsigned k = map->scale;
    double norm = 1.0 / ((double)k * k);
    for (size_t i = 0; i < map->rows; i++)
        for (size_t j = 0; j < map->cols; j++) {
            double sum = 0;
            for (unsigned a = 0; a < k; a++)
                for (unsigned b = 0; b < k; b++)
                    sum += luminance(s, frame, (i * k + a) * s->cols + j * k + b);
            out[i * map->cols + j] = (float)(sum * norm);
        }
}

/* 16-bit data may use any part of its range: scale by the first frame's maximum. */
static void set_scale16(frame_src *s)
{
    s->scale16 = 1.0;
    if (s->bits != 16)
        return;
    double mx = 1.0;
    size_t n = s->rows * s->cols * s->samples;
    for (size_t i = 0; i < n; i++) {
        double v = sample_at(s, s->data, i);
        if (v > mx)
            mx = v;
    }
    s->scale16 = 255.0 / mx;
}

static lum_kind lum_of(const char *photometric, size_t samples)
{
    if (samples == 3)
        return strncmp(photometric, "YBR", 3) == 0 ? LUM_FIRST : LUM_RGB;
    return strcmp(photometric, "MONOCHROME1") == 0 ? LUM_MONO_INV : LUM_MONO;
}

/* ---- thresholds and morphology -------------------------------------------------------------- */

/* Otsu's threshold of v[0..n), computed on log(1 + v) over 256 bins: the background's
 * values are near 0, scan data's moderate and text's (sharp edges) very large, and on a log
 * scale the cut falls between the background and the rest instead of below the text. */
static double otsu(const float *v, size_t n)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] > mx)
            mx = v[i];
    if (mx <= 0)
        return 0;
    double lmx = log1p(mx), hist[256] = {0};
    for (size_t i = 0; i < n; i++) {
        int b = (int)(log1p(v[i] > 0 ? v[i] : 0) / lmx * 255.0);
        hist[b < 0 ? 0 : b > 255 ? 255 : b] += 1;
    }
    double total = (double)n, sum = 0;
    for (int b = 0; b < 256; b++)
        sum += b * hist[b];
    double w0 = 0, sum0 = 0, best = -1;
    int cut = 0;
    for (int b = 0; b < 255; b++) {
        w0 += hist[b];
        sum0 += b * hist[b];
        double w1 = total - w0;
        if (w0 <= 0 || w1 <= 0)
            continue;
        double m0 = sum0 / w0, m1 = (sum - sum0) / w1;
        double between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if (between > best) {
            best = between;
            cut = b;
        }
    }
    return expm1((cut + 1) * lmx / 255.0);
}

/* One separable pass of a square structuring element of radius r along rows (step 1) or
 * columns: out is `v` where any cell of the window is `v`, else !v. Dilation: v = 1;
 * erosion: v = 0 (cells beyond the border count as neither). */
static void pass(const uint8_t *in, uint8_t *out, size_t rows, size_t cols, unsigned r, int v,
                 int along_rows)
{
    size_t lines = along_rows ? rows : cols, len = along_rows ? cols : rows;
    size_t step = along_rows ? 1 : cols, stride = along_rows ? cols : 1;
    for (size_t l = 0; l < lines; l++) {
        const uint8_t *a = in + l * stride;
        uint8_t *o = out + l * stride;
        size_t count = 0; /* cells equal to v in [i - r, i + r] */
        for (size_t i = 0; i < len && i < r; i++)
            count += (a[i * step] != 0) == v;
        for (size_t i = 0; i < len; i++) {
            if (i + r < len)
                count += (a[(i + r) * step] != 0) == v;
            o[i * step] = (uint8_t)(count ? v : !v);
            if (i >= r)
                count -= (a[(i - r) * step] != 0) == v;
        }
    }
}

/* Dilate (v = 1) or erode (v = 0) m in place by a square of radius r; tmp has m's size. */
static void morph(uint8_t *m, uint8_t *tmp, size_t rows, size_t cols, unsigned r, int v)
{
    if (!r)
        return;
    pass(m, tmp, rows, cols, r, v, 1);
    pass(tmp, m, rows, cols, r, v, 0);
}

/* ---- components ------------------------------------------------------------------------- */

/* The 4-connected neighbours of cell p into nb; returns how many. */
static size_t neighbours(size_t p, size_t rows, size_t cols, size_t nb[4])
{
    size_t i = p / cols, j = p % cols, n = 0;
    if (i > 0)
        nb[n++] = p - cols;
    if (i + 1 < rows)
        nb[n++] = p + cols;
    if (j > 0)
        nb[n++] = p - 1;
    if (j + 1 < cols)
        nb[n++] = p + 1;
    return n;
}

typedef struct comp {
    size_t area, top, bottom, left, right;
} comp;

/* Label the 4-connected components of m (labels from 1; 0 background) into lab. Returns the
 * component table (count in *n) or NULL on out of memory. */
static comp *components(const uint8_t *m, size_t rows, size_t cols, uint32_t *lab,
                        uint32_t *stack, size_t *n)
{
    size_t cap = 64, count = 0, total = rows * cols;
    comp *c = deid__malloc(cap * sizeof *c);
    if (!c)
        return NULL;
    memset(lab, 0, total * sizeof *lab);
    for (size_t s = 0; s < total; s++) {
        if (!m[s] || lab[s])
            continue;
        if (count == cap) {
            comp *g = deid__realloc(c, 2 * cap * sizeof *c);
            if (!g) {
                free(c);
                return NULL;
            }
            c = g;
            cap *= 2;
        }
        uint32_t id = (uint32_t)count + 1;
        comp k = {0, s / cols, s / cols, s % cols, s % cols};
        size_t sp = 0;
        stack[sp++] = (uint32_t)s;
        lab[s] = id;
        while (sp) {
            size_t p = stack[--sp], i = p / cols, j = p % cols;
            k.area++;
            if (i < k.top) k.top = i;
            if (i > k.bottom) k.bottom = i;
            if (j < k.left) k.left = j;
            if (j > k.right) k.right = j;
            size_t nb[4], nn = neighbours(p, rows, cols, nb);
            for (size_t q = 0; q < nn; q++)
                if (m[nb[q]] && !lab[nb[q]]) {
                    lab[nb[q]] = id;
                    stack[sp++] = (uint32_t)nb[q];
                }
        }
        c[count++] = k;
    }
    *n = count;
    return c;
}

/* Keep the largest component and, from frame differences, those stacked above or below it
 * (most of their columns within its columns), then fill the holes of the result. */
static deid_status select_region(deid_live_map *map, const uint8_t *clean, uint32_t *lab,
                                 uint32_t *stack)
{
    size_t rows = map->rows, cols = map->cols, total = rows * cols, n = 0;
    comp *c = components(clean, rows, cols, lab, stack, &n);
    if (!c)
        return DEID_ERR_NOMEM;
    size_t best = 0;
    for (size_t k = 1; k < n; k++)
        if (c[k].area > c[best].area)
            best = k;
    if (!n) {
        free(c);
        return deid__fail(DEID_ERR_NO_PIXELS, M, "fan detection: no live image area found");
    }
    uint8_t *keep = deid__calloc(n + 1, 1);
    if (!keep) {
        free(c);
        return DEID_ERR_NOMEM;
    }
    const comp *b = &c[best];
    for (size_t k = 0; k < n; k++) {
        const comp *o = &c[k];
        size_t lo = o->left > b->left ? o->left : b->left;
        size_t hi = o->right < b->right ? o->right : b->right;
        size_t width = o->right - o->left + 1;
        int stacked = hi >= lo && (hi - lo + 1) * 10 >= width * 9;
        /* Only live (moving) areas may join: textured text above a fan would. */
        keep[k + 1] = k == best || (map->temporal && stacked &&
                                    (double)o->area >= COMPANION_SHARE * (double)b->area);
    }
    free(c);
    for (size_t p = 0; p < total; p++)
        map->region[p] = keep[lab[p]];
    free(keep);
    /* Holes: background not reachable from the border. */
    memset(lab, 0, total * sizeof *lab);
    size_t sp = 0;
    for (size_t p = 0; p < total; p++) {
        size_t i = p / cols, j = p % cols;
        if ((i == 0 || j == 0 || i + 1 == rows || j + 1 == cols) && !map->region[p]) {
            lab[p] = 1;
            stack[sp++] = (uint32_t)p;
        }
    }
    while (sp) {
        size_t p = stack[--sp], nb[4], nn = neighbours(p, rows, cols, nb);
        for (size_t q = 0; q < nn; q++)
            if (!map->region[nb[q]] && !lab[nb[q]]) {
                lab[nb[q]] = 1;
                stack[sp++] = (uint32_t)nb[q];
            }
    }
    for (size_t p = 0; p < total; p++)
        map->region[p] = !lab[p];
    /* A fan opening downwards meets every column in one run: close the gaps a dark band or
     * a chamber at the border leaves. */
    map->region_count = 0;
    for (size_t j = 0; j < cols; j++) {
        size_t i0 = 0, i1 = rows;
        while (i0 < rows && !map->region[i0 * cols + j])
            i0++;
        while (i1 > i0 && !map->region[(i1 - 1) * cols + j])
            i1--;
        for (size_t i = i0; i < i1; i++)
            map->region[i * cols + j] = 1;
        map->region_count += i1 - i0;
    }
    return DEID_OK;
}

/* Pixels brighter than a quarter of the median grey of the textured pixels (at least
 * TEXTURE_FLOOR): scan data as opposed to the black background. */
static void not_black(const float *g, const uint8_t *textured, size_t n, uint8_t *out)
{
    size_t hist[256] = {0}, total = 0;
    for (size_t p = 0; p < n; p++)
        if (textured[p]) {
            int b = (int)g[p];
            hist[b < 0 ? 0 : b > 255 ? 255 : b]++;
            total++;
        }
    size_t acc = 0;
    int med = 0;
    while (med < 255 && (acc += hist[med]) * 2 < total)
        med++;
    double t = 0.25 * med > TEXTURE_FLOOR ? 0.25 * med : TEXTURE_FLOOR;
    for (size_t p = 0; p < n; p++)
        out[p] = g[p] > t;
}

/* Texture evidence for the confidence: the components of m at least COMPANION_SHARE of the
 * largest (text lines are textured too, but small). */
static deid_status large_components(deid_live_map *map, const uint8_t *m, uint8_t *out,
                                    uint32_t *lab, uint32_t *stack)
{
    size_t n = 0, total = map->rows * map->cols, largest = 0;
    comp *c = components(m, map->rows, map->cols, lab, stack, &n);
    if (!c)
        return DEID_ERR_NOMEM;
    for (size_t k = 0; k < n; k++)
        largest = c[k].area > largest ? c[k].area : largest;
    map->live_count = 0;
    for (size_t p = 0; p < total; p++) {
        out[p] = lab[p] && (double)c[lab[p] - 1].area >= COMPANION_SHARE * (double)largest;
        map->live_count += out[p];
    }
    free(c);
    return DEID_OK;
}

/* ---- live evidence -------------------------------------------------------------------------- */

/* Mean absolute difference between consecutive sampled frames into mad; g0 gets the first
 * sampled frame, a and b are scratch frames. Returns the number of frame pairs used. */
static void brighten(uint8_t *bright, const float *g, size_t n)
{
    for (size_t p = 0; p < n; p++) {
        float v = g[p] + 0.5f;
        uint8_t u = v >= 255 ? 255 : (uint8_t)v;
        if (u > bright[p])
            bright[p] = u;
    }
}

static size_t temporal(const frame_src *s, size_t frames, unsigned max_frames,
                       deid_live_map *map, float *mad, float *g0, float *a, float *b)
{
    size_t pairs = 0;
    size_t n = frames < max_frames ? frames : max_frames, cells = map->rows * map->cols;
    memset(mad, 0, cells * sizeof *mad);
    grey_frame(s, 0, map, g0);
    brighten(map->bright, g0, cells);
    const float *prev = g0;
    float *cur = a;
    for (size_t k = 1; k < n; k++) {
        size_t f = (size_t)((double)k * (double)(frames - 1) / (double)(n - 1) + 0.5);
        grey_frame(s, f, map, cur);
        double total = 0;
        for (size_t p = 0; p < cells; p++)
            total += fabsf(cur[p] - prev[p]);
        /* A scan changes part of the picture; a pair differing this much on average is a cut
         * or an inverted frame, not motion. */
        if (total <= MAX_PAIR_CHANGE * (double)cells) {
            for (size_t p = 0; p < cells; p++)
                mad[p] += fabsf(cur[p] - prev[p]);
            brighten(map->bright, cur, cells);
            pairs++;
        }
        prev = cur;
        cur = cur == a ? b : a;
    }
    for (size_t p = 0; p < cells && pairs; p++)
        mad[p] /= (float)pairs;
    return pairs;
}

/* Local standard deviation of g over (2r+1)^2 windows into sd. */
static deid_status texture(const float *g, size_t rows, size_t cols, unsigned r, float *sd)
{
    size_t w = cols + 1, n;
    if (!deid__mul_size(rows + 1, w, &n))
        return deid__fail(DEID_ERR_LIMIT, M, "fan detection: image too large");
    double *s1 = deid__calloc(n, sizeof *s1), *s2 = deid__calloc(n, sizeof *s2);
    if (!s1 || !s2) {
        free(s1);
        free(s2);
        return DEID_ERR_NOMEM;
    }
    for (size_t i = 0; i < rows; i++) {
        double a = 0, b = 0;
        for (size_t j = 0; j < cols; j++) {
            double v = g[i * cols + j];
            a += v;
            b += v * v;
            s1[(i + 1) * w + j + 1] = s1[i * w + j + 1] + a;
            s2[(i + 1) * w + j + 1] = s2[i * w + j + 1] + b;
        }
    }
    for (size_t i = 0; i < rows; i++) {
        size_t i0 = i > r ? i - r : 0, i1 = i + r + 1 < rows ? i + r + 1 : rows;
        for (size_t j = 0; j < cols; j++) {
            size_t j0 = j > r ? j - r : 0, j1 = j + r + 1 < cols ? j + r + 1 : cols;
            double cnt = (double)((i1 - i0) * (j1 - j0));
            double a = s1[i1 * w + j1] - s1[i0 * w + j1] - s1[i1 * w + j0] + s1[i0 * w + j0];
            double b = s2[i1 * w + j1] - s2[i0 * w + j1] - s2[i1 * w + j0] + s2[i0 * w + j0];
            double var = b / cnt - (a / cnt) * (a / cnt);
            sd[i * cols + j] = (float)(var > 0 ? sqrt(var) : 0);
        }
    }
    free(s1);
    free(s2);
    return DEID_OK;
}

static size_t threshold(const float *v, size_t n, double floor_, uint8_t *out)
{
    double t = otsu(v, n);
    if (t < floor_)
        t = floor_;
    size_t count = 0;
    for (size_t p = 0; p < n; p++) {
        out[p] = v[p] > t;
        count += out[p];
    }
    return count;
}

/* Hysteresis: cells above the Otsu threshold, grown through the connected cells above a
 * fraction of it (the dim deep part of a fan, whose speckle changes less than the bright part
 * but far more than static text). Returns the count. */
static deid_status hysteresis(const deid_live_map *map, const float *v, double floor_,
                              uint8_t *out, uint32_t *lab, uint32_t *stack, size_t *count)
{
    size_t n = map->rows * map->cols, ncomp = 0;
    double hi = otsu(v, n);
    if (hi < floor_)
        hi = floor_;
    double lo = hi / HYSTERESIS_RATIO > floor_ ? hi / HYSTERESIS_RATIO : floor_;
    for (size_t p = 0; p < n; p++)
        out[p] = v[p] > lo;
    comp *c = components(out, map->rows, map->cols, lab, stack, &ncomp);
    uint8_t *seeded = c ? deid__calloc(ncomp + 1, 1) : NULL;
    if (!seeded) {
        free(c);
        return DEID_ERR_NOMEM;
    }
    for (size_t p = 0; p < n; p++)
        if (v[p] > hi)
            seeded[lab[p]] = 1;
    seeded[0] = 0;
    *count = 0;
    for (size_t p = 0; p < n; p++) {
        out[p] = seeded[lab[p]];
        *count += out[p];
    }
    free(seeded);
    free(c);
    return DEID_OK;
}

static void apply_prior(const deid_live_map *map, const deid_box *prior, float *m)
{
    if (!prior || !prior->valid)
        return;
    double k = map->scale;
    for (size_t i = 0; i < map->rows; i++)
        for (size_t j = 0; j < map->cols; j++) {
            double y = (double)i * k + (k - 1) / 2, x = (double)j * k + (k - 1) / 2;
            if (y < (double)prior->top - 2 || y > (double)prior->bottom + 2 ||
                x < (double)prior->left - 2 || x > (double)prior->right + 2)
                m[i * map->cols + j] = 0;
        }
}

static void init_source(const deid_image *img, frame_src *s)
{
    /* deid_image_data takes a mutable handle; the image is only read here. */
    s->data = deid_image_data((deid_image *)img);
    s->rows = deid_image_rows(img);
    s->cols = deid_image_cols(img);
    s->samples = deid_image_samples(img);
    s->bits = deid_image_bits(img);
    s->is_signed = deid_image_signed(img);
    s->kind = lum_of(deid_image_photometric(img), s->samples);
    s->frame_bytes = s->rows * s->cols * s->samples * (s->bits / 8);
    set_scale16(s);
}

/* Scratch buffers of one map (cells each): values, the first grey frame, two frames, three
 * masks, labels and a stack. */
typedef struct work {
    float *value, *g0, *a, *b;
    uint8_t *live, *clean, *tmp;
    uint32_t *lab, *stack;
    float *fbuf;
    uint8_t *mbuf;
} work;

static int work_alloc(work *w, size_t cells)
{
    w->fbuf = deid__malloc(4 * cells * sizeof *w->fbuf);
    w->mbuf = deid__malloc(3 * cells);
    w->lab = deid__malloc(2 * cells * sizeof *w->lab);
    if (!w->fbuf || !w->mbuf || !w->lab)
        return -1;
    w->value = w->fbuf;
    w->g0 = w->fbuf + cells;
    w->a = w->fbuf + 2 * cells;
    w->b = w->fbuf + 3 * cells;
    w->live = w->mbuf;
    w->clean = w->mbuf + cells;
    w->tmp = w->mbuf + 2 * cells;
    w->stack = w->lab + cells;
    return 0;
}

static void work_free(work *w)
{
    free(w->fbuf);
    free(w->mbuf);
    free(w->lab);
}

/* Frame differences: sets map->temporal when they tell live from static (some but not all of
 * the picture changes), then w->live (evidence) and w->clean (closed and opened). */
static deid_status temporal_evidence(deid_live_map *map, const frame_src *s, size_t frames,
                                     unsigned max_frames, const deid_box *prior, work *w)
{
    size_t cells = map->rows * map->cols;
    size_t pairs = temporal(s, frames, max_frames, map, w->value, w->g0, w->a, w->b);
    size_t n = pairs ? threshold(w->value, cells, TEMPORAL_FLOOR, w->live) : 0;
    map->temporal = (double)n >= MIN_TEMPORAL_SHARE * (double)cells &&
                    (double)n <= MAX_TEMPORAL_SHARE * (double)cells;
    if (!map->temporal) {
        memset(map->bright, 0, cells); /* only the first frame speaks for a single one */
        brighten(map->bright, w->g0, cells);
        return DEID_OK;
    }
    apply_prior(map, prior, w->value);
    deid_status st = hysteresis(map, w->value, TEMPORAL_FLOOR, w->live, w->lab, w->stack,
                                &map->live_count);
    if (st != DEID_OK)
        return st;
    memcpy(w->clean, w->live, cells);
    morph(w->clean, w->tmp, map->rows, map->cols, CLOSE_RADIUS, 1);
    morph(w->clean, w->tmp, map->rows, map->cols, CLOSE_RADIUS, 0);
    morph(w->clean, w->tmp, map->rows, map->cols, OPEN_RADIUS, 0);
    morph(w->clean, w->tmp, map->rows, map->cols, OPEN_RADIUS, 1);
    return DEID_OK;
}

/* Single-frame texture of w->g0: textured where the 7x7 window reaches non-black pixels (the
 * texture window alone reaches TEXTURE_RADIUS beyond the area, the non-black test over 3x3
 * reaches 1), cleaned into w->clean; w->live gets its large components. */
static deid_status texture_evidence(deid_live_map *map, const deid_box *prior, work *w)
{
    size_t cells = map->rows * map->cols, n;
    deid_status st = texture(w->g0, map->rows, map->cols, TEXTURE_RADIUS, w->value);
    if (st != DEID_OK)
        return st;
    apply_prior(map, prior, w->value);
    if ((st = hysteresis(map, w->value, TEXTURE_FLOOR, w->clean, w->lab, w->stack, &n)) != DEID_OK)
        return st;
    not_black(w->g0, w->clean, cells, w->live);
    morph(w->live, w->tmp, map->rows, map->cols, 1, 1);
    for (size_t p = 0; p < cells; p++)
        w->clean[p] &= w->live[p];
    morph(w->clean, w->tmp, map->rows, map->cols, CLOSE_RADIUS, 1);
    morph(w->clean, w->tmp, map->rows, map->cols, CLOSE_RADIUS, 0);
    morph(w->clean, w->tmp, map->rows, map->cols, OPEN_RADIUS + 1, 0);
    morph(w->clean, w->tmp, map->rows, map->cols, OPEN_RADIUS, 1);
    return large_components(map, w->clean, w->live, w->lab, w->stack);
}

/* The work grid: the image averaged over scale x scale blocks, about WORK_PIXELS cells. */
static deid_status layout(deid_live_map *map, const frame_src *s)
{
    memset(map, 0, sizeof *map);
    map->image_rows = s->rows;
    map->image_cols = s->cols;
    map->scale = 1;
    while ((s->rows / map->scale) * (s->cols / map->scale) > WORK_PIXELS)
        map->scale++;
    map->rows = s->rows / map->scale;
    map->cols = s->cols / map->scale;
    if (map->rows < 8 || map->cols < 8)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "fan detection: image of %zux%zu pixels",
                          s->rows, s->cols);
    return DEID_OK;
}

deid_status deid__live_map(const deid_image *img, unsigned max_frames, const deid_box *prior,
                           deid_live_map *map)
{
    frame_src s;
    init_source(img, &s);
    deid_status st = layout(map, &s);
    if (st != DEID_OK)
        return st;
    size_t cells = map->rows * map->cols; /* <= WORK_PIXELS: no overflow below */
    work w;
    memset(&w, 0, sizeof w);
    map->live = deid__malloc(cells);
    map->region = deid__malloc(cells);
    map->bright = deid__calloc(cells, 1);
    st = DEID_ERR_NOMEM;
    if (!map->live || !map->region || !map->bright || work_alloc(&w, cells) != 0)
        goto out;
    if (prior)
        map->prior = *prior;
    size_t frames = deid_image_frames(img);
    if (frames >= 2 && max_frames >= 2) {
        st = temporal_evidence(map, &s, frames, max_frames, prior, &w);
    } else {
        grey_frame(&s, 0, map, w.g0);
        brighten(map->bright, w.g0, cells);
        st = DEID_OK;
    }
    if (st == DEID_OK && !map->temporal)
        st = texture_evidence(map, prior, &w);
    if (st == DEID_OK) {
        memcpy(map->live, w.live, cells);
        st = select_region(map, w.clean, w.lab, w.stack);
    }
out:
    work_free(&w);
    if (st != DEID_OK)
        deid__live_map_free(map);
    return st;
}

void deid__live_map_free(deid_live_map *map)
{
    free(map->live);
    free(map->region);
    free(map->bright);
    map->live = map->region = map->bright = NULL;
}
