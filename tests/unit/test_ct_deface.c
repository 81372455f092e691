/* Defacing a CT / CBCT volume (deid_volume_deface) and its QC render, on a synthetic head built
 * here in patient coordinates (skin, skull, brain, eyes, nose, lips, chin, neck and spine) and
 * sampled on several geometries: the face must go (>= 95 % of the nose, lips, chin and eye
 * voxels), the skull and the brain must stay untouched, whatever the orientation and scale. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "deid/ct.h"
#include "deid/deid.h"

enum { AIR, SOFT, SKULL, BRAIN, FEATURE, SPINE };

static double skin_front(double x, double z)
{
    double q = 1 - (x / 72) * (x / 72) - (z / 100) * (z / 100);
    return q > 0 ? -96 * sqrt(q) : 0;
}

static double ell(double x, double y, double z, double a, double b, double c)
{
    return (x / a) * (x / a) + (y / b) * (y / b) + (z / c) * (z / c);
}

/* Label and HU at a point (LPS mm, the face looks to -y, z = 0 about eye level). */
static int head_at(double x, double y, double z, double *hu)
{
    if (ell(x, y, z, 62, 85, 89) < 1) {
        *hu = 35;
        return BRAIN;
    }
    if (ell(x, y, z, 68, 91, 95) < 1) {
        *hu = 1000;
        return SKULL;
    }
    for (int s = -1; s <= 1; s += 2) {
        double d = sqrt((x - s * 32) * (x - s * 32) + (y + 94) * (y + 94) + (z - 5) * (z - 5));
        if (d < 12) {
            *hu = 10;
            return FEATURE;
        }
        if (d < 14.5) {
            *hu = 40;
            return SOFT;
        }
    }
    *hu = 40;
    if (ell(x, y, z, 72, 96, 100) < 1)
        return SOFT;
    double ys = skin_front(x, z);
    if (z <= -5 && z >= -45) { /* nose: a wedge, deepest at the tip */
        double p = 6 + 19 * (-5 - z) / 40, d = ys - y;
        if (d >= 0 && d <= p && fabs(x) <= 11 * (1 - d / p) + 1)
            return FEATURE;
    }
    if (ell(x, y - (skin_front(0, -60) - 2), z + 60, 24, 7, 9) < 1) /* lips */
        return FEATURE;
    if (ell(x, y - skin_front(0, -72), z + 72, 12, 12, 12) < 1) /* chin */
        return FEATURE;
    if (z > -135 && z < -50) {
        if (x * x + (y - 25) * (y - 25) < 100) {
            *hu = 700;
            return SPINE;
        }
        if (ell(x, y - 10, 0, 45, 50, 1) < 1)
            return SOFT;
    }
    *hu = -1000;
    return AIR;
}

