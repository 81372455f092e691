/* The engine: applies PS3.15 Table E.1-1 (with the enabled options), the rules beyond the
 * table and the recipe to every element at every sequence depth, then records the method.
 *
 * Order of precedence for an element: recipe rule > fixed rules (private groups, curves,
 * overlays, group lengths, Patient ID/Name, birth year) > table row (K of an enabled option >
 * C of an enabled option > basic action) > safety nets for attributes the table does not list
 * (person names emptied; dates emptied, kept or shifted per the date options; inside kept
 * sequences, free text replaced by a dummy) > keep.
 *
 * Sequences are never left empty where the table asks for a value: an empty Type 1 sequence
 * (Content Sequence, Verifying Observer Sequence...) breaks the IOD. They are kept and their
 * items cleaned instead, at one of two levels (see LEVEL_*). */
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "dicom/dataset_int.h"
#include "profile/annex_e.h"
#include "profile/profile_impl.h"

#define MAX_DEPTH 256 /* nesting beyond this is refused rather than recursed */

#define TAG_PATIENT_NAME DEID_TAG(0x0010, 0x0010)
#define TAG_PATIENT_ID DEID_TAG(0x0010, 0x0020)
#define TAG_BIRTH_DATE DEID_TAG(0x0010, 0x0030)
#define TAG_SOP_UID DEID_TAG(0x0008, 0x0018)
#define TAG_STUDY_UID DEID_TAG(0x0020, 0x000D)
#define TAG_SERIES_UID DEID_TAG(0x0020, 0x000E)
#define TAG_MEDIA_SOP_UID DEID_TAG(0x0002, 0x0003)

/* What happens to one element. */
typedef enum {
    DO_KEEP,        /* unchanged (a sequence's items are still processed) */
    DO_KEEP_CLEAN,  /* sequence kept by a Clean option: items processed at LEVEL_CLEAN */
    DO_KEEP_DUMMY,  /* sequence whose basic action asks for a value: items at LEVEL_DUMMY */
    DO_REMOVE,
    DO_EMPTY,
    DO_DUMMY,
    DO_UID,         /* each value replaced by its keyed UID */
    DO_SHIFT,       /* dates shifted by the patient's days */
    DO_PATIENT_ID,  /* the patient pseudonym */
    DO_PATIENT_NAME,/* prefix + the patient pseudonym */
    DO_BIRTH_YEAR,  /* YYYY0101 */
    DO_REPLACE,     /* recipe value */
    DO_HASH         /* recipe: keyed UID for UI, 10-digit pseudonym per value otherwise */
} action;

/* How much of a kept sequence's content survives, beyond what the table says per attribute:
 * LEVEL_CLEAN (a Clean option kept the sequence: code values, code schemes, enumerations and
 * measurements stay; text that can be free (LO LT ST UT UC UR: Text Value, Code Meaning...)
 * becomes a dummy) and LEVEL_DUMMY (the Basic Profile's D or X/Z on a sequence: code values
 * (SH), AE titles and person names become dummies too, so codes naming a person or an
 * institution go). Nested sequences inherit the higher level. */
enum { LEVEL_NONE = 0, LEVEL_CLEAN = 1, LEVEL_DUMMY = 2 };

typedef struct ctx {
    const deid_profile *p;
    unsigned flags;
    int shift;             /* days added to dates; 0 when dates are not shifted */
    char pseudonym[11];
    char *buf;             /* scratch for new values, reused across elements */
    size_t cap;
} ctx;

static int vr_in(uint16_t vr, const char *list)
{
    for (; list[0] && list[1]; list += 2)
        if (DEID_VR(list[0], list[1]) == vr)
            return 1;
    return 0;
}

/* The element's VR, or the dictionary's when it was read as UN (implicit VR, unknown). */
static uint16_t effective_vr(const deid_elem *e)
{
    return e->vr != DEID_VR_UN ? e->vr : deid__dict_tag_vr(e->tag);
}

