/* libFuzzer target: parse a buffer and decode every frame of its Pixel Data (any transfer
 * syntax: the validating parser, the frame checks, libjpeg-turbo, lossless JPEG, RLE and
 * GDCM's codecs), then re-encode it uncompressed as the pixel stages do. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    deid_dataset *ds = fuzz_dataset(data, size);
    if (!ds)
        return 0;
    deid_image *img = NULL;
    if (deid_image_decode(ds, 0, 0, FUZZ_MAX_SAMPLES, &img) == DEID_OK) {
        deid_encode_options o = DEID_ENCODE_OPTIONS_INIT;
        o.codec = DEID_CODEC_UNCOMPRESSED;
        if (deid_dataset_set_pixels(ds, img, &o) != DEID_OK)
            deid_clear_error();
        deid_image_free(img);
    }
    deid_dataset_free(ds);
    deid_clear_error();
    return 0;
}
