/* libdeid internal: the GDCM shim. Plain C types only; the body (gdcm_shim.cpp) is the only
 * place that sees GDCM, and every entry point catches all exceptions and reports them through
 * deid__fail. Thread-safe: no state besides GDCM's read-only dictionaries (and GDCM's trace
 * switches, turned off once so that GDCM never prints). */
#ifndef DEID_GDCM_SHIM_H
#define DEID_GDCM_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include "deid/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "dicom/dataset_int.h"

/* VR of a public tag from GDCM's data dictionary (repeating groups 50xx/60xx included), as
 * DEID_VR(..); DEID_VR_UN when unknown. Tags whose VR depends on context get their usual
 * choice: "US or SS" -> US with *alt = SS; "OB or OW" and "US or OW" -> OW with *alt = OB/US.
 * `alt` may be NULL; it is set to 0 when the VR is not ambiguous. */
uint16_t deid_shim_dict_vr(uint32_t tag, uint16_t *alt);

/* VR of private element `tag` in the block reserved by `creator` (GDCM's private dictionary);
 * DEID_VR_UN when unknown. */
uint16_t deid_shim_private_vr(uint32_t tag, const char *creator);

/* Read a Part 10 stream with GDCM and re-encode its data set (no meta group) without
 * compression of the stream itself: deflated explicit VR -> explicit VR little endian, others
 * in their own encoding (implicit/explicit VR, little/big endian; big endian values come out
 * little endian). On success *out (free with free()) and *size hold the data set. `name`
 * labels error messages. Used by the tests to cross-check the C parser against GDCM; never on
 * untrusted input: GDCM sizes values from their length fields before reading them, and
 * Debian's GDCM asserts (aborts) on some malformed streams. */
deid_status deid_shim_gdcm_reencode(const uint8_t *data, size_t size, const char *name,
                                    uint8_t **out, size_t *out_size);

/* Serialise `ds` as a Part 10 stream in ds->transfer_syntax: 128-byte zero preamble, "DICM",
 * a regenerated File Meta Information (group length, version, Media Storage SOP Class/Instance
 * UID from the data set's SOP Class/Instance UID, transfer syntax, GDCM's implementation UID
 * and version name, other group 0002 elements of ds->meta kept), then the data set through
 * GDCM's encoder. Group length elements (gggg,0000) of the data set are dropped (they would be
 * stale after edits). Encapsulated Pixel Data is written back fragment by fragment. Tree
 * values are little endian; big endian output is swapped by GDCM. On success *out (free with
 * free()) and *out_size are set. */
deid_status deid_shim_write(const deid_dataset *ds, uint8_t **out, size_t *out_size);

/* What the decoder needs to know about one compressed frame. */
typedef struct deid_shim_pixel {
    const char *transfer_syntax;
    const char *photometric; /* as stored, e.g. "YBR_FULL_422" */
    unsigned rows, cols, samples;
    unsigned bits_allocated, bits_stored, high_bit, pixel_representation;
    unsigned planar_configuration;
} deid_shim_pixel;

/* Decode one compressed frame (all its fragments concatenated in `data`) with GDCM's codecs
 * into `out`, which must hold exactly rows*cols*samples*bits_allocated/8 bytes. Samples come
 * out interleaved. `photometric_out` (capacity 20) receives the photometric interpretation of
 * the decoded buffer (J2K YBR_RCT/YBR_ICT -> RGB, JPEG YBR_FULL_422 -> YBR_FULL, otherwise as
 * stored). DEID_ERR_UNSUPPORTED for a syntax GDCM cannot decode, DEID_ERR_GENERIC when the
 * codec fails. */
deid_status deid_shim_decode_frame(const deid_shim_pixel *px, const uint8_t *data, size_t size,
                                   void *out, size_t out_size, char *photometric_out);

#ifdef __cplusplus
}
#endif
#endif
