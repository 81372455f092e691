/* libdeid internal: the in-memory DICOM tree behind deid_dataset (the public handle in
 * include/deid/dataset.h). Modules above dicom/ (profile, batch, us, text, ct) use this tree
 * directly; only dicom/ and shim/ know how it is parsed and serialised. */
#ifndef DEID_DATASET_INT_H
#define DEID_DATASET_INT_H

#include <stddef.h>
#include <stdint.h>
#include "deid/dataset.h"

/* VR as two ASCII letters packed big-endian: DEID_VR('P','N'). */
#define DEID_VR(a, b) ((uint16_t)(((unsigned)(a) << 8) | (unsigned)(b)))
#define DEID_VR_SQ DEID_VR('S', 'Q')
#define DEID_VR_UN DEID_VR('U', 'N')

typedef struct deid_item deid_item;

/* One fragment of encapsulated pixel data (fragment 0 is the Basic Offset Table). */
typedef struct deid_fragment {
    uint8_t *data;
    uint32_t len;
} deid_fragment;

typedef struct deid_elem {
    uint32_t tag;
    uint16_t vr;          /* DEID_VR(..); UN when unknown */
    uint8_t *value;       /* raw bytes in the object's byte order; NULL when empty, SQ or
                             encapsulated */
    uint32_t len;         /* value length (even) */
    deid_item *items;     /* SQ: array of nitems items */
    size_t nitems;
    deid_fragment *frags; /* encapsulated Pixel Data: nfrags fragments (offset table first) */
    size_t nfrags;
    int encapsulated;     /* 1 for undefined-length encapsulated pixel data */
} deid_elem;

/* A data set (the root, or one sequence item): elements sorted by tag, unique. */
struct deid_item {
    deid_elem *elems;
    size_t n, cap;
};

struct deid_dataset {
    deid_item meta;          /* group 0002 (may be empty when the input had no meta header) */
    deid_item root;          /* the data set */
    char *transfer_syntax;   /* UID string, NUL-terminated (explicit VR LE when unknown) */
    char *name;              /* file name or caller's label for error messages (not PHI) */
};

/* A decoded image behind the public handle (include/deid/image.h): made by the decoder in
 * dicom/image.c, built and edited by pixel/. */
struct deid_image {
    size_t frames, rows, cols, samples;
    unsigned bits;        /* 8 or 16 */
    int is_signed;
    char photometric[20]; /* of the buffer as it is (after decompression/conversion) */
    uint8_t *data;        /* frames*rows*cols*samples*bits/8 bytes, samples interleaved */
    size_t size;
};

/* Binary search; NULL when absent. */
deid_elem *deid__item_find(const deid_item *item, uint32_t tag);
/* Find or insert (value empty, given VR). NULL on out of memory. */
deid_elem *deid__item_put(deid_item *item, uint32_t tag, uint16_t vr);
/* Append an element known to sort after every existing one (parsers); falls back to put. */
deid_elem *deid__item_append(deid_item *item, uint32_t tag, uint16_t vr);
/* Remove an element (and everything under it). No-op when absent. */
void deid__item_remove(deid_item *item, uint32_t tag);
/* Remove the element at index i. */
void deid__item_remove_at(deid_item *item, size_t i);
/* Free all elements of an item (the item struct itself is not freed). */
void deid__item_clear(deid_item *item);

/* Replace an element's value with a copy of data (SQ items and fragments are freed). Text VRs
 * are padded to even length (space, or NUL for UI). Returns -1 on out of memory or when size
 * exceeds 0xFFFFFFFE. */
int deid__elem_set(deid_elem *e, const void *data, size_t size);
/* Make the element empty (zero length, no items), keeping tag and VR. */
void deid__elem_empty(deid_elem *e);
/* Free what the element owns (not the struct). */
void deid__elem_clear(deid_elem *e);
/* Append a new empty item to a sequence element; NULL on out of memory. */
deid_item *deid__elem_add_item(deid_elem *e);

/* Is this VR one whose value is text (AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT)? */
int deid__vr_is_text(uint16_t vr);
/* Copy a text value without trailing padding (spaces/NULs) into buf; returns its length, or
 * (size_t)-1 when it does not fit (buf is then an empty string). */
size_t deid__elem_text(const deid_elem *e, char *buf, size_t cap);

/* VR of a tag from the data dictionary (GDCM's); DEID_VR_UN when unknown. */
uint16_t deid__dict_vr(uint32_t tag);

/* deid_dataset_write_file with deid__write_file_atomic flags (DEID_WRITE_SYNC or 0). */
deid_status deid__dataset_write_file(const deid_dataset *ds, const char *path, unsigned flags);

/* Allocate an empty dataset with the given label (copied). */
deid_dataset *deid__dataset_new(const char *name);

#endif
