/* libdeid: de-identification of medical images. Umbrella header: includes the whole public API.
 * Threads: distinct handles may be used concurrently from different threads; one handle is used
 * by one thread at a time unless its header says it may be shared (keys, profiles, built PHI
 * term sets, ultrasound models); deid_last_error() is per thread; a batch's log callback is
 * called from its worker threads; the library keeps no hidden global mutable state
 * (docs/api.md, "Threads"). */
#ifndef DEID_DEID_H
#define DEID_DEID_H

#define DEID_VERSION_MAJOR 0
#define DEID_VERSION_MINOR 1
#define DEID_VERSION_PATCH 0
#define DEID_VERSION_STRING "0.1.0"

#include "deid/export.h"
#include "deid/status.h"
#include "deid/dataset.h"
#include "deid/image.h"
#include "deid/profile.h"
#include "deid/batch.h"
#include "deid/us.h"
#include "deid/text.h"
#include "deid/ct.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the library actually linked, as "MAJOR.MINOR.PATCH"; static, never NULL. */
DEID_API const char *deid_version(void);

/* Version of the linked library as MAJOR*10000 + MINOR*100 + PATCH. */
DEID_API unsigned deid_version_number(void);

/* Comma-separated list of optional features this build has, e.g. "gdcm,jpeg,png,torch";
 * static, never NULL. */
DEID_API const char *deid_features(void);

/* Free memory that libdeid allocated and handed to the caller (buffers from
 * deid_dataset_write_memory, strings from deid_dataset_to_json...). NULL is a no-op. */
DEID_API void deid_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif
