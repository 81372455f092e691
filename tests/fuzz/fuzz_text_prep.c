/* libFuzzer target: the burned-in text detector's preprocessing on the frames decoded from a
 * buffer: detection planes (windowing, colour), the top-hats and CLAHE. Tesseract itself is
 * not run (it is not our code, and it costs seconds per input). */
#include <stdlib.h>
#include "fuzz_common.h"
#include "text/prep.h"
#include "text/text_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    deid_dataset *ds = fuzz_dataset(data, size);
    if (!ds)
        return 0;
    deid_image *img = NULL;
    if (deid_image_decode(ds, 0, 2, FUZZ_MAX_SAMPLES, &img) == DEID_OK) {
        for (size_t f = 0; f < deid_image_frames(img); f++) {
            deid_text_frame fr;
            if (deid__text_frame_from_image(img, f, &fr) != DEID_OK)
                continue;
            size_t npx = fr.rows * fr.cols;
            uint8_t *out = malloc(npx ? npx : 1);
            if (out) {
                /* Only crashes, leaks and sanitizer reports count; failures are fine. */
                int failed = deid__text_tophat(fr.grey, out, fr.rows, fr.cols, 15, 0) != DEID_OK;
                failed |= deid__text_tophat(fr.grey, out, fr.rows, fr.cols, 15, 1) != DEID_OK;
                failed |= deid__text_clahe(fr.grey, out, fr.rows, fr.cols, 8, 2.0) != DEID_OK;
                (void)failed;
            }
            free(out);
            deid__text_frame_clear(&fr);
        }
        deid_image_free(img);
    }
    deid_dataset_free(ds);
    deid_clear_error();
    return 0;
}
