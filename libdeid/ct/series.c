/* libdeid: image series (include/deid/ct.h): slices put in order along the slice normal, what
 * the spacing says about them, volumes built from a series or from one multi-frame object, and
 * a volume written back into the slices. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "ct/ct_int.h"
#include "deid/image.h"
#include "dicom/dataset_int.h"
#include "pixel/pixel_int.h"

#define M "ct"
#define PI 3.14159265358979323846

#define T_MODALITY 0x00080060u
#define T_THICKNESS 0x00180050u
#define T_BETWEEN 0x00180088u
#define T_SERIES_UID 0x0020000Eu
#define T_INSTANCE 0x00200013u
#define T_IPP 0x00200032u
#define T_IOP 0x00200037u
#define T_FRAMES 0x00280008u
#define T_ROWS 0x00280010u
#define T_COLS 0x00280011u
#define T_SPACING 0x00280030u
#define T_BITS_STORED 0x00280101u
#define T_HIGH_BIT 0x00280102u
#define T_INTERCEPT 0x00281052u
#define T_SLOPE 0x00281053u
#define T_RESCALE_TYPE 0x00281054u
#define T_GRID_OFFSETS 0x3004000Cu
#define T_PIXEL_DATA 0x7FE00010u
#define T_SHARED_FG 0x52009229u
#define T_PERFRAME_FG 0x52009230u
#define T_PLANE_POSITION 0x00209113u
#define T_PLANE_ORIENTATION 0x00209116u
#define T_PIXEL_MEASURES 0x00289110u
#define T_PIXEL_TRANSFORM 0x00289145u

/* ---- reading attributes -------------------------------------------------------------------- */

size_t deid__ct_numbers(const deid_item *it, uint32_t tag, double *out, size_t max)
{
    const deid_elem *e = it ? deid__item_find(it, tag) : NULL;
    if (!e || !e->value || !e->len || e->vr == DEID_VR_SQ)
        return 0;
    char small[256], *s = small;
    if (e->len >= sizeof small && !(s = deid__malloc((size_t)e->len + 1)))
        return 0;
    memcpy(s, e->value, e->len);
    s[e->len] = '\0';
    size_t n = 0;
    for (char *p = s; n < max;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v))
            break;
        out[n++] = v;
        while (*end == ' ')
            end++;
        if (*end != '\\')
            break;
        p = end + 1;
    }
    if (s != small)
        free(s);
    return n;
}

static long us_value(const deid_item *it, uint32_t tag)
{
    const deid_elem *e = it ? deid__item_find(it, tag) : NULL;
    if (!e || !e->value || e->len < 2)
        return -1;
    return (long)(e->value[0] | e->value[1] << 8);
}

const char *deid__ct_text(const deid_item *it, uint32_t tag, char *buf, size_t cap)
{
    const deid_elem *e = it ? deid__item_find(it, tag) : NULL;
    buf[0] = '\0';
    if (e && e->value && e->vr != DEID_VR_SQ)
        deid__elem_text(e, buf, cap);
    return buf;
}

/* Item i of sequence `tag`, NULL when absent. */
static const deid_item *seq_item(const deid_item *it, uint32_t tag, size_t i)
{
    const deid_elem *e = it ? deid__item_find(it, tag) : NULL;
    return e && e->vr == DEID_VR_SQ && i < e->nitems ? &e->items[i] : NULL;
}

/* What one slice (or frame) says about its place and pixels. */
typedef struct plane {
    double ipp[3], iop[6], ps[2];
    int has_ipp, has_iop, has_ps, has_inst;
    long inst;
    double slope, intercept;
    double thick, between;  /* SliceThickness, SpacingBetweenSlices; 0 when absent */
    long rows, cols;
} plane;

static void plane_defaults(plane *p)
{
    memset(p, 0, sizeof *p);
    p->slope = 1.0;
    p->rows = p->cols = -1;
}

/* Fill what `it` holds of the plane attributes (a data set or a functional group item). */
static void plane_read(const deid_item *it, plane *p)
{
    double v[6];
    if (deid__ct_numbers(it, T_IPP, v, 3) == 3) {
        memcpy(p->ipp, v, sizeof p->ipp);
        p->has_ipp = 1;
    }
    if (deid__ct_numbers(it, T_IOP, v, 6) == 6) {
        memcpy(p->iop, v, sizeof p->iop);
        p->has_iop = 1;
    }
    if (deid__ct_numbers(it, T_SPACING, v, 2) == 2 && v[0] > 0 && v[1] > 0) {
        memcpy(p->ps, v, sizeof p->ps);
        p->has_ps = 1;
    }
    if (deid__ct_numbers(it, T_INSTANCE, v, 1) == 1) {
        p->inst = (long)v[0];
        p->has_inst = 1;
    }
    if (deid__ct_numbers(it, T_SLOPE, v, 1) == 1 && v[0] != 0)
        p->slope = v[0];
    if (deid__ct_numbers(it, T_INTERCEPT, v, 1) == 1)
        p->intercept = v[0];
    if (deid__ct_numbers(it, T_THICKNESS, v, 1) == 1 && v[0] > 0)
        p->thick = v[0];
    if (deid__ct_numbers(it, T_BETWEEN, v, 1) == 1 && v[0] > 0)
        p->between = fabs(v[0]);
    long r = us_value(it, T_ROWS), c = us_value(it, T_COLS);
    if (r > 0)
        p->rows = r;
    if (c > 0)
        p->cols = c;
}

