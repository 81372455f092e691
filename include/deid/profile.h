/* libdeid: header de-identification per DICOM PS3.15 Annex E, keyed pseudonyms, recipes. */
#ifndef DEID_PROFILE_H
#define DEID_PROFILE_H

#include <stddef.h>
#include <stdint.h>
#include "deid/export.h"
#include "deid/status.h"
#include "deid/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Secret key -------------------------------------------------------------------------- */

/* A secret key for keyed pseudonyms (32 bytes). Wiped from memory when freed. Read-only after
 * creation: may be shared between threads. */
typedef struct deid_key deid_key;

#define DEID_KEY_BYTES 32
/* Key size in bytes (DEID_KEY_BYTES), for bindings. */
DEID_API size_t deid_key_bytes(void);

/* Load a key file (64 hex digits, optional trailing newline). When the file is missing and
 * `create` is non-zero, a fresh random key is written there with mode 0600 (*created set to 1
 * when `created` is not NULL). A key file readable by group or others is refused
 * (DEID_ERR_ARGUMENT) because anyone who reads it can re-identify. On success *out owns the
 * key (free with deid_key_free). */
DEID_API deid_status deid_key_load_file(const char *path, int create, int *created,
                                        deid_key **out);

/* A fresh random key (libsodium randombytes). */
DEID_API deid_status deid_key_generate(deid_key **out);

/* A key from DEID_KEY_BYTES raw bytes (copied). DEID_ERR_ARGUMENT when size is wrong. */
DEID_API deid_status deid_key_from_bytes(const void *bytes, size_t size, deid_key **out);

/* Write `key` to `path` as a 0600 key file (atomic; fails if path exists). */
DEID_API deid_status deid_key_save_file(const deid_key *key, const char *path);

/* Wipe and free a key. NULL is a no-op. */
DEID_API void deid_key_free(deid_key *key);

/* ---- Annex E options --------------------------------------------------------------------- */

/* Flags of the Annex E profile options (PS3.15 Table E.1-1 columns) plus libdeid's own. */
enum {
    DEID_OPT_RETAIN_SAFE_PRIVATE = 1u << 0,
    DEID_OPT_RETAIN_UIDS = 1u << 1,
    DEID_OPT_RETAIN_DEVICE_IDENTITY = 1u << 2,
    DEID_OPT_RETAIN_INSTITUTION_IDENTITY = 1u << 3,
    DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS = 1u << 4,
    DEID_OPT_RETAIN_LONGITUDINAL_FULL_DATES = 1u << 5,
    DEID_OPT_RETAIN_LONGITUDINAL_MODIFIED_DATES = 1u << 6,
    DEID_OPT_CLEAN_DESCRIPTORS = 1u << 7,
    DEID_OPT_CLEAN_STRUCTURED_CONTENT = 1u << 8,
    DEID_OPT_CLEAN_GRAPHICS = 1u << 9,
    /* Not Annex E: keep the original Patient ID instead of its keyed hash. Dangerous: the
     * output then identifies the patient to anyone with access to the source system. */
    DEID_OPT_KEEP_PATIENT_ID = 1u << 10
};

/* Number of options listed at run time (for --help and bindings). */
DEID_API size_t deid_option_count(void);
/* Name of option i ("retain-safe-private", ...), NULL when i is out of range. Static. */
DEID_API const char *deid_option_name(size_t i);
/* One-line description of option i, NULL when out of range. Static. */
DEID_API const char *deid_option_description(size_t i);
/* Flag value of option i, 0 when out of range. */
DEID_API unsigned deid_option_flag(size_t i);
/* Flag for an option name (as listed above); DEID_ERR_ARGUMENT for an unknown name. */
DEID_API deid_status deid_option_parse(const char *name, unsigned *flag);

/* ---- Profile ----------------------------------------------------------------------------- */

/* A configured de-identification profile: options, key, recipe. Immutable after creation, so
 * one profile may be applied from several threads at once. */
typedef struct deid_profile deid_profile;

#define DEID_PROFILE_OPTIONS_VERSION 1
typedef struct deid_profile_options {
    unsigned version;          /* DEID_PROFILE_OPTIONS_VERSION */
    unsigned flags;            /* DEID_OPT_* bits; default 0 = Basic Profile only */
    const char *recipe_path;   /* JSON recipe overriding actions per tag; default NULL = none */
    unsigned max_date_shift_days; /* bound of the per-patient shift used by
                                     DEID_OPT_RETAIN_LONGITUDINAL_MODIFIED_DATES; default 30 */
    const char *patient_name_prefix; /* prepended to the pseudonym written as Patient's Name;
                                        default NULL = none */
} deid_profile_options;
#define DEID_PROFILE_OPTIONS_INIT {DEID_PROFILE_OPTIONS_VERSION, 0, NULL, 30, NULL}

/* Fill `opts` with defaults; DEID_ERR_ARGUMENT for an unknown version. */
DEID_API deid_status deid_profile_options_init(deid_profile_options *opts, unsigned version);

/* Create a profile. `key` is copied (the caller may free it afterwards); it is required:
 * NULL gives DEID_ERR_ARGUMENT ("no key") because a default key would make pseudonyms
 * reversible by anyone. A recipe that cannot be read or parsed fails here with its path and
 * the reason. On success *out owns the profile (free with deid_profile_free). */
DEID_API deid_status deid_profile_new(const deid_profile_options *opts, const deid_key *key,
                                      deid_profile **out);

/* Free a profile (its key copy is wiped). NULL is a no-op. */
DEID_API void deid_profile_free(deid_profile *profile);

/* De-identify the header of `ds` in place: Annex E actions at every depth, private blocks,
 * overlays/curves, keyed UIDs and pseudonyms, de-identification method attributes. Pixel data
 * is not touched. On failure ds may be partly modified and must not be written. */
DEID_API DEID_NODISCARD deid_status deid_profile_apply(const deid_profile *profile,
                                                       deid_dataset *ds);

/* Keyed pseudonym of a patient identifier: 10 decimal digits + NUL written to out[11]. */
DEID_API deid_status deid_profile_patient_pseudonym(const deid_profile *profile,
                                                    const char *patient_id, char out[11]);

/* Keyed replacement of a UID: "2.25.<decimal>" (at most 44 chars + NUL) written to out[65]. */
DEID_API deid_status deid_profile_uid(const deid_profile *profile, const char *uid,
                                      char out[65]);

/* Per-patient date shift in days (in [-max, +max], never 0) for a patient identifier. */
DEID_API deid_status deid_profile_date_shift(const deid_profile *profile, const char *patient_id,
                                             int *days);

#ifdef __cplusplus
}
#endif
#endif
