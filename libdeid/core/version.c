/* Version and feature queries, deid_free. */
#include <stdlib.h>
#include "deid/deid.h"
#include "deid_config.h"

const char *deid_version(void) { return DEID_VERSION_STRING; }

unsigned deid_version_number(void)
{
    return DEID_VERSION_MAJOR * 10000u + DEID_VERSION_MINOR * 100u + DEID_VERSION_PATCH;
}

const char *deid_features(void) { return DEID_FEATURES; }

void deid_free(void *ptr) { free(ptr); }
