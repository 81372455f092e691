#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "check.h"
#include "deid/deid.h"

int check_failures = 0;

const char *check_shared(const char *relative)
{
    static char path[4096];
    const char *root = getenv("DEID_SHARED_DATA");
    if (!root)
        return NULL;
    snprintf(path, sizeof path, "%s/%s", root, relative);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "note: %s not available, skipping the cases that need it\n", path);
        return NULL;
    }
    return path;
}

struct deid_dataset *check_load_shared(const char *relative)
{
    const char *path = check_shared(relative);
    if (!path)
        return NULL;
    deid_dataset *ds = NULL;
    CHECK_OK(deid_dataset_read_file(path, NULL, &ds));
    return ds;
}

int check_done(const char *name)
{
    if (check_failures)
        fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
    else
        printf("%s: all checks passed\n", name);
    return check_failures ? 1 : 0;
}
