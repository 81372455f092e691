/* libdeid: decoded pixel data. */
#ifndef DEID_IMAGE_H
#define DEID_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include "deid/export.h"
#include "deid/status.h"
#include "deid/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Decoded pixels: frames x rows x cols x samples, contiguous, row-major, samples interleaved,
 * 8 bits per sample (uint8_t) or 16 bits (uint16_t or int16_t, native byte order). */
typedef struct deid_image deid_image;

/* Decode `count` frames starting at `first` from ds's Pixel Data, whatever the transfer syntax
 * GDCM supports (uncompressed, RLE, JPEG baseline/lossless, JPEG-LS, JPEG 2000). count 0 means
 * all frames from `first`. Colour images come out as they are stored after decompression (see
 * deid_image_photometric); PALETTE COLOR stays indexed. On success *out owns a new image.
 * Errors: DEID_ERR_NO_PIXELS, DEID_ERR_UNSUPPORTED, DEID_ERR_LIMIT (more samples than
 * max_samples; 0 means the default, 2^31), DEID_ERR_NOMEM. */
DEID_API deid_status deid_image_decode(const deid_dataset *ds, size_t first, size_t count,
                                       uint64_t max_samples, deid_image **out);

/* Free an image. NULL is a no-op. */
DEID_API void deid_image_free(deid_image *img);

/* Geometry of a decoded image: number of frames, rows, columns and samples per pixel (1 for
 * monochrome and palette, 3 for colour). 0 when img is NULL. */
DEID_API size_t deid_image_frames(const deid_image *img);
DEID_API size_t deid_image_rows(const deid_image *img);
DEID_API size_t deid_image_cols(const deid_image *img);
DEID_API size_t deid_image_samples(const deid_image *img);
/* Bits per stored sample in the buffer: 8 or 16. */
DEID_API unsigned deid_image_bits(const deid_image *img);
/* 1 when samples are signed (Pixel Representation 1). */
DEID_API int deid_image_signed(const deid_image *img);
/* Photometric interpretation of the decoded buffer ("MONOCHROME2", "RGB", ...); owned by img. */
DEID_API const char *deid_image_photometric(const deid_image *img);
/* Pointer to the first sample; owned by img, valid until deid_image_free. */
DEID_API void *deid_image_data(deid_image *img);
/* Size of the pixel buffer in bytes. */
DEID_API size_t deid_image_size_bytes(const deid_image *img);

#ifdef __cplusplus
}
#endif
#endif
