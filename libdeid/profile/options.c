/* The Annex E options as run-time data (names for the CLI and bindings, CID 7050 codes for the
 * De-identification Method Code Sequence), options structs, profile creation. */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "deid/deid.h"
#include "core/core.h"
#include "profile/profile_impl.h"

#define MAX_SHIFT_LIMIT 36500 /* a century: beyond that a shift is a typo */
#define NAME_PREFIX_MAX 54    /* + 10 digits = 64, the PN component group limit */

static const struct option {
    const char *name;
    unsigned flag;
    const char *description;
    const char *code;    /* CID 7050, NULL when not an Annex E option */
    const char *meaning; /* code meaning, also the De-identification Method value */
} options[] = {
    {"retain-safe-private", DEID_OPT_RETAIN_SAFE_PRIVATE,
     "keep the private attributes on libdeid's safe list (PS3.15 Table E.3.10-1 subset)",
     "113111", "Retain Safe Private Option"},
    {"retain-uids", DEID_OPT_RETAIN_UIDS, "keep the original UIDs instead of keyed replacements",
     "113110", "Retain UIDs Option"},
    {"retain-device-identity", DEID_OPT_RETAIN_DEVICE_IDENTITY,
     "keep device identifiers (serial numbers, station names)", "113109",
     "Retain Device Identity Option"},
    {"retain-institution-identity", DEID_OPT_RETAIN_INSTITUTION_IDENTITY,
     "keep institution names, addresses and departments", "113112",
     "Retain Institution Identity Option"},
    {"retain-patient-characteristics", DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS,
     "keep sex, age, size, weight and similar; birth date reduced to its year", "113108",
     "Retain Patient Characteristics Option"},
    {"retain-longitudinal-full-dates", DEID_OPT_RETAIN_LONGITUDINAL_FULL_DATES,
     "keep dates and times unchanged", "113106",
     "Retain Longitudinal Temporal Information Full Dates Option"},
    {"retain-longitudinal-modified-dates", DEID_OPT_RETAIN_LONGITUDINAL_MODIFIED_DATES,
     "shift dates by a keyed per-patient number of days, keep times", "113107",
     "Retain Longitudinal Temporal Information Modified Dates Option"},
    {"clean-descriptors", DEID_OPT_CLEAN_DESCRIPTORS,
     "keep descriptions present but emptied (no text cleaner); coded diagnoses and reasons "
     "kept as codes",
     "113105", "Clean Descriptors Option"},
    {"clean-structured-content", DEID_OPT_CLEAN_STRUCTURED_CONTENT,
     "keep acquisition context and specimen preparation as codes and numbers (free text "
     "replaced)",
     "113104", "Clean Structured Content Option"},
    {"clean-graphics", DEID_OPT_CLEAN_GRAPHICS,
     "graphic annotations are kept cleaned item by item (as without it); overlays and curves "
     "are still removed",
     "113103", "Clean Graphics Option"},
    {"keep-patient-id", DEID_OPT_KEEP_PATIENT_ID,
     "not Annex E: keep the original Patient ID (the output then identifies the patient)", NULL,
     "Patient ID kept (libdeid keep-patient-id)"},
};
#define NOPTIONS (sizeof options / sizeof options[0])

size_t deid_option_count(void) { return NOPTIONS; }

const char *deid_option_name(size_t i) { return i < NOPTIONS ? options[i].name : NULL; }

const char *deid_option_description(size_t i)
{
    return i < NOPTIONS ? options[i].description : NULL;
}

unsigned deid_option_flag(size_t i) { return i < NOPTIONS ? options[i].flag : 0; }

deid_status deid_option_parse(const char *name, unsigned *flag)
{
    if (!name || !flag)
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "deid_option_parse: NULL argument");
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (!strcmp(name, options[i].name)) {
            *flag = options[i].flag;
            return DEID_OK;
        }
    }
    return deid__fail(DEID_ERR_ARGUMENT, "profile", "unknown option \"%s\"", name);
}

deid_status deid_profile_options_init(deid_profile_options *opts, unsigned version)
{
    if (!opts)
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "deid_profile_options_init: NULL opts");
    if (version != DEID_PROFILE_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, "profile",
                          "unknown deid_profile_options version %u (this libdeid knows %d)",
                          version, DEID_PROFILE_OPTIONS_VERSION);
    deid_profile_options init = DEID_PROFILE_OPTIONS_INIT;
    *opts = init;
    return DEID_OK;
}