static uint64_t hash(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Field of the head: x -80..80, y -130..70, z -135..110 mm. */
static const double LO[3] = {-80, -130, -135}, HI[3] = {80, 70, 110};

typedef struct head {
    deid_volume *vol;
    uint8_t *label;
} head;

/* Sample the head on a grid whose axis a runs along patient axis perm[a] in direction sgn[a],
 * spacing sp[a]. cbct: uncalibrated stored values (0.8 * (HU + 1000) + 300, noise 30), else HU
 * with noise 10; air outside a cylinder of the field is 0 in cbct (padding). */
static head make_head(const int perm[3], const int sgn[3], const double sp[3], int cbct)
{
    head h = {NULL, NULL};
    deid_volume_geometry g;
    memset(&g, 0, sizeof g);
    for (int a = 0; a < 3; a++) {
        int p = perm[a];
        g.dims[a] = (size_t)((HI[p] - LO[p]) / sp[a]) + 1;
        g.spacing[a] = sp[a];
        g.direction[3 * a + p] = sgn[a];
        g.origin[p] = sgn[a] > 0 ? LO[p] : HI[p];
    }
    if (deid_volume_new(g.dims, &h.vol) != DEID_OK)
        return h;
    CHECK_OK(deid_volume_set_geometry(h.vol, &g));
    CHECK_OK(deid_volume_set_rescale(h.vol, 1.0, cbct ? 0.0 : -1024.0, !cbct));
    size_t n = deid_volume_count(h.vol);
    h.label = calloc(n, 1);
    int32_t *v = deid_volume_voxels(h.vol);
    size_t idx = 0;
    for (size_t k = 0; k < g.dims[2]; k++)
        for (size_t j = 0; j < g.dims[1]; j++)
            for (size_t i = 0; i < g.dims[0]; i++, idx++) {
                double p[3];
                for (int c = 0; c < 3; c++)
                    p[c] = g.origin[c] + i * sp[0] * g.direction[c] +
                           j * sp[1] * g.direction[3 + c] + k * sp[2] * g.direction[6 + c];
                double hu;
                h.label[idx] = (uint8_t)head_at(p[0], p[1], p[2], &hu);
                double noise = ((double)(hash(idx + 1) % 2001) / 1000.0 - 1.0) *
                               (cbct ? 30.0 : 10.0);
                if (cbct)
                    v[idx] = (p[0] * p[0] + (p[1] + 30) * (p[1] + 30) > 150.0 * 150.0)
                                 ? 0
                                 : (int32_t)lround(0.8 * (hu + 1000) + 300 + noise);
                else
                    v[idx] = (int32_t)lround(hu + noise + 1024);
            }
    return h;
}

static void free_head(head *h)
{
    deid_volume_free(h->vol);
    free(h->label);
}

typedef struct tally {
    size_t n[6], changed[6];
} tally;

/* Changed voxels per label; also checks that the mask is exactly the changed voxels. */
static tally compare(const head *h, deid_volume *after, const uint8_t *mask)
{
    tally t;
    memset(&t, 0, sizeof t);
    const int32_t *a = deid_volume_voxels(h->vol), *b = deid_volume_voxels(after);
    size_t n = deid_volume_count(after), mask_wrong = 0;
    for (size_t x = 0; x < n; x++) {
        int changed = a[x] != b[x];
        t.n[h->label[x]]++;
        t.changed[h->label[x]] += (size_t)changed;
        if (mask && mask[x] != changed)
            mask_wrong++;
    }
    CHECK(mask_wrong == 0);
    return t;
}

static void face_case(const char *name, const int perm[3], const int sgn[3], const double sp[3],
                      int cbct, int ant_axis, int ant_sign, int sup_axis, int sup_sign)
{
    head h = make_head(perm, sgn, sp, cbct);
    CHECK(h.vol != NULL);
    if (!h.vol)
        return;
    deid_volume *v;
    CHECK_OK(deid_volume_copy(h.vol, &v));
    uint8_t *mask = malloc(deid_volume_count(v));
    deid_deface_options o;
    CHECK_OK(deid_deface_options_init(&o, DEID_DEFACE_OPTIONS_VERSION));
    deid_deface_report r;
    CHECK_OK(deid_volume_deface(v, &o, mask, &r));
    tally t = compare(&h, v, mask);
    double share = t.n[FEATURE] ? (double)t.changed[FEATURE] / (double)t.n[FEATURE] : 0;
    printf("%s: face %zu/%zu feature voxels (%.1f %%), brain %zu, skull %zu, altered %zu, "
           "body %.0f bone %.0f, %s\n",
           name, t.changed[FEATURE], t.n[FEATURE], 100 * share, t.changed[BRAIN],
           t.changed[SKULL], r.altered, r.body_threshold, r.bone_threshold, r.message);
    CHECK(t.n[FEATURE] > 500);
    CHECK(share >= 0.95);
    CHECK(t.changed[BRAIN] == 0);
    CHECK(t.changed[SKULL] == 0);
    CHECK(t.changed[SPINE] == 0);
    CHECK(r.face_found == 1);
    CHECK(r.altered == t.changed[0] + t.changed[1] + t.changed[FEATURE]);
    CHECK(r.anterior_axis == ant_axis && r.anterior_sign == ant_sign);
    CHECK(r.superior_axis == sup_axis && r.superior_sign == sup_sign);
    /* the replaced voxels are air (-1000 HU or the air peak) */
    const int32_t *b = deid_volume_voxels(v);
    int32_t air = -1;
    size_t differ = 0;
    for (size_t x = 0; x < deid_volume_count(v); x++)
        if (mask[x]) {
            if (air < 0)
                air = b[x];
            differ += b[x] != air;
        }
    CHECK(differ == 0);
    if (!cbct)
        CHECK(air == -1000 + 1024);
    else
        CHECK(abs(air - 300) < 60);
    /* ears: more voxels go, still no brain */
    deid_volume *w;
    CHECK_OK(deid_volume_copy(h.vol, &w));
    o.ears = 1;
    deid_deface_report re;
    CHECK_OK(deid_volume_deface(w, &o, NULL, &re));
    tally te = compare(&h, w, NULL);
    CHECK(re.altered > r.altered);
    CHECK(te.changed[BRAIN] == 0 && te.changed[SKULL] == 0);
    deid_volume_free(w);
    deid_volume_free(v);
    free(mask);
    free_head(&h);
}

static const int AXIAL[3] = {0, 1, 2}, AXIAL_S[3] = {1, 1, 1};
static const double SP_AX[3] = {2.5, 2.5, 3.0};

static void test_face(void)
{
    /* axial LPS, slices going up: anterior is -j, superior +k */
    face_case("axial hu", AXIAL, AXIAL_S, SP_AX, 0, 1, -1, 2, 1);
    face_case("axial cbct", AXIAL, AXIAL_S, SP_AX, 1, 1, -1, 2, 1);
    /* axial with the slices from the top down */
    const int flip[3] = {1, 1, -1};
    face_case("axial reversed hu", AXIAL, flip, SP_AX, 0, 1, -1, 2, -1);
    /* sagittal: columns +y, rows -z, slices -x */
    const int sag[3] = {1, 2, 0}, sag_s[3] = {1, -1, -1};
    const double sp_sag[3] = {2.0, 2.0, 3.5};
    face_case("sagittal hu", sag, sag_s, sp_sag, 0, 0, -1, 1, -1);
    face_case("sagittal cbct", sag, sag_s, sp_sag, 1, 0, -1, 1, -1);
    /* coronal: columns +x, rows -z, slices +y */
    const int cor[3] = {0, 2, 1}, cor_s[3] = {1, -1, 1};
    face_case("coronal cbct", cor, cor_s, SP_AX, 1, 2, -1, 1, -1);
}

static void test_drown(void)
{
    head h = make_head(AXIAL, AXIAL_S, SP_AX, 0);
    if (!h.vol)
        return;
    deid_volume *v;
    CHECK_OK(deid_volume_copy(h.vol, &v));
    size_t n = deid_volume_count(v);
    uint8_t *mask = malloc(n);
    deid_deface_options o;
    CHECK_OK(deid_deface_options_init(&o, DEID_DEFACE_OPTIONS_VERSION));
    o.method = DEID_DEFACE_DROWN;
    deid_deface_report r;
    CHECK_OK(deid_volume_deface(v, &o, mask, &r));
    tally t = compare(&h, v, mask);
    printf("drown: air %zu/%zu, soft %zu/%zu, feature %zu/%zu, brain %zu, skull %zu\n",
           t.changed[AIR], t.n[AIR], t.changed[SOFT], t.n[SOFT], t.changed[FEATURE],
           t.n[FEATURE], t.changed[BRAIN], t.changed[SKULL]);
    CHECK(t.changed[BRAIN] == 0);
    CHECK(t.changed[AIR] >= t.n[AIR] * 99 / 100);
    CHECK(t.changed[SOFT] > 0);
    CHECK(r.altered == t.changed[AIR] + t.changed[SOFT] + t.changed[FEATURE] +
                           t.changed[SKULL] + t.changed[SPINE]);
    /* tissue values: HU -150..50 */
    const int32_t *b = deid_volume_voxels(v);
    size_t outside = 0;
    for (size_t x = 0; x < n; x++)
        if (mask[x] && (b[x] - 1024 < -150 || b[x] - 1024 > 50))
            outside++;
    CHECK(outside == 0);
    /* the shell: soft tissue next to the air is replaced, deep soft tissue is not */
    const deid_volume_geometry *g = NULL;
    deid_volume_geometry geo;
    deid_volume_get_geometry(v, &geo);
    g = &geo;
    size_t shell = 0, shell_changed = 0;
    for (size_t k = 1; k + 1 < g->dims[2]; k++)
        for (size_t j = 1; j + 1 < g->dims[1]; j++)
            for (size_t i = 1; i + 1 < g->dims[0]; i++) {
                size_t x = i + g->dims[0] * (j + g->dims[1] * k);
                if (h.label[x] != SOFT || h.label[x - 1] != AIR)
                    continue;
                shell++;
                shell_changed += mask[x];
            }
    CHECK(shell > 0 && shell_changed >= shell * 95 / 100);

    /* same seed, same output; another seed, another output */
    deid_volume *v2;
    CHECK_OK(deid_volume_copy(h.vol, &v2));
    o.threads = 1;
    CHECK_OK(deid_volume_deface(v2, &o, NULL, NULL));
    CHECK(memcmp(deid_volume_voxels(v), deid_volume_voxels(v2), n * sizeof(int32_t)) == 0);
    deid_volume_free(v2);
    CHECK_OK(deid_volume_copy(h.vol, &v2));
    o.seed = 12345;
    CHECK_OK(deid_volume_deface(v2, &o, NULL, NULL));
    CHECK(memcmp(deid_volume_voxels(v), deid_volume_voxels(v2), n * sizeof(int32_t)) != 0);
    deid_volume_free(v2);

    /* air and a value */
    CHECK_OK(deid_volume_copy(h.vol, &v2));
    o.replacer = DEID_REPLACE_VALUE;
    o.value = 77;
    CHECK_OK(deid_volume_deface(v2, &o, mask, &r));
    size_t wrong = 0, count = 0;
    for (size_t x = 0; x < n; x++)
        if (mask[x]) {
            count++;
            wrong += deid_volume_voxels(v2)[x] != 77 + 1024;
        }
    CHECK(count > 0 && wrong == 0);
    deid_volume_free(v2);
    CHECK_OK(deid_volume_copy(h.vol, &v2));
    o.replacer = DEID_REPLACE_AIR;
    o.shell_mm = 2.5; /* one voxel instead of two */
    CHECK_OK(deid_volume_deface(v2, &o, mask, &r));
    tally t2 = compare(&h, v2, mask);
    CHECK(t2.changed[BRAIN] == 0);
    CHECK(t2.changed[SOFT] < t.changed[SOFT]); /* a thinner shell */
    wrong = 0;
    for (size_t x = 0; x < n; x++)
        if (mask[x])
            wrong += deid_volume_voxels(v2)[x] != -1000 + 1024;
    CHECK(wrong == 0);
    deid_volume_free(v2);
    deid_volume_free(v);
    free(mask);
    free_head(&h);
}

static void test_errors(void)
{
    head h = make_head(AXIAL, AXIAL_S, (const double[3]){5, 5, 5}, 0);
    if (!h.vol)
        return;
    deid_deface_options o;
    CHECK(deid_deface_options_init(&o, 99) == DEID_ERR_ARGUMENT);
    CHECK(deid_deface_options_init(NULL, DEID_DEFACE_OPTIONS_VERSION) == DEID_ERR_ARGUMENT);
    deid_deface_options init = DEID_DEFACE_OPTIONS_INIT;
    CHECK(init.method == DEID_DEFACE_FACE && isnan(init.body_threshold));
    CHECK(deid_volume_deface(NULL, NULL, NULL, NULL) == DEID_ERR_ARGUMENT);
    size_t n = deid_volume_count(h.vol);
    int32_t *before = malloc(n * sizeof *before);
    memcpy(before, deid_volume_voxels(h.vol), n * sizeof *before);
    int nb = 0;
#define BAD(name, stmt)                                                                        \
    do {                                                                                       \
        CHECK_OK(deid_deface_options_init(&o, DEID_DEFACE_OPTIONS_VERSION));                   \
        stmt;                                                                                  \
        if (deid_volume_deface(h.vol, &o, NULL, NULL) != DEID_ERR_ARGUMENT) {                   \
            fprintf(stderr, "bad option accepted: %s\n", name);                               \
            CHECK(0);                                                                          \
        }                                                                                      \
        nb++;                                                                                  \
    } while (0)
    BAD("version", o.version = 7);
    BAD("method", o.method = 5);
    BAD("replacer", o.replacer = 3);
    BAD("value", (o.replacer = DEID_REPLACE_VALUE, o.value = NAN));
    BAD("shell", o.shell_mm = -1);
    BAD("threshold", o.body_threshold = INFINITY);
    CHECK(nb == 6);
    /* no head: all air */
    deid_volume *air;
    deid_volume_geometry g;
    deid_volume_get_geometry(h.vol, &g);
    CHECK_OK(deid_volume_new(g.dims, &air));
    CHECK_OK(deid_volume_set_rescale(air, 1, -1000, 1));
    CHECK(deid_volume_deface(air, NULL, NULL, NULL) == DEID_ERR_UNSUPPORTED);
    /* an orientation that cannot be told: two axes along x */
    g.direction[3] = 1;
    g.direction[4] = 0;
    CHECK_OK(deid_volume_set_geometry(air, &g));
    CHECK(deid_volume_deface(air, NULL, NULL, NULL) == DEID_ERR_UNSUPPORTED);
    deid_volume_free(air);
    CHECK(memcmp(before, deid_volume_voxels(h.vol), n * sizeof *before) == 0);
    free(before);
    free_head(&h);
}

static int png_size(const char *path, unsigned *w, unsigned *h)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char b[24];
    size_t got = fread(b, 1, sizeof b, f);
    fclose(f);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (got != sizeof b || memcmp(b, sig, 8) || memcmp(b + 12, "IHDR", 4))
        return -1;
    *w = (unsigned)b[16] << 24 | (unsigned)b[17] << 16 | (unsigned)b[18] << 8 | b[19];
    *h = (unsigned)b[20] << 24 | (unsigned)b[21] << 16 | (unsigned)b[22] << 8 | b[23];
    return 0;
}

