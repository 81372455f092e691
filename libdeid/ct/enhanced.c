/* libdeid: a volume as one multi-frame object (include/deid/ct.h, deid_volume_to_enhanced):
 * Legacy Converted Enhanced CT or Enhanced CT, the patient/study/series/equipment attributes
 * copied from the series' first slice, the geometry in shared and per-frame functional groups.
 * Everything is built in a new dataset that only replaces *out when all of it succeeded. */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/core.h"
#include "ct/ct_int.h"
#include "deid/image.h"
#include "dicom/dataset_int.h"
#include "pixel/pixel_int.h"

#define M "ct"
#define VR(a, b) DEID_VR(a, b)

#define UID_LEGACY_CT "1.2.840.10008.5.1.4.1.1.2.2"
#define UID_ENHANCED_CT "1.2.840.10008.5.1.4.1.1.2.1"

#define T_IMAGE_TYPE 0x00080008u
#define T_SOP_CLASS 0x00080016u
#define T_SOP_INSTANCE 0x00080018u
#define T_STUDY_DATE 0x00080020u
#define T_SERIES_DATE 0x00080021u
#define T_ACQ_DATE 0x00080022u
#define T_CONTENT_DATE 0x00080023u
#define T_ACQ_DATETIME 0x0008002Au
#define T_STUDY_TIME 0x00080030u
#define T_SERIES_TIME 0x00080031u
#define T_ACQ_TIME 0x00080032u
#define T_CONTENT_TIME 0x00080033u
#define T_REF_SOP_CLASS 0x00081150u
#define T_REF_SOP_INSTANCE 0x00081155u
#define T_IRRADIATION_UID 0x00083010u
#define T_FRAME_TYPE 0x00089007u
#define T_PIXEL_PRESENTATION 0x00089205u
#define T_VOLUMETRIC 0x00089206u
#define T_VOLUME_CALC 0x00089207u
#define T_CODE_VALUE 0x00080100u
#define T_CODING_SCHEME 0x00080102u
#define T_CODE_MEANING 0x00080104u
#define T_ANATOMIC_REGION 0x00082218u
#define T_BODY_PART 0x00180015u
#define T_THICKNESS 0x00180050u
#define T_BETWEEN 0x00180088u
#define T_CONTENT_QUALIFICATION 0x00189004u
#define T_CT_FRAME_TYPE 0x00189329u
#define T_IRRADIATION_SEQ 0x00189477u
#define T_SERIES_UID 0x0020000Eu
#define T_INSTANCE 0x00200013u
#define T_IPP 0x00200032u
#define T_IOP 0x00200037u
#define T_LATERALITY 0x00200060u
#define T_STACK_ID 0x00209056u
#define T_IN_STACK 0x00209057u
#define T_FRAME_ANATOMY 0x00209071u
#define T_FRAME_LATERALITY 0x00209072u
#define T_FRAME_CONTENT 0x00209111u
#define T_PLANE_POSITION 0x00209113u
#define T_PLANE_ORIENTATION 0x00209116u
#define T_DIM_INDEX_VALUES 0x00209157u
#define T_DIM_ORG_UID 0x00209164u
#define T_DIM_INDEX_POINTER 0x00209165u
#define T_FG_POINTER 0x00209167u
#define T_DIM_LABEL 0x00209421u
#define T_DIM_ORG_SEQ 0x00209221u
#define T_DIM_INDEX_SEQ 0x00209222u
#define T_DIM_ORG_TYPE 0x00209311u
#define T_UNASSIGNED_SHARED 0x00209170u
#define T_UNASSIGNED_PERFRAME 0x00209171u
#define T_CONVERSION_SOURCE 0x00209172u
#define T_PHOTOMETRIC 0x00280004u
#define T_FRAMES 0x00280008u
#define T_ROWS 0x00280010u
#define T_COLS 0x00280011u
#define T_SPACING 0x00280030u
#define T_PIXEL_REPR 0x00280103u
#define T_PADDING 0x00280120u
#define T_PADDING_LIMIT 0x00280121u
#define T_BURNED_IN 0x00280301u
#define T_WINDOW_CENTER 0x00281050u
#define T_WINDOW_WIDTH 0x00281051u
#define T_INTERCEPT 0x00281052u
#define T_SLOPE 0x00281053u
#define T_RESCALE_TYPE 0x00281054u
#define T_WINDOW_EXPLANATION 0x00281055u
#define T_LOSSY 0x00282110u
#define T_PIXEL_MEASURES 0x00289110u
#define T_FRAME_VOI 0x00289132u
#define T_PIXEL_TRANSFORM 0x00289145u
#define T_ACQ_CONTEXT 0x00400555u
#define T_PRESENTATION_LUT 0x20500020u
#define T_SHARED_FG 0x52009229u
#define T_PERFRAME_FG 0x52009230u

/* Copied from the first slice when present: Patient, Clinical Trial Subject/Study/Series,
 * General Study, Patient Study, General Series, CT Series, Frame of Reference, General
 * Equipment, Contrast/Bolus and SOP Common attributes that a multi-frame object keeps at the
 * top level. Never a private element, and nothing the source did not hold. */
