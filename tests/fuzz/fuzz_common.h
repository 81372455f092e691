/* Shared by the libFuzzer targets: read limits that keep one input's memory bounded (the
 * fuzzer's own -rss_limit_mb is the backstop), and a profile with a fixed test key. */
#ifndef DEID_FUZZ_COMMON_H
#define DEID_FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include "deid/deid.h"

#define FUZZ_MAX_SAMPLES ((uint64_t)1 << 22) /* decoded samples per input */

static inline deid_read_options fuzz_read_options(void)
{
    deid_read_options o = DEID_READ_OPTIONS_INIT;
    o.max_file_bytes = 8u << 20;
    o.max_depth = 64;
    return o;
}

static inline deid_dataset *fuzz_dataset(const uint8_t *data, size_t size)
{
    deid_read_options o = fuzz_read_options();
    deid_dataset *ds = NULL;
    if (deid_dataset_read_memory(data, size, "fuzz", &o, &ds) != DEID_OK)
        return NULL;
    return ds;
}

static inline const deid_profile *fuzz_profile(void)
{
    static deid_profile *p;
    if (!p) {
        static const uint8_t k[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                      17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
                                      31, 32};
        deid_key *key = NULL;
        deid_profile_options o = DEID_PROFILE_OPTIONS_INIT;
        if (deid_key_from_bytes(k, sizeof k, &key) != DEID_OK ||
            deid_profile_new(&o, key, &p) != DEID_OK)
            abort(); /* setup, not input: a broken build */
        deid_key_free(key);
    }
    return p;
}

#endif
