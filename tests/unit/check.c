#define _XOPEN_SOURCE 700 /* mkdtemp, lstat */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Remove `dir` and everything under it (read-only subfolders made writable first). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char p[4200];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            chmod(p, 0755);
            remove_tree(p);
        } else {
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

static char tmpdir_path[2048];

static void remove_tmpdir(void)
{
    remove_tree(tmpdir_path);
}

const char *check_tmpdir(const char *name)
{
    if (tmpdir_path[0])
        return tmpdir_path;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir_path, sizeof tmpdir_path, "%s/%s_XXXXXX", base && *base ? base : "/tmp",
             name);
    if (!mkdtemp(tmpdir_path)) {
        perror("mkdtemp");
        tmpdir_path[0] = '\0';
        return NULL;
    }
    atexit(remove_tmpdir);
    return tmpdir_path;
}