static char *scratch(ctx *c, size_t n)
{
    if (n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        while (cap < n + 1)
            cap = cap > SIZE_MAX / 2 ? n + 1 : cap * 2;
        char *p = deid__realloc(c->buf, cap);
        if (!p)
            return NULL;
        c->buf = p;
        c->cap = cap;
    }
    return c->buf;
}

/* ---- deciding ------------------------------------------------------------------------------ */

static int dummy_basic(uint8_t basic)
{
    return basic == A_D || basic == A_XD || basic == A_ZD || basic == A_XZD;
}

/* X/Z on a sequence keeps it as a dummy too: X breaks Type 2 uses, Z (no items) breaks uses
 * requiring items (Referenced Study Sequence), and the table cannot tell which applies. */
static action basic_action(uint8_t basic, int seq)
{
    switch (basic) {
    case A_K: return DO_KEEP;
    case A_Z: return DO_EMPTY;
    case A_XZ: return seq ? DO_KEEP_DUMMY : DO_EMPTY;
    case A_D:
    case A_XD:
    case A_ZD:
    case A_XZD: return seq ? DO_KEEP_DUMMY : DO_DUMMY;
    /* U on a sequence, and X/Z/U*: the sequence is kept and the UIDs inside it are replaced
     * by their own rows (Referenced SOP Instance UID...), so references keep resolving. */
    case A_U:
    case A_XZU: return seq ? DO_KEEP : DO_UID;
    case A_C: return seq ? DO_KEEP_DUMMY : DO_EMPTY;
    default: return DO_REMOVE;
    }
}

/* C of the enabled options in `clean`. libdeid has no free-text cleaner: Clean options keep
 * sequences and clean them item by item; dates are shifted under Modified Dates (times kept);
 * other text is emptied (a dummy where the basic action demands a value); anything else falls
 * back to the basic action. */
static action clean_action(unsigned clean, uint8_t basic, uint16_t vr, int seq)
{
    if (seq)
        return DO_KEEP_CLEAN;
    if (clean & DEID_OPT_RETAIN_LONGITUDINAL_MODIFIED_DATES) {
        if (vr == DEID_VR('D', 'A') || vr == DEID_VR('D', 'T'))
            return DO_SHIFT;
        if (vr == DEID_VR('T', 'M'))
            return DO_KEEP;
    }
    if ((clean & ~(unsigned)DEID_OPT_RETAIN_LONGITUDINAL_MODIFIED_DATES) && deid__vr_is_text(vr))
        return dummy_basic(basic) ? DO_DUMMY : DO_EMPTY;
    return basic_action(basic, 0);
}

static action date_net(const ctx *c)
{
    if (c->flags & DEID_OPT_RETAIN_LONGITUDINAL_FULL_DATES)
        return DO_KEEP;
    if (c->flags & DEID_OPT_RETAIN_LONGITUDINAL_MODIFIED_DATES)
        return DO_SHIFT;
    return DO_EMPTY;
}

/* Public (even group) element without a recipe rule. */
static action decide(const ctx *c, const deid_elem *e, uint16_t vr, unsigned depth,
                     unsigned level)
{
    uint32_t tag = e->tag;
    uint16_t group = (uint16_t)(tag >> 16);
    if ((group & 0xFF00) == 0x5000 || (group & 0xFF00) == 0x6000)
        return DO_REMOVE; /* curves and overlay planes: no graphics cleaner, so all of it */
    if ((tag & 0xFFFF) == 0)
        return DO_REMOVE; /* group lengths: stale once values change */
    if (tag == TAG_PATIENT_ID)
        return (c->flags & DEID_OPT_KEEP_PATIENT_ID) ? DO_KEEP : DO_PATIENT_ID;
    if (tag == TAG_PATIENT_NAME && depth == 0)
        return DO_PATIENT_NAME;
    if (tag == TAG_BIRTH_DATE && (c->flags & DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS))
        return DO_BIRTH_YEAR;
    int seq = vr == DEID_VR_SQ || e->nitems > 0;
    const deid_annex_e_row *row = deid__annex_e_find(tag);
    if (row) {
        if (row->keep & c->flags)
            return DO_KEEP;
        if (row->clean & c->flags)
            return clean_action(row->clean & c->flags, row->basic, vr, seq);
        return basic_action(row->basic, seq);
    }
    if (e->len == 0 || seq)
        return DO_KEEP; /* nothing to hide (a sequence's items are processed) */
    if (vr == DEID_VR('P', 'N'))
        return level == LEVEL_DUMMY ? DO_DUMMY : DO_EMPTY;
    if (vr == DEID_VR('D', 'A') || vr == DEID_VR('D', 'T'))
        return date_net(c);
    /* Dummies rather than empty values: Text Value, Code Meaning... are Type 1 there. */
    if (level >= LEVEL_CLEAN && vr_in(vr, "LOLTSTUTUCUR"))
        return DO_DUMMY;
    if (level == LEVEL_DUMMY && vr_in(vr, "AESH"))
        return DO_DUMMY;
    return DO_KEEP;
}