static const uint32_t copied[] = {
    0x00080005u, /* Specific Character Set */
    0x00080020u, 0x00080021u,              /* Study, Series Date */
    0x00080030u, 0x00080031u,              /* Study, Series Time */
    0x00080050u, 0x00080051u,              /* Accession Number, its issuer */
    0x00080060u,                           /* Modality */
    0x00080070u, 0x00080080u, 0x00080081u, /* Manufacturer, Institution Name/Address */
    0x00080090u, 0x00080201u,              /* Referring Physician, Timezone Offset */
    0x00081010u, 0x00081030u, 0x00081032u, /* Station, Study Description, Procedure Codes */
    0x0008103Eu, 0x00081040u, 0x00081048u, /* Series Description, Department, Physicians */
    0x00081050u, 0x00081060u, 0x00081070u, /* Performing/Reading Physician, Operators */
    0x00081090u, 0x00081111u,              /* Model Name, Referenced PPS */
    0x00100010u, 0x00100020u, 0x00100021u, /* Patient Name, ID, Issuer */
    0x00100030u, 0x00100032u, 0x00100040u, /* Birth Date, Time, Sex */
    0x00101000u, 0x00101001u, 0x00101002u, /* Other IDs, Names, IDs Sequence */
    0x00101010u, 0x00101020u, 0x00101030u, /* Age, Size, Weight */
    0x00102160u, 0x00104000u,              /* Ethnic Group, Patient Comments */
    0x00120010u, 0x00120020u, 0x00120021u, 0x00120030u, 0x00120031u, 0x00120040u,
    0x00120042u, 0x00120050u, 0x00120051u, 0x00120060u, 0x00120071u, 0x00120072u,
    0x00120062u, 0x00120063u, 0x00120064u, /* Patient Identity Removed, De-identification */
    0x00180010u, 0x00180012u, 0x00181040u, 0x00181041u, 0x00181042u, 0x00181043u,
    0x00181044u, 0x00181046u, 0x00181047u, 0x00181048u, 0x00181049u, /* Contrast/Bolus */
    0x00180015u,                           /* Body Part Examined */
    0x00181000u, 0x00181020u,              /* Device Serial Number, Software Versions */
    0x00181030u,                           /* Protocol Name */
    0x00181200u, 0x00181201u,              /* Date/Time of Last Calibration */
    0x00185100u,                           /* Patient Position */
    0x0018A001u,                           /* Contributing Equipment */
    0x0020000Du, 0x0020000Eu,              /* Study, Series Instance UID */
    0x00200010u, 0x00200011u, 0x00200012u, /* Study ID, Series Number, Acquisition Number */
    0x00200052u, 0x00200060u, 0x00201040u, /* Frame of Reference, Laterality, Position Ref */
    0x00321060u,                           /* Requested Procedure Description */
    0x00400244u, 0x00400245u, 0x00400253u, 0x00400254u, /* Performed Procedure Step */
    0x00400275u,                           /* Request Attributes */
};

/* Type 2 attributes of the modules above: present (empty) when the source had none. */
static const uint32_t type2[] = {
    0x00080020u, 0x00080030u, 0x00080050u, 0x00080090u, 0x00100010u, 0x00100020u,
    0x00100030u, 0x00100040u, 0x00200010u, 0x00200011u, 0x00200060u, 0x00201040u,
};

/* ---- small element writers (each returns DEID_OK or DEID_ERR_NOMEM) ------------------------ */

static deid_status nomem(void) { return deid__fail(DEID_ERR_NOMEM, M, "enhanced: out of memory"); }

static deid_status put_raw(deid_item *it, uint32_t tag, uint16_t vr, const void *v, size_t n)
{
    deid_elem *e = deid__item_put(it, tag, vr);
    if (!e || deid__elem_set(e, v, n) != 0)
        return nomem();
    return DEID_OK;
}

static deid_status put_text(deid_item *it, uint32_t tag, uint16_t vr, const char *s)
{
    return put_raw(it, tag, vr, s, strlen(s));
}

static deid_status put_ul(deid_item *it, uint32_t tag, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return put_raw(it, tag, VR('U', 'L'), b, 4);
}

/* An AT value: the group then the element, each little endian. */
static deid_status put_at(deid_item *it, uint32_t tag, uint32_t pointed)
{
    uint8_t b[4] = {(uint8_t)(pointed >> 16), (uint8_t)(pointed >> 24), (uint8_t)pointed,
                    (uint8_t)(pointed >> 8)};
    return put_raw(it, tag, VR('A', 'T'), b, 4);
}

/* Sequence `tag` of `it` replaced by one empty item, returned (NULL: out of memory). The
 * pointer is valid until something else is put into `it`. */
static deid_item *put_seq1(deid_item *it, uint32_t tag)
{
    deid_elem *e = deid__item_put(it, tag, DEID_VR_SQ);
    if (!e)
        return NULL;
    deid__elem_empty(e);
    return deid__elem_add_item(e);
}

