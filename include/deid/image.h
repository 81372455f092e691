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
 * 8 bits per sample (uint8_t) or 16 bits (uint16_t or int16_t, native byte order). Not
 * thread-safe: one thread at a time per image; distinct images may be used concurrently. */
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

/* ---- masking, colour conversion, re-encoding, QC overviews --------------------------------- */

/* Set every pixel where mask is 0 to 0, in every frame and every sample; pixels where mask is
 * non-zero are left untouched. `mask` holds rows x cols bytes (row-major) and applies to all
 * frames. 0 is black for MONOCHROME2 and RGB only: expand PALETTE COLOR and convert YBR images
 * with deid_image_to_rgb first (in a palette image 0 is whatever colour entry 0 holds, in YBR
 * a dark green); MONOCHROME1 images display 0 as white. Errors: DEID_ERR_ARGUMENT. */
DEID_API DEID_NODISCARD deid_status deid_image_apply_mask(deid_image *img, const uint8_t *mask);

/* A copy of `in` in a photometric interpretation where 0 is black and colour is RGB:
 * PALETTE COLOR (8- or 16-bit indices) is expanded through the Red/Green/Blue Palette Color
 * Lookup Table Descriptor (0028,1101-1103) and Data (0028,1201-1203) of `ds` (the dataset
 * `in` was decoded from) into 8-bit RGB (16-bit entries keep their high byte, unless every
 * entry fits in 8 bits); 8-bit YBR_FULL / YBR_FULL_422 buffers are converted to RGB with the
 * PS3.3 YBR_FULL equations; RGB and MONOCHROME1/2 are copied unchanged (MONOCHROME1 is not
 * inverted). `ds` may be NULL when `in` is not PALETTE COLOR. On success *out owns a new
 * image (free with deid_image_free). Errors: DEID_ERR_ARGUMENT, DEID_ERR_UNSUPPORTED
 * (segmented palettes, YBR_PARTIAL/ICT/RCT buffers, 16-bit YBR), DEID_ERR_NOMEM. */
DEID_API deid_status deid_image_to_rgb(const deid_image *in, const deid_dataset *ds,
                                       deid_image **out);

/* Pixel encodings deid_dataset_set_pixels can write. */
typedef enum deid_codec {
    DEID_CODEC_JPEG_BASELINE = 0, /* JPEG baseline, 1.2.840.10008.1.2.4.50 (lossy, 8 bits) */
    DEID_CODEC_UNCOMPRESSED = 1   /* explicit VR little endian, 1.2.840.10008.1.2.1 (lossless) */
} deid_codec;

/* Chroma subsampling of colour JPEG. */
typedef enum deid_chroma {
    DEID_CHROMA_422 = 0, /* Cb and Cr at half the horizontal resolution: YBR_FULL_422 */
    DEID_CHROMA_444 = 1  /* no subsampling: YBR_FULL */
} deid_chroma;

#define DEID_ENCODE_OPTIONS_VERSION 1
/* How deid_dataset_set_pixels encodes. A field left 0 takes its default. */
typedef struct deid_encode_options {
    unsigned version; /* DEID_ENCODE_OPTIONS_VERSION */
    int codec;        /* deid_codec; default DEID_CODEC_JPEG_BASELINE */
    int quality;      /* JPEG only: 1..100; default 0 = 95 */
    int chroma;       /* colour JPEG only: deid_chroma; default DEID_CHROMA_422 */
} deid_encode_options;
#define DEID_ENCODE_OPTIONS_INIT {DEID_ENCODE_OPTIONS_VERSION, DEID_CODEC_JPEG_BASELINE, 0, \
                                  DEID_CHROMA_422}

/* Fill `opts` with defaults (JPEG baseline, quality 95, 4:2:2). DEID_ERR_ARGUMENT for an
 * unknown version. */
DEID_API deid_status deid_encode_options_init(deid_encode_options *opts, unsigned version);

/* Default JPEG quality (95), for bindings that cannot read the comment above. */
DEID_API int deid_default_jpeg_quality(void);

/* Replace the Pixel Data of `ds` with `img` (all its frames) and make the header describe the
 * new encoding: transfer syntax (the object's and (0002,0010)), Rows, Columns, Number of
 * Frames (set when img has several frames or the element exists), Samples per Pixel,
 * Photometric Interpretation, Planar Configuration (0 for colour, removed for grey), Bits
 * Allocated/Stored, High Bit, Pixel Representation. Stale elements are removed: the palette
 * tables unless the result is PALETTE COLOR, the extended offset table, smallest/largest pixel
 * values. `opts` may be NULL for defaults.
 * JPEG baseline: 8-bit unsigned MONOCHROME1/2, RGB or YBR_FULL images only (16-bit ->
 * DEID_ERR_UNSUPPORTED: use the uncompressed codec); colour is written as YCbCr, Photometric
 * Interpretation YBR_FULL_422 (4:2:2) or YBR_FULL (4:4:4); one fragment per frame with a
 * filled basic offset table; Lossy Image Compression "01" with the ratio and method
 * "ISO_10918_1" (appended to the values already there when the object was lossy before).
 * Uncompressed: MONOCHROME1/2 and RGB as they are (8 or 16 bits), 8-bit YBR_FULL(_422)
 * converted to RGB, PALETTE COLOR indices with the dataset's tables kept; Lossy Image
 * Compression untouched.
 * The image is not modified or kept. On failure ds is unchanged. Errors: DEID_ERR_ARGUMENT,
 * DEID_ERR_UNSUPPORTED, DEID_ERR_LIMIT, DEID_ERR_NOMEM. */
