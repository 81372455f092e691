/* The profile engine on trees built in memory: no PHI left at any depth, kept attributes
 * unchanged, method attributes, consistent keyed UIDs, each option, recipes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "deid/deid.h"
#include "core/core.h"
#include "dicom/dataset_int.h"
#include "profile/profile_int.h"
#include "check.h"

#define T(g, e) DEID_TAG(0x##g, 0x##e)
#define MARK "PHIMARK"
#define SOP_UID "1.2.826.0.1.3680043.99.1.3"
#define STUDY_UID "1.2.826.0.1.3680043.99.1.1"
#define SERIES_UID "1.2.826.0.1.3680043.99.1.2"
#define FOR_UID "1.2.826.0.1.3680043.99.1.4"
#define CT_CLASS "1.2.840.10008.5.1.4.1.1.2"
#define PATIENT_ID "PAT-" MARK "-123"

static char tmpdir[] = "/tmp/deid_test_profileXXXXXX";

/* ---- building trees ---------------------------------------------------------------------- */

static deid_elem *put(deid_item *it, uint32_t tag, const char *vr, const char *value)
{
    deid_elem *e = deid__item_put(it, tag, DEID_VR(vr[0], vr[1]));
    if (!e || deid__elem_set(e, value, strlen(value)) != 0) {
        fprintf(stderr, "out of memory building a test tree\n");
        exit(2);
    }
    return e;
}

static void put_bytes(deid_item *it, uint32_t tag, const char *vr, const void *data, size_t n)
{
    deid_elem *e = deid__item_put(it, tag, DEID_VR(vr[0], vr[1]));
    if (!e || deid__elem_set(e, data, n) != 0)
        exit(2);
}

static deid_item *add_item(deid_item *it, uint32_t tag)
{
    deid_elem *e = deid__item_put(it, tag, DEID_VR_SQ);
    deid_item *child = e ? deid__elem_add_item(e) : NULL;
    if (!child)
        exit(2);
    return child;
}

/* PHI in every text VR, repeated at each depth. */
static void put_phi(deid_item *it)
{
    put(it, T(0008, 0020), "DA", "20200315");                 /* Study Date */
    put(it, T(0008, 002A), "DT", "20200315101500.000000");    /* Acquisition DateTime */
    put(it, T(0008, 0030), "TM", "101500");                   /* Study Time */
    put(it, T(0008, 0050), "SH", "ACC-" MARK);                /* Accession Number */
    put(it, T(0008, 0055), "AE", MARK "AE");                  /* Station AE Title */
    put(it, T(0008, 0070), "LO", "ACME");                     /* Manufacturer (kept) */
    put(it, T(0008, 0080), "LO", MARK " Hospital");           /* Institution Name */
    put(it, T(0008, 0081), "ST", "1 " MARK " Street");        /* Institution Address */
    put(it, T(0008, 0090), "PN", MARK "^Referrer");           /* Referring Physician */
    put(it, T(0008, 1155), "UI", SOP_UID);                    /* Referenced SOP Instance */
    put(it, T(0010, 0010), "PN", MARK "^John");               /* Patient's Name */
    put(it, T(0010, 1010), "AS", "045Y");                     /* Patient's Age */
    put(it, T(0010, 1030), "DS", "80.5");                     /* Patient's Weight */
    put(it, T(0010, 21B0), "LT", "history " MARK);            /* Additional Patient History */
    put(it, T(0014, 0102), "DA", "20200315");                 /* not in the table: date net */
    put(it, T(0014, 2006), "PN", MARK "^Evaluator");          /* not in the table: PN net */
    put(it, T(0016, 0087), "CS", MARK);                       /* GPS Dest Bearing Ref */
    put(it, T(0016, 004D), "UT", MARK " owner");              /* Camera Owner Name */
    put(it, T(0018, 9371), "UC", MARK "-DET");                /* X-Ray Detector ID */
    put(it, T(0040, A123), "PN", MARK "^Person");             /* Person Name */
    put(it, T(0072, 0071), "UR", "http://" MARK ".example/"); /* Selector UR Value */
    put(it, T(0009, 0010), "LO", "ACME 1.0");                 /* private creator */
    put(it, T(0009, 1001), "LO", MARK " private");
    put(it, T(0011, 1001), "LO", MARK " orphan");             /* private, no creator */
}

