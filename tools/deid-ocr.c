/* deid-ocr: find burned-in text in DICOM pixels (every frame, overlay planes) and in PNG, JPEG,
 * TIFF and BMP files with Tesseract, redact it (all text, or the text matching the file's PHI),
 * report each region, and de-identify DICOM headers with the Basic Profile. See docs/cli.md. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "cli.h"

enum {
    X_REDACT,
    X_REGION,
    X_MARGIN,
    X_FILL,
    X_PASSES,
    X_MIN_CONFIDENCE,
    X_NO_RESIDUAL_CHECK,
    X_REPORT_TEXT,
    X_PHI_FILE,
    X_QUALITY,
    X_TESSDATA,
    X_LANGUAGE
};

static const cli_extra extra[] = {
    {"redact", "WHAT",
     "all (default: every text region), phi (regions matching the file's own PHI and "
     "--phi-file; unmatched identifier-like text is left for review) or none (report only)"},
    {"region", "AREA",
     "all (default) or border: only text in the border band is redacted, text reaching the "
     "centre is left for review"},
    {"margin", "N", "width of the border band in pixels (default: 15% of the shorter side)"},
    {"fill", "F", "solid (default: the frame's darkest value) or inpaint (interpolated from "
     "the surrounding pixels); both irreversible"},
    {"passes", "LIST", "lines,page (default), lines (small/faint/inverted text) or page "
     "(Tesseract's layout analysis)"},
    {"min-confidence", "C", "text read below this confidence (0..100) is not text (default 30)"},
    {"no-residual-check", NULL,
     "do not re-read redacted boxes (by default a file whose redacted text is still "
     "readable is refused)"},
    {"report-text", NULL,
     "include the text read in <name>_text.json and review.csv: PHI, keep them private"},
    {"phi-file", "FILE",
     "extra PHI terms matched in every file, one per line: 'name: DOE^JOHN', 'id: 12345', "
     "'date: 20230405', 'other: St Mary Hospital' (no prefix = other; # comments)"},
    {"quality", "Q", "JPEG quality 1..100 for re-encoded lossy inputs (default 95)"},
    {"tessdata", "DIR", "folder holding <language>.traineddata (default $TESSDATA_PREFIX, then "
     "/usr/share/tesseract-ocr/5/tessdata)"},
    {"language", "L", "Tesseract language(s), e.g. eng or eng+deu (default eng)"},
};

typedef struct ocr_cli {
    cli *c;
    deid_text_options text;
    const char *phi_file;
} ocr_cli;

/* "lines,page" -> DEID_TEXT_PASS_* bits. */
static int passes(const cli *c, const char *s, unsigned *out)
{
    unsigned bits = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n == 5 && strncmp(s, "lines", 5) == 0)
            bits |= DEID_TEXT_PASS_LINES;
        else if (n == 4 && strncmp(s, "page", 4) == 0)
            bits |= DEID_TEXT_PASS_PAGE;
        else {
            cli_error(c, "--passes: unknown pass '%.*s' (lines, page)", (int)n, s);
            return -1;
        }
        s += n + (s[n] == ',');
    }
    if (!bits) {
        cli_error(c, "--passes: no pass given (lines, page)");
        return -1;
    }
    *out = bits;
    return 0;
}

static int on_extra(void *user, size_t index, const char *arg)
{
    ocr_cli *u = user;
    deid_text_options *o = &u->text;
    static const char *const redact[] = {"all", "phi", "none"};
    static const char *const region[] = {"all", "border"};
    static const char *const fill[] = {"solid", "inpaint"};
    double v;
    switch (index) {
    case X_REDACT: return cli_choice(u->c, "redact", arg, redact, 3, &o->redact);
    case X_REGION: return cli_choice(u->c, "region", arg, region, 2, &o->area);
    case X_MARGIN:
        if (cli_real(u->c, "margin", arg, 1, 1e6, &v) != 0)
            return -1;
        o->margin = (unsigned)v;
        return 0;
    case X_FILL: return cli_choice(u->c, "fill", arg, fill, 2, &o->fill);
    case X_PASSES: return passes(u->c, arg, &o->passes);
    case X_MIN_CONFIDENCE: return cli_real(u->c, "min-confidence", arg, 0, 100, &o->min_confidence);
    case X_NO_RESIDUAL_CHECK: o->residual_check = 0; return 0;
    case X_REPORT_TEXT: o->report_text = 1; return 0;
    case X_PHI_FILE: u->phi_file = arg; return 0;
    case X_QUALITY:
        if (cli_real(u->c, "quality", arg, 1, 100, &v) != 0)
            return -1;
        o->jpeg_quality = (int)v;
        return 0;
    case X_TESSDATA: o->tessdata = arg; return 0;
    case X_LANGUAGE: o->language = arg; return 0;
    }
    return -1;
}