static action recipe_action(const deid_recipe_rule *r)
{
    switch (r->action) {
    case R_KEEP: return DO_KEEP;
    case R_EMPTY: return DO_EMPTY;
    case R_REPLACE: return DO_REPLACE;
    case R_HASH: return DO_HASH;
    default: return DO_REMOVE;
    }
}

/* ---- doing --------------------------------------------------------------------------------- */

static deid_status set_text(deid_elem *e, const char *s, size_t n)
{
    return deid__elem_set(e, s, n) == 0 ? DEID_OK : DEID_ERR_NOMEM;
}

/* Apply fn to each backslash-separated value (trimmed) of e, joining the results. fn writes
 * at most `per_value` bytes; empty values stay empty. */
typedef size_t (*value_fn)(const ctx *c, const char *v, size_t n, char *out);

static deid_status map_values(ctx *c, deid_elem *e, size_t per_value, value_fn fn)
{
    const char *in = (const char *)e->value;
    size_t n = e->len, values = 1;
    for (size_t i = 0; i < n; i++)
        values += in[i] == '\\';
    size_t cap;
    if (!deid__mul_size(values, per_value + 1, &cap))
        return deid__fail(DEID_ERR_LIMIT, "profile", "value too large");
    char *out = scratch(c, cap);
    if (!out)
        return DEID_ERR_NOMEM;
    size_t o = 0, pos = 0, vn;
    const char *v;
    for (int first = 1; deid__next_value(in, n, &pos, &v, &vn); first = 0) {
        if (!first)
            out[o++] = '\\';
        if (vn)
            o += fn(c, v, vn, out + o);
    }
    while (o > 0 && out[o - 1] == '\\') /* all-empty values: nothing left to say */
        o--;
    return set_text(e, out, o);
}

static size_t uid_value(const ctx *c, const char *v, size_t n, char *out)
{
    char uid[65];
    size_t len = deid__uid(c->p, v, n, uid);
    memcpy(out, uid, len);
    return len;
}

static size_t pseudonym_value(const ctx *c, const char *v, size_t n, char *out)
{
    char id[11];
    deid__pseudonym(c->p, v, n, id);
    memcpy(out, id, 10);
    return 10;
}

static deid_status dummy(ctx *c, deid_elem *e, uint16_t vr)
{
    static const struct {
        char vr[3];
        const char *value;
    } dummies[] = {
        {"AE", "ANONYMIZED"}, {"CS", "ANONYMIZED"}, {"LO", "ANONYMIZED"}, {"SH", "ANONYMIZED"},
        {"LT", "ANONYMIZED"}, {"ST", "ANONYMIZED"}, {"UT", "ANONYMIZED"}, {"UC", "ANONYMIZED"},
        {"PN", "ANONYMIZED^"}, {"UR", "ANONYMIZED"}, {"AS", "000Y"}, {"DA", "19000101"},
        {"TM", "000000"}, {"DT", "19000101000000"}, {"DS", "0"}, {"IS", "0"},
    };
    if (vr == DEID_VR_SQ || e->nitems || e->nfrags) {
        deid__elem_empty(e);
        return DEID_OK;
    }
    if (vr == DEID_VR('U', 'I')) {
        if (e->len == 0) {
            char uid[65];
            return set_text(e, uid, deid__uid(c->p, "", 0, uid));
        }
        return map_values(c, e, 64, uid_value);
    }
    for (size_t i = 0; i < sizeof dummies / sizeof dummies[0]; i++)
        if (DEID_VR(dummies[i].vr[0], dummies[i].vr[1]) == vr)
            return set_text(e, dummies[i].value, strlen(dummies[i].value));
    if (e->value) /* binary or numeric: zeros of the same length keep the structure valid */
        memset(e->value, 0, e->len);
    return DEID_OK;
}

