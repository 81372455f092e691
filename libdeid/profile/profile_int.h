/* libdeid internal: what other modules (batch/, tools through batch) need from profile/ beyond
 * the public include/deid/profile.h: the instance part of output names and the identifiers to
 * log in keys.csv. */
#ifndef DEID_PROFILE_INT_H
#define DEID_PROFILE_INT_H

#include "deid/profile.h"

/* 8 decimal digits + NUL from the keyed hash of "instance\0" + SOP Instance UID (leading and
 * trailing spaces/NULs of the UID ignored): the instance part of output file names. Returns 0,
 * or -1 when an argument is NULL. */
int deid__profile_instance_hash(const deid_profile *p, const char *sop_uid, char out[9]);

#define DEID_IDS_TEXT 256 /* capacity of the text fields below (values are truncated to fit) */
#define DEID_IDS_UID 65   /* capacity of the UID fields (64 chars + NUL) */

/* Identifiers of one object before and after de-identification, for keys.csv. Every field is
 * a NUL-terminated string, empty when the attribute was absent. Original values contain PHI:
 * they may go to the keys file only (never to logs or error messages). */
typedef struct deid_ids {
    char patient_id[DEID_IDS_TEXT];   /* original Patient ID (0010,0020) */
    char patient_name[DEID_IDS_TEXT]; /* original Patient's Name (0010,0010) */
    char study_uid[DEID_IDS_UID];     /* original Study Instance UID (0020,000D) */
    char series_uid[DEID_IDS_UID];    /* original Series Instance UID (0020,000E) */
    char sop_uid[DEID_IDS_UID];       /* original SOP Instance UID (0008,0018) */
    char pseudonym[11];               /* 10-digit patient pseudonym (always computed) */
    char instance[9];                 /* 8-digit instance hash of the original SOP Instance UID */
    char new_study_uid[DEID_IDS_UID]; /* values written (equal to the originals when the */
    char new_series_uid[DEID_IDS_UID];/* Retain UIDs option is on) */
    char new_sop_uid[DEID_IDS_UID];
    int date_shift;                   /* days added to dates; 0 when dates were not shifted */
} deid_ids;

/* deid_profile_apply, also filling *ids (may be NULL) with the identifiers before and after.
 * On failure *ids is zeroed and ds must not be written. */
deid_status deid__profile_apply_ids(const deid_profile *p, deid_dataset *ds, deid_ids *ids);

#endif
