/* deid-ct: deface head CT/CBCT series and export volumes. Every CT series under INPUT (slices
 * of one SeriesInstanceUID in one directory) becomes a volume, its face is removed (the face
 * method by default; drown as face_deid_ct does), and it is written back as DICOM with the
 * header de-identified (or kept with --keep-headers), and optionally as NIfTI, NRRD and a QC
 * render. A root of case folders gives a mirrored output tree. See docs/cli.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"

enum {
    X_METHOD,
    X_REPLACER,
    X_BODY_THRESHOLD,
    X_EARS,
    X_NO_DEFACE,
    X_KEEP_HEADERS,
    X_NIFTI_ROOT_OUT,
    X_NRRD,
    X_NO_DICOM,
    X_ENHANCED,
    X_QC_DIR,
    X_WORKDIR,
    X_MIN_SLICES,
    X_SEED,
    X_MODEL_PATH,
    X_DEVICE
};

static const cli_extra extra[] = {
    {"method", "M",
     "face (default: only the facial soft tissue in front of the bone; the skull and brain "
     "never change), drown (face_deid_ct: air and the skin shell replaced) or model "
     "(CTA-DEFACE's way: a face-segmentation model, needs --model-path)"},
    {"replacer", "R",
     "what replaced voxels become: face or tissue (random skin/fat values; drown's default), "
     "air (the face method's default) or an integer in modality units (HU)"},
    {"body-threshold", "V", "drown: body above this value (default -800 HU; from the "
     "histogram for uncalibrated CBCT)"},
    {"ears", NULL, "face method: remove the ears too"},
    {"no-deface", NULL, "write the volumes as read (conversion only)"},
    {"keep-headers", NULL,
     "keep every DICOM header as it was (only Pixel Data is replaced), under the input names"},
    {"nifti-root-out", "DIR", "also write <DIR>/<relative dir>/<series>.nii.gz per series"},
    {"nrrd", NULL, "also write <series>.nrrd (beside the NIfTI files, or in HEADERS)"},
    {"no-dicom", NULL, "write no DICOM (NIfTI/NRRD only)"},
    {"enhanced", "KIND", "one multi-frame DICOM file per series instead of one per slice: "
     "legacy (Legacy Converted Enhanced CT) or ct (Enhanced CT)"},
    {"qc-dir", "DIR", "a front/side skin render per series, before and after: DIR/<rel>/"
     "<series>.png"},
    {"workdir", "DIR", "also -w DIR: QC renders go to DIR/qc and the log to DIR/deid-ct.log "
     "unless --qc-dir/--log say otherwise"},
    {"min-slices", "N", "series with fewer slices are skipped (default 3)"},
    {"seed", "N", "seed of the random tissue replacer (default 0: the same output every run)"},
    {"model-path", "M.pt", "use the model method with this TorchScript face model (libdeid's "
     "is libdeid/ct/model/face.pt); needs libdeid built with libtorch"},
    {"device", "D", "model method: cpu (default), cuda, cuda:N or mps (falls back to the CPU)"},
};

typedef struct ct_cli {
    cli *c;
    deid_ct_options ct;
    const char *workdir;
} ct_cli;

static int on_extra(void *user, size_t index, const char *arg)
{
    ct_cli *u = user;
    deid_ct_options *o = &u->ct;
    static const char *const methods[] = {"face", "drown", "model"};
    double v;
    switch (index) {
    case X_METHOD: return cli_choice(u->c, "method", arg, methods, 3, &o->face.method);
    case X_REPLACER:
        if (!strcmp(arg, "face") || !strcmp(arg, "tissue")) {
            o->face.replacer = DEID_REPLACE_TISSUE;
        } else if (!strcmp(arg, "air")) {
            o->face.replacer = DEID_REPLACE_AIR;
        } else {
            if (cli_real(u->c, "replacer", arg, -1e6, 1e6, &v) != 0)
                return -1;
            o->face.replacer = DEID_REPLACE_VALUE;
            o->face.value = v;
        }
        return 0;
    case X_BODY_THRESHOLD:
        return cli_real(u->c, "body-threshold", arg, -1e6, 1e6, &o->face.body_threshold);
    case X_EARS: o->face.ears = 1; return 0;
    case X_NO_DEFACE: o->deface = 0; return 0;
    case X_KEEP_HEADERS: o->keep_headers = 1; return 0;
    case X_NIFTI_ROOT_OUT: o->nifti_dir = arg; return 0;
    case X_NRRD: o->nrrd = 1; return 0;
    case X_NO_DICOM: o->dicom = 0; return 0;
    case X_ENHANCED: {
        static const char *const kinds[] = {"slices", "legacy", "ct"};
        return cli_choice(u->c, "enhanced", arg, kinds, 3, &o->enhanced);
    }
    case X_QC_DIR: o->qc_dir = arg; return 0;
    case X_WORKDIR: u->workdir = arg; return 0;
    case X_MIN_SLICES:
        if (cli_real(u->c, "min-slices", arg, 1, 100000, &v) != 0)
            return -1;
        o->min_slices = (size_t)v;
        return 0;
    case X_SEED:
        if (cli_real(u->c, "seed", arg, 0, 9007199254740992.0, &v) != 0)
            return -1;
        o->face.seed = (uint64_t)v;
        return 0;
    case X_MODEL_PATH:
        o->face.model_path = arg;
        o->face.method = DEID_DEFACE_MODEL;
        return 0;
    case X_DEVICE:
        if (strcmp(arg, "cpu") && strcmp(arg, "mps") && strncmp(arg, "cuda", 4)) {
            static const char *const devices[] = {"cpu", "cuda", "mps"};
            int unused;
            return cli_choice(u->c, "device", arg, devices, 3, &unused);
        }
        o->face.device = arg;
        return 0;
    }
    return -1;
}

/* The CTA-DEFACE wrapper's spelling: -i ROOT -o OUT -w WORKDIR become INPUT, OUTPUT and
 * --workdir; everything else is passed on. */