/* A decimal string of at most 16 characters (DS) for v. */
static void fmt_ds(double v, char out[24])
{
    if (fabs(v) < 1e-9)
        v = 0; /* no "-0" or "1e-15" from rounding noise */
    for (int prec = 12; prec >= 6; prec--) {
        snprintf(out, 24, "%.*g", prec, v);
        if (strlen(out) <= 16)
            return;
    }
}

static deid_status put_ds(deid_item *it, uint32_t tag, const double *v, size_t n)
{
    char buf[17 * 9 + 1], one[24];
    size_t len = 0;
    for (size_t i = 0; i < n && i < 9; i++) {
        fmt_ds(v[i], one);
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? "\\" : "", one);
    }
    return put_raw(it, tag, VR('D', 'S'), buf, len);
}

/* Deep copy of element `src` into `dst` (replacing what was there). */
static deid_status copy_elem(deid_item *dst, const deid_elem *src);

static deid_status copy_items(deid_elem *e, const deid_elem *src)
{
    for (size_t i = 0; i < src->nitems; i++) {
        deid_item *to = deid__elem_add_item(e);
        if (!to)
            return nomem();
        const deid_item *from = &src->items[i];
        for (size_t j = 0; j < from->n; j++) {
            deid_status st = copy_elem(to, &from->elems[j]);
            if (st != DEID_OK)
                return st;
        }
    }
    return DEID_OK;
}

static deid_status copy_elem(deid_item *dst, const deid_elem *src)
{
    if (src->encapsulated)
        return DEID_OK; /* never pixel data */
    deid_elem *e = deid__item_put(dst, src->tag, src->vr);
    if (!e)
        return nomem();
    deid__elem_empty(e);
    e->vr = src->vr;
    if (src->vr == DEID_VR_SQ) {
        /* e stays valid: only e's own item array grows below */
        return copy_items(e, src);
    }
    if (src->len && deid__elem_set(e, src->value, src->len) != 0)
        return nomem();
    return DEID_OK;
}

static int has_value(const deid_item *it, uint32_t tag)
{
    const deid_elem *e = deid__item_find(it, tag);
    return e && ((e->value && e->len) || e->nitems);
}

/* ---- UIDs ---------------------------------------------------------------------------------- */

/* "2.25." and the decimal value of a 128-bit big-endian number (at most 44 characters). */
static void uid_from_digest(const unsigned char d[16], char out[65])
{
    uint32_t limb[4];
    for (int i = 0; i < 4; i++)
        limb[i] = (uint32_t)d[4 * i] << 24 | (uint32_t)d[4 * i + 1] << 16 |
                  (uint32_t)d[4 * i + 2] << 8 | d[4 * i + 3];
    char rev[48];
    size_t n = 0;
    do { /* one decimal digit per pass: divide the four limbs by 10 */
        uint64_t rem = 0;
        for (int i = 0; i < 4; i++) {
            uint64_t cur = rem << 32 | limb[i];
            limb[i] = (uint32_t)(cur / 10);
            rem = cur % 10;
        }
        rev[n++] = (char)('0' + rem);
    } while (limb[0] | limb[1] | limb[2] | limb[3]);
    memcpy(out, "2.25.", 5);
    for (size_t i = 0; i < n; i++)
        out[5 + i] = rev[n - 1 - i];
    out[5 + n] = '\0';
}

/* A UID derived from everything that makes the object (source UIDs, geometry, pixels) and a
 * label naming which UID it is: the same volume and series always give the same UIDs, a
 * changed volume new ones. */
static void derived_uid(const crypto_generichash_state *base, const char *label, char out[65])
{
    crypto_generichash_state st = *base;
    unsigned char d[16];
    crypto_generichash_update(&st, (const unsigned char *)label, strlen(label) + 1);
    crypto_generichash_final(&st, d, sizeof d);
    uid_from_digest(d, out);
}

/* ---- the pixels ---------------------------------------------------------------------------- */

/* The voxels as 16-bit frames: signed when the source was signed or a value is negative and
 * all fit; unsigned when they fit 0..65535; otherwise stored minus the minimum (unsigned),
 * the intercept moved to match (*offset). DEID_ERR_UNSUPPORTED when the values span more than
 * 16 bits. */
static deid_status make_frames(const deid_volume *vol, int source_signed, const char *pi,
                               deid_image **out, int32_t *offset)
{
    int32_t lo = INT32_MAX, hi = INT32_MIN;
    for (size_t i = 0; i < vol->n; i++) {
        if (vol->vox[i] < lo)
            lo = vol->vox[i];
        if (vol->vox[i] > hi)
            hi = vol->vox[i];
    }
    int fits_s = lo >= -32768 && hi <= 32767, fits_u = lo >= 0 && hi <= 65535;
    int sign;
    *offset = 0;
    if (fits_s && (source_signed || lo < 0))
        sign = 1;
    else if (fits_u)
        sign = 0;
    else if (fits_s)
        sign = 1;
    else if ((int64_t)hi - lo <= 65535) {
        sign = 0;
        *offset = lo;
    } else
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "enhanced: stored values %ld..%ld do not fit 16 bits", (long)lo,
                          (long)hi);
    const deid_volume_geometry *g = &vol->geom;
    deid_image *img = deid__image_new(g->dims[2], g->dims[1], g->dims[0], 1, 16, sign, pi);
    if (!img)
        return deid_last_error_code();
    if (sign) {
        int16_t *p = (int16_t *)(void *)img->data;
        for (size_t i = 0; i < vol->n; i++)
            p[i] = (int16_t)vol->vox[i];
    } else {
        uint16_t *p = (uint16_t *)(void *)img->data;
        for (size_t i = 0; i < vol->n; i++)
            p[i] = (uint16_t)((int64_t)vol->vox[i] - *offset);
    }
    *out = img;
    return DEID_OK;
}

/* ---- what the object is built from --------------------------------------------------------- */

typedef struct build {
    const deid_volume *vol;
    const deid_series *series;
    const deid_item *first;  /* root of the first sorted slice */
    int enhanced;
    size_t *slice_of;        /* slice_of[k]: the series slice frame k comes from */
    crypto_generichash_state hash;
    char sop_uid[65], dim_uid[65];
    double intercept;        /* of the stored pixels (the volume's, moved by the offset) */
    int sign, offset_applied;
} build;

/* Frame k's position: origin + k * spacing[2] * direction[6..8]. */
static void frame_position(const deid_volume_geometry *g, size_t k, double p[3])
{
    for (int c = 0; c < 3; c++)
        p[c] = g->origin[c] + (double)k * g->spacing[2] * g->direction[6 + c];
}

/* Each frame's source slice: the slice whose position along the slice direction is nearest
 * (slice k when the series has no positions). */
static void match_slices(build *b)
{
    const deid_volume_geometry *g = &b->vol->geom;
    size_t n = b->series->n;
    for (size_t k = 0; k < g->dims[2]; k++) {
        size_t best = k < n ? k : n - 1;
        double best_d = INFINITY, f[3];
        frame_position(g, k, f);
        for (size_t i = 0; i < n; i++) {
            double ipp[3];
            if (deid__ct_numbers(&b->series->v[i].ds->root, T_IPP, ipp, 3) != 3)
                continue;
            double d = 0;
            for (int c = 0; c < 3; c++)
                d += (ipp[c] - f[c]) * g->direction[6 + c];
            if (fabs(d) < best_d) {
                best_d = fabs(d);
                best = i;
            }
        }
        b->slice_of[k] = best;
    }
}

/* The hash behind the new UIDs: label, SOP class, source SOP Instance UIDs, geometry, rescale
 * and pixels. */
static void hash_inputs(build *b, const deid_image *img)
{
    static const char label[] = "deid-ct enhanced";
    crypto_generichash_init(&b->hash, NULL, 0, 16);
    crypto_generichash_update(&b->hash, (const unsigned char *)label, sizeof label);
    const char *cls = b->enhanced ? UID_ENHANCED_CT : UID_LEGACY_CT;
    crypto_generichash_update(&b->hash, (const unsigned char *)cls, strlen(cls) + 1);
    for (size_t i = 0; i < b->series->n; i++) {
        char uid[80];
        deid__ct_text(&b->series->v[i].ds->root, T_SOP_INSTANCE, uid, sizeof uid);
        crypto_generichash_update(&b->hash, (const unsigned char *)uid, strlen(uid) + 1);
    }
    char geo[512];
    const deid_volume_geometry *g = &b->vol->geom;
    int n = snprintf(geo, sizeof geo, "%zu %zu %zu %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g",
                     g->dims[0], g->dims[1], g->dims[2], g->spacing[0], g->spacing[1],
                     g->spacing[2], g->origin[0], g->origin[1], g->origin[2], b->vol->slope,
                     b->vol->intercept);
    for (int i = 0; i < 9 && n > 0 && (size_t)n < sizeof geo; i++)
        n += snprintf(geo + n, sizeof geo - (size_t)n, " %.9g", g->direction[i]);
    crypto_generichash_update(&b->hash, (const unsigned char *)geo, strlen(geo));
    crypto_generichash_update(&b->hash, img->data, img->size);
    derived_uid(&b->hash, "SOP Instance UID", b->sop_uid);
    derived_uid(&b->hash, "Dimension Organization UID", b->dim_uid);
}

/* ---- modules ------------------------------------------------------------------------------- */

static deid_status copy_source(build *b, deid_item *root)
{
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) {
        const deid_elem *e = deid__item_find(b->first, copied[i]);
        deid_status st = e ? copy_elem(root, e) : DEID_OK;
        if (st != DEID_OK)
            return st;
    }
    for (size_t i = 0; i < sizeof type2 / sizeof *type2; i++)
        if (!deid__item_find(root, type2[i])) {
            deid_elem *e = deid__item_put(root, type2[i], deid__dict_vr(type2[i]));
            if (!e)
                return nomem();
        }
    /* Enhanced CT: Frame Laterality (Frame Anatomy) takes the place of Laterality */
    if (b->enhanced)
        deid__item_remove(root, T_LATERALITY);
    /* Pixel Padding Value keeps its meaning only for the same stored values and VR */
    long pr = -1;
    const deid_elem *r = deid__item_find(b->first, T_PIXEL_REPR);
    if (r && r->value && r->len >= 2)
        pr = r->value[0] | r->value[1] << 8;
    if (!b->offset_applied && pr == b->sign)
        for (uint32_t t = T_PADDING; t <= T_PADDING_LIMIT; t++) {
            const deid_elem *e = deid__item_find(b->first, t);
            deid_status st = e ? copy_elem(root, e) : DEID_OK;
            if (st != DEID_OK)
                return st;
        }
    return DEID_OK;
}