static void test_render(void)
{
    const char *dir = check_tmpdir("ct_render");
    if (!dir)
        return;
    head h = make_head(AXIAL, AXIAL_S, SP_AX, 0);
    if (!h.vol)
        return;
    deid_volume *v;
    CHECK_OK(deid_volume_copy(h.vol, &v));
    CHECK_OK(deid_volume_deface(v, NULL, NULL, NULL));
    char one[512], two[512];
    snprintf(one, sizeof one, "%s/one.png", dir);
    snprintf(two, sizeof two, "%s/two.png", dir);
    CHECK_OK(deid_volume_render_qc(h.vol, NULL, one));
    CHECK_OK(deid_volume_render_qc(h.vol, v, two));
    unsigned w1 = 0, h1 = 0, w2 = 0, h2 = 0;
    CHECK(png_size(one, &w1, &h1) == 0);
    CHECK(png_size(two, &w2, &h2) == 0);
    /* square pixels of 2.5 mm: front view 65 columns of 2.5 mm wide and 82 slices of 3 mm
     * high, side view 81 rows of 2.5 mm wide, 4 pixels between */
    CHECK(w1 == 65 + 4 + 81);
    CHECK(h1 == 98);
    CHECK(w2 == w1 && h2 == 2 * h1 + 4);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.png", dir);
    CHECK(deid_volume_render_qc(h.vol, NULL, bad) == DEID_ERR_IO);
    CHECK(deid_volume_render_qc(NULL, NULL, one) == DEID_ERR_ARGUMENT);
    if (getenv("DEID_KEEP_RENDER"))
        CHECK_OK(deid_volume_render_qc(h.vol, v, getenv("DEID_KEEP_RENDER")));
    deid_volume_free(v);
    free_head(&h);
}

int main(void)
{
    test_face();
    test_drown();
    test_errors();
    test_render();
    return check_done("test_ct_deface");
}
