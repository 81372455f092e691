/* libdeid: reading, inspecting, editing and writing DICOM objects. */
#ifndef DEID_DATASET_H
#define DEID_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include "deid/export.h"
#include "deid/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A DICOM object in memory: file meta information plus the data set, with every nested
 * sequence. Not thread-safe: one thread at a time per handle; distinct handles may be used
 * concurrently. */
typedef struct deid_dataset deid_dataset;

/* Build a tag from group and element, e.g. DEID_TAG(0x0010, 0x0010) for Patient's Name. */
#define DEID_TAG(group, element) ((uint32_t)(((uint32_t)(group) << 16) | (uint32_t)(element)))

#define DEID_READ_OPTIONS_VERSION 1
/* Limits applied while reading untrusted input. A value of 0 means "use the default". */
typedef struct deid_read_options {
    unsigned version;          /* DEID_READ_OPTIONS_VERSION */
    uint64_t max_file_bytes;   /* files/buffers larger than this are refused with DEID_ERR_LIMIT;
                                  default 4 GiB */
    unsigned max_depth;        /* deepest sequence nesting accepted; default 64 */
    uint64_t max_elements;     /* most data elements (all depths) accepted; default 1,000,000 */
} deid_read_options;
#define DEID_READ_OPTIONS_INIT {DEID_READ_OPTIONS_VERSION, 0, 0, 0}

/* Fill `opts` with defaults for the given struct version. Returns DEID_ERR_ARGUMENT for an
 * unknown version. */
DEID_API deid_status deid_read_options_init(deid_read_options *opts, unsigned version);

/* Default limits, for bindings that cannot read the macros above. */
DEID_API uint64_t deid_default_max_file_bytes(void);
DEID_API unsigned deid_default_max_depth(void);

/* Read a DICOM file (Part 10, or a raw data set without meta header). `opts` may be NULL
 * for defaults. On success *out owns a new dataset (free with deid_dataset_free). On failure
 * *out is untouched and deid_last_error() names the file and the reason. */
DEID_API deid_status deid_dataset_read_file(const char *path, const deid_read_options *opts,
                                            deid_dataset **out);

/* Same as deid_dataset_read_file, from a memory buffer (e.g. a C-STORE payload). The buffer is
 * copied; the caller keeps ownership of `data`. `name` is used in error messages only (may be
 * NULL). */
DEID_API deid_status deid_dataset_read_memory(const void *data, size_t size, const char *name,
                                              const deid_read_options *opts, deid_dataset **out);

/* Free a dataset and everything it owns. NULL is a no-op. */
DEID_API void deid_dataset_free(deid_dataset *ds);

/* Write `ds` as a Part 10 file, keeping its transfer syntax (encapsulated pixel data is
 * written back as it was read). The file is written to a temporary name in the same directory
 * and renamed, so `path` is either the old file or the complete new one. */
DEID_API DEID_NODISCARD deid_status deid_dataset_write_file(const deid_dataset *ds,
                                                            const char *path);

/* Write `ds` as a Part 10 byte stream. On success *data (free with deid_free) and *size are
 * set; on failure they are untouched. */
DEID_API DEID_NODISCARD deid_status deid_dataset_write_memory(const deid_dataset *ds,
                                                              void **data, size_t *size);

/* Transfer syntax UID of the object (static or owned by ds; valid while ds lives). */
DEID_API const char *deid_dataset_transfer_syntax(const deid_dataset *ds);

/* Point *value and *size at the raw value of top-level element `tag` (meta group 0002 included).
 * The pointer is owned by ds and valid until ds is modified or freed. Text values keep their
 * DICOM padding. DEID_ERR_ARGUMENT when the tag is absent or is a sequence. */
DEID_API deid_status deid_dataset_get(const deid_dataset *ds, uint32_t tag, const void **value,
                                      size_t *size);

/* Copy the value of top-level text element `tag` into `buf` (capacity `cap`) as a
 * NUL-terminated string with trailing padding (spaces, NUL) removed. Fails with
 * DEID_ERR_ARGUMENT when absent, DEID_ERR_LIMIT when it does not fit. */
DEID_API deid_status deid_dataset_get_string(const deid_dataset *ds, uint32_t tag, char *buf,
                                             size_t cap);

/* Does the top-level element `tag` exist? */
DEID_API int deid_dataset_has(const deid_dataset *ds, uint32_t tag);

/* Set top-level element `tag` to a raw value, creating it if needed. `vr` is the two-letter
 * VR ("LO", "OB"...), or NULL to take it from the data dictionary (DEID_ERR_ARGUMENT when the
 * tag is unknown there). The value is copied; text values are padded to even length. */
DEID_API deid_status deid_dataset_set(deid_dataset *ds, uint32_t tag, const char *vr,
                                      const void *value, size_t size);

/* Set top-level text element `tag` from a NUL-terminated string (VR from the dictionary). */
DEID_API deid_status deid_dataset_set_string(deid_dataset *ds, uint32_t tag, const char *value);

/* Remove top-level element `tag`. Removing an absent element is not an error. */
DEID_API deid_status deid_dataset_remove(deid_dataset *ds, uint32_t tag);

/* One element as seen by deid_dataset_walk. Pointers are valid during the callback only. */
typedef struct deid_element_info {
    uint32_t tag;
    char vr[3];                  /* two letters + NUL */
    unsigned depth;              /* 0 at top level, +1 inside each sequence item */
    const char *path;            /* e.g. "(0008,1115)[0]/(0008,1155)" */
    const char *private_creator; /* creator of this private element's block, or NULL */
    const void *value;           /* raw value bytes (NULL for sequences and fragments) */
    size_t size;                 /* value length in bytes (items count for sequences) */
} deid_element_info;

/* Walk callback: return 0 to continue, non-zero to stop the walk. */
typedef int (*deid_walk_fn)(void *user, const deid_element_info *element);

/* Visit every element of ds in tag order, recursing into every sequence item (depth first,
 * a sequence before its items' elements). Returns DEID_ERR_CANCELLED when the callback stopped
 * the walk. */
DEID_API deid_status deid_dataset_walk(const deid_dataset *ds, deid_walk_fn fn, void *user);

/* The de-identified header in the DICOM JSON model (PS3.18 F.2), pixel data and other bulk
 * values (OB/OW/OF/OD/OL/OV/UN longer than 1 KiB) left out. On success *json is a
 * NUL-terminated string to free with deid_free. */
DEID_API deid_status deid_dataset_to_json(const deid_dataset *ds, char **json);

#ifdef __cplusplus
}
#endif
#endif