/* Image Type (and Frame Type): DERIVED\PRIMARY, the source's third value when it is an image
 * flavour the enhanced CT IODs define for a volume (VOLUME otherwise: AXIAL is not one), NONE. */
static void image_type(const build *b, char out[64])
{
    char src[200], flavor[17] = "VOLUME";
    deid__ct_text(b->first, T_IMAGE_TYPE, src, sizeof src);
    const char *p = src;
    for (int v = 0; v < 2 && p; v++)
        p = strchr(p, '\\') ? strchr(p, '\\') + 1 : NULL;
    if (p) {
        static const char *const known[] = {"ANGIO",     "CARDIAC",    "CARDIAC_GATED",
                                            "DYNAMIC",   "PERFUSION",  "STATIONARY",
                                            NULL};
        size_t len = strcspn(p, "\\");
        for (int i = 0; known[i]; i++)
            if (strlen(known[i]) == len && !strncmp(p, known[i], len))
                snprintf(flavor, sizeof flavor, "%s", known[i]);
    }
    snprintf(out, 64, "DERIVED\\PRIMARY\\%s\\NONE", flavor);
}

/* The current UTC date and time (when the source gives no content date). */
static void now_utc(char date[9], char tm_out[7])
{
    time_t t = time(NULL);
    struct tm u;
    if (!gmtime_r(&t, &u) || !strftime(date, 9, "%Y%m%d", &u) ||
        !strftime(tm_out, 7, "%H%M%S", &u)) {
        snprintf(date, 9, "%s", "19700101");
        snprintf(tm_out, 7, "%s", "000000");
    }
}

static deid_status image_module(build *b, deid_item *root)
{
    char type[64], date[20], tm[20], buf[80];
    image_type(b, type);
    deid_status st = put_text(root, T_IMAGE_TYPE, VR('C', 'S'), type);
    /* Content Date/Time: the source's, else the series', else the study's, else now */
    static const uint32_t dates[][2] = {{T_CONTENT_DATE, T_CONTENT_TIME},
                                        {T_SERIES_DATE, T_SERIES_TIME},
                                        {T_STUDY_DATE, T_STUDY_TIME}};
    date[0] = tm[0] = '\0';
    for (size_t i = 0; i < 3 && !date[0]; i++) {
        deid__ct_text(b->first, dates[i][0], date, sizeof date);
        deid__ct_text(b->first, dates[i][1], tm, sizeof tm);
    }
    if (!date[0] || !tm[0])
        now_utc(date, tm);
    if (st == DEID_OK)
        st = put_text(root, T_CONTENT_DATE, VR('D', 'A'), date);
    if (st == DEID_OK)
        st = put_text(root, T_CONTENT_TIME, VR('T', 'M'), tm);
    /* Acquisition DateTime from the source's acquisition date and time, when it has both */
    deid__ct_text(b->first, T_ACQ_DATE, date, sizeof date);
    deid__ct_text(b->first, T_ACQ_TIME, tm, sizeof tm);
    if (st == DEID_OK && date[0] && tm[0]) {
        snprintf(buf, sizeof buf, "%s%s", date, tm);
        st = put_text(root, T_ACQ_DATETIME, VR('D', 'T'), buf);
    }
    if (st == DEID_OK)
        st = put_text(root, T_INSTANCE, VR('I', 'S'), "1");
    if (st == DEID_OK)
        st = put_text(root, T_BURNED_IN, VR('C', 'S'), "NO");
    if (st == DEID_OK)
        st = put_text(root, T_LOSSY, VR('C', 'S'), "00");
    if (st == DEID_OK)
        st = put_text(root, T_PRESENTATION_LUT, VR('C', 'S'), "IDENTITY");
    if (st == DEID_OK)
        st = put_text(root, T_CONTENT_QUALIFICATION, VR('C', 'S'), "PRODUCT");
    if (st == DEID_OK)
        st = put_text(root, T_PIXEL_PRESENTATION, VR('C', 'S'), "MONOCHROME");
    if (st == DEID_OK)
        st = put_text(root, T_VOLUMETRIC, VR('C', 'S'), "VOLUME");
    if (st == DEID_OK)
        st = put_text(root, T_VOLUME_CALC, VR('C', 'S'), "NONE");
    if (st == DEID_OK && !deid__item_find(root, T_ACQ_CONTEXT)) /* type 2: empty */
        st = deid__item_put(root, T_ACQ_CONTEXT, DEID_VR_SQ) ? DEID_OK : nomem();
    /* Enhanced General Equipment: type 1, "UNKNOWN" when the source left them out */
    static const uint32_t equipment[] = {0x00080070u, 0x00081090u, 0x00181000u, 0x00181020u};
    for (size_t i = 0; st == DEID_OK && i < 4; i++)
        if (!has_value(root, equipment[i]))
            st = put_text(root, equipment[i], VR('L', 'O'), "UNKNOWN");
    return st;
}