static char **translate(int argc, char **argv, int *out_argc)
{
    char **v = calloc((size_t)argc + 2, sizeof *v);
    if (!v)
        return NULL;
    const char *in = NULL, *out = NULL;
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && i + 1 < argc && (!strcmp(argv[i], "-i") || !strcmp(argv[i], "--input")))
            in = argv[++i];
        else if (i > 0 && i + 1 < argc &&
                 (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")))
            out = argv[++i];
        else if (i > 0 && i + 1 < argc && !strcmp(argv[i], "-w"))
            v[n++] = "--workdir", v[n++] = argv[++i];
        else
            v[n++] = argv[i];
    }
    if (in)
        v[n++] = (char *)in;
    if (out)
        v[n++] = (char *)out;
    *out_argc = n;
    return v;
}

int main(int argc, char **argv)
{
    static cli c;
    static ct_cli u;
    u.c = &c;
    if (deid_ct_options_init(&u.ct, DEID_CT_OPTIONS_VERSION) != DEID_OK)
        return 1;
    int n = 0;
    char **args = translate(argc, argv, &n);
    if (!args)
        return 1;
    static const cli_tool tool = {
        "deid-ct",
        "Deface head CT/CBCT series under INPUT (also -i ROOT; OUTPUT also -o OUT, default\n"
        "<INPUT>_d): each CT series becomes a volume, the face is removed (soft tissue in front\n"
        "of the facial bone; the skull and brain never change), and the slices are written back\n"
        "with their headers de-identified (PS3.15 Annex E) or kept (--keep-headers); NIfTI,\n"
        "NRRD and QC renders on request. Case folders under a root give a mirrored tree.",
        extra, sizeof extra / sizeof extra[0], on_extra, &u, "_d"};
    int rc = cli_parse(&c, &tool, n, args);
    if (rc != 0) {
        free(args);
        return rc == CLI_EXIT_OK ? 0 : rc;
    }
    if (u.ct.face.method == DEID_DEFACE_MODEL && !u.ct.face.model_path) {
        cli_error(&c, "--method model needs --model-path M.pt (libdeid's is "
                      "libdeid/ct/model/face.pt)");
        free(args);
        return CLI_EXIT_USAGE;
    }
    static char qc[4096], log[4096];
    if (u.workdir) {
        mkdir(u.workdir, 0777); /* the batch reports what it cannot create or open */
        if (!u.ct.qc_dir && snprintf(qc, sizeof qc, "%s/qc", u.workdir) < (int)sizeof qc)
            u.ct.qc_dir = qc;
        if (!c.batch.log_path &&
            snprintf(log, sizeof log, "%s/deid-ct.log", u.workdir) < (int)sizeof log)
            c.batch.log_path = log;
    }
    c.batch.ct = &u.ct;
    rc = cli_run(&c);
    free(args);
    return rc;
}
