/* libdeid internal to profile/: the profile and key structs and the helpers its files share.
 * Other modules use profile_int.h. */
#ifndef DEID_PROFILE_IMPL_H
#define DEID_PROFILE_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include "deid/profile.h"
#include "profile/profile_int.h"

struct deid_key {
    unsigned char bytes[DEID_KEY_BYTES];
};

/* Recipe actions (recipe.c). */
enum { R_KEEP = 1, R_REMOVE, R_EMPTY, R_REPLACE, R_HASH };

typedef struct deid_recipe_rule {
    uint32_t tag;
    uint8_t action;
    char *value;    /* R_REPLACE: the new value (owned) */
} deid_recipe_rule;

typedef struct deid_recipe {
    deid_recipe_rule *rules; /* sorted by tag, unique */
    size_t n;
} deid_recipe;

#define DEID_METHOD_MAX_CODES 12
typedef struct deid_method_code {
    const char *value;   /* CID 7050 code value */
    const char *meaning;
} deid_method_code;

struct deid_profile {
    struct deid_key key;
    unsigned flags;
    int max_shift;                 /* days, > 0 */
    char *name_prefix;             /* NULL or prefix of Patient's Name */
    deid_recipe recipe;
    char *method;                  /* De-identification Method (0012,0063), values joined by '\' */
    deid_method_code codes[DEID_METHOD_MAX_CODES];
    size_t ncodes;
};

/* ---- keys.c --------------------------------------------------------------------------------- */
/* sodium_init() once; DEID_OK or a failure recorded for `module`. */
deid_status deid__sodium_ready(const char *module);

/* ---- pseudonym.c ------------------------------------------------------------------------- */
/* Copy s[0..n) without leading/trailing spaces and NULs: *start and returned length. */
size_t deid__trim(const char *s, size_t n, const char **start);
/* Walk the backslash-separated values of in[0..n): *pos starts at 0; each call sets *v and *vn to
 * the next value without padding and returns 1, then 0 after the last one. A value of zero
 * length still counts: A, two backslashes and B are three values. */
int deid__next_value(const char *in, size_t n, size_t *pos, const char **v, size_t *vn);
/* 10-digit pseudonym of an identifier value (already trimmed, n bytes). */
void deid__pseudonym(const deid_profile *p, const char *id, size_t n, char out[11]);
/* "2.25.<decimal>" of a UID value (already trimmed, n bytes); returns the length written. */
size_t deid__uid(const deid_profile *p, const char *uid, size_t n, char out[65]);
/* 8-digit instance hash of a SOP Instance UID value (already trimmed). */
void deid__instance_hash(const deid_profile *p, const char *uid, size_t n, char out[9]);
/* Per-patient date shift for an identifier (already trimmed): in [-max, +max], never 0. */
int deid__shift_days(const deid_profile *p, const char *id, size_t n);

/* ---- dates.c ----------------------------------------------------------------------------- */
/* Shift a DA value (backslash-separated values, "A-B" ranges) by `days` into `out`
 * (capacity >= n; the output is never longer). Returns the output length, or (size_t)-1 when
 * malformed. */
size_t deid__shift_da(const char *in, size_t n, int days, char *out);
/* Same for DT: the date part is shifted, the time and offset kept. */
size_t deid__shift_dt(const char *in, size_t n, int days, char *out);
/* "YYYY0101" from the first value of a DA ("YYYYMMDD"); -1 when malformed. */
int deid__birth_year(const char *in, size_t n, char out[9]);

/* ---- recipe.c ---------------------------------------------------------------------------- */
/* Load and validate a recipe file; errors name the file, line and reason. */
deid_status deid__recipe_load(const char *path, deid_recipe *out);
void deid__recipe_free(deid_recipe *r);
/* Rule of a tag, NULL when none (binary search). */
const deid_recipe_rule *deid__recipe_find(const deid_recipe *r, uint32_t tag);

/* ---- safe_private.c ---------------------------------------------------------------------- */
/* Is the private element (group, creator, element offset 0x00..0xFF) on the safe list? The
 * creator is compared after trimming its padding. */
int deid__safe_private(uint16_t group, const char *creator, size_t creator_len, uint8_t offset);

#endif
