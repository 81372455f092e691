/* What every deid-* tool shares: the common options (getopt_long), the key and profile setup,
 * and the batch run with its progress bar and summary box. Tools add their own options through
 * cli_tool.extra and keep no de-identification logic of their own. */
#ifndef DEID_TOOLS_CLI_H
#define DEID_TOOLS_CLI_H

#include <stddef.h>
#include "deid/deid.h"

/* An option of one tool only (e.g. deid-us --fan-mode). */
typedef struct cli_extra {
    const char *name;     /* long name without "--" */
    const char *arg_name; /* shown in --help ("MODE"); NULL when the option takes no argument */
    const char *help;     /* one line */
} cli_extra;

/* What a tool tells the shared parser about itself. */
typedef struct cli_tool {
    const char *name;        /* "deid-header": prefix of every message */
    const char *description; /* one line for --help */
    const cli_extra *extra;  /* the tool's own options; may be NULL */
    size_t nextra;
    /* Called for each extra option given: index into extra, its argument (NULL when none).
     * Return 0, or -1 after printing why the value is wrong (usage error). */
    int (*on_extra)(void *user, size_t index, const char *arg);
    void *user;
    const char *default_output_suffix; /* non-NULL: INPUT alone is allowed, and OUTPUT is
                                          INPUT followed by this ("_d") */
} cli_tool;

/* The parsed command line. */
typedef struct cli {
    const cli_tool *tool;
    const char *key_path;        /* --key, NULL = fresh random key */
    deid_profile_options profile; /* --recipe, --max-date-shift, Annex E flags */
    deid_batch_options batch;    /* INPUT OUTPUT [HEADERS] and the file options */
    int quiet, verbose;
} cli;

/* Results of cli_parse besides 0 (= go on): */
#define CLI_EXIT_OK 100  /* --help or --version was printed: exit 0 */
#define CLI_EXIT_USAGE 2 /* a usage error was printed: exit 2 */

/* Parse argv (options may come before, between or after the positional arguments). */
int cli_parse(cli *c, const cli_tool *tool, int argc, char **argv);

/* Load or create the key and build the profile. Prints the reason and returns 1 on failure
 * (the tool then exits 1); 0 with *out set on success. */
int cli_profile(const cli *c, deid_profile **out);

/* Run the batch with a progress bar (stderr, TTY only, not --quiet), per-file errors on stderr,
 * Ctrl-C as a clean cancel, and the summary box on stdout. Returns the exit status: 0 when
 * every file was processed or skipped, 1 when any failed or the run could not start or was
 * interrupted. */
int cli_run_batch(const cli *c, const deid_profile *profile);

/* cli_profile then cli_run_batch, freeing the profile: what a tool's main ends with. Returns
 * the exit status. */
int cli_run(const cli *c);

/* Parse the argument of --<opt> as a number in [lo, hi] into *out; 0, or -1 after printing
 * why it is not one (usage error). */
int cli_real(const cli *c, const char *opt, const char *s, double lo, double hi, double *out);

/* Find the argument of --<opt> among names[0..n) and store its index in *out; 0, or -1 after
 * printing that the value is unknown. */
int cli_choice(const cli *c, const char *opt, const char *s, const char *const *names, int n,
               int *out);

/* "<tool>: <message>" on stderr. */
void cli_error(const cli *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