static deid_status dimensions(build *b, deid_item *root)
{
    deid_item *it = put_seq1(root, T_DIM_ORG_SEQ);
    if (!it)
        return nomem();
    deid_status st = put_text(it, T_DIM_ORG_UID, VR('U', 'I'), b->dim_uid);
    if (st == DEID_OK)
        st = put_text(root, T_DIM_ORG_TYPE, VR('C', 'S'), "3D");
    if (st == DEID_OK && !(it = put_seq1(root, T_DIM_INDEX_SEQ)))
        st = nomem();
    if (st == DEID_OK)
        st = put_text(it, T_DIM_ORG_UID, VR('U', 'I'), b->dim_uid);
    if (st == DEID_OK)
        st = put_at(it, T_DIM_INDEX_POINTER, T_IPP);
    if (st == DEID_OK)
        st = put_at(it, T_FG_POINTER, T_PLANE_POSITION);
    if (st == DEID_OK)
        st = put_text(it, T_DIM_LABEL, VR('L', 'O'), "Image Position (Patient)");
    return st;
}

/* Frame Anatomy (mandatory in Enhanced CT): the SNOMED CT code of the source's Body Part
 * Examined (PS3.16 Annex L), "Body structure" when it names none of these, and the source's
 * Laterality (U, unpaired, otherwise). */
static deid_status frame_anatomy(const build *b, deid_item *fg)
{
    static const struct {
        const char *part, *code, *meaning;
    } regions[] = {
        {"HEAD", "69536005", "Head"},        {"BRAIN", "12738006", "Brain"},
        {"SKULL", "89546000", "Skull"},      {"HEADNECK", "774007", "Head and Neck"},
        {"NECK", "45048000", "Neck"},        {"CSPINE", "122494005", "Cervical spine"},
        {"CHEST", "51185008", "Chest"},      {"TSPINE", "122495006", "Thoracic spine"},
        {"ABDOMEN", "818981001", "Abdomen"}, {"LSPINE", "122496007", "Lumbar spine"},
        {"PELVIS", "816092008", "Pelvis"},   {"CHESTABDOMEN", "416550000", "Chest and Abdomen"},
        {"ABDOMENPELVIS", "818982008", "Abdomen and Pelvis"},
        {"WHOLEBODY", "38266002", "Entire body"},
    };
    const char *code = "123037004", *meaning = "Body structure";
    char part[20], lat[20];
    deid__ct_text(b->first, T_BODY_PART, part, sizeof part);
    for (size_t i = 0; i < sizeof regions / sizeof *regions; i++)
        if (!strcmp(part, regions[i].part)) {
            code = regions[i].code;
            meaning = regions[i].meaning;
        }
    deid__ct_text(b->first, T_LATERALITY, lat, sizeof lat);
    if (strcmp(lat, "R") && strcmp(lat, "L"))
        snprintf(lat, sizeof lat, "%s", "U");
    deid_item *it = put_seq1(fg, T_FRAME_ANATOMY), *code_item;
    if (!it)
        return nomem();
    deid_status st = put_text(it, T_FRAME_LATERALITY, VR('C', 'S'), lat);
    if (st == DEID_OK && !(code_item = put_seq1(it, T_ANATOMIC_REGION)))
        st = nomem();
    if (st == DEID_OK)
        st = put_text(code_item, T_CODE_VALUE, VR('S', 'H'), code);
    if (st == DEID_OK)
        st = put_text(code_item, T_CODING_SCHEME, VR('S', 'H'), "SCT");
    if (st == DEID_OK)
        st = put_text(code_item, T_CODE_MEANING, VR('L', 'O'), meaning);
    return st;
}