/* A functional group item: its Plane Position, Plane Orientation, Pixel Measures and Pixel
 * Value Transformation macros. */
static void plane_read_group(const deid_item *fg, plane *p)
{
    static const uint32_t macros[] = {T_PLANE_POSITION, T_PLANE_ORIENTATION, T_PIXEL_MEASURES,
                                      T_PIXEL_TRANSFORM};
    for (size_t m = 0; m < sizeof macros / sizeof *macros; m++)
        plane_read(seq_item(fg, macros[m], 0), p);
}

static void cross(const double a[3], const double b[3], double out[3])
{
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

static double dot(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static double norm(const double a[3]) { return sqrt(dot(a, a)); }

/* Unit normal of an orientation (row x column); 0 when degenerate. */
static int iop_normal(const double iop[6], double n[3])
{
    cross(iop, iop + 3, n);
    double l = norm(n);
    if (!(l > 1e-6))
        return 0;
    for (int a = 0; a < 3; a++)
        n[a] /= l;
    return 1;
}

/* ---- order and description ----------------------------------------------------------------- */

/* The planes in order along the normal, and what that says. */
typedef struct layout {
    size_t n;
    size_t *idx;      /* idx[k]: the plane at position k */
    double *pos;      /* pos[k]: its position along the normal (or InstanceNumber) */
    int geo;          /* 1: every plane has a position and the first orientation is usable */
    double normal[3];
    double median;    /* median spacing between distinct positions (0 when none) */
    deid_series_report rep;
} layout;

static void layout_free(layout *l)
{
    free(l->idx);
    free(l->pos);
}

typedef struct sort_key {
    double pos;
    long inst;
    size_t i;
} sort_key;

static int cmp_key(const void *a, const void *b)
{
    const sort_key *x = a, *y = b;
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    if (x->inst != y->inst)
        return x->inst < y->inst ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int same_orientation(const plane *a, const plane *b)
{
    if (a->has_iop != b->has_iop)
        return 0;
    for (int c = 0; a->has_iop && c < 6; c++)
        if (fabs(a->iop[c] - b->iop[c]) > 1e-3)
            return 0;
    return 1;
}

/* Distance between the slices at positions k and k + 1. */
static double step(const plane *pl, const layout *l, size_t k)
{
    if (l->geo) {
        const double *a = pl[l->idx[k]].ipp, *b = pl[l->idx[k + 1]].ipp;
        double d[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
        return norm(d);
    }
    const plane *f = &pl[l->idx[0]];
    double unit = f->between > 0 ? f->between : f->thick > 0 ? f->thick : 1.0;
    return fabs(l->pos[k + 1] - l->pos[k]) * unit;
}

/* Spacing statistics, missing slices, duplicates, tilt, mixed sizes, and the message. */
static deid_status describe(const plane *pl, layout *l)
{
    deid_series_report *r = &l->rep;
    memset(r, 0, sizeof *r);
    size_t n = l->n;
    r->slices = n;
    for (size_t i = 1; i < n; i++)
        if (pl[i].rows != pl[0].rows || pl[i].cols != pl[0].cols ||
            !same_orientation(&pl[i], &pl[0]))
            r->mixed_sizes = 1;
    double *d = n > 1 ? deid__malloc((n - 1) * sizeof *d) : NULL;
    if (n > 1 && !d)
        return DEID_ERR_NOMEM;
    size_t nd = 0;
    for (size_t k = 0; k + 1 < n; k++) {
        double s = step(pl, l, k);
        if (s > 1e-3)
            d[nd++] = s;
    }
    if (nd) {
        qsort(d, nd, sizeof *d, cmp_double);
        l->median = nd & 1 ? d[nd / 2] : 0.5 * (d[nd / 2 - 1] + d[nd / 2]);
    }
    double m = l->median, dup = 1e-3 + 0.01 * m;
    size_t gap_at = 0;
    r->spacing = m;
    r->spacing_min = HUGE_VAL;
    for (size_t k = 0; k + 1 < n; k++) {
        double s = step(pl, l, k);
        if (s < dup) {
            r->duplicates++;
            continue;
        }
        if (s < r->spacing_min)
            r->spacing_min = s;
        if (s > r->spacing_max)
            r->spacing_max = s;
        double ratio = s / m;
        if (ratio >= 1.5) {
            if (!r->missing)
                gap_at = k;
            r->missing += (size_t)floor(ratio + 0.5) - 1;
        }
    }
    if (r->spacing_min == HUGE_VAL)
        r->spacing_min = 0;
    r->uneven = r->missing > 0 || (m > 0 && r->spacing_max - r->spacing_min > 0.1 * m);
    if (l->geo && n > 1) {
        const double *a = pl[l->idx[0]].ipp, *b = pl[l->idx[n - 1]].ipp;
        double v[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, len = norm(v);
        if (len > 1e-6) {
            double c = fabs(dot(v, l->normal)) / len;
            r->tilt_degrees = acos(c > 1 ? 1 : c) * 180.0 / PI;
        }
    }
    free(d);

    int o = snprintf(r->message, sizeof r->message, "%zu slice%s, %.2f mm", n, n == 1 ? "" : "s",
                     m);
    size_t cap = sizeof r->message;
#define MORE(...)                                                                                \
    do {                                                                                         \
        if (o >= 0 && (size_t)o < cap)                                                           \
            o += snprintf(r->message + o, cap - (size_t)o, __VA_ARGS__);                         \
    } while (0)
    if (r->missing)
        MORE(", %zu missing (first gap between slices %zu and %zu)", r->missing, gap_at + 1,
             gap_at + 2);
    if (r->duplicates)
        MORE(", %zu duplicate%s", r->duplicates, r->duplicates == 1 ? "" : "s");
    if (r->uneven && !r->missing)
        MORE(", uneven spacing %.2f to %.2f mm", r->spacing_min, r->spacing_max);
    if (r->tilt_degrees >= 0.1)
        MORE(", gantry tilt %.1f degrees", r->tilt_degrees);
    if (r->mixed_sizes)
        MORE(", mixed sizes or orientations");
    if (!l->geo && n > 1)
        MORE(", ordered by InstanceNumber (no position)");
#undef MORE
    return DEID_OK;
}

/* Order `n` planes along the normal of the first orientation (InstanceNumber when a position
 * or every orientation is missing) and describe them. */
static deid_status layout_make(const plane *pl, size_t n, layout *l)
{
    memset(l, 0, sizeof *l);
    l->n = n;
    sort_key *keys = deid__calloc(n, sizeof *keys);
    l->idx = deid__calloc(n, sizeof *l->idx);
    l->pos = deid__calloc(n, sizeof *l->pos);
    if (!keys || !l->idx || !l->pos) {
        free(keys);
        layout_free(l);
        return DEID_ERR_NOMEM;
    }
    const plane *ref = NULL;
    for (size_t i = 0; i < n && !ref; i++)
        if (pl[i].has_iop)
            ref = &pl[i];
    l->geo = ref && iop_normal(ref->iop, l->normal);
    for (size_t i = 0; i < n && l->geo; i++)
        l->geo = pl[i].has_ipp;
    for (size_t i = 0; i < n; i++) {
        keys[i].inst = pl[i].has_inst ? pl[i].inst : (long)i;
        keys[i].pos = l->geo ? dot(pl[i].ipp, l->normal) : (double)keys[i].inst;
        keys[i].i = i;
    }
    qsort(keys, n, sizeof *keys, cmp_key);
    for (size_t k = 0; k < n; k++) {
        l->idx[k] = keys[k].i;
        l->pos[k] = keys[k].pos;
    }
    free(keys);
    deid_status st = describe(pl, l);
    if (st != DEID_OK)
        layout_free(l);
    return st;
}

/* ---- series -------------------------------------------------------------------------------- */

deid_status deid_series_new(deid_series **out)
{
    if (!out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_series_new: NULL argument");
    deid_series *s = deid__calloc(1, sizeof *s);
    if (!s)
        return DEID_ERR_NOMEM;
    *out = s;
    return DEID_OK;
}

void deid_series_free(deid_series *series)
{
    if (!series)
        return;
    for (size_t i = 0; i < series->n; i++) {
        deid_dataset_free(series->v[i].ds);
        free(series->v[i].path);
    }
    free(series->v);
    free(series->series_uid);
    free(series);
}

deid_status deid_series_add(deid_series *series, deid_dataset *ds, const char *path)
{
    if (!series || !ds)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_series_add: NULL argument");
    const char *name = path ? path : "slice";
    if (!deid__item_find(&ds->root, T_PIXEL_DATA))
        return deid__fail(DEID_ERR_ARGUMENT, M, "%s: no Pixel Data", name);
    char uid[72];
    deid__ct_text(&ds->root, T_SERIES_UID, uid, sizeof uid);
    if (series->n && (series->series_uid ? strcmp(series->series_uid, uid) != 0 : uid[0] != 0))
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "%s: belongs to another series than the slices already added", name);
    if (series->n == series->cap) {
        size_t cap = series->cap ? series->cap * 2 : 16, bytes;
        if (!deid__mul_size(cap, sizeof *series->v, &bytes))
            return DEID_ERR_NOMEM;
        deid__slice *v = deid__realloc(series->v, bytes);
        if (!v)
            return DEID_ERR_NOMEM;
        series->v = v;
        series->cap = cap;
    }
    char *p = NULL, *u = NULL;
    if ((path && !(p = deid__strdup(path))) ||
        (!series->n && uid[0] && !(u = deid__strdup(uid)))) {
        free(p);
        return DEID_ERR_NOMEM;
    }
    if (!series->n)
        series->series_uid = u;
    series->v[series->n++] = (deid__slice){ds, p, 0.0};
    series->sorted = 0;
    return DEID_OK;
}

size_t deid_series_count(const deid_series *series) { return series ? series->n : 0; }

deid_dataset *deid_series_dataset(deid_series *series, size_t i)
{
    return series && i < series->n ? series->v[i].ds : NULL;
}

const char *deid_series_path(const deid_series *series, size_t i)
{
    return series && i < series->n ? series->v[i].path : NULL;
}

/* The planes of every slice, in the series' current order. */
static deid_status series_planes(const deid_series *s, plane **out)
{
    plane *pl = deid__calloc(s->n, sizeof *pl);
    if (!pl)
        return DEID_ERR_NOMEM;
    for (size_t i = 0; i < s->n; i++) {
        plane_defaults(&pl[i]);
        plane_read(&s->v[i].ds->root, &pl[i]);
    }
    *out = pl;
    return DEID_OK;
}

static deid_status series_layout(const deid_series *s, plane **pl, layout *l)
{
    if (!s || !s->n)
        return deid__fail(s ? DEID_ERR_UNSUPPORTED : DEID_ERR_ARGUMENT, M,
                          "series: no slices");
    deid_status st = series_planes(s, pl);
    if (st != DEID_OK)
        return st;
    st = layout_make(*pl, s->n, l);
    if (st != DEID_OK) {
        free(*pl);
        *pl = NULL;
    }
    return st;
}

deid_status deid_series_sort(deid_series *series, deid_series_report *report)
{
    plane *pl;
    layout l;
    deid_status st = series_layout(series, &pl, &l);
    if (st != DEID_OK)
        return st;
    deid__slice *v = deid__malloc(series->n * sizeof *v);
    if (!v) {
        free(pl);
        layout_free(&l);
        return DEID_ERR_NOMEM;
    }
    for (size_t k = 0; k < series->n; k++) {
        v[k] = series->v[l.idx[k]];
        v[k].pos = l.pos[k];
    }
    memcpy(series->v, v, series->n * sizeof *v);
    free(v);
    memcpy(series->normal, l.normal, sizeof series->normal);
    series->sorted = 1;
    if (report)
        *report = l.rep;
    free(pl);
    layout_free(&l);
    return DEID_OK;
}

/* ---- volumes ------------------------------------------------------------------------------- */

/* Geometry of the ordered planes: see deid_volume_geometry in ct.h. */
/* Slices of the volume for a layout: one per plane, or, when the spacing says slices are
 * missing (and none is duplicated), one per place along the regular grid from the first to
 * the last position, so every plane keeps its own position and the missing ones are filled
 * (volume_from_series copies the nearest plane into them). */
static size_t grid_slices(const layout *l)
{
    if (!l->geo || l->n < 2 || !(l->median > 0) || !l->rep.missing || l->rep.duplicates)
        return l->n;
    double span = l->pos[l->n - 1] - l->pos[0];
    double want = floor(span / l->median + 0.5) + 1;
    return want > (double)l->n && want <= 4.0 * (double)l->n ? (size_t)want : l->n;
}

/* The grid slice of plane k (at position pos[k]) for a volume of `nk` slices. */
static size_t grid_index(const layout *l, size_t k, size_t nk)
{
    if (nk == l->n)
        return k;
    double t = floor((l->pos[k] - l->pos[0]) / l->median + 0.5);
    return t < 0 ? 0 : t > (double)(nk - 1) ? nk - 1 : (size_t)t;
}

static void make_geometry(const plane *pl, const layout *l, deid_volume_geometry *g)
{
    const plane *f = &pl[l->idx[0]];
    g->dims[0] = (size_t)f->cols;
    g->dims[1] = (size_t)f->rows;
    g->dims[2] = grid_slices(l);
    g->spacing[0] = f->has_ps ? f->ps[1] : 1.0;
    g->spacing[1] = f->has_ps ? f->ps[0] : 1.0;
    double fallback = f->between > 0 ? f->between : f->thick > 0 ? f->thick : 1.0;
    g->spacing[2] = l->median > 0 ? l->median : fallback;
    memset(g->direction, 0, sizeof g->direction);
    memset(g->origin, 0, sizeof g->origin);
    if (!l->geo) {
        for (int a = 0; a < 3; a++)
            g->direction[4 * a] = 1.0;
        if (f->has_iop) {
            double nrm[3];
            if (iop_normal(f->iop, nrm)) {
                memcpy(g->direction, f->iop, 6 * sizeof(double));
                memcpy(g->direction + 6, nrm, sizeof nrm);
            }
        }
        if (f->has_ipp)
            memcpy(g->origin, f->ipp, sizeof g->origin);
        return;
    }
    for (int a = 0; a < 2; a++) {
        const double *d = f->iop + 3 * a;
        double len = norm(d);
        for (int c = 0; c < 3; c++)
            g->direction[3 * a + c] = d[c] / len;
    }
    memcpy(g->origin, f->ipp, sizeof g->origin);
    memcpy(g->direction + 6, l->normal, sizeof l->normal);
    if (l->n > 1) {
        const double *b = pl[l->idx[l->n - 1]].ipp;
        double v[3] = {b[0] - f->ipp[0], b[1] - f->ipp[1], b[2] - f->ipp[2]}, len = norm(v);
        if (len > 1e-6) {
            for (int c = 0; c < 3; c++)
                g->direction[6 + c] = v[c] / len;
            if (!l->rep.missing && !l->rep.duplicates)
                g->spacing[2] = len / (double)(l->n - 1);
        }
    }
}

static int is_hounsfield(const deid_item *root, const deid_item *transform)
{
    char mod[20], type[70];
    if (strcmp(deid__ct_text(root, T_MODALITY, mod, sizeof mod), "CT"))
        return 0;
    deid__ct_text(transform ? transform : root, T_RESCALE_TYPE, type, sizeof type);
    if (!type[0] && transform)
        deid__ct_text(root, T_RESCALE_TYPE, type, sizeof type);
    return !type[0] || !strcmp(type, "HU");
}

static deid_status check_mixed(const layout *l, const char *what)
{
    if (l->rep.mixed_sizes)
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "%s: slices differ in rows, columns or orientation", what);
    return DEID_OK;
}

/* A new volume for the ordered planes, rescale from the first. */
static deid_status volume_for(const plane *pl, const layout *l, int hounsfield, const char *what,
                              deid_volume **out)
{
    deid_status st = check_mixed(l, what);
    if (st != DEID_OK)
        return st;
    const plane *f = &pl[l->idx[0]];
    if (f->rows <= 0 || f->cols <= 0)
        return deid__fail(DEID_ERR_NO_PIXELS, M, "%s: no Rows/Columns", what);
    deid_volume_geometry g;
    make_geometry(pl, l, &g);
    deid_volume *v;
    if ((st = deid_volume_new(g.dims, &v)) != DEID_OK)
        return st;
    v->geom = g;
    v->slope = f->slope;
    v->intercept = f->intercept;
    v->hounsfield = hounsfield;
    *out = v;
    return DEID_OK;
}

/* Frame `frame` of `img` into slice k of `v`, converted from the frame's rescale to the
 * volume's when they differ. */
static deid_status copy_frame(deid_volume *v, size_t k, const deid_image *img, size_t frame,
                              const plane *p, const char *what)
{
    size_t nx = v->geom.dims[0], ny = v->geom.dims[1], plane_n = nx * ny;
    if (img->samples != 1 || strncmp(img->photometric, "MONOCHROME", 10))
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: %s images are not a volume", what,
                          img->photometric);
    if (img->rows != ny || img->cols != nx || frame >= img->frames)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: frame of %zu x %zu in a %zu x %zu volume",
                          what, img->cols, img->rows, nx, ny);
    int32_t *dst = v->vox + k * plane_n;
    if (img->bits == 8) {
        const uint8_t *s8 = img->data + frame * plane_n;
        for (size_t i = 0; i < plane_n; i++)
            dst[i] = img->is_signed ? (int32_t)(int8_t)s8[i] : (int32_t)s8[i];
    } else {
        const uint8_t *base = img->data + frame * plane_n * 2;
        if (img->is_signed) {
            const int16_t *s = (const int16_t *)(const void *)base;
            for (size_t i = 0; i < plane_n; i++)
                dst[i] = s[i];
        } else {
            const uint16_t *s = (const uint16_t *)(const void *)base;
            for (size_t i = 0; i < plane_n; i++)
                dst[i] = s[i];
        }
    }
    if (p->slope != v->slope || p->intercept != v->intercept)
        for (size_t i = 0; i < plane_n; i++)
            dst[i] = deid__vol_stored(v, dst[i] * p->slope + p->intercept);
    return DEID_OK;
}

/* Missing slices (a gap in the series): a copy of the nearest filled slice, so defacing sees
 * continuous anatomy; they are not written back (no slice lies there). */
static void fill_gaps(deid_volume *v, const uint8_t *filled)
{
    size_t nk = v->geom.dims[2], plane_n = v->geom.dims[0] * v->geom.dims[1];
    for (size_t kk = 0; kk < nk; kk++) {
        if (filled[kk])
            continue;
        size_t from = kk;
        for (size_t d = 1; d < nk; d++) {
            if (kk >= d && filled[kk - d]) {
                from = kk - d;
                break;
            }
            if (kk + d < nk && filled[kk + d]) {
                from = kk + d;
                break;
            }
        }
        memcpy(v->vox + kk * plane_n, v->vox + from * plane_n, plane_n * sizeof *v->vox);
    }
}

/* The first frame of one slice, the error prefixed with its path. */
static deid_status decode_slice(const deid__slice *s, deid_image **img)
{
    deid_status st = deid_image_decode(s->ds, 0, 1, 0, img);
    if (st != DEID_OK)
        deid__error_prefix(s->path ? s->path : "slice");
    return st;
}

/* The volume of a series; with `drop`, each slice's Pixel Data is removed once it is in the
 * volume (the caller writes the volume back or nothing). */
static deid_status from_series(const deid_series *series, int drop, deid_volume **out)
{
    plane *pl;
    layout l;
    deid_status st = series_layout(series, &pl, &l);
    if (st != DEID_OK)
        return st;
    const deid_dataset *first = series->v[l.idx[0]].ds;
    /* The first slice is decoded before the volume is allocated: its Rows and Columns are then
     * backed by pixel data, so a small file cannot make the volume claim gigabytes. */
    deid_image *img = NULL;
    st = decode_slice(&series->v[l.idx[0]], &img);
    deid_volume *v = NULL;
    if (st == DEID_OK)
        st = volume_for(pl, &l, is_hounsfield(&first->root, NULL), "series", &v);
    size_t nk = v ? v->geom.dims[2] : 0;
    uint8_t *filled = st == DEID_OK ? deid__calloc(nk, 1) : NULL;
    if (st == DEID_OK && !filled)
        st = DEID_ERR_NOMEM;
    for (size_t k = 0; st == DEID_OK && k < l.n; k++) {
        const deid__slice *s = &series->v[l.idx[k]];
        const char *what = s->path ? s->path : "slice";
        if (k > 0 && (st = decode_slice(s, &img)) != DEID_OK)
            break;
        size_t kk = grid_index(&l, k, nk);
        st = copy_frame(v, kk, img, 0, &pl[l.idx[k]], what);
        filled[kk] = 1;
        deid_image_free(img);
        img = NULL;
        if (drop && deid_dataset_remove(s->ds, T_PIXEL_DATA) != DEID_OK)
            deid_clear_error();
        if (drop && (k + 1) % 64 == 0) /* the dropped pixels go back, not just to the heap */
            deid__heap_trim();
    }
    deid_image_free(img);
    if (st == DEID_OK)
        fill_gaps(v, filled);
    free(filled);
    free(pl);
    layout_free(&l);
    if (st != DEID_OK) {
        deid_volume_free(v);
        return st;
    }
    *out = v;
    return DEID_OK;
}

deid_status deid_volume_from_series(const deid_series *series, deid_volume **out)
{
    if (!series || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_volume_from_series: NULL argument");
    return from_series(series, 0, out);
}

deid_status deid__volume_from_series_taking_pixels(deid_series *series, deid_volume **out)
{
    if (!series || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_volume_from_series: NULL argument");
    return from_series(series, 1, out);
}

/* Frame positions of a multi-frame object without per-frame positions: its one
 * ImagePositionPatient moved along the normal by GridFrameOffsetVector, or by
 * SpacingBetweenSlices (SliceThickness) per frame. */
static void legacy_positions(const deid_item *root, plane *pl, size_t n)
{
    double nrm[3];
    if (!pl[0].has_ipp || !pl[0].has_iop || !iop_normal(pl[0].iop, nrm))
        return;
    for (size_t f = 1; f < n; f++)
        if (pl[f].has_ipp && memcmp(pl[f].ipp, pl[0].ipp, sizeof pl[0].ipp))
            return; /* positions of their own */
    double *off = deid__calloc(n, sizeof *off);
    if (!off)
        return;
    int grid = deid__ct_numbers(root, T_GRID_OFFSETS, off, n) == n;
    double sp = pl[0].between > 0 ? pl[0].between : pl[0].thick;
    for (size_t f = 0; f < n; f++) {
        double t = grid ? off[f] - off[0] : (double)f * sp;
        for (int c = 0; c < 3; c++)
            pl[f].ipp[c] = pl[0].ipp[c] + t * nrm[c];
        pl[f].has_ipp = 1;
    }
    free(off);
}

/* The planes of a multi-frame object's n frames: its own attributes, then the shared and the
 * frame's functional groups, legacy positions filled in. NULL when out of memory. */
static plane *frame_planes(const deid_dataset *ds, size_t n)
{
    plane *pl = deid__calloc(n, sizeof *pl);
    if (!pl)
        return NULL;
    const deid_item *shared = seq_item(&ds->root, T_SHARED_FG, 0);
    for (size_t f = 0; f < n; f++) {
        plane_defaults(&pl[f]);
        plane_read(&ds->root, &pl[f]);
        pl[f].has_inst = 0;
        plane_read_group(shared, &pl[f]);
        plane_read_group(seq_item(&ds->root, T_PERFRAME_FG, f), &pl[f]);
        pl[f].inst = (long)f;
        pl[f].has_inst = 1;
    }
    legacy_positions(&ds->root, pl, n);
    return pl;
}

/* NumberOfFrames of a multi-frame object (1 without it), at most ten million. */
static deid_status frame_count(const deid_dataset *ds, const char *what, size_t *n)
{
    double nf = 1;
    if (deid__ct_numbers(&ds->root, T_FRAMES, &nf, 1) != 1 || nf < 1)
        nf = 1;
    if (nf > 1e7)
        return deid__fail(DEID_ERR_LIMIT, M, "%s: %.0f frames", what, nf);
    *n = (size_t)nf;
    return DEID_OK;
}

deid_status deid_volume_from_dataset(const deid_dataset *ds, deid_volume **out)
{
    if (!ds || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_volume_from_dataset: NULL argument");
    const char *what = ds->name ? ds->name : "dataset";
    if (!deid__item_find(&ds->root, T_PIXEL_DATA))
        return deid__fail(DEID_ERR_NO_PIXELS, M, "%s: no Pixel Data", what);
    size_t n;
    deid_status st = frame_count(ds, what, &n);
    if (st != DEID_OK)
        return st;
    /* Decoded first: the frames' planes and the volume are sized by pixel data that is there,
     * not by what NumberOfFrames, Rows and Columns claim. */
    deid_image *img = NULL;
    st = deid_image_decode(ds, 0, 0, 0, &img);
    if (st != DEID_OK)
        return st;
    if (img->frames < n) {
        st = deid__fail(DEID_ERR_NO_PIXELS, M, "%s: %zu frames decoded of %zu", what, img->frames,
                        n);
        deid_image_free(img);
        return st;
    }
    plane *pl = frame_planes(ds, n);
    if (!pl) {
        deid_image_free(img);
        return DEID_ERR_NOMEM;
    }
    const deid_item *shared = seq_item(&ds->root, T_SHARED_FG, 0);
    layout l;
    st = layout_make(pl, n, &l);
    if (st != DEID_OK) {
        deid_image_free(img);
        free(pl);
        return st;
    }
    deid_volume *v = NULL;
    st = volume_for(pl, &l, is_hounsfield(&ds->root, seq_item(shared, T_PIXEL_TRANSFORM, 0)),
                    what, &v);
    size_t nk = v ? v->geom.dims[2] : 0;
    uint8_t *filled = st == DEID_OK ? deid__calloc(nk, 1) : NULL;
    if (st == DEID_OK && !filled)
        st = DEID_ERR_NOMEM;
    for (size_t k = 0; st == DEID_OK && k < n; k++) {
        size_t kk = grid_index(&l, k, nk);
        st = copy_frame(v, kk, img, l.idx[k], &pl[l.idx[k]], what);
        filled[kk] = 1;
    }
    if (st == DEID_OK)
        fill_gaps(v, filled);
    free(filled);
    deid_image_free(img);
    free(pl);
    layout_free(&l);
    if (st != DEID_OK) {
        deid_volume_free(v);
        return st;
    }
    *out = v;
    return DEID_OK;
}

/* ---- writing a volume back ------------------------------------------------------------------ */

/* The volume slice nearest to a slice at `ipp` (-1 when farther than half a spacing). */
static long nearest_slice(const deid_volume *vol, const double ipp[3])
{
    const deid_volume_geometry *g = &vol->geom;
    double d[3] = {ipp[0] - g->origin[0], ipp[1] - g->origin[1], ipp[2] - g->origin[2]};
    double t = dot(d, g->direction + 6) / g->spacing[2], k = floor(t + 0.5);
    if (k < 0 || k >= (double)g->dims[2] || fabs(t - k) > 0.5 + 1e-6)
        return -1;
    return (long)k;
}

/* Volume slice k in the slice's own stored units, as a one-frame image that holds them (the
 * slice's bits and signedness when the values fit; 16 bits, then the other signedness, then
 * clamped otherwise). */
static deid_status slice_image(const deid_volume *vol, size_t k, const deid_dataset *ds,
                               const plane *p, deid_image **out, unsigned *needed_bits)
{
    size_t nx = vol->geom.dims[0], ny = vol->geom.dims[1], n = nx * ny;
    const int32_t *src = vol->vox + k * n;
    int32_t *tmp = deid__malloc(n * sizeof *tmp);
    if (!tmp)
        return DEID_ERR_NOMEM;
    int same = p->slope == vol->slope && p->intercept == vol->intercept;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        int32_t s = src[i];
        if (!same) {
            double val = deid__vol_value(vol, s), t = floor((val - p->intercept) / p->slope + 0.5);
            s = t < INT32_MIN ? INT32_MIN : t > INT32_MAX ? INT32_MAX : (int32_t)t;
        }
        tmp[i] = s;
        if (s < lo)
            lo = s;
        if (s > hi)
            hi = s;
    }
    long ba = us_value(&ds->root, 0x00280100u), pr = us_value(&ds->root, 0x00280103u);
    int sign = pr == 1;
    unsigned bits = ba == 8 ? 8 : 16;
    if (bits == 8 && !(sign ? lo >= -128 && hi <= 127 : lo >= 0 && hi <= 255))
        bits = 16;
    if (bits == 16 && !(sign ? lo >= -32768 && hi <= 32767 : lo >= 0 && hi <= 65535)) {
        if (!sign && lo >= -32768 && hi <= 32767)
            sign = 1;
        else if (sign && lo >= 0 && hi <= 65535)
            sign = 0;
    }
    int64_t cmin = bits == 8 ? (sign ? -128 : 0) : (sign ? -32768 : 0);
    int64_t cmax = bits == 8 ? (sign ? 127 : 255) : (sign ? 32767 : 65535);
    char pi[20];
    deid__ct_text(&ds->root, 0x00280004u, pi, sizeof pi);
    if (strcmp(pi, "MONOCHROME1"))
        strcpy(pi, "MONOCHROME2");
    deid_image *img = deid__image_new(1, ny, nx, 1, bits, sign, pi);
    if (!img) {
        free(tmp);
        return deid_last_error_code();
    }
    for (size_t i = 0; i < n; i++) {
        int64_t s = tmp[i] < cmin ? cmin : tmp[i] > cmax ? cmax : tmp[i];
        if (bits == 8)
            img->data[i] = (uint8_t)(int8_t)s;
        else if (sign)
            ((int16_t *)(void *)img->data)[i] = (int16_t)s;
        else
            ((uint16_t *)(void *)img->data)[i] = (uint16_t)s;
    }
    free(tmp);
    /* bits that the values need: the stored bits must cover them */
    unsigned need = 1;
    int64_t a = lo < cmin ? cmin : lo, b = hi > cmax ? cmax : hi;
    while (need < bits && (sign ? (a < -((int64_t)1 << (need - 1)) ||
                                   b > ((int64_t)1 << (need - 1)) - 1)
                                : b > ((int64_t)1 << need) - 1))
        need++;
    *needed_bits = need;
    *out = img;
    return DEID_OK;
}

static deid_status set_us(deid_dataset *ds, uint32_t tag, unsigned v)
{
    uint8_t b[2] = {(uint8_t)(v & 0xFF), (uint8_t)(v >> 8)};
    return deid_dataset_set(ds, tag, "US", b, 2);
}

/* Slice k of the volume into one dataset, uncompressed; Bits Stored widened when the values
 * need more than the slice said. */
static deid_status write_slice(const deid_volume *vol, size_t k, deid_dataset *ds,
                               const plane *p)
{
    deid_image *img = NULL;
    unsigned need = 16;
    deid_status st = slice_image(vol, k, ds, p, &img, &need);
    if (st != DEID_OK)
        return st;
    deid_encode_options o = DEID_ENCODE_OPTIONS_INIT;
    o.codec = DEID_CODEC_UNCOMPRESSED;
    st = deid_dataset_set_pixels(ds, img, &o);
    unsigned bits = img->bits;
    deid_image_free(img);
    long bs = us_value(&ds->root, T_BITS_STORED);
    if (st == DEID_OK && bs > 0 && (unsigned)bs < need) {
        st = set_us(ds, T_BITS_STORED, bits);
        if (st == DEID_OK)
            st = set_us(ds, T_HIGH_BIT, bits - 1);
    }
    return st;
}

struct deid__series_writeback {
    deid_series *series;
    const deid_volume *vol;
    plane *pl;
    long *k; /* per slice (series order): its volume slice, -1 when none matches */
};

void deid__series_writeback_free(deid__series_writeback *wb)
{
    if (!wb)
        return;
    free(wb->pl);
    free(wb->k);
    free(wb);
}

deid_status deid__series_writeback_new(deid_series *series, const deid_volume *vol,
                                       deid__series_writeback **out, size_t *unmatched)
{
    if (!series || !vol || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_series_set_volume: NULL argument");
    deid__series_writeback *wb = deid__calloc(1, sizeof *wb);
    if (!wb)
        return DEID_ERR_NOMEM;
    wb->series = series;
    wb->vol = vol;
    layout l;
    deid_status st = series_layout(series, &wb->pl, &l);
    if (st != DEID_OK) {
        free(wb);
        return st;
    }
    const plane *pl = wb->pl;
    for (size_t i = 0; i < series->n && st == DEID_OK; i++)
        if (pl[i].cols != (long)vol->geom.dims[0] || pl[i].rows != (long)vol->geom.dims[1])
            st = deid__fail(DEID_ERR_ARGUMENT, M,
                            "%s: slice of %ld x %ld, volume of %zu x %zu",
                            series->v[i].path ? series->v[i].path : "slice", pl[i].cols,
                            pl[i].rows, vol->geom.dims[0], vol->geom.dims[1]);
    if (st == DEID_OK && !(wb->k = deid__calloc(series->n ? series->n : 1, sizeof *wb->k)))
        st = DEID_ERR_NOMEM;
    size_t missed = 0;
    for (size_t r = 0; st == DEID_OK && r < l.n; r++) {
        size_t i = l.idx[r];
        wb->k[i] = l.geo ? nearest_slice(vol, pl[i].ipp) : (r < vol->geom.dims[2] ? (long)r : -1);
        missed += wb->k[i] < 0;
    }
    layout_free(&l);
    if (st != DEID_OK) {
        deid__series_writeback_free(wb);
        return st;
    }
    if (unmatched)
        *unmatched = missed;
    *out = wb;
    return DEID_OK;
}

deid_status deid__series_writeback_slice(deid__series_writeback *wb, size_t i)
{
    if (i >= wb->series->n || wb->k[i] < 0)
        return DEID_OK;
    deid__slice *s = &wb->series->v[i];
    deid_status st = write_slice(wb->vol, (size_t)wb->k[i], s->ds, &wb->pl[i]);
    if (st != DEID_OK)
        deid__error_prefix(s->path ? s->path : "slice");
    return st;
}

deid_status deid_series_set_volume(deid_series *series, const deid_volume *vol,
                                   size_t *unmatched)
{
    deid__series_writeback *wb = NULL;
    deid_status st = deid__series_writeback_new(series, vol, &wb, unmatched);
    for (size_t i = 0; st == DEID_OK && i < series->n; i++)
        st = deid__series_writeback_slice(wb, i);
    deid__series_writeback_free(wb);
    return st;
}

deid_status deid__dataset_set_volume(deid_dataset *ds, const deid_volume *vol, size_t *unmatched)
{
    if (!ds || !vol)
        return deid__fail(DEID_ERR_ARGUMENT, M, "dataset_set_volume: NULL argument");
    const char *what = ds->name ? ds->name : "dataset";
    size_t n;
    deid_status st = frame_count(ds, what, &n);
    if (st != DEID_OK)
        return st;
    plane *pl = frame_planes(ds, n);
    if (!pl)
        return DEID_ERR_NOMEM;
    layout l;
    st = layout_make(pl, n, &l);
    if (st != DEID_OK) {
        free(pl);
        return st;
    }
    deid_image *img = NULL;
    st = deid_image_decode(ds, 0, 0, 0, &img);
    if (st == DEID_OK && (img->frames < n || img->samples != 1 ||
                          img->rows != vol->geom.dims[1] || img->cols != vol->geom.dims[0]))
        st = deid__fail(DEID_ERR_ARGUMENT, M, "%s: %zu frames of %zu x %zu do not match the "
                        "volume's %zu x %zu", what, img->frames, img->cols, img->rows,
                        vol->geom.dims[0], vol->geom.dims[1]);
    size_t missed = 0, plane_n = vol->geom.dims[0] * vol->geom.dims[1];
    int64_t lo = img && img->is_signed ? -(INT64_C(1) << (img->bits - 1)) : 0;
    int64_t hi = img ? (img->is_signed ? (INT64_C(1) << (img->bits - 1)) - 1
                                       : (INT64_C(1) << img->bits) - 1) : 0;
    for (size_t f = 0; st == DEID_OK && f < n; f++) {
        long k = l.geo ? nearest_slice(vol, pl[f].ipp) : (f < vol->geom.dims[2] ? (long)f : -1);
        if (k < 0) {
            missed++;
            continue;
        }
        const int32_t *src = vol->vox + (size_t)k * plane_n;
        int same = pl[f].slope == vol->slope && pl[f].intercept == vol->intercept;
        for (size_t i = 0; i < plane_n; i++) {
            double t = src[i];
            if (!same)
                t = floor((deid__vol_value(vol, src[i]) - pl[f].intercept) / pl[f].slope + 0.5);
            int64_t v = t < (double)lo ? lo : t > (double)hi ? hi : (int64_t)t;
            size_t at = f * plane_n + i;
            if (img->bits == 8)
                img->data[at] = (uint8_t)v;
            else if (img->is_signed)
                ((int16_t *)(void *)img->data)[at] = (int16_t)v;
            else
                ((uint16_t *)(void *)img->data)[at] = (uint16_t)v;
        }
    }
    if (st == DEID_OK) {
        deid_encode_options o = DEID_ENCODE_OPTIONS_INIT;
        o.codec = DEID_CODEC_UNCOMPRESSED;
        st = deid_dataset_set_pixels(ds, img, &o);
    }
    deid_image_free(img);
    free(pl);
    layout_free(&l);
    if (st == DEID_OK && unmatched)
        *unmatched = missed;
    return st;
}
