/* libFuzzer target: parse a buffer, de-identify its header with the Basic Profile and write it
 * back (deid_deidentify_memory: what a gateway does with each C-STORE payload). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void *out = NULL;
    size_t n = 0;
    if (deid_deidentify_memory(fuzz_profile(), data, size, &out, &n) == DEID_OK)
        deid_free(out);
    deid_clear_error();
    return 0;
}