static deid_status shared_groups(build *b, deid_item *root)
{
    const deid_volume_geometry *g = &b->vol->geom;
    deid_item *fg = put_seq1(root, T_SHARED_FG), *it;
    if (!fg)
        return nomem();
    deid_status st = DEID_OK;
    double v[6], thick;
    /* Pixel Measures: row spacing\column spacing, thickness (the source's, else the spacing) */
    if (!(it = put_seq1(fg, T_PIXEL_MEASURES)))
        return nomem();
    v[0] = g->spacing[1];
    v[1] = g->spacing[0];
    st = put_ds(it, T_SPACING, v, 2);
    if (deid__ct_numbers(b->first, T_THICKNESS, &thick, 1) != 1 || !(thick > 0))
        thick = g->spacing[2];
    if (st == DEID_OK)
        st = put_ds(it, T_THICKNESS, &thick, 1);
    if (st == DEID_OK)
        st = put_ds(it, T_BETWEEN, &g->spacing[2], 1);
    /* Plane Orientation */
    if (st == DEID_OK && !(it = put_seq1(fg, T_PLANE_ORIENTATION)))
        st = nomem();
    if (st == DEID_OK)
        st = put_ds(it, T_IOP, g->direction, 6);
    /* Pixel Value Transformation */
    if (st == DEID_OK && !(it = put_seq1(fg, T_PIXEL_TRANSFORM)))
        st = nomem();
    if (st == DEID_OK)
        st = put_ds(it, T_INTERCEPT, &b->intercept, 1);
    if (st == DEID_OK)
        st = put_ds(it, T_SLOPE, &b->vol->slope, 1);
    if (st == DEID_OK)
        st = put_text(it, T_RESCALE_TYPE, VR('L', 'O'), b->vol->hounsfield ? "HU" : "US");
    /* Frame VOI LUT: the source's window, when it has one */
    if (st == DEID_OK && has_value(b->first, T_WINDOW_CENTER) &&
        has_value(b->first, T_WINDOW_WIDTH)) {
        if (!(it = put_seq1(fg, T_FRAME_VOI)))
            return nomem();
        for (uint32_t t = T_WINDOW_CENTER; st == DEID_OK && t <= T_WINDOW_EXPLANATION; t++) {
            const deid_elem *e = deid__item_find(b->first, t);
            if (e && (t == T_WINDOW_CENTER || t == T_WINDOW_WIDTH || t == T_WINDOW_EXPLANATION))
                st = copy_elem(it, e);
        }
    }
    if (st != DEID_OK)
        return st;
    /* CT Image Frame Type */
    char type[64], uid[80];
    image_type(b, type);
    if (!(it = put_seq1(fg, T_CT_FRAME_TYPE)))
        return nomem();
    st = put_text(it, T_FRAME_TYPE, VR('C', 'S'), type);
    if (st == DEID_OK)
        st = put_text(it, T_PIXEL_PRESENTATION, VR('C', 'S'), "MONOCHROME");
    if (st == DEID_OK)
        st = put_text(it, T_VOLUMETRIC, VR('C', 'S'), "VOLUME");
    if (st == DEID_OK)
        st = put_text(it, T_VOLUME_CALC, VR('C', 'S'), "NONE");
    if (st != DEID_OK)
        return st;
    if (!b->enhanced) /* Legacy Converted: nothing else of the source is carried over */
        return put_seq1(fg, T_UNASSIGNED_SHARED) ? DEID_OK : nomem();
    /* Enhanced CT: Frame Anatomy, Irradiation Event Identification */
    if ((st = frame_anatomy(b, fg)) != DEID_OK)
        return st;
    if (!(it = put_seq1(fg, T_IRRADIATION_SEQ)))
        return nomem();
    if (!deid__ct_text(b->first, T_IRRADIATION_UID, uid, sizeof uid)[0])
        derived_uid(&b->hash, "Irradiation Event UID", uid);
    return put_text(it, T_IRRADIATION_UID, VR('U', 'I'), uid);
}

static deid_status per_frame_group(build *b, deid_item *fg, size_t k)
{
    deid_item *it = put_seq1(fg, T_FRAME_CONTENT);
    if (!it)
        return nomem();
    deid_status st = put_text(it, T_STACK_ID, VR('S', 'H'), "1");
    if (st == DEID_OK)
        st = put_ul(it, T_IN_STACK, (uint32_t)(k + 1));
    if (st == DEID_OK)
        st = put_ul(it, T_DIM_INDEX_VALUES, (uint32_t)(k + 1));
    double p[3];
    frame_position(&b->vol->geom, k, p);
    if (st == DEID_OK && !(it = put_seq1(fg, T_PLANE_POSITION)))
        st = nomem();
    if (st == DEID_OK)
        st = put_ds(it, T_IPP, p, 3);
    if (st != DEID_OK || b->enhanced)
        return st;
    /* Legacy Converted: nothing of the slice's own attributes is kept (type 2: empty), and
     * the slice the frame was converted from */
    if (!put_seq1(fg, T_UNASSIGNED_PERFRAME))
        return nomem();
    const deid_item *src = &b->series->v[b->slice_of[k]].ds->root;
    char cls[80], uid[80];
    if (!deid__ct_text(src, T_SOP_INSTANCE, uid, sizeof uid)[0])
        return DEID_OK;
    if (!deid__ct_text(src, T_SOP_CLASS, cls, sizeof cls)[0])
        snprintf(cls, sizeof cls, "%s", "1.2.840.10008.5.1.4.1.1.2");
    if (!(it = put_seq1(fg, T_CONVERSION_SOURCE)))
        return nomem();
    st = put_text(it, T_REF_SOP_CLASS, VR('U', 'I'), cls);
    if (st == DEID_OK)
        st = put_text(it, T_REF_SOP_INSTANCE, VR('U', 'I'), uid);
    return st;
}