static deid_status shift_dates(ctx *c, deid_elem *e, uint16_t vr)
{
    if (!e->value || e->len == 0)
        return DEID_OK;
    char *out = scratch(c, e->len);
    if (!out)
        return DEID_ERR_NOMEM;
    const char *in = (const char *)e->value;
    size_t n = vr == DEID_VR('D', 'T') ? deid__shift_dt(in, e->len, c->shift, out)
                                       : deid__shift_da(in, e->len, c->shift, out);
    if (n == (size_t)-1) { /* malformed: never keep what we cannot shift */
        deid__elem_empty(e);
        return DEID_OK;
    }
    return set_text(e, out, n);
}

static deid_status patient_id(ctx *c, deid_elem *e, unsigned depth)
{
    if (depth == 0)
        return set_text(e, c->pseudonym, 10);
    const char *v;
    size_t n = deid__trim((const char *)e->value, e->len, &v);
    if (n == 0) {
        deid__elem_empty(e);
        return DEID_OK;
    }
    char id[11];
    deid__pseudonym(c->p, v, n, id); /* the same patient gets the same pseudonym */
    return set_text(e, id, 10);
}

static deid_status patient_name(ctx *c, deid_elem *e)
{
    const char *prefix = c->p->name_prefix ? c->p->name_prefix : "";
    size_t np = strlen(prefix);
    char name[80];
    memcpy(name, prefix, np);
    memcpy(name + np, c->pseudonym, 10);
    return set_text(e, name, np + 10);
}

static deid_status birth_year(deid_elem *e)
{
    char out[9];
    if (!e->value || deid__birth_year((const char *)e->value, e->len, out) != 0) {
        deid__elem_empty(e);
        return DEID_OK;
    }
    return set_text(e, out, 8);
}

static deid_status hash_value(ctx *c, deid_elem *e, uint16_t vr)
{
    if (!e->value || e->len == 0)
        return DEID_OK;
    if (vr == DEID_VR('U', 'I'))
        return map_values(c, e, 64, uid_value);
    return map_values(c, e, 10, pseudonym_value);
}

static deid_status process_item(ctx *c, deid_item *item, unsigned depth, unsigned level);

/* Carry out `a` on item->elems[i]; *removed is set when the element is gone. */
static deid_status act(ctx *c, deid_item *item, size_t i, action a, uint16_t vr,
                       const deid_recipe_rule *rule, unsigned depth, unsigned level)
{
    deid_elem *e = &item->elems[i];
    switch (a) {
    case DO_REMOVE: deid__item_remove_at(item, i); return DEID_OK;
    case DO_EMPTY: deid__elem_empty(e); return DEID_OK;
    case DO_DUMMY: return dummy(c, e, vr);
    case DO_UID:
        return e->nitems || !e->value ? DEID_OK : map_values(c, e, 64, uid_value);
    case DO_SHIFT: return shift_dates(c, e, vr);
    case DO_PATIENT_ID: return patient_id(c, e, depth);
    case DO_PATIENT_NAME: return patient_name(c, e);
    case DO_BIRTH_YEAR: return birth_year(e);
    case DO_REPLACE:
        if (vr == DEID_VR_SQ || e->nitems || (vr != DEID_VR_UN && !deid__vr_is_text(vr))) {
            deid__item_remove_at(item, i); /* a text value cannot replace this: drop it */
            return DEID_OK;
        }
        return set_text(e, rule->value, strlen(rule->value));
    case DO_HASH:
        if (vr == DEID_VR_SQ || e->nitems || !vr_in(vr, "AECSLOLTPNSHSTUCUIUTUN")) {
            deid__item_remove_at(item, i);
            return DEID_OK;
        }
        return hash_value(c, e, vr);
    case DO_KEEP:
    case DO_KEEP_CLEAN:
    case DO_KEEP_DUMMY: {
        unsigned inner = a == DO_KEEP_DUMMY ? LEVEL_DUMMY : a == DO_KEEP_CLEAN ? LEVEL_CLEAN : 0;
        if (inner < level)
            inner = level;
        for (size_t k = 0; k < e->nitems; k++) {
            deid_status st = process_item(c, &e->items[k], depth + 1, inner);
            if (st != DEID_OK)
                return st;
        }
        return DEID_OK;
    }
    }
    return DEID_OK;
}

