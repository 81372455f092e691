/* libFuzzer target: volume assembly from a set of buffers. The input is split into up to 16
 * objects at each occurrence of the separator "DEIDFUZZ"; each is parsed and added to a
 * series, which is sorted and made a volume (positions, orientations, spacing, gaps, tilt and
 * mixed sizes as the bytes say), then written back into the slices; a single multi-frame
 * object goes through deid_volume_from_dataset as well. */
#include <string.h>
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SEP[] = "DEIDFUZZ";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    deid_series *s = NULL;
    if (deid_series_new(&s) != DEID_OK)
        return 0;
    size_t start = 0, parts = 0;
    while (start <= size && parts < 16) {
        size_t end = start;
        while (end + sizeof SEP - 1 <= size && memcmp(data + end, SEP, sizeof SEP - 1))
            end++;
        if (end + sizeof SEP - 1 > size)
            end = size;
        deid_dataset *ds = fuzz_dataset(data + start, end - start);
        if (ds) {
            if (parts == 0) {
                deid_volume *v = NULL;
                if (deid_volume_from_dataset(ds, &v) == DEID_OK && deid_volume_count(v) <= FUZZ_MAX_SAMPLES)
                    deid_volume_free(v);
                else
                    deid_volume_free(v);
            }
            if (deid_series_add(s, ds, NULL) != DEID_OK)
                deid_dataset_free(ds);
        }
        parts++;
        start = end + sizeof SEP - 1;
    }
    deid_series_report rep;
    if (deid_series_sort(s, &rep) == DEID_OK) {
        deid_volume *v = NULL;
        if (deid_volume_from_series(s, &v) == DEID_OK) {
            size_t unmatched = 0;
            if (deid_series_set_volume(s, v, &unmatched) != DEID_OK)
                deid_clear_error();
            deid_volume_free(v);
        }
    }
    deid_series_free(s);
    deid_clear_error();
    return 0;
}
