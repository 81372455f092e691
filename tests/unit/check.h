/* Minimal assertion helpers for the unit tests: report file:line and keep counting. */
#ifndef DEID_CHECK_H
#define DEID_CHECK_H
#include <stdio.h>

extern int check_failures;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);          \
            check_failures++;                                                                  \
        }                                                                                      \
    } while (0)

/* CHECK that a deid_status is DEID_OK, printing deid_last_error() otherwise. */
#define CHECK_OK(expr)                                                                         \
    do {                                                                                       \
        int st_ = (int)(expr);                                                                 \
        if (st_ != 0) {                                                                        \
            fprintf(stderr, "%s:%d: %s failed: status %d: %s\n", __FILE__, __LINE__, #expr,   \
                    st_, deid_last_error());                                                   \
            check_failures++;                                                                  \
        }                                                                                      \
    } while (0)

/* Path of a file under ../shared/data (DEID_SHARED_DATA), or NULL when the folder is absent;
 * tests skip such cases with a message. Returns a static buffer. */
const char *check_shared(const char *relative);

/* Read a file under ../shared/data (see check_shared); NULL when absent (skip) or unreadable
 * (then a CHECK failed). Free with deid_dataset_free. */
struct deid_dataset;
struct deid_dataset *check_load_shared(const char *relative);

/* A fresh directory $TMPDIR/<name>_XXXXXX (/tmp without TMPDIR), removed with everything in it
 * when the test exits; the same one on later calls. NULL (after perror) when it cannot be made.
 * Returns a static buffer. */
const char *check_tmpdir(const char *name);

/* Exit status for main: 0 when no CHECK failed. */
int check_done(const char *name);
#endif