/* ---- private groups ------------------------------------------------------------------------ */

/* Blocks (gggg,00xx) of the group being walked that keep at least one data element. */
typedef struct private_state {
    uint32_t group; /* 0x10000 when none */
    uint8_t kept[32];
} private_state;

static int block_kept(const private_state *ps, unsigned block)
{
    return ps->kept[block >> 3] >> (block & 7) & 1;
}

/* Private element: removed unless a recipe rule or the safe list keeps it; a creator stays
 * only while a data element of its block does. Elements are walked in descending tag order, so
 * a block's data elements are decided before its creator. */
static deid_status private_element(ctx *c, deid_item *item, size_t i, private_state *ps,
                                   unsigned depth, unsigned level)
{
    deid_elem *e = &item->elems[i];
    uint16_t group = (uint16_t)(e->tag >> 16), elem = (uint16_t)e->tag;
    if (ps->group != group) {
        ps->group = group;
        memset(ps->kept, 0, sizeof ps->kept);
    }
    const deid_recipe_rule *rule = deid__recipe_find(&c->p->recipe, e->tag);
    action a = DO_REMOVE;
    if (rule) {
        a = recipe_action(rule);
    } else if (elem >= 0x0010 && elem <= 0x00FF) {
        a = block_kept(ps, elem) ? DO_KEEP : DO_REMOVE;
    } else if (elem >= 0x1000 && (c->flags & DEID_OPT_RETAIN_SAFE_PRIVATE)) {
        const deid_elem *creator = deid__item_find(item, DEID_TAG(group, elem >> 8));
        if (creator && creator->value &&
            deid__safe_private(group, (const char *)creator->value, creator->len,
                               (uint8_t)(elem & 0xFF)))
            a = DO_KEEP;
    }
    if (a != DO_REMOVE && elem >= 0x1000) {
        unsigned block = elem >> 8;
        ps->kept[block >> 3] |= (uint8_t)(1u << (block & 7));
    }
    return act(c, item, i, a, e->vr, rule, depth, level);
}

/* ---- walking ------------------------------------------------------------------------------- */

static deid_status process_item(ctx *c, deid_item *item, unsigned depth, unsigned level)
{
    if (depth > MAX_DEPTH)
        return deid__fail(DEID_ERR_LIMIT, "profile", "sequences nested deeper than %d",
                          MAX_DEPTH);
    private_state ps = {0x10000, {0}};
    for (size_t i = item->n; i-- > 0;) {
        deid_elem *e = &item->elems[i];
        deid_status st;
        if ((e->tag >> 16) & 1) {
            st = private_element(c, item, i, &ps, depth, level);
        } else {
            uint16_t vr = effective_vr(e);
            const deid_recipe_rule *rule = deid__recipe_find(&c->p->recipe, e->tag);
            action a = rule ? recipe_action(rule) : decide(c, e, vr, depth, level);
            st = act(c, item, i, a, vr, rule, depth, level);
        }
        if (st != DEID_OK)
            return st;
    }
    return DEID_OK;
}

/* ---- the data set as a whole --------------------------------------------------------------- */

