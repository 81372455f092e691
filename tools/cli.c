/* Shared command line of the deid-* tools: options, key and profile setup, progress bar,
 * summary box. The Annex E options come from the library at run time (deid_option_*), so
 * --help always matches the linked libdeid. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

enum {
    OPT_KEY = 256,
    OPT_RECIPE,
    OPT_MAX_DATE_SHIFT,
    OPT_WORKERS,
    OPT_PREFIX,
    OPT_FLAT,
    OPT_RESUME,
    OPT_MODALITY,
    OPT_SOP_CLASS,
    OPT_SKIP_SINGLE_FRAME,
    OPT_NO_JSON,
    OPT_SYNC,
    OPT_LOG,
    OPT_NO_HASH_PATIENT_ID,
    OPT_LIBRARY = 1000, /* + index of a library option */
    OPT_EXTRA = 2000    /* + index of a tool option */
};

/* The fixed options, in --help order; NULL help starts a section. */
static const struct fixed {
    const char *name;
    int val;
    const char *arg;
    const char *help;
} fixed[] = {
    {"key", OPT_KEY, "FILE",
     "secret key (64 hex digits); created with mode 0600 when missing. Without it a fresh "
     "random key is used and pseudonyms match no other run"},
    {"recipe", OPT_RECIPE, "FILE", "JSON recipe overriding the action of chosen tags"},
    {"max-date-shift", OPT_MAX_DATE_SHIFT, "DAYS",
     "bound of the per-patient date shift of --retain-longitudinal-modified-dates (default 30)"},
    {"workers", OPT_WORKERS, "N", "worker threads (default: number of cores); also -j N"},
    {"filename-prefix", OPT_PREFIX, "P", "prefix of every output file name"},
    {"no-preserve-directory-structure", OPT_FLAT, NULL,
     "write every output directly in OUTPUT instead of mirroring the input tree"},
    {"resume-anonymization", OPT_RESUME, NULL,
     "keep keys.csv and skip files already done (needs the same --key)"},
    {"modality", OPT_MODALITY, "LIST", "only these modalities, comma-separated (e.g. US,CT)"},
    {"sop-class", OPT_SOP_CLASS, "LIST", "only these SOP Class UIDs, comma-separated"},
    {"skip-single-frame", OPT_SKIP_SINGLE_FRAME, NULL, "skip objects with a single frame"},
    {"no-json", OPT_NO_JSON, NULL, "do not write the *_DICOMHeader.json files"},
    {"sync", OPT_SYNC, NULL,
     "flush each output to disk before recording it in keys.csv (survives a power loss per "
     "file; slower). Default: outputs appear complete or not at all, and are flushed once at "
     "the end"},
    {"log", OPT_LOG, "FILE", "append a line per file, stage times and the summary to FILE"},
    {"quiet", 'q', NULL, "no progress bar and no summary (errors are still printed); also -q"},
    {"verbose", 'v', NULL, "print a line per file on stderr; also -v"},
    {"help", 'h', NULL, "show this help and exit; also -h"},
    {"version", 'V', NULL, "show the versions and exit; also -V"},
};
#define NFIXED (sizeof fixed / sizeof fixed[0])

