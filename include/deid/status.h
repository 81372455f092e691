/* libdeid: status codes and error details. */
#ifndef DEID_STATUS_H
#define DEID_STATUS_H

#include "deid/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Result of every fallible libdeid call. Only failures a caller would branch on have their own
 * code; everything else is DEID_ERR_GENERIC with a detail message (deid_last_error()). */
typedef enum deid_status {
    DEID_OK = 0,
    DEID_ERR_NOT_DICOM = 1,      /* input is not a DICOM object (or is truncated beyond repair) */
    DEID_ERR_NO_PIXELS = 2,      /* the object has no usable Pixel Data */
    DEID_ERR_UNSUPPORTED = 3,    /* transfer syntax, photometric or feature not supported */
    DEID_ERR_LIMIT = 4,          /* a configured limit on untrusted input was exceeded */
    DEID_ERR_IO = 5,             /* reading or writing a file or directory failed */
    DEID_ERR_NOMEM = 6,          /* out of memory */
    DEID_ERR_ARGUMENT = 7,       /* bad argument or option (including a missing key) */
    DEID_ERR_CANCELLED = 8,      /* the caller's progress callback asked to stop */
    DEID_ERR_GENERIC = 9         /* any other failure; see deid_last_error() */
} deid_status;

/* Static English text for a status code; never NULL, never freed. Unknown codes give
 * "unknown status". */
DEID_API const char *deid_strerror(deid_status status);

/* Detail of the last failure on the calling thread: "module: file: reason" (never PHI).
 * Never NULL (empty string when no failure happened yet). The pointer stays valid until the
 * next libdeid call on the same thread. */
DEID_API const char *deid_last_error(void);

/* Status code of the last failure on the calling thread (DEID_OK when none). */
DEID_API deid_status deid_last_error_code(void);

/* Forget the calling thread's last failure. */
DEID_API void deid_clear_error(void);

/* Log levels used by the log callback. */
typedef enum deid_log_level {
    DEID_LOG_ERROR = 0,
    DEID_LOG_WARNING = 1,
    DEID_LOG_INFO = 2,
    DEID_LOG_DEBUG = 3
} deid_log_level;

/* Log callback: receives one line (no trailing newline) that never contains PHI. `module` is a
 * short static string ("batch", "profile"...). Called from worker threads: it must be
 * thread-safe. */
typedef void (*deid_log_fn)(void *user, deid_log_level level, const char *module,
                            const char *message);

#ifdef __cplusplus
}
#endif
#endif
