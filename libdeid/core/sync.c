/* Flushing a whole file system once (batches sync at the end of a run, not per file). */
#define _GNU_SOURCE /* syncfs */
#include <fcntl.h>
#include <unistd.h>
#include "core/core.h"

void deid__sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        sync();
        return;
    }
    if (syncfs(fd) != 0)
        sync();
    close(fd);
}

void deid__start_writeback(int fd)
{
#if defined(SYNC_FILE_RANGE_WRITE)
    /* Start writing the data to disk now, without waiting: the end-of-run sync then finds
     * little left to do. */
    (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd;
#endif
}