DEID_API DEID_NODISCARD deid_status deid_dataset_set_pixels(deid_dataset *ds,
                                                            const deid_image *img,
                                                            const deid_encode_options *opts);

/* Write a quality-control PNG (8-bit RGB) to `path`: the first frame of `original` and of
 * `masked` side by side (`masked` may be NULL: the original alone), the outline of `mask`
 * (rows x cols of original, 0 = blanked; NULL for none) drawn in magenta on both halves, and a
 * bar underneath labelling the halves with `caption` (ASCII, may be NULL) on a second line,
 * in a built-in bitmap font. Images are shown as RGB (MONOCHROME1 inverted, 16-bit scaled
 * from the frame's minimum to maximum, YBR_FULL converted; PALETTE COLOR shows its indices as
 * grey: pass deid_image_to_rgb's result). Halves larger than 1024 pixels on their longest
 * side are scaled down by averaging. The file is written atomically. Errors:
 * DEID_ERR_ARGUMENT (NULL, or sizes that differ), DEID_ERR_IO, DEID_ERR_NOMEM. */
DEID_API deid_status deid_overview_png(const deid_image *original, const deid_image *masked,
                                       const uint8_t *mask, const char *caption,
                                       const char *path);

/* ---- raster files: PNG, JPEG, TIFF, BMP ---------------------------------------------------- */

/* Raster file formats libdeid reads and writes (besides DICOM). */
typedef enum deid_raster_format {
    DEID_RASTER_UNKNOWN = 0, /* not a raster file libdeid reads */
    DEID_RASTER_PNG = 1,
    DEID_RASTER_JPEG = 2,
    DEID_RASTER_TIFF = 3,
    DEID_RASTER_BMP = 4
} deid_raster_format;

/* The format of the file at `path`, told by its first bytes (not its name);
 * DEID_RASTER_UNKNOWN when it is none of them or cannot be read. */
DEID_API int deid_raster_format_of(const char *path);

/* Read a PNG, JPEG, TIFF (first page) or BMP file into a one-frame image: grey as MONOCHROME2
 * (8 bits, or 16 for 16-bit PNG and TIFF; 1-bit as 0/255), colour and palette images as 8-bit
 * RGB (an alpha channel is dropped; a palette of only greys gives MONOCHROME2). The format is
 * told by content, not name. *format (may be NULL) receives the deid_raster_format. On success
 * *out owns a new image (free with deid_image_free). Errors: DEID_ERR_IO (cannot read),
 * DEID_ERR_UNSUPPORTED (not a raster format libdeid reads, CMYK JPEG, a damaged or truncated
 * file, or a build without leptonica/libpng for TIFF, BMP/PNG), DEID_ERR_LIMIT (more samples
 * than max_samples, 0 meaning 2^31, told from the header before any pixel buffer is allocated),
 * DEID_ERR_NOMEM; *out untouched on failure. Prints nothing (leptonica's messages are switched
 * off process-wide on first use). */
DEID_API deid_status deid_image_read_raster(const char *path, uint64_t max_samples,
                                            deid_image **out, int *format);

/* Write frame `frame` of `img` (8-bit MONOCHROME2/MONOCHROME1/RGB/YBR_FULL, or 16-bit grey for
 * PNG and TIFF) to `path` as `format`, atomically (a temporary file renamed into place): PNG,
 * TIFF (deflate) and BMP losslessly, JPEG baseline 4:4:4 at `jpeg_quality` (1..100; 0 = 95).
 * MONOCHROME1 values are written as they are (not inverted); YBR_FULL is written as RGB.
 * Errors: DEID_ERR_ARGUMENT (unknown format, frame out of range, quality outside 0..100),
 * DEID_ERR_UNSUPPORTED (16-bit to JPEG or BMP, palette or signed pixels, a build without
 * leptonica for PNG, TIFF and BMP), DEID_ERR_IO, DEID_ERR_NOMEM. */
DEID_API DEID_NODISCARD deid_status deid_image_write_raster(const deid_image *img, size_t frame,
                                                            const char *path, int format,
                                                            int jpeg_quality);

#ifdef __cplusplus
}
#endif
#endif