static unsigned all_options_mask(void)
{
    unsigned mask = 0;
    for (size_t i = 0; i < NOPTIONS; i++)
        mask |= options[i].flag;
    return mask;
}

static deid_status check_options(const deid_profile_options *o)
{
    if (o->version != DEID_PROFILE_OPTIONS_VERSION)
        return deid__fail(DEID_ERR_ARGUMENT, "profile",
                          "unknown deid_profile_options version %u (this libdeid knows %d)",
                          o->version, DEID_PROFILE_OPTIONS_VERSION);
    if (o->flags & ~all_options_mask())
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "unknown option flags 0x%x",
                          o->flags & ~all_options_mask());
    if (o->max_date_shift_days > MAX_SHIFT_LIMIT)
        return deid__fail(DEID_ERR_ARGUMENT, "profile",
                          "max_date_shift_days %u is above %d", o->max_date_shift_days,
                          MAX_SHIFT_LIMIT);
    const char *pre = o->patient_name_prefix;
    if (pre) {
        if (strlen(pre) > NAME_PREFIX_MAX)
            return deid__fail(DEID_ERR_ARGUMENT, "profile",
                              "patient_name_prefix is longer than %d characters", NAME_PREFIX_MAX);
        for (const char *c = pre; *c; c++)
            if (*c < 0x20 || *c > 0x7E || *c == '\\')
                return deid__fail(DEID_ERR_ARGUMENT, "profile",
                                  "patient_name_prefix must be printable ASCII without '\\'");
    }
    return DEID_OK;
}

/* "libdeid X.Y.Z: PS3.15 E.1-1 Basic Profile" then one value per option, and the codes. */
static deid_status describe(deid_profile *p)
{
    deid_buf b = {0};
    int rc = deid__buf_printf(&b, "libdeid %s: PS3.15 E.1-1 Basic Profile", DEID_VERSION_STRING);
    p->codes[p->ncodes++] = (deid_method_code){"113100", "Basic Application Confidentiality Profile"};
    for (size_t i = 0; i < NOPTIONS && rc == 0; i++) {
        if (!(p->flags & options[i].flag))
            continue;
        rc = deid__buf_printf(&b, "\\%s", options[i].meaning);
        if (options[i].code)
            p->codes[p->ncodes++] = (deid_method_code){options[i].code, options[i].meaning};
    }
    if (rc == 0 && p->recipe.n)
        rc = deid__buf_printf(&b, "\\libdeid recipe (%zu rules)", p->recipe.n);
    if (rc != 0) {
        deid__buf_free(&b);
        return DEID_ERR_NOMEM;
    }
    p->method = b.data;
    return DEID_OK;
}

deid_status deid_profile_new(const deid_profile_options *opts, const deid_key *key,
                             deid_profile **out)
{
    deid_profile_options defaults = DEID_PROFILE_OPTIONS_INIT;
    if (!out)
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "deid_profile_new: out is NULL");
    if (!opts)
        opts = &defaults;
    deid_status st = check_options(opts);
    if (st != DEID_OK)
        return st;
    if (!key)
        return deid__fail(DEID_ERR_ARGUMENT, "profile",
                          "no key: load one with deid_key_load_file (or the --key option); a "
                          "built-in key would let anyone reverse the pseudonyms");
    if ((st = deid__sodium_ready("profile")) != DEID_OK)
        return st;
    deid_profile *p = deid__calloc(1, sizeof *p);
    if (!p)
        return DEID_ERR_NOMEM;
    memcpy(&p->key, key, sizeof p->key);
    p->flags = opts->flags;
    p->max_shift = opts->max_date_shift_days ? (int)opts->max_date_shift_days : 30;
    if (opts->patient_name_prefix && *opts->patient_name_prefix &&
        !(p->name_prefix = deid__strdup(opts->patient_name_prefix)))
        st = DEID_ERR_NOMEM;
    if (st == DEID_OK && opts->recipe_path)
        st = deid__recipe_load(opts->recipe_path, &p->recipe);
    if (st == DEID_OK)
        st = describe(p);
    if (st != DEID_OK) {
        deid_profile_free(p);
        return st;
    }
    *out = p;
    return DEID_OK;
}

void deid_profile_free(deid_profile *profile)
{
    if (!profile)
        return;
    deid__recipe_free(&profile->recipe);
    free(profile->name_prefix);
    free(profile->method);
    sodium_memzero(profile, sizeof *profile);
    free(profile);
}
