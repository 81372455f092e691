/* libdeid internal: errors, logging, allocation and small utilities shared by every module. */
#ifndef DEID_CORE_H
#define DEID_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "deid/status.h"

/* Record the calling thread's last failure and return `status`, so call sites can write
 * `return deid__fail(DEID_ERR_IO, "batch", "%s: cannot open: %s", path, strerror(errno));`.
 * The message must never contain PHI (names, IDs, dates, UIDs of a patient). */
deid_status deid__fail(deid_status status, const char *module, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefix the current thread's last error message with "prefix: " (e.g. the file name when
 * the failure happened deeper down). Keeps the status. */
void deid__error_prefix(const char *prefix);

/* Overflow-checked size arithmetic: return 0 and leave *out untouched on overflow. */
int deid__mul_size(size_t a, size_t b, size_t *out);
int deid__add_size(size_t a, size_t b, size_t *out);

/* Allocation wrappers that record DEID_ERR_NOMEM in the thread's error on failure. */
void *deid__malloc(size_t size);
void *deid__calloc(size_t n, size_t size);
void *deid__realloc(void *p, size_t size);
char *deid__strdup(const char *s);
char *deid__strndup(const char *s, size_t n);

/* Growable byte buffer. */
typedef struct deid_buf {
    char *data;
    size_t len, cap;
} deid_buf;
/* Room for n more bytes plus a NUL after them (capacity at least doubles). 0 ok, -1 nomem. */
int deid__buf_reserve(deid_buf *b, size_t n);
int deid__buf_append(deid_buf *b, const void *data, size_t n);   /* 0 ok, -1 nomem */
int deid__buf_printf(deid_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void deid__buf_free(deid_buf *b);

/* Monotonic clock in seconds. */
double deid__now(void);

/* Give the heap's free pages back to the system (glibc's malloc_trim; nothing elsewhere). Code
 * that frees many mid-sized buffers while allocating elsewhere calls it: glibc keeps such
 * chunks in the heap, so they would count in the process's memory until reused. */
void deid__heap_trim(void);

/* Flags of deid__write_file_atomic. */
#define DEID_WRITE_SYNC 1u /* fsync before the rename: the file survives a power loss */

/* Write `size` bytes to `path` atomically: temp file in the same directory, then rename, so a
 * reader (or a killed process) only ever sees the old file or the complete new one. `mode` is
 * the permission of the new file (e.g. 0644, 0600). With DEID_WRITE_SYNC the data is also on
 * disk before the rename; batches instead sync once at the end of a run. */
deid_status deid__write_file_atomic(const char *path, const void *data, size_t size,
                                    unsigned mode, unsigned flags);

/* Flush the file system holding `dir` to disk (syncfs; sync() where unavailable). Best effort. */
void deid__sync_dir(const char *dir);

/* Start the kernel writing an open file's data to disk without waiting for it (Linux
 * sync_file_range; no-op elsewhere). */
void deid__start_writeback(int fd);

/* Create a directory and its parents (like mkdir -p). */
deid_status deid__mkdirs(const char *path);

/* Read a whole file (at most max_bytes; DEID_ERR_LIMIT beyond). *data is NUL-terminated. */
deid_status deid__read_file(const char *path, uint64_t max_bytes, char **data, size_t *size);

#endif
