/* libFuzzer target: the model-free ultrasound fan detector on the frames decoded from a
 * buffer (any size, photometric and frame count the decoder lets through). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    deid_dataset *ds = fuzz_dataset(data, size);
    if (!ds)
        return 0;
    deid_image *img = NULL;
    if (deid_image_decode(ds, 0, 8, FUZZ_MAX_SAMPLES, &img) == DEID_OK) {
        deid_fan_detect_options o = DEID_FAN_DETECT_OPTIONS_INIT;
        deid_fan fan;
        double confidence = 0;
        (void)deid_fan_detect(img, ds, &o, &fan, &confidence);
        deid_image_free(img);
    }
    deid_dataset_free(ds);
    deid_clear_error();
    return 0;
}
