/* libdeid internal: what the files of dicom/ share among themselves (parser, transfer syntaxes,
 * value helpers). Other modules use dataset_int.h, never this header. */
#ifndef DEID_DICOM_INT_H
#define DEID_DICOM_INT_H

#include <stddef.h>
#include <stdint.h>
#include "dicom/dataset_int.h"

#define DEID_TS_IMPLICIT_LE "1.2.840.10008.1.2"
#define DEID_TS_EXPLICIT_LE "1.2.840.10008.1.2.1"
#define DEID_TS_DEFLATED_LE "1.2.840.10008.1.2.1.99"
#define DEID_TS_EXPLICIT_BE "1.2.840.10008.1.2.2"

/* How the data set of a transfer syntax is encoded (unknown UIDs: explicit VR little endian,
 * which is what every encapsulated syntax uses). */
typedef enum deid_ts_kind {
    DEID_TS_KIND_EXPLICIT_LE,
    DEID_TS_KIND_IMPLICIT_LE,
    DEID_TS_KIND_EXPLICIT_BE,
    DEID_TS_KIND_DEFLATED
} deid_ts_kind;

deid_ts_kind deid__ts_kind(const char *uid);

/* Is this transfer syntax one with encapsulated (compressed) Pixel Data? */
int deid__ts_encapsulated(const char *uid);

/* Parse a Part 10 stream (or a bare data set without meta header) into a new dataset, checking
 * every length against the bytes present and the limits in opts (already defaulted). `name`
 * labels error messages. The buffer is not kept. */
deid_status deid__parse(const uint8_t *data, size_t size, const char *name,
                        const deid_read_options *opts, deid_dataset **out);

/* Resolved read limits (0 fields replaced by defaults). DEID_ERR_ARGUMENT for a bad version. */
/* Inflate a raw deflate stream (a deflated transfer syntax's data set; a zlib header is accepted
 * too) into *out (free with free()), failing with DEID_ERR_LIMIT beyond `limit` bytes and
 * DEID_ERR_NOT_DICOM when the stream is corrupt or truncated. `name` labels errors. */
deid_status deid__inflate(const uint8_t *data, size_t size, uint64_t limit, const char *name,
                          uint8_t **out, size_t *out_size);
/* Would deid_image_decode get past its checks for every frame of `ds`? Pixel Data present and
 * as large as the header says (native) or with a fragment per frame (encapsulated), a syntax
 * and layout libdeid decodes, under max_samples (0: the default). The compressed streams
 * themselves are not decoded. Fails with the error deid_image_decode would give. */
deid_status deid__image_check(const deid_dataset *ds, uint64_t max_samples);

/* Frames the header describes (Number of Frames, 1 without it); 0 when the pixel description
 * is unusable (deid_image_decode then says why). */
size_t deid__image_frame_count(const deid_dataset *ds);

deid_status deid__read_limits(const deid_read_options *opts, deid_read_options *out);

/* Unsigned little-endian integer of n (1..8) bytes. */
uint64_t deid__rd_le(const uint8_t *v, size_t n);

/* VRs whose explicit encoding has a 2-byte reserved field and a 32-bit length. */
int deid__vr_is_long(uint16_t vr);

/* Write the 2-letter VR into vr[3]. */
void deid__vr_string(uint16_t vr, char out[3]);

/* Unsigned integer value of an element with VR US/UL/SS/SL, or a text IS value; returns -1
 * when absent, empty or unreadable. `item` NULL means the root. */
long long deid__item_uint(const deid_item *item, uint32_t tag);

/* One compressed frame as the DICOM header describes it. */
typedef struct deid_frame_desc {
    unsigned rows, cols, samples, bits_allocated;
    const char *photometric;
} deid_frame_desc;

/* Which decoder a compressed frame goes to. */
enum { DEID_CODEC_GDCM = 0, DEID_CODEC_TURBO = 1, DEID_CODEC_LOSSLESS = 2 };

/* Check a compressed frame's codestream header (JPEG, JPEG-LS, JPEG 2000, RLE) against the
 * DICOM header before any codec sees it, and pick its decoder (*codec): 8-bit DCT JPEG goes to
 * libjpeg-turbo, lossless JPEG to deid__ljpeg_decode, the rest to GDCM. DEID_ERR_NO_PIXELS with
 * the reason when the header is unusable. */
deid_status deid__codestream_check(const char *ts, const deid_frame_desc *f, const uint8_t *d,
                                   size_t n, int *codec);

/* Decode a lossless JPEG (process 14, Huffman) frame into out (rows*cols*samples samples of 8
 * or 16 bits as bits_allocated says, native order). Never prints; damaged entropy data decodes
 * as far as it goes. */
deid_status deid__ljpeg_decode(const deid_frame_desc *f, const uint8_t *d, size_t n, uint8_t *out,
                               size_t out_size);

/* Decode an 8-bit DCT JPEG frame with libjpeg-turbo into out (rows*cols*samples bytes),
 * colour as RGB (YBR data converted), grey as is; photometric_out (20 bytes) names the result.
 * Never prints; corrupt entropy data decodes as far as it goes. */
deid_status deid__jpeg8_decode(const deid_frame_desc *f, const uint8_t *d, size_t n, uint8_t *out,
                               char *photometric_out);

/* Label for error messages: the dataset's name or "<memory>". */
const char *deid__ds_label(const deid_dataset *ds);

#endif
