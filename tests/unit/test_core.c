/* Core utilities a user relies on indirectly: atomic writes never leave partial or temporary
 * files, replace existing files whole, and fail with a message naming the file. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "core/core.h"
#include "deid/deid.h"

static size_t count_entries(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static int file_is(const char *path, const char *text)
{
    char *data = NULL;
    size_t size = 0;
    if (deid__read_file(path, 1 << 20, &data, &size) != DEID_OK)
        return 0;
    int same = size == strlen(text) && memcmp(data, text, size) == 0;
    free(data);
    return same;
}

int main(void)
{
    char dir[] = "/tmp/deid_test_coreXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], sub[256];
    snprintf(path, sizeof path, "%s/out.dcm", dir);

    /* New file, then replaced, with and without sync: always whole, nothing else left. */
    CHECK_OK(deid__write_file_atomic(path, "first", 5, 0644, 0));
    CHECK(file_is(path, "first"));
    CHECK_OK(deid__write_file_atomic(path, "second!", 7, 0644, DEID_WRITE_SYNC));
    CHECK(file_is(path, "second!"));
    CHECK_OK(deid__write_file_atomic(path, "third", 5, 0600, 0));
    CHECK(file_is(path, "third"));
    CHECK(count_entries(dir) == 1);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

    /* Failure: a directory that cannot exist (under a regular file) names the file. */
    snprintf(sub, sizeof sub, "%s/out.dcm/x.dcm", dir);
    CHECK(deid__write_file_atomic(sub, "x", 1, 0644, 0) == DEID_ERR_IO);
    CHECK(strstr(deid_last_error(), sub) != NULL);
    CHECK(count_entries(dir) == 1);

    /* mkdirs: nested, existing, and under a file. */
    snprintf(sub, sizeof sub, "%s/a/b/c", dir);
    CHECK_OK(deid__mkdirs(sub));
    CHECK_OK(deid__mkdirs(sub));
    CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));
    snprintf(sub, sizeof sub, "%s/out.dcm/d", dir);
    CHECK(deid__mkdirs(sub) == DEID_ERR_IO);

    /* Overflow-checked sizes. */
    size_t r = 7;
    CHECK(!deid__mul_size(SIZE_MAX / 2 + 1, 2, &r) && r == 7);
    CHECK(deid__mul_size(1000, 1000, &r) && r == 1000000);
    CHECK(!deid__add_size(SIZE_MAX, 1, &r));

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return check_done("test_core");
}
