/* Status codes and the thread-local last-error detail. */
#include <stdio.h>
#include <string.h>
#include "core/core.h"

#define DEID_ERROR_MAX 1024

static _Thread_local char tl_message[DEID_ERROR_MAX];
static _Thread_local deid_status tl_status = DEID_OK;

const char *deid_strerror(deid_status status)
{
    switch (status) {
    case DEID_OK: return "success";
    case DEID_ERR_NOT_DICOM: return "not a DICOM object";
    case DEID_ERR_NO_PIXELS: return "no pixel data";
    case DEID_ERR_UNSUPPORTED: return "unsupported encoding or feature";
    case DEID_ERR_LIMIT: return "limit exceeded";
    case DEID_ERR_IO: return "input/output error";
    case DEID_ERR_NOMEM: return "out of memory";
    case DEID_ERR_ARGUMENT: return "invalid argument";
    case DEID_ERR_CANCELLED: return "cancelled";
    case DEID_ERR_GENERIC: return "error";
    }
    return "unknown status";
}

const char *deid_last_error(void) { return tl_message; }

deid_status deid_last_error_code(void) { return tl_status; }

void deid_clear_error(void)
{
    tl_status = DEID_OK;
    tl_message[0] = '\0';
}

deid_status deid__fail(deid_status status, const char *module, const char *fmt, ...)
{
    char detail[DEID_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    /* Truncation of an over-long detail is acceptable; using the result says so to gcc. */
    if (snprintf(tl_message, sizeof tl_message, "%s: %s", module ? module : "deid", detail) < 0)
        tl_message[0] = '\0';
    tl_status = status;
    return status;
}

void deid__error_prefix(const char *prefix)
{
    char old[DEID_ERROR_MAX];
    if (!prefix || !*prefix)
        return;
    memcpy(old, tl_message, sizeof old);
    if (snprintf(tl_message, sizeof tl_message, "%s: %s", prefix, old) < 0)
        tl_message[0] = '\0';
}