void cli_error(const cli *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", c->tool->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* deid_last_error() without its leading "module: ", so messages read "<tool>: <file>: ...". */
static const char *reason(void)
{
    const char *m = deid_last_error();
    size_t n = strspn(m, "abcdefghijklmnopqrstuvwxyz_");
    if (n > 0 && n < 16 && m[n] == ':' && m[n + 1] == ' ')
        m += n + 2;
    return *m ? m : deid_strerror(deid_last_error_code());
}

/* ---- help --------------------------------------------------------------------------------- */

/* "  --name ARG   text", the text wrapped at 79 columns under column 33. */
static void help_line(const char *name, const char *arg, const char *text)
{
    enum { COL = 33, WIDTH = 79 };
    char left[64];
    snprintf(left, sizeof left, "--%s%s%s", name, arg ? " " : "", arg ? arg : "");
    int col = printf("  %s", left), first = 1;
    while (*text) {
        int n = (int)strcspn(text, " ");
        if (first && col >= COL - 1) { /* long option: description on the next line */
            putchar('\n');
            col = 0;
        } else if (!first && col + 1 + n > WIDTH) {
            putchar('\n');
            col = 0;
        }
        if (col < COL)
            col += printf("%*s", COL - col, "");
        else
            col += printf(" ");
        col += printf("%.*s", n, text);
        first = 0;
        text += n;
        text += strspn(text, " ");
    }
    putchar('\n');
}

static void usage(const cli_tool *t, FILE *f)
{
    fprintf(f, "Usage: %s INPUT %s [options]\n", t->name,
            t->default_output_suffix ? "[OUTPUT [HEADERS]]" : "OUTPUT [HEADERS]");
    if (f == stderr)
        fprintf(f, "Try '%s --help' for more information.\n", t->name);
}

static void help(const cli_tool *t)
{
    usage(t, stdout);
    printf("%s\n\n", t->description);
    printf("  INPUT    a DICOM file, or a directory scanned recursively\n"
           "  OUTPUT   directory for the de-identified files, named\n"
           "           <prefix><pseudonym>_<instance>.dcm\n"
           "  HEADERS  directory for the *_DICOMHeader.json files and keys.csv\n"
           "           (default: OUTPUT)\n\n");
    printf("Options:\n");
    for (size_t i = 0; i < NFIXED; i++)
        help_line(fixed[i].name, fixed[i].arg, fixed[i].help);
    printf("\nProfile options (PS3.15 Annex E; default: Basic Profile only):\n");
    for (size_t i = 0; i < deid_option_count(); i++) {
        help_line(deid_option_name(i), NULL, deid_option_description(i));
        if (deid_option_flag(i) == DEID_OPT_KEEP_PATIENT_ID)
            help_line("no-hash-patient-id", NULL, "same as --keep-patient-id");
    }
    if (t->nextra) {
        printf("\n%s options:\n", t->name);
        for (size_t i = 0; i < t->nextra; i++)
            help_line(t->extra[i].name, t->extra[i].arg_name, t->extra[i].help);
    }
    printf("\nExit status: 0 when every file was de-identified or skipped, 1 when any failed "
           "or the run\ncould not start, 2 for usage errors. See docs/cli.md.\n");
}

/* ---- parsing ------------------------------------------------------------------------------ */

static struct option *long_options(const cli_tool *t)
{
    size_t n = NFIXED + deid_option_count() + 1 + t->nextra + 1, k = 0;
    struct option *o = calloc(n, sizeof *o);
    if (!o)
        return NULL;
    for (size_t i = 0; i < NFIXED; i++)
        o[k++] = (struct option){fixed[i].name, fixed[i].arg ? required_argument : no_argument,
                                 NULL, fixed[i].val};
    for (size_t i = 0; i < deid_option_count(); i++)
        o[k++] = (struct option){deid_option_name(i), no_argument, NULL, OPT_LIBRARY + (int)i};
    o[k++] = (struct option){"no-hash-patient-id", no_argument, NULL, OPT_NO_HASH_PATIENT_ID};
    for (size_t i = 0; i < t->nextra; i++)
        o[k++] = (struct option){t->extra[i].name,
                                 t->extra[i].arg_name ? required_argument : no_argument, NULL,
                                 OPT_EXTRA + (int)i};
    return o;
}

static int number(const cli *c, const char *opt, const char *s, unsigned long max,
                  unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v < 1 || v > max || *s == '-') {
        cli_error(c, "--%s: expected a whole number from 1 to %lu, got '%s'", opt, max, s);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static void keep_patient_id(const cli *c, unsigned *flags)
{
    if (!(*flags & DEID_OPT_KEEP_PATIENT_ID))
        cli_error(c, "warning: --keep-patient-id: outputs keep the original Patient ID and "
                     "identify the patient to anyone with access to the source system");
    *flags |= DEID_OPT_KEEP_PATIENT_ID;
}

static int option(cli *c, int v, const char *arg)
{
    switch (v) {
    case OPT_KEY: c->key_path = arg; return 0;
    case OPT_RECIPE: c->profile.recipe_path = arg; return 0;
    case OPT_MAX_DATE_SHIFT:
        return number(c, "max-date-shift", arg, 36500, &c->profile.max_date_shift_days);
    case OPT_WORKERS:
    case 'j': return number(c, "workers", arg, 4096, &c->batch.workers);
    case OPT_PREFIX:
        if (strchr(arg, '/')) {
            cli_error(c, "--filename-prefix: must not contain '/'");
            return -1;
        }
        c->batch.filename_prefix = arg;
        return 0;
    case OPT_FLAT: c->batch.flat = 1; return 0;
    case OPT_RESUME: c->batch.resume = 1; return 0;
    case OPT_MODALITY: c->batch.modalities = arg; return 0;
    case OPT_SOP_CLASS: c->batch.sop_classes = arg; return 0;
    case OPT_SKIP_SINGLE_FRAME: c->batch.skip_single_frame = 1; return 0;
    case OPT_NO_JSON: c->batch.write_json = 0; return 0;
    case OPT_SYNC: c->batch.durable = 1; return 0;
    case OPT_LOG: c->batch.log_path = arg; return 0;
    case 'q': c->quiet = 1; return 0;
    case 'v': c->verbose = 1; return 0;
    case OPT_NO_HASH_PATIENT_ID: keep_patient_id(c, &c->profile.flags); return 0;
    }
    if (v >= OPT_EXTRA && (size_t)(v - OPT_EXTRA) < c->tool->nextra)
        return c->tool->on_extra ? c->tool->on_extra(c->tool->user, (size_t)(v - OPT_EXTRA), arg)
                                 : 0;
    if (v >= OPT_LIBRARY && (size_t)(v - OPT_LIBRARY) < deid_option_count()) {
        unsigned flag = deid_option_flag((size_t)(v - OPT_LIBRARY));
        if (flag == DEID_OPT_KEEP_PATIENT_ID)
            keep_patient_id(c, &c->profile.flags);
        else
            c->profile.flags |= flag;
        return 0;
    }
    return -1;
}

int cli_parse(cli *c, const cli_tool *tool, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    c->tool = tool;
    if (deid_profile_options_init(&c->profile, DEID_PROFILE_OPTIONS_VERSION) != DEID_OK ||
        deid_batch_options_init(&c->batch, DEID_BATCH_OPTIONS_VERSION) != DEID_OK) {
        cli_error(c, "%s", reason());
        return 1;
    }
    struct option *opts = long_options(tool);
    if (!opts) {
        cli_error(c, "out of memory");
        return 1;
    }
    int v, rc = 0;
    opterr = 0; /* our own messages, prefixed with the tool name */
    while (rc == 0 && (v = getopt_long(argc, argv, ":qvhVj:", opts, NULL)) != -1) {
        if (v == '?' || v == ':') {
            const char *arg = argv[optind - 1];
            if (v == ':')
                cli_error(c, "option '%s' needs a value", arg);
            else if (optopt && strncmp(arg, "--", 2) != 0)
                cli_error(c, "unknown option '-%c'", optopt);
            else
                cli_error(c, "unknown option '%s'", arg);
            rc = CLI_EXIT_USAGE;
        } else if (v == 'h' || v == 'V') {
            if (v == 'h')
                help(tool);
            else
                printf("%s %s (libdeid %s; %s)\n", tool->name, DEID_VERSION_STRING,
                       deid_version(), deid_features());
            rc = CLI_EXIT_OK;
        } else if (option(c, v, optarg) != 0) {
            rc = CLI_EXIT_USAGE;
        }
    }
    free(opts);
    if (rc == CLI_EXIT_USAGE)
        usage(tool, stderr);
    if (rc != 0)
        return rc;
    int n = argc - optind;
    if (n == 1 && tool->default_output_suffix) { /* OUTPUT defaults to <INPUT><suffix> */
        static char out[4096];
        size_t len = strlen(argv[optind]);
        while (len > 1 && argv[optind][len - 1] == '/')
            len--;
        if (snprintf(out, sizeof out, "%.*s%s", (int)len, argv[optind],
                     tool->default_output_suffix) >= (int)sizeof out) {
            cli_error(c, "input path too long");
            return CLI_EXIT_USAGE;
        }
        c->batch.input = argv[optind];
        c->batch.output_dir = out;
        c->batch.headers_dir = NULL;
        n = -1; /* taken */
    }
    if (n >= 0 && (n < 2 || n > 3)) {
        if (n < 2)
            cli_error(c, tool->default_output_suffix ? "missing INPUT"
                                                     : "missing INPUT and OUTPUT");
        else
            cli_error(c, "too many arguments (from '%s')", argv[optind + 3]);
        usage(tool, stderr);
        return CLI_EXIT_USAGE;
    }
    if (n > 0) {
        c->batch.input = argv[optind];
        c->batch.output_dir = argv[optind + 1];
        c->batch.headers_dir = n == 3 ? argv[optind + 2] : NULL;
    }
    if (c->batch.resume && !c->key_path) {
        cli_error(c, "--resume-anonymization needs --key: a fresh random key would name every "
                     "file differently from the interrupted run");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* ---- key and profile ---------------------------------------------------------------------- */

int cli_profile(const cli *c, deid_profile **out)
{
    deid_key *key = NULL;
    deid_status st;
    if (c->key_path) {
        int created = 0;
        st = deid_key_load_file(c->key_path, 1, &created, &key);
        if (st == DEID_OK && created)
            cli_error(c, "created a new key in %s (mode 0600): keep it secret, and use it again "
                         "so that pseudonyms match across runs",
                      c->key_path);
    } else {
        st = deid_key_generate(&key);
        if (st == DEID_OK)
            cli_error(c, "warning: no --key given: using a fresh random key, so pseudonyms and "
                         "UIDs will not match any other run (keys.csv is the only link back)");
    }
    if (st != DEID_OK) {
        cli_error(c, "%s", reason());
        return 1;
    }
    st = deid_profile_new(&c->profile, key, out);
    deid_key_free(key);
    if (st != DEID_OK) {
        cli_error(c, "%s", reason());
        return 1;
    }
    return 0;
}

/* ---- progress, log lines, Ctrl-C ---------------------------------------------------------- */

typedef struct ui {
    const cli *c;
    int bar;       /* draw a progress bar */
    int drawn;     /* a bar is on the current line */
    double drawn_at; /* elapsed time of the last drawing */
    pthread_mutex_t lock;
} ui;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C ends the process at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void clear_bar(ui *u)
{
    if (u->drawn) {
        fputs("\r\033[K", stderr);
        u->drawn = 0;
    }
}

static void on_log(void *user, deid_log_level level, const char *module, const char *message)
{
    ui *u = user;
    (void)module;
    if (level > DEID_LOG_WARNING && !u->c->verbose)
        return;
    pthread_mutex_lock(&u->lock);
    clear_bar(u);
    fprintf(stderr, "%s: %s%s\n", u->c->tool->name, level == DEID_LOG_WARNING ? "warning: " : "",
            message);
    pthread_mutex_unlock(&u->lock);
}

static void clock_text(double s, char *buf, size_t cap)
{
    unsigned long t = s > 0 && s < 1e9 ? (unsigned long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, cap, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%lu:%02lu", t / 60, t % 60);
}

static int on_progress(void *user, const deid_progress *p)
{
    ui *u = user;
    if (u->bar && (p->done == p->total || p->elapsed_s - u->drawn_at >= 0.1 || !u->drawn)) {
        enum { WIDTH = 28 };
        char bar[WIDTH + 1], eta[32] = "--:--";
        size_t fill = p->total ? p->done * WIDTH / p->total : 0;
        for (size_t i = 0; i < WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[WIDTH] = '\0';
        double rate = p->elapsed_s > 0 ? (double)p->done / p->elapsed_s : 0;
        if (rate > 0)
            clock_text((double)(p->total - p->done) / rate, eta, sizeof eta);
        pthread_mutex_lock(&u->lock);
        fprintf(stderr, "\r\033[K[%s] %zu/%zu files  %.1f files/s  ETA %s", bar, p->done,
                p->total, rate, eta);
        if (p->failed)
            fprintf(stderr, "  %zu failed", p->failed);
        fflush(stderr);
        u->drawn = 1;
        u->drawn_at = p->elapsed_s;
        pthread_mutex_unlock(&u->lock);
    }
    return interrupted != 0;
}

/* ---- summary ------------------------------------------------------------------------------ */

static void box_row(const char *label, const char *value)
{
    printf("| %-14s %20s |\n", label, value);
}

static void summary_box(const cli *c, const deid_batch_summary *s)
{
    char v[64];
    double t = s->seconds_total > 0 ? s->seconds_total : 1e-9;
    size_t done = s->ok + s->skipped + s->failed;
    printf("+-------------------------------------+\n");
    printf("| %-35s |\n", c->tool->name);
    printf("+-------------------------------------+\n");
    snprintf(v, sizeof v, "%zu", s->found);
    box_row("found", v);
    snprintf(v, sizeof v, "%zu", s->ok);
    box_row("ok", v);
    snprintf(v, sizeof v, "%zu", s->skipped);
    box_row("skipped", v);
    snprintf(v, sizeof v, "%zu", s->failed);
    box_row("failed", v);
    if (c->batch.us) { /* ultrasound runs: the files the log's warning lists by name */
        snprintf(v, sizeof v, "%zu", s->us_low_confidence);
        box_row("low confidence", v);
        snprintf(v, sizeof v, "%zu", s->us_fallback);
        box_row("fallback masks", v);
    }
    if (c->batch.text) { /* text runs: what review.csv and the *_text.json files detail */
        const struct {
            const char *label;
            size_t value;
        } rows[] = {{"text searched", s->text_files},     {"regions found", s->text_found},
                    {"merged", s->text_merged},           {"redacted", s->text_redacted},
                    {"for review", s->text_review},       {"kept", s->text_kept},
                    {"residual fail", s->text_residual_failed}};
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
            snprintf(v, sizeof v, "%zu", rows[i].value);
            box_row(rows[i].label, v);
        }
    }
    if (c->batch.ct) { /* CT runs: series, not files */
        snprintf(v, sizeof v, "%zu", s->ct_series);
        box_row("series written", v);
        snprintf(v, sizeof v, "%zu", s->ct_failed);
        box_row("series failed", v);
        snprintf(v, sizeof v, "%.2f s", s->seconds_deface);
        box_row("defacing", v);
    }
    snprintf(v, sizeof v, "%.2f s", s->seconds_total);
    box_row("time", v);
    snprintf(v, sizeof v, "%.1f", (double)done / t);
    box_row("files per s", v);
    snprintf(v, sizeof v, "%.1f", (double)s->bytes_in / 1e6 / t);
    box_row("MB per s", v);
    printf("+-------------------------------------+\n");
    fflush(stdout);
}

int cli_run_batch(const cli *c, const deid_profile *profile)
{
    ui u = {c, !c->quiet && isatty(STDERR_FILENO), 0, 0, PTHREAD_MUTEX_INITIALIZER};
    deid_batch_options o = c->batch;
    o.log = on_log;
    o.log_user = &u;
    o.progress = on_progress;
    o.progress_user = &u;
    deid_batch *b = NULL;
    deid_status st = deid_batch_new(&o, profile, &b);
    if (st != DEID_OK) {
        cli_error(c, "%s", reason());
        return 1;
    }
    catch_signals();
    deid_batch_summary s;
    memset(&s, 0, sizeof s);
    st = deid_batch_run(b, &s);
    deid_batch_free(b);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (u.drawn)
        fputc('\n', stderr);
    if (st == DEID_ERR_CANCELLED) {
        cli_error(c, "interrupted after %zu of %zu files; run again with "
                     "--resume-anonymization to finish",
                  s.ok + s.skipped + s.failed, s.found);
    } else if (st != DEID_OK) {
        cli_error(c, "%s", reason());
        return 1;
    }
    if (!c->quiet)
        summary_box(c, &s);
    return st == DEID_OK && s.failed == 0 ? 0 : 1;
}

int cli_run(const cli *c)
{
    deid_profile *profile = NULL;
    if (cli_profile(c, &profile) != 0)
        return 1;
    int rc = cli_run_batch(c, profile);
    deid_profile_free(profile);
    return rc;
}

int cli_real(const cli *c, const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !(v >= lo && v <= hi)) {
        cli_error(c, "--%s: expected a number from %g to %g, got '%s'", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_choice(const cli *c, const char *opt, const char *s, const char *const *names, int n,
               int *out)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    cli_error(c, "--%s: unknown value '%s'", opt, s);
    return -1;
}