static deid_status per_frame_groups(build *b, deid_item *root)
{
    deid_elem *e = deid__item_put(root, T_PERFRAME_FG, DEID_VR_SQ);
    if (!e)
        return nomem();
    deid__elem_empty(e);
    for (size_t k = 0; k < b->vol->geom.dims[2]; k++) {
        deid_item *fg = deid__elem_add_item(e);
        if (!fg)
            return nomem();
        deid_status st = per_frame_group(b, fg, k);
        if (st != DEID_OK)
            return st;
    }
    return DEID_OK;
}

/* ---- the object ---------------------------------------------------------------------------- */

/* Rows and columns of the first slice against the volume's. */
static deid_status check_match(const deid_volume *vol, const deid_item *first)
{
    const deid_elem *r = deid__item_find(first, T_ROWS), *c = deid__item_find(first, T_COLS);
    long rows = r && r->value && r->len >= 2 ? r->value[0] | r->value[1] << 8 : -1;
    long cols = c && c->value && c->len >= 2 ? c->value[0] | c->value[1] << 8 : -1;
    if (rows != (long)vol->geom.dims[1] || cols != (long)vol->geom.dims[0])
        return deid__fail(DEID_ERR_ARGUMENT, M,
                          "enhanced: slices of %ld x %ld, volume of %zu x %zu", cols, rows,
                          vol->geom.dims[0], vol->geom.dims[1]);
    size_t bytes;
    if (!deid__mul_size(vol->n, 2, &bytes) || bytes > 0xFFFFFFFEu)
        return deid__fail(DEID_ERR_LIMIT, M, "enhanced: %zu voxels exceed 4 GiB of pixel data",
                          vol->n);
    return DEID_OK;
}

static deid_status assemble(build *b, deid_dataset *ds, const deid_image *img)
{
    deid_item *root = &ds->root;
    char frames[24];
    deid_status st = copy_source(b, root);
    if (st == DEID_OK)
        st = put_text(root, T_SOP_CLASS, VR('U', 'I'),
                      b->enhanced ? UID_ENHANCED_CT : UID_LEGACY_CT);
    if (st == DEID_OK)
        st = put_text(root, T_SOP_INSTANCE, VR('U', 'I'), b->sop_uid);
    if (st == DEID_OK)
        st = image_module(b, root);
    snprintf(frames, sizeof frames, "%zu", b->vol->geom.dims[2]);
    if (st == DEID_OK)
        st = put_text(root, T_FRAMES, VR('I', 'S'), frames);
    if (st == DEID_OK)
        st = dimensions(b, root);
    if (st == DEID_OK)
        st = shared_groups(b, root);
    if (st == DEID_OK)
        st = per_frame_groups(b, root);
    if (st == DEID_OK) {
        deid_encode_options o = DEID_ENCODE_OPTIONS_INIT;
        o.codec = DEID_CODEC_UNCOMPRESSED;
        st = deid_dataset_set_pixels(ds, img, &o);
    }
    return st;
}

deid_status deid_volume_to_enhanced(const deid_volume *vol, const deid_series *series,
                                    int enhanced, deid_dataset **out)
{
    if (!vol || !series || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_volume_to_enhanced: NULL argument");
    if (!series->n)
        return deid__fail(DEID_ERR_ARGUMENT, M, "enhanced: series without slices");
    build b;
    memset(&b, 0, sizeof b);
    b.vol = vol;
    b.series = series;
    b.first = &series->v[0].ds->root;
    b.enhanced = enhanced != 0;
    deid_status st = check_match(vol, b.first);
    if (st != DEID_OK)
        return st;
    char pi[20];
    deid__ct_text(b.first, T_PHOTOMETRIC, pi, sizeof pi);
    if (!strcmp(pi, "MONOCHROME1") && b.enhanced) /* its stored values would show inverted */
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "enhanced: Enhanced CT allows MONOCHROME2 only (slices are MONOCHROME1)");
    if (strcmp(pi, "MONOCHROME1"))
        snprintf(pi, sizeof pi, "%s", "MONOCHROME2");
    const deid_elem *r = deid__item_find(b.first, T_PIXEL_REPR);
    int source_signed = r && r->value && r->len >= 2 && r->value[0] == 1;
    deid_image *img = NULL;
    int32_t offset = 0;
    if ((st = make_frames(vol, source_signed, pi, &img, &offset)) != DEID_OK)
        return st;
    b.sign = img->is_signed;
    b.offset_applied = offset != 0;
    b.intercept = vol->intercept + (double)offset * vol->slope;
    b.slice_of = deid__calloc(vol->geom.dims[2], sizeof *b.slice_of);
    deid_dataset *ds = deid__dataset_new(series->v[0].path ? series->v[0].path : "enhanced");
    if (!b.slice_of || !ds) {
        free(b.slice_of);
        deid_dataset_free(ds);
        deid_image_free(img);
        return nomem();
    }
    match_slices(&b);
    hash_inputs(&b, img);
    st = assemble(&b, ds, img);
    deid_image_free(img);
    free(b.slice_of);
    sodium_memzero(&b.hash, sizeof b.hash);
    if (st != DEID_OK) {
        deid_dataset_free(ds);
        return st;
    }
    *out = ds;
    return DEID_OK;
}
