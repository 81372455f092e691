/* Atomic file writes: a reader, or a run killed at any instant, sees either no file (or the
 * old one) or the complete new one, never a partial file. */
#define _GNU_SOURCE /* O_TMPFILE, linkat */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/core.h"

static deid_status write_all(int fd, const void *data, size_t size, const char *path)
{
    const char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return deid__fail(DEID_ERR_IO, "core", "%s: cannot write: %s", path, strerror(errno));
        }
        p += n;
        size -= (size_t)n;
    }
    return DEID_OK;
}

/* Write, then fsync (DEID_WRITE_SYNC) or start writeback, then close. */
static deid_status fill(int fd, const void *data, size_t size, const char *path, unsigned flags)
{
    deid_status st = write_all(fd, data, size, path);
    if (st == DEID_OK && (flags & DEID_WRITE_SYNC) && fsync(fd) != 0)
        st = deid__fail(DEID_ERR_IO, "core", "%s: cannot sync: %s", path, strerror(errno));
    if (st == DEID_OK && !(flags & DEID_WRITE_SYNC))
        deid__start_writeback(fd);
    return st;
}

static char *temp_name(const char *path)
{
    static _Thread_local unsigned counter;
    size_t n = strlen(path) + 48;
    char *tmp = deid__malloc(n);
    if (tmp)
        snprintf(tmp, n, "%s.tmp%ld.%u", path, (long)getpid(), counter++);
    return tmp;
}

#if defined(O_TMPFILE)
/* Fast path for a new file: an unnamed file in the target directory, linked under its name
 * only once complete (one directory operation instead of create + rename). Returns 1 when
 * done (st set), 0 when the caller should use the named temporary file instead. */
static int write_unnamed(const char *path, const void *data, size_t size, unsigned mode,
                         unsigned flags, deid_status *st)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? deid__strndup(path, slash == path ? 1 : (size_t)(slash - path))
                      : deid__strdup(".");
    if (!dir)
        return 0;
    int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, (mode_t)mode);
    free(dir);
    if (fd < 0)
        return 0; /* file system without O_TMPFILE */
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    *st = fill(fd, data, size, path, flags);
    int done = 1;
    if (*st == DEID_OK && linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) != 0) {
        if (errno == EEXIST || errno == ENOENT || errno == EPERM || errno == EXDEV) {
            char *tmp = temp_name(path); /* replacing a file: link aside, then rename */
            done = 0;
            if (tmp && linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) {
                if (rename(tmp, path) == 0)
                    done = 1;
                else
                    unlink(tmp);
            }
            free(tmp);
        } else {
            *st = deid__fail(DEID_ERR_IO, "core", "%s: cannot create: %s", path,
                             strerror(errno));
        }
    }
    close(fd);
    return done;
}
#endif

deid_status deid__write_file_atomic(const char *path, const void *data, size_t size,
                                    unsigned mode, unsigned flags)
{
    deid_status st = DEID_OK;
#if defined(O_TMPFILE)
    if (write_unnamed(path, data, size, mode, flags, &st))
        return st;
#endif
    char *tmp = temp_name(path);
    if (!tmp)
        return DEID_ERR_NOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
    if (fd < 0) {
        st = deid__fail(DEID_ERR_IO, "core", "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return st;
    }
    st = fill(fd, data, size, path, flags);
    if (close(fd) != 0 && st == DEID_OK)
        st = deid__fail(DEID_ERR_IO, "core", "%s: cannot close: %s", path, strerror(errno));
    if (st == DEID_OK && rename(tmp, path) != 0)
        st = deid__fail(DEID_ERR_IO, "core", "%s: cannot rename into place: %s", path,
                        strerror(errno));
    if (st != DEID_OK)
        unlink(tmp);
    free(tmp);
    return st;
}