/* ---- --phi-file --------------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* One line: "kind: value", or a bare value (other). Returns 0, or -1 after printing why (the
 * line number only: the value is PHI). */
static int phi_line(const cli *c, const char *file, size_t no, char *line, deid_text_phi *phi)
{
    static const struct {
        const char *prefix;
        int kind;
    } kinds[] = {{"name", DEID_TEXT_PHI_NAME},
                 {"id", DEID_TEXT_PHI_ID},
                 {"date", DEID_TEXT_PHI_DATE},
                 {"other", DEID_TEXT_PHI_OTHER}};
    char *s = trim(line);
    if (!*s || *s == '#')
        return 0;
    int kind = DEID_TEXT_PHI_OTHER;
    char *colon = strchr(s, ':');
    if (colon) {
        *colon = '\0';
        char *p = trim(s);
        size_t i = 0;
        while (i < sizeof kinds / sizeof kinds[0] && strcasecmp(p, kinds[i].prefix) != 0)
            i++;
        if (i < sizeof kinds / sizeof kinds[0]) {
            kind = kinds[i].kind;
            s = trim(colon + 1);
        } else {
            *colon = ':'; /* "Clinic: 2nd floor" is one term */
        }
    }
    deid_status st = deid_text_phi_add(phi, kind, s);
    if (st != DEID_OK) {
        cli_error(c, "--phi-file %s: line %zu: %s", file, no,
                  kind == DEID_TEXT_PHI_DATE ? "not a date (expected YYYYMMDD)"
                                             : deid_strerror(st));
        return -1;
    }
    return 0;
}

static int read_phi_file(const cli *c, const char *file, deid_text_phi *phi)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        cli_error(c, "--phi-file %s: cannot open: %s", file, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, no = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0)
        rc = phi_line(c, file, ++no, line, phi);
    if (rc == 0 && ferror(f)) {
        cli_error(c, "--phi-file %s: cannot read: %s", file, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* Tesseract runs OpenMP threads inside each recognition, and idle OpenMP threads spin. The
 * batch already keeps every core busy with one file per worker, so those threads only burn
 * CPU: on 2 cores a 512x512 image took 2.3x the CPU time with them. OpenMP reads its limit when
 * the process starts, so the tool sets OMP_THREAD_LIMIT=1 (unless the user set it) and starts
 * itself again, once. */
static void one_openmp_thread(char **argv)
{
    if (getenv("OMP_THREAD_LIMIT"))
        return;
    if (setenv("OMP_THREAD_LIMIT", "1", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* no /proc: go on with OpenMP's default */
}

int main(int argc, char **argv)
{
    one_openmp_thread(argv);
    static cli c;
    static ocr_cli u;
    u.c = &c;
    if (deid_text_options_init(&u.text, DEID_TEXT_OPTIONS_VERSION) != DEID_OK)
        return 1;
    static const cli_tool tool = {
        "deid-ocr",
        "Find burned-in text in every DICOM file under INPUT (every frame and overlay plane)\n"
        "and in PNG, JPEG, TIFF and BMP files, redact it (all text by default, or only text\n"
        "matching the file's PHI with --redact phi), write <name>_text.json per file and\n"
        "review.csv (regions left for a person) in HEADERS, and de-identify DICOM headers\n"
        "(PS3.15 Annex E Basic Profile). Rasters keep their name and format.",
        extra, sizeof extra / sizeof extra[0], on_extra, &u, NULL};
    int rc = cli_parse(&c, &tool, argc, argv);
    if (rc != 0)
        return rc == CLI_EXIT_OK ? 0 : rc;
    deid_text_phi *phi = NULL;
    if (u.phi_file) {
        if (deid_text_phi_new(&phi) != DEID_OK) {
            cli_error(&c, "%s", deid_last_error());
            return 1;
        }
        if (read_phi_file(&c, u.phi_file, phi) != 0) {
            deid_text_phi_free(phi);
            return 1;
        }
    }
    c.batch.text = &u.text;
    c.batch.text_phi = phi;
    rc = cli_run(&c);
    deid_text_phi_free(phi);
    return rc;
}