static deid_dataset *build(const char *patient_id)
{
    deid_dataset *ds = deid__dataset_new("test.dcm");
    if (!ds)
        exit(2);
    deid_item *r = &ds->root;
    put(&ds->meta, T(0002, 0003), "UI", SOP_UID);
    put(&ds->meta, T(0002, 0010), "UI", "1.2.840.10008.1.2.1");
    put_phi(r);
    uint32_t len = 1234;
    put_bytes(r, T(0008, 0000), "UL", &len, 4);                /* group length */
    put(r, T(0008, 0005), "CS", "ISO_IR 100");
    put(r, T(0008, 0008), "CS", "ORIGINAL\\PRIMARY\\AXIAL");
    put(r, T(0008, 0016), "UI", CT_CLASS);
    put(r, T(0008, 0018), "UI", SOP_UID);
    put(r, T(0008, 0060), "CS", "CT");
    put(r, T(0008, 1030), "LO", MARK " study");                /* Study Description */
    put(r, T(0010, 0020), "LO", patient_id);
    put(r, T(0010, 0030), "DA", "19750315");
    put(r, T(0010, 0040), "CS", "M");
    put(r, T(0018, 0050), "DS", "5");
    put(r, T(0020, 000D), "UI", STUDY_UID);
    put(r, T(0020, 000E), "UI", SERIES_UID);
    put(r, T(0020, 0052), "UI", FOR_UID);
    put(r, T(0020, 4000), "LT", MARK " comments");
    uint16_t rows = 512;
    put_bytes(r, T(0028, 0010), "US", &rows, 2);
    put_bytes(r, T(0028, 0011), "US", &rows, 2);
    put(r, T(0019, 0010), "LO", "SIEMENS MR HEADER");
    put(r, T(0019, 100C), "IS", "1000");
    put(r, T(0019, 1008), "LO", MARK);
    /* private sequence holding PHI */
    deid_item *pv = add_item(r, T(0009, 1002));
    put_phi(pv);
    /* overlay and curve */
    put_bytes(r, T(6000, 0010), "US", &rows, 2);
    put(r, T(6000, 0022), "LO", MARK " overlay");
    put_bytes(r, T(6000, 3000), "OW", MARK "bits", 12);
    put_bytes(r, T(5000, 3000), "OW", MARK "crve", 12);
    /* code sequence naming the institution (X/Z/D on a sequence) */
    deid_item *inst = add_item(r, T(0008, 0082));
    put(inst, T(0008, 0100), "SH", MARK "1");
    put(inst, T(0008, 0102), "SH", "99LOCAL");
    put(inst, T(0008, 0104), "LO", MARK " General");
    deid_item *study = add_item(r, T(0008, 1110));            /* Referenced Study (X/Z) */
    put(study, T(0008, 1150), "UI", "1.2.840.10008.3.1.2.3.1");
    put(study, T(0008, 1155), "UI", STUDY_UID);
    /* references */
    deid_item *ref = add_item(r, T(0008, 1140));               /* Referenced Image (X/Z/U*) */
    put(ref, T(0008, 1150), "UI", CT_CLASS);
    put(ref, T(0008, 1155), "UI", SOP_UID);
    /* structured content and graphics */
    deid_item *c1 = add_item(r, T(0040, A730));
    put(c1, T(0040, A160), "UT", "report about " MARK);
    put(c1, T(0040, A010), "CS", "CONTAINS");
    deid_item *cn = add_item(c1, T(0040, A043));               /* Concept Name Code */
    put(cn, T(0008, 0100), "SH", "121071");
    put(cn, T(0008, 0102), "SH", "DCM");
    put(cn, T(0008, 0104), "LO", "Finding " MARK);
    deid_item *c2 = add_item(c1, T(0040, A730));
    put(c2, T(0040, A123), "PN", MARK "^Observer");
    put(c2, T(0040, A121), "DA", "20200315");
    deid_item *g = add_item(r, T(0070, 0001));
    deid_item *txt = add_item(g, T(0070, 0008));
    put(txt, T(0070, 0006), "ST", MARK " annotation");
    /* depth 1..3 through sequences the table does not list */
    deid_item *d1 = add_item(r, T(0008, 1115));
    put_phi(d1);
    put(d1, T(0020, 000E), "UI", SERIES_UID);
    deid_item *d2 = add_item(d1, T(0040, A170));
    put_phi(d2);
    put(d2, T(0008, 0104), "LO", "Code meaning kept");
    deid_item *d3 = add_item(d2, T(0054, 0016));
    put_phi(d3);
    put(d3, T(0020, 000D), "UI", STUDY_UID);
    deid_item *d3p = add_item(d3, T(0009, 1002));              /* private SQ at depth 4 */
    put(d3p, T(0010, 0010), "PN", MARK "^Deep");
    return ds;
}

/* ---- inspecting trees -------------------------------------------------------------------- */

static int has_bytes(const uint8_t *v, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(v + i, needle, k) == 0)
            return 1;
    return 0;
}

