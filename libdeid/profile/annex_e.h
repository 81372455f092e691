/* libdeid internal: the generated PS3.15 Table E.1-1 (annex_e_table.c) and PS3.6 keyword
 * dictionary (dict_keywords.c), both written by gen_annex_e.py. Used by profile/ only. */
#ifndef DEID_ANNEX_E_H
#define DEID_ANNEX_E_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "dicom/dataset_int.h"

/* Basic Profile actions as they appear in the table (combined ones included). */
enum {
    A_X = 1, /* remove */
    A_Z,     /* empty value (SQ: empty sequence) */
    A_D,     /* dummy value of the VR */
    A_K,     /* keep */
    A_C,     /* clean */
    A_U,     /* keyed UID */
    A_XZ,    /* X or Z */
    A_XD,    /* X or D */
    A_ZD,    /* Z or D */
    A_XZD,   /* X, Z or D */
    A_XZU    /* X, Z, or replace the UIDs inside (sequences) */
};

/* One row: `keep`/`clean` are DEID_OPT_* bits of the options whose column says K / C. */
typedef struct deid_annex_e_row {
    uint32_t tag;
    uint8_t basic;
    uint16_t keep;
    uint16_t clean;
} deid_annex_e_row;

typedef struct deid_annex_e_masked_row {
    uint32_t tag;
    uint32_t mask; /* tag t matches when (t & mask) == tag */
    uint8_t basic;
    uint16_t keep;
    uint16_t clean;
} deid_annex_e_masked_row;

extern const deid_annex_e_row deid__annex_e_rows[]; /* sorted by tag */
extern const size_t deid__annex_e_count;
extern const deid_annex_e_masked_row deid__annex_e_masked[];
extern const size_t deid__annex_e_masked_count;

/* Index of the first element of an array sorted by tag (its first member, a uint32_t) whose
 * tag is not below `tag`; n when none. Shared by the table, dictionary and recipe lookups. */
static inline size_t deid__tag_lower_bound(const void *base, size_t n, size_t size, uint32_t tag)
{
    const unsigned char *b = base;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t t;
        memcpy(&t, b + mid * size, sizeof t);
        if (t < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Row of an exact tag (binary search), NULL when the table does not list it. Masked rows
 * (curves, overlays) are not searched: the engine removes those groups whole. */
const deid_annex_e_row *deid__annex_e_find(uint32_t tag);

/* ---- PS3.6 keywords ---------------------------------------------------------------------- */

typedef struct deid_dict_entry {
    uint32_t tag;
    uint16_t vr;         /* first VR when PS3.6 lists several; UN when none */
    const char *keyword; /* "PatientAge" */
} deid_dict_entry;

extern const deid_dict_entry deid__dict_entries[]; /* sorted by tag */
extern const size_t deid__dict_count;
extern const uint16_t deid__dict_by_keyword[];    /* indices sorted by keyword */

/* Tag and VR of a PS3.6 keyword ("PatientAge"); 0 when found, -1 otherwise. */
int deid__dict_keyword(const char *keyword, uint32_t *tag, uint16_t *vr);
/* Dictionary VR of a fixed tag; DEID_VR_UN when the tag is not in PS3.6. */
uint16_t deid__dict_tag_vr(uint32_t tag);

#endif
