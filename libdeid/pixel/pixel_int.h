/* libdeid internal: what the files of pixel/ share (image buffers, colour conversion, the JPEG
 * frame encoder, PNG output, the bitmap font). Other modules use include/deid/image.h. */
#ifndef DEID_PIXEL_INT_H
#define DEID_PIXEL_INT_H

#include <stddef.h>
#include <stdint.h>
#include "core/core.h"
#include "deid/image.h"
#include "dicom/dataset_int.h" /* struct deid_image */

/* A new zero-filled image frames x rows x cols x samples of `bits` (8 or 16) bits, with the
 * given photometric interpretation (truncated to 19 characters). NULL with DEID_ERR_NOMEM or
 * DEID_ERR_LIMIT recorded when the size overflows or memory runs out. */
deid_image *deid__image_new(size_t frames, size_t rows, size_t cols, size_t samples, unsigned bits,
                            int is_signed, const char *photometric);

/* Bytes of one frame (rows*cols*samples*bits/8; the image was built with checked sizes). */
size_t deid__image_frame_bytes(const deid_image *img);

/* Full-range YCbCr (YBR_FULL, as JPEG's JFIF defines it) to RGB, n pixels, 8 bits,
 * interleaved; in and out may be the same buffer. */
void deid__ybr_full_to_rgb(const uint8_t *in, uint8_t *out, size_t n);

/* Photometric helpers. */
int deid__pi_is(const deid_image *img, const char *photometric);
int deid__pi_is_ybr(const deid_image *img);

/* ---- JPEG baseline frame encoder (libjpeg-turbo) ----------------------------------------- */

/* New Pixel Data written in pieces (a long clip decoded, masked and encoded in chunks):
 * _new takes the header of the whole image (`shape`: rows, columns, samples, bits, signedness,
 * photometric; its frames and data are ignored) and the number of frames; _add encodes frames
 * that match it, in order; _commit, once every frame is there, replaces Pixel Data and the
 * header that describes it exactly as deid_dataset_set_pixels does (a failed commit leaves
 * the data set as it was). _free(NULL) is a no-op. */
typedef struct deid__pixel_writer deid__pixel_writer;
deid_status deid__pixel_writer_new(const deid_dataset *ds, const deid_image *shape, size_t frames,
                                   const deid_encode_options *opts, deid__pixel_writer **out);
deid_status deid__pixel_writer_add(deid__pixel_writer *w, const deid_image *img);
deid_status deid__pixel_writer_commit(deid__pixel_writer *w, deid_dataset *ds);
void deid__pixel_writer_free(deid__pixel_writer *w);

typedef struct deid_jpeg_enc deid_jpeg_enc;

/* One compressor for frames of rows x cols x samples (1: grey, 3: colour) 8-bit samples.
 * `ybr_input` 1 means the colour buffers already hold full-range YCbCr (no conversion).
 * `h_subsample` 2 gives 4:2:2 chroma (2x1), 1 gives 4:4:4; ignored for grey. NULL on failure
 * (error recorded). */
deid_jpeg_enc *deid__jpeg_enc_new(size_t rows, size_t cols, size_t samples, int ybr_input,
                                  int quality, int h_subsample);

/* Compress one frame; *out points into the encoder's own buffer (valid until the next call or
 * deid__jpeg_enc_free), *size is its length. */
deid_status deid__jpeg_enc_frame(deid_jpeg_enc *enc, const uint8_t *frame, const uint8_t **out,
                                 size_t *size);

void deid__jpeg_enc_free(deid_jpeg_enc *enc);

/* ---- PNG and text ------------------------------------------------------------------------ */

/* Encode an 8-bit RGB image (rows x cols x 3, tightly packed) as PNG into *png (free()). */
deid_status deid__png_encode_rgb(const uint8_t *rgb, size_t rows, size_t cols, uint8_t **png,
                                 size_t *size);

/* Glyph cell of the built-in font, in pixels at scale 1 (5x7 glyphs with one column and one
 * row of spacing). */
#define DEID_FONT_CELL_W 6
#define DEID_FONT_CELL_H 8

/* Draw `text` (ASCII 32..126; anything else shows as '?') into an RGB buffer of `rows` x
 * `cols` at (x, y) (top-left), each font pixel a scale x scale square, clipped to the buffer.
 * Returns the x after the last glyph drawn. */
size_t deid__draw_text(uint8_t *rgb, size_t rows, size_t cols, size_t x, size_t y, unsigned scale,
                       const uint8_t colour[3], const char *text);

#endif