/* Path of the first element holding needle (for the failure message), or NULL. */
static const char *find_text(const deid_item *it, const char *needle)
{
    static char where[64];
    for (size_t i = 0; i < it->n; i++) {
        const deid_elem *e = &it->elems[i];
        if (e->value && has_bytes(e->value, e->len, needle)) {
            snprintf(where, sizeof where, "(%04X,%04X)", (unsigned)(e->tag >> 16),
                     (unsigned)(e->tag & 0xFFFF));
            return where;
        }
        for (size_t k = 0; k < e->nitems; k++) {
            const char *w = find_text(&e->items[k], needle);
            if (w)
                return w;
        }
    }
    return NULL;
}

static int absent(const deid_dataset *ds, const char *needle)
{
    const char *w = find_text(&ds->root, needle);
    if (!w)
        w = find_text(&ds->meta, needle);
    if (w)
        fprintf(stderr, "  \"%s\" left in %s\n", needle, w);
    return w == NULL;
}

static int count_tags(const deid_item *it, int (*pred)(uint32_t))
{
    int n = 0;
    for (size_t i = 0; i < it->n; i++) {
        n += pred(it->elems[i].tag);
        for (size_t k = 0; k < it->elems[i].nitems; k++)
            n += count_tags(&it->elems[i].items[k], pred);
    }
    return n;
}

static int is_private(uint32_t tag) { return (tag >> 16) & 1; }
static int is_graphic_group(uint32_t tag)
{
    return (tag >> 24) == 0x50 || (tag >> 24) == 0x60;
}

static const char *text(const deid_item *it, uint32_t tag)
{
    static char buf[4][256];
    static int slot;
    char *b = buf[slot++ & 3];
    const deid_elem *e = deid__item_find(it, tag);
    if (!e)
        return NULL;
    if (!e->value)
        return "";
    if (deid__elem_text(e, b, 256) == (size_t)-1)
        return "<too long>";
    return b;
}

static int eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static const deid_item *child(const deid_item *it, uint32_t tag)
{
    const deid_elem *e = it ? deid__item_find(it, tag) : NULL;
    return e && e->nitems ? &e->items[0] : NULL;
}

/* ---- profiles ---------------------------------------------------------------------------- */

static deid_key *make_key(unsigned char first)
{
    unsigned char bytes[DEID_KEY_BYTES];
    for (int i = 0; i < DEID_KEY_BYTES; i++)
        bytes[i] = (unsigned char)(first * 7 + i);
    deid_key *k = NULL;
    CHECK_OK(deid_key_from_bytes(bytes, sizeof bytes, &k));
    return k;
}

static deid_profile *make_profile(const deid_key *key, unsigned flags, const char *recipe)
{
    deid_profile_options o = DEID_PROFILE_OPTIONS_INIT;
    o.flags = flags;
    o.recipe_path = recipe;
    o.patient_name_prefix = "ANON^";
    deid_profile *p = NULL;
    CHECK_OK(deid_profile_new(&o, key, &p));
    return p;
}

static deid_dataset *apply(const deid_profile *p, deid_ids *ids)
{
    deid_dataset *ds = build(PATIENT_ID);
    CHECK_OK(deid__profile_apply_ids(p, ds, ids));
    return ds;
}