static void copy_text(const deid_item *item, uint32_t tag, char *out, size_t cap)
{
    const deid_elem *e = deid__item_find(item, tag);
    out[0] = '\0';
    if (!e || !e->value)
        return;
    const char *v;
    size_t n = deid__trim((const char *)e->value, e->len, &v);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

/* The identifier that pseudonym and date shift derive from: Patient ID, or Patient's Name
 * when the ID is empty (both read before anything changes). */
static void patient_key(const deid_item *root, const char **id, size_t *n)
{
    const deid_elem *e = deid__item_find(root, TAG_PATIENT_ID);
    *n = 0;
    *id = "";
    if (e && e->value)
        *n = deid__trim((const char *)e->value, e->len, id);
    if (*n == 0 && (e = deid__item_find(root, TAG_PATIENT_NAME)) != NULL && e->value)
        *n = deid__trim((const char *)e->value, e->len, id);
}

static deid_status put_text(deid_item *item, uint32_t tag, uint16_t vr, const char *s)
{
    deid_elem *e = deid__item_put(item, tag, vr);
    if (!e)
        return DEID_ERR_NOMEM;
    e->vr = vr;
    return set_text(e, s, strlen(s));
}

/* Patient ID and Name are Type 2: present with the pseudonym even when the input lacked them
 * (unless a recipe rule or keep-patient-id decides otherwise). */
static deid_status add_patient(ctx *c, deid_item *root)
{
    const deid_recipe *r = &c->p->recipe;
    deid_status st = DEID_OK;
    if (!deid__item_find(root, TAG_PATIENT_ID) && !deid__recipe_find(r, TAG_PATIENT_ID) &&
        !(c->flags & DEID_OPT_KEEP_PATIENT_ID))
        st = put_text(root, TAG_PATIENT_ID, DEID_VR('L', 'O'), c->pseudonym);
    if (st == DEID_OK && !deid__item_find(root, TAG_PATIENT_NAME) &&
        !deid__recipe_find(r, TAG_PATIENT_NAME)) {
        deid_elem *e = deid__item_put(root, TAG_PATIENT_NAME, DEID_VR('P', 'N'));
        st = e ? patient_name(c, e) : DEID_ERR_NOMEM;
    }
    return st;
}

/* (0002,0003) follows the new SOP Instance UID; the rest of group 0002 is the writer's. */
static deid_status update_meta(ctx *c, deid_dataset *ds)
{
    deid_elem *m = deid__item_find(&ds->meta, TAG_MEDIA_SOP_UID);
    if (!m)
        return DEID_OK;
    const deid_elem *sop = deid__item_find(&ds->root, TAG_SOP_UID);
    if (sop && sop->value && sop->len)
        return deid__elem_set(m, sop->value, sop->len) == 0 ? DEID_OK : DEID_ERR_NOMEM;
    if (c->flags & DEID_OPT_RETAIN_UIDS || !m->value)
        return DEID_OK;
    return map_values(c, m, 64, uid_value);
}

static deid_status add_code(deid_elem *seq, const deid_method_code *code)
{
    deid_item *it = deid__elem_add_item(seq);
    if (!it)
        return DEID_ERR_NOMEM;
    deid_status st = put_text(it, DEID_TAG(0x0008, 0x0100), DEID_VR('S', 'H'), code->value);
    if (st == DEID_OK)
        st = put_text(it, DEID_TAG(0x0008, 0x0102), DEID_VR('S', 'H'), "DCM");
    if (st == DEID_OK)
        st = put_text(it, DEID_TAG(0x0008, 0x0104), DEID_VR('L', 'O'), code->meaning);
    return st;
}

static deid_status record_method(ctx *c, deid_item *root)
{
    const deid_profile *p = c->p;
    int identity_kept = (p->flags & DEID_OPT_KEEP_PATIENT_ID) != 0;
    deid_status st = put_text(root, DEID_TAG(0x0012, 0x0062), DEID_VR('C', 'S'),
                              identity_kept ? "NO" : "YES");
    if (st == DEID_OK)
        st = put_text(root, DEID_TAG(0x0012, 0x0063), DEID_VR('L', 'O'), p->method);
    deid_elem *seq = st == DEID_OK ? deid__item_put(root, DEID_TAG(0x0012, 0x0064), DEID_VR_SQ)
                                   : NULL;
    if (st == DEID_OK && !seq)
        st = DEID_ERR_NOMEM;
    if (seq) {
        seq->vr = DEID_VR_SQ;
        deid__elem_empty(seq);
        for (size_t i = 0; i < p->ncodes && st == DEID_OK; i++)
            st = add_code(seq, &p->codes[i]);
    }
    /* PS3.15 E.3.6: say whether dates were kept or shifted. */
    const char *temporal = (p->flags & DEID_OPT_RETAIN_LONGITUDINAL_FULL_DATES) ? "UNMODIFIED"
                         : c->shift ? "MODIFIED" : NULL;
    if (st == DEID_OK && temporal)
        st = put_text(root, DEID_TAG(0x0028, 0x0303), DEID_VR('C', 'S'), temporal);
    return st;
}

static void ids_before(const ctx *c, const deid_item *root, deid_ids *ids)
{
    copy_text(root, TAG_PATIENT_ID, ids->patient_id, sizeof ids->patient_id);
    copy_text(root, TAG_PATIENT_NAME, ids->patient_name, sizeof ids->patient_name);
    copy_text(root, TAG_STUDY_UID, ids->study_uid, sizeof ids->study_uid);
    copy_text(root, TAG_SERIES_UID, ids->series_uid, sizeof ids->series_uid);
    copy_text(root, TAG_SOP_UID, ids->sop_uid, sizeof ids->sop_uid);
    memcpy(ids->pseudonym, c->pseudonym, sizeof ids->pseudonym);
    /* From the whole value, not the (possibly truncated) copy, so that it always equals
     * deid__profile_instance_hash of the original string. */
    const deid_elem *sop = deid__item_find(root, TAG_SOP_UID);
    const char *v = "";
    size_t n = sop && sop->value ? deid__trim((const char *)sop->value, sop->len, &v) : 0;
    deid__instance_hash(c->p, v, n, ids->instance);
    ids->date_shift = c->shift;
}

static void ids_after(const deid_item *root, deid_ids *ids)
{
    copy_text(root, TAG_STUDY_UID, ids->new_study_uid, sizeof ids->new_study_uid);
    copy_text(root, TAG_SERIES_UID, ids->new_series_uid, sizeof ids->new_series_uid);
    copy_text(root, TAG_SOP_UID, ids->new_sop_uid, sizeof ids->new_sop_uid);
}

deid_status deid__profile_apply_ids(const deid_profile *p, deid_dataset *ds, deid_ids *ids)
{
    if (ids)
        memset(ids, 0, sizeof *ids);
    if (!p || !ds)
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "deid_profile_apply: NULL argument");
    ctx c = {p, p->flags, 0, {0}, NULL, 0};
    const char *id;
    size_t n;
    patient_key(&ds->root, &id, &n);
    deid__pseudonym(p, id, n, c.pseudonym);
    if ((p->flags & DEID_OPT_RETAIN_LONGITUDINAL_MODIFIED_DATES) &&
        !(p->flags & DEID_OPT_RETAIN_LONGITUDINAL_FULL_DATES))
        c.shift = deid__shift_days(p, id, n);
    if (ids)
        ids_before(&c, &ds->root, ids);
    deid_status st = process_item(&c, &ds->root, 0, 0);
    if (st == DEID_OK)
        st = add_patient(&c, &ds->root);
    if (st == DEID_OK)
        st = update_meta(&c, ds);
    if (st == DEID_OK)
        st = record_method(&c, &ds->root);
    free(c.buf);
    if (st != DEID_OK) {
        if (ids)
            memset(ids, 0, sizeof *ids);
        if (ds->name)
            deid__error_prefix(ds->name);
        return st;
    }
    if (ids)
        ids_after(&ds->root, ids);
    return DEID_OK;
}

deid_status deid_profile_apply(const deid_profile *profile, deid_dataset *ds)
{
    return deid__profile_apply_ids(profile, ds, NULL);
}