static void check_no_phi(const deid_dataset *ds)
{
    CHECK(absent(ds, MARK));
    CHECK(absent(ds, SOP_UID));
    CHECK(absent(ds, STUDY_UID));
    CHECK(absent(ds, SERIES_UID));
    CHECK(absent(ds, FOR_UID));
    CHECK(absent(ds, "20200315"));
    CHECK(absent(ds, "19750315"));
    CHECK(count_tags(&ds->root, is_private) == 0);
    CHECK(count_tags(&ds->root, is_graphic_group) == 0);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_basic(const deid_key *key)
{
    deid_profile *p = make_profile(key, 0, NULL);
    deid_ids ids;
    deid_dataset *ds = apply(p, &ids);
    const deid_item *r = &ds->root;
    check_no_phi(ds);
    CHECK(absent(ds, "101500"));
    CHECK(absent(ds, "045Y"));

    /* kept as they were */
    CHECK(eq(text(r, T(0008, 0016)), CT_CLASS));
    CHECK(eq(text(r, T(0008, 0008)), "ORIGINAL\\PRIMARY\\AXIAL"));
    CHECK(eq(text(r, T(0008, 0060)), "CT"));
    CHECK(eq(text(r, T(0008, 0070)), "ACME"));
    CHECK(eq(text(r, T(0018, 0050)), "5"));
    const deid_elem *rows = deid__item_find(r, T(0028, 0010));
    CHECK(rows && rows->len == 2 && rows->value[0] == 0x00 && rows->value[1] == 0x02);
    CHECK(eq(text(child(child(r, T(0008, 1115)), T(0040, A170)), T(0008, 0104)),
             "Code meaning kept"));

    /* actions */
    CHECK(deid__item_find(r, T(0008, 0000)) == NULL);          /* group length */
    CHECK(eq(text(r, T(0008, 0020)), ""));                     /* Z */
    CHECK(eq(text(r, T(0008, 002A)), "19000101000000"));       /* X/Z/D -> D */
    CHECK(eq(text(r, T(0008, 0080)), "ANONYMIZED"));           /* X/Z/D -> D */
    CHECK(deid__item_find(r, T(0008, 0081)) == NULL);          /* X */
    CHECK(eq(text(r, T(0040, A123)), "ANONYMIZED^"));          /* D on PN */
    CHECK(eq(text(r, T(0072, 0071)), "ANONYMIZED"));           /* D on UR */
    CHECK(eq(text(r, T(0014, 2006)), ""));                     /* PN safety net */
    CHECK(eq(text(r, T(0014, 0102)), ""));                     /* date safety net */
    CHECK(eq(text(r, T(0010, 0040)), ""));                     /* sex: Z */
    CHECK(deid__item_find(r, T(0010, 1010)) == NULL);          /* age: X */
    CHECK(deid__item_find(r, T(0008, 1030)) == NULL);          /* description: X */
    /* D on a sequence: kept, every item cleaned (an empty Type 1C sequence breaks the IOD) */
    const deid_item *c1 = child(r, T(0040, A730));
    CHECK(c1 != NULL);
    CHECK(eq(text(c1, T(0040, A010)), "CONTAINS"));
    CHECK(eq(text(c1, T(0040, A160)), "ANONYMIZED"));          /* free text: dummy */
    CHECK(eq(text(child(c1, T(0040, A730)), T(0040, A123)), "ANONYMIZED^"));
    CHECK(eq(text(child(c1, T(0040, A730)), T(0040, A121)), "19000101"));
    const deid_item *inst = child(r, T(0008, 0082));           /* codes naming the institution */
    CHECK(inst && eq(text(inst, T(0008, 0104)), "ANONYMIZED"));
    CHECK(inst && eq(text(inst, T(0008, 0100)), "ANONYMIZED"));
    const deid_item *txt = child(child(r, T(0070, 0001)), T(0070, 0008));
    CHECK(txt && eq(text(txt, T(0070, 0006)), "ANONYMIZED"));
    CHECK(deid__item_find(r, T(0020, 4000)) == NULL);          /* Image Comments: X */

    /* patient */
    char pseudo[11];
    CHECK_OK(deid_profile_patient_pseudonym(p, PATIENT_ID, pseudo));
    CHECK(eq(text(r, T(0010, 0020)), pseudo));
    char name[32];
    snprintf(name, sizeof name, "ANON^%s", pseudo);
    CHECK(eq(text(r, T(0010, 0010)), name));
    CHECK(eq(text(child(r, T(0008, 1115)), T(0010, 0010)), "")); /* nested name: Z */
    CHECK(eq(text(r, T(0010, 0030)), ""));

    /* UIDs: keyed, consistent across depths and with the meta header */
    char sop[65], series[65], study[65];
    CHECK_OK(deid_profile_uid(p, SOP_UID, sop));
    CHECK_OK(deid_profile_uid(p, SERIES_UID, series));
    CHECK_OK(deid_profile_uid(p, STUDY_UID, study));
    CHECK(eq(text(r, T(0008, 0018)), sop));
    CHECK(eq(text(&ds->meta, T(0002, 0003)), sop));
    CHECK(eq(text(&ds->meta, T(0002, 0010)), "1.2.840.10008.1.2.1"));
    CHECK(eq(text(r, T(0008, 1155)), sop));
    CHECK(eq(text(child(r, T(0008, 1140)), T(0008, 1155)), sop));
    CHECK(eq(text(child(r, T(0008, 1140)), T(0008, 1150)), CT_CLASS));
    const deid_item *d1 = child(r, T(0008, 1115));
    const deid_item *d3 = child(child(d1, T(0040, A170)), T(0054, 0016));
    CHECK(eq(text(d1, T(0020, 000E)), series));
    CHECK(eq(text(d3, T(0020, 000D)), study));
    CHECK(eq(text(child(r, T(0008, 1110)), T(0008, 1155)), study)); /* X/Z sequence: kept */
    CHECK(eq(text(d3, T(0008, 1155)), sop));
    CHECK(eq(text(r, T(0020, 000D)), study));

    /* method attributes */
    CHECK(eq(text(r, T(0012, 0062)), "YES"));
    const char *method = text(r, T(0012, 0063));
    CHECK(method && strncmp(method, "libdeid 0.1.0: PS3.15 E.1-1 Basic Profile", 41) == 0);
    const deid_elem *codes = deid__item_find(r, T(0012, 0064));
    CHECK(codes && codes->vr == DEID_VR_SQ && codes->nitems == 1);
    if (codes && codes->nitems == 1) {
        CHECK(eq(text(&codes->items[0], T(0008, 0100)), "113100"));
        CHECK(eq(text(&codes->items[0], T(0008, 0102)), "DCM"));
        CHECK(eq(text(&codes->items[0], T(0008, 0104)),
                 "Basic Application Confidentiality Profile"));
    }
    CHECK(deid__item_find(r, T(0028, 0303)) == NULL);

    /* text values padded to even length */
    const deid_elem *pid = deid__item_find(r, T(0010, 0020));
    CHECK(pid && pid->len % 2 == 0);

    /* ids for keys.csv */
    CHECK(eq(ids.patient_id, PATIENT_ID));
    CHECK(eq(ids.patient_name, MARK "^John"));
    CHECK(eq(ids.sop_uid, SOP_UID) && eq(ids.new_sop_uid, sop));
    CHECK(eq(ids.study_uid, STUDY_UID) && eq(ids.new_study_uid, study));
    CHECK(eq(ids.series_uid, SERIES_UID) && eq(ids.new_series_uid, series));
    CHECK(eq(ids.pseudonym, pseudo));
    CHECK(strlen(ids.instance) == 8 && ids.date_shift == 0);
    deid_dataset_free(ds);

    /* same key, same result; another key, other UIDs and pseudonym */
    deid_dataset *again = apply(p, NULL);
    CHECK(eq(text(&again->root, T(0008, 0018)), sop));
    CHECK(eq(text(&again->root, T(0010, 0020)), pseudo));
    deid_dataset_free(again);
    deid_key *other_key = make_key(99);
    deid_profile *other = make_profile(other_key, 0, NULL);
    deid_dataset *ods = apply(other, NULL);
    CHECK(!eq(text(&ods->root, T(0008, 0018)), sop));
    CHECK(!eq(text(&ods->root, T(0010, 0020)), pseudo));
    deid_dataset_free(ods);
    deid_profile_free(other);
    deid_key_free(other_key);
    deid_profile_free(p);
}

/* Patient ID empty: the pseudonym comes from the Patient's Name; absent: both are added. */
static void test_patient_fallbacks(const deid_key *key)
{
    deid_profile *p = make_profile(key, 0, NULL);
    deid_dataset *ds = build("");
    char pseudo[11];
    CHECK_OK(deid_profile_apply(p, ds));
    CHECK_OK(deid_profile_patient_pseudonym(p, MARK "^John", pseudo));
    CHECK(eq(text(&ds->root, T(0010, 0020)), pseudo));
    deid_dataset_free(ds);

    ds = deid__dataset_new("bare");
    put(&ds->root, T(0008, 0060), "CS", "US");
    CHECK_OK(deid_profile_apply(p, ds));
    CHECK(text(&ds->root, T(0010, 0020)) && strlen(text(&ds->root, T(0010, 0020))) == 10);
    CHECK(text(&ds->root, T(0010, 0010)) && strncmp(text(&ds->root, T(0010, 0010)), "ANON^", 5) == 0);
    deid_dataset_free(ds);
    deid_profile_free(p);
}

static void test_clean_options(const deid_key *key)
{
    unsigned flags = DEID_OPT_CLEAN_DESCRIPTORS | DEID_OPT_CLEAN_STRUCTURED_CONTENT |
                     DEID_OPT_CLEAN_GRAPHICS;
    deid_profile *p = make_profile(key, flags, NULL);
    deid_dataset *ds = apply(p, NULL);
    const deid_item *r = &ds->root;
    check_no_phi(ds);
    CHECK(eq(text(r, T(0008, 1030)), ""));                     /* description: emptied */
    CHECK(eq(text(r, T(0020, 4000)), ""));
    const deid_item *c1 = child(r, T(0040, A730));
    CHECK(c1 != NULL);                                         /* content kept, cleaned */
    CHECK(eq(text(c1, T(0040, A010)), "CONTAINS"));
    CHECK(eq(text(c1, T(0040, A160)), "ANONYMIZED"));
    CHECK(eq(text(child(c1, T(0040, A730)), T(0040, A123)), "ANONYMIZED^"));
    const deid_item *code = child(c1, T(0040, A043));          /* codes kept, meaning not */
    CHECK(code && eq(text(code, T(0008, 0100)), "121071"));
    CHECK(code && eq(text(code, T(0008, 0102)), "DCM"));
    CHECK(code && eq(text(code, T(0008, 0104)), "ANONYMIZED"));
    const deid_item *txt = child(child(r, T(0070, 0001)), T(0070, 0008));
    CHECK(txt && eq(text(txt, T(0070, 0006)), "ANONYMIZED"));
    const char *method = text(r, T(0012, 0063));
    CHECK(method && strstr(method, "\\Clean Descriptors Option") != NULL);
    const deid_elem *codes = deid__item_find(r, T(0012, 0064));
    CHECK(codes && codes->nitems == 4);
    deid_dataset_free(ds);
    deid_profile_free(p);
}

static void test_retain_options(const deid_key *key)
{
    /* patient characteristics */
    deid_profile *p = make_profile(key, DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS, NULL);
    deid_dataset *ds = apply(p, NULL);
    CHECK(eq(text(&ds->root, T(0010, 0040)), "M"));
    CHECK(eq(text(&ds->root, T(0010, 1010)), "045Y"));
    CHECK(eq(text(&ds->root, T(0010, 1030)), "80.5"));
    CHECK(eq(text(&ds->root, T(0010, 0030)), "19750101"));
    CHECK(absent(ds, MARK));
    deid_dataset_free(ds);
    deid_profile_free(p);

    /* UIDs, device, institution */
    p = make_profile(key, DEID_OPT_RETAIN_UIDS | DEID_OPT_RETAIN_DEVICE_IDENTITY |
                              DEID_OPT_RETAIN_INSTITUTION_IDENTITY, NULL);
    ds = apply(p, NULL);
    CHECK(eq(text(&ds->root, T(0008, 0018)), SOP_UID));
    CHECK(eq(text(&ds->meta, T(0002, 0003)), SOP_UID));
    CHECK(eq(text(child(&ds->root, T(0008, 1140)), T(0008, 1155)), SOP_UID));
    CHECK(eq(text(&ds->root, T(0008, 0080)), MARK " Hospital"));
    CHECK(eq(text(&ds->root, T(0008, 0081)), "1 " MARK " Street"));
    CHECK(eq(text(&ds->root, T(0018, 9371)), MARK "-DET"));     /* device: K */
    CHECK(eq(text(&ds->root, T(0008, 0055)), ""));              /* AE title: C -> emptied */
    CHECK(eq(text(child(&ds->root, T(0008, 0082)), T(0008, 0104)), MARK " General"));
    deid_dataset_free(ds);
    deid_profile_free(p);

    /* safe private */
    p = make_profile(key, DEID_OPT_RETAIN_SAFE_PRIVATE, NULL);
    ds = apply(p, NULL);
    CHECK(eq(text(&ds->root, T(0019, 0010)), "SIEMENS MR HEADER"));
    CHECK(eq(text(&ds->root, T(0019, 100C)), "1000"));
    CHECK(deid__item_find(&ds->root, T(0019, 1008)) == NULL);
    CHECK(deid__item_find(&ds->root, T(0009, 0010)) == NULL);
    CHECK(count_tags(&ds->root, is_private) == 2);
    CHECK(absent(ds, MARK));
    deid_dataset_free(ds);
    deid_profile_free(p);

    /* keep patient id */
    p = make_profile(key, DEID_OPT_KEEP_PATIENT_ID, NULL);
    ds = apply(p, NULL);
    CHECK(eq(text(&ds->root, T(0010, 0020)), PATIENT_ID));
    CHECK(eq(text(&ds->root, T(0012, 0062)), "NO"));
    CHECK(!eq(text(&ds->root, T(0010, 0010)), MARK "^John"));
    deid_dataset_free(ds);
    deid_profile_free(p);

    /* full dates */
    p = make_profile(key, DEID_OPT_RETAIN_LONGITUDINAL_FULL_DATES, NULL);
    ds = apply(p, NULL);
    CHECK(eq(text(&ds->root, T(0008, 0020)), "20200315"));
    CHECK(eq(text(&ds->root, T(0008, 0030)), "101500"));
    CHECK(eq(text(&ds->root, T(0014, 0102)), "20200315"));
    CHECK(eq(text(&ds->root, T(0028, 0303)), "UNMODIFIED"));
    deid_dataset_free(ds);
    deid_profile_free(p);
}

/* The expected shifted date, by the C library's calendar (noon avoids DST edges). */
static void expected_date(int y, int m, int d, int shift, char out[32])
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d + shift;
    tm.tm_hour = 12;
    tm.tm_isdst = -1;
    mktime(&tm);
    snprintf(out, 32, "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static void test_modified_dates(const deid_key *key)
{
    deid_profile *p = make_profile(key, DEID_OPT_RETAIN_LONGITUDINAL_MODIFIED_DATES, NULL);
    int days = 0;
    CHECK_OK(deid_profile_date_shift(p, PATIENT_ID, &days));
    CHECK(days != 0 && days >= -30 && days <= 30);
    char want[32];
    expected_date(2020, 3, 15, days, want);
    deid_ids ids;
    deid_dataset *ds = apply(p, &ids);
    const deid_item *r = &ds->root;
    CHECK(ids.date_shift == days);
    CHECK(eq(text(r, T(0008, 0020)), want));
    CHECK(eq(text(r, T(0014, 0102)), want));                    /* date net: shifted too */
    CHECK(eq(text(r, T(0008, 0030)), "101500"));                /* times kept */
    char dt[64];
    snprintf(dt, sizeof dt, "%s101500.000000", want);
    CHECK(eq(text(r, T(0008, 002A)), dt));
    const deid_item *d3 =
        child(child(child(r, T(0008, 1115)), T(0040, A170)), T(0054, 0016));
    CHECK(eq(text(d3, T(0008, 0020)), want));
    CHECK(eq(text(r, T(0028, 0303)), "MODIFIED"));
    CHECK(eq(text(r, T(0010, 0030)), ""));                      /* birth date: Z */
    CHECK(absent(ds, "20200315"));
    deid_dataset_free(ds);

    /* Same patient in another object: same shift. */
    deid_dataset *other = deid__dataset_new("other");
    put(&other->root, T(0010, 0020), "LO", PATIENT_ID);
    put(&other->root, T(0008, 0021), "DA", "20200315");
    CHECK_OK(deid_profile_apply(p, other));
    CHECK(eq(text(&other->root, T(0008, 0021)), want));
    deid_dataset_free(other);

    /* A malformed date is emptied, never kept. */
    other = deid__dataset_new("bad");
    put(&other->root, T(0008, 0021), "DA", "2020-03-15");
    CHECK_OK(deid_profile_apply(p, other));
    CHECK(eq(text(&other->root, T(0008, 0021)), ""));
    deid_dataset_free(other);
    deid_profile_free(p);
}

static const char *write_recipe(const char *name, const char *json)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        exit(2);
    fputs(json, f);
    fclose(f);
    return path;
}

static void test_recipe(const deid_key *key)
{
    const char *path = write_recipe(
        "recipe.json",
        "{\"version\": 1, \"rules\": [\n"
        "  {\"tag\": \"PatientAge\", \"action\": \"keep\"},\n"
        "  {\"tag\": \"(0008,0060)\", \"action\": \"remove\"},\n"
        "  {\"tag\": \"00080070\", \"action\": \"empty\"},\n"
        "  {\"tag\": \"StudyDescription\", \"action\": \"replace\", \"value\": \"Research\"},\n"
        "  {\"tag\": \"AccessionNumber\", \"action\": \"hash\"},\n"
        "  {\"tag\": \"0008,0016\", \"action\": \"hash\", \"comment\": \"UID-style\"},\n"
        "  {\"tag\": \"(0009,1001)\", \"action\": \"keep\"}\n"
        "]}\n");
    deid_profile *p = make_profile(key, 0, path);
    deid_dataset *ds = apply(p, NULL);
    const deid_item *r = &ds->root;
    const deid_item *d3 =
        child(child(child(r, T(0008, 1115)), T(0040, A170)), T(0054, 0016));
    CHECK(eq(text(r, T(0010, 1010)), "045Y"));
    CHECK(eq(text(d3, T(0010, 1010)), "045Y"));                 /* every depth */
    CHECK(deid__item_find(r, T(0008, 0060)) == NULL);
    CHECK(eq(text(r, T(0008, 0070)), ""));
    CHECK(eq(text(r, T(0008, 1030)), "Research"));
    char acc[11], cls[65];
    CHECK_OK(deid_profile_patient_pseudonym(p, "ACC-" MARK, acc));
    CHECK(eq(text(r, T(0008, 0050)), acc));
    CHECK_OK(deid_profile_uid(p, CT_CLASS, cls));
    CHECK(eq(text(r, T(0008, 0016)), cls));
    CHECK(eq(text(r, T(0009, 1001)), MARK " private"));         /* kept with its creator */
    CHECK(eq(text(r, T(0009, 0010)), "ACME 1.0"));
    CHECK(deid__item_find(r, T(0011, 1001)) == NULL);
    const char *method = text(r, T(0012, 0063));
    CHECK(method && strstr(method, "recipe") != NULL);
    deid_dataset_free(ds);
    deid_profile_free(p);

    struct {
        const char *json;
        const char *message;
        deid_status st;
    } bad[] = {
        {"{\"version\": 1, \"rules\": [\n  {\"tag\": \"PatientAge\" \"action\": \"keep\"}]}",
         "line 2", DEID_ERR_ARGUMENT},
        {"{\"version\": 2, \"rules\": []}", "version", DEID_ERR_ARGUMENT},
        {"{\"version\": 1, \"rules\": [{\"tag\": \"PatientAgee\", \"action\": \"keep\"}]}",
         "unknown keyword", DEID_ERR_ARGUMENT},
        {"{\"version\": 1, \"rules\": [{\"tag\": \"PatientAge\", \"action\": \"blur\"}]}",
         "unknown action", DEID_ERR_ARGUMENT},
        {"{\"version\": 1, \"rules\": [{\"tag\": \"PatientAge\", \"action\": \"replace\"}]}",
         "value", DEID_ERR_ARGUMENT},
        {"{\"version\": 1, \"rules\": [{\"tag\": \"Rows\", \"action\": \"replace\", "
         "\"value\": \"1\"}]}", "text VR", DEID_ERR_ARGUMENT},
        {"{\"version\": 1, \"rules\": [{\"tag\": \"(60xx,3000)\", \"action\": \"keep\"}]}",
         "wildcards", DEID_ERR_ARGUMENT},
        {"{\"version\": 1, \"rules\": [{\"tag\": \"PatientAge\", \"action\": \"keep\"}, "
         "{\"tag\": \"(0010,1010)\", \"action\": \"remove\"}]}", "two rules", DEID_ERR_ARGUMENT},
        {"{\"version\": 1, \"rules\": [{\"tag\": \"(0002,0003)\", \"action\": \"keep\"}]}",
         "group 0002", DEID_ERR_ARGUMENT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *bp = write_recipe("bad.json", bad[i].json);
        deid_profile_options o = DEID_PROFILE_OPTIONS_INIT;
        o.recipe_path = bp;
        deid_profile *q = NULL;
        deid_status st = deid_profile_new(&o, key, &q);
        CHECK(st == bad[i].st && q == NULL);
        if (!strstr(deid_last_error(), bad[i].message) || !strstr(deid_last_error(), "bad.json"))
            fprintf(stderr, "  recipe case %zu: message \"%s\"\n", i, deid_last_error());
        CHECK(strstr(deid_last_error(), bad[i].message) != NULL);
        CHECK(strstr(deid_last_error(), "bad.json") != NULL);
        deid_profile_free(q);
    }
    deid_profile_options o = DEID_PROFILE_OPTIONS_INIT;
    o.recipe_path = "/nonexistent/recipe.json";
    deid_profile *q = NULL;
    CHECK(deid_profile_new(&o, key, &q) == DEID_ERR_IO);
    unlink(path);
    unlink(write_recipe("bad.json", ""));
}

/* Not pass/fail: a rough figure for a CT-sized header. */
static void report_speed(const deid_key *key)
{
    deid_profile *p = make_profile(key, 0, NULL);
    deid_dataset *ds = build(PATIENT_ID);
    for (int i = 0; i < 120; i++) /* pad to ~200 elements of kept attributes */
        put(&ds->root, DEID_TAG(0x0018, 0x6000 + i), "DS", "1.5");
    int n = 2000;
    double t0 = deid__now(), spent = 0;
    for (int i = 0; i < n; i++) {
        deid_dataset *copy = build(PATIENT_ID);
        for (int k = 0; k < 120; k++)
            put(&copy->root, DEID_TAG(0x0018, 0x6000 + k), "DS", "1.5");
        double t1 = deid__now();
        if (deid_profile_apply(p, copy) != DEID_OK)
            check_failures++;
        spent += deid__now() - t1;
        deid_dataset_free(copy);
    }
    (void)t0;
    printf("apply: %.1f us per dataset of ~%zu top-level elements (with nested PHI sets)\n",
           spent / n * 1e6, ds->root.n);
    deid_dataset_free(ds);
    deid_profile_free(p);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    deid_key *key = make_key(1);
    test_basic(key);
    test_patient_fallbacks(key);
    test_clean_options(key);
    test_retain_options(key);
    test_modified_dates(key);
    test_recipe(key);
    report_speed(key);
    deid_key_free(key);
    char cmd[128]; /* the recipes written above */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK(system(cmd) == 0);
    return check_done("test_profile");
}
