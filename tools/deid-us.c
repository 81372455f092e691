/* deid-us: de-identify ultrasound clips: blank everything outside the scan area (model-free
 * detector or a TorchScript corner model) in every frame, re-encode, then de-identify the
 * header with US defaults (dates shifted per patient, birth date -> year). Only Modality US
 * is processed. See docs/cli.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

enum {
    X_MODEL_PATH,
    X_DETECTOR,
    X_DEVICE,
    X_OVERVIEW_DIR,
    X_FALLBACK,
    X_MIN_CONFIDENCE,
    X_EROSION,
    X_QUALITY,
    X_LOSSLESS,
    X_NO_MASK_JSON
};

static const cli_extra extra[] = {
    {"model-path", "M.pt",
     "TorchScript fan corner model (libdeid's or SlicerUltrasound's); with it the model "
     "detects the fan"},
    {"detector", "D",
     "auto (default: the model when --model-path is given), model-free, or model (the given "
     "or the shipped model)"},
    {"device", "DEV", "cpu (default), cuda or mps; a missing accelerator falls back to the "
     "CPU with a warning"},
    {"overview-dir", "DIR", "write a QC PNG per clip here (first frame original | masked)"},
    {"fallback", "F",
     "none (default: a low-confidence clip is not written), rectangle (bounding rectangle of "
     "the detected area) or regions (Sequence of Ultrasound Regions)"},
    {"min-confidence", "C", "detections below this confidence (0..1) are not trusted "
     "(default 0.5)"},
    {"erosion", "PX", "shrink the mask by PX pixels from every border (default 2)"},
    {"quality", "Q", "JPEG quality 1..100 (default 95)"},
    {"lossless", NULL, "write pixels uncompressed instead of JPEG baseline"},
    {"no-mask-json", NULL, "do not write the <name>_mask.json files"},
};

typedef struct us_cli {
    cli *c;
    deid_us_options us;
} us_cli;

static int on_extra(void *user, size_t index, const char *arg)
{
    us_cli *u = user;
    deid_us_options *o = &u->us;
    static const char *const detectors[] = {"auto", "model-free", "model"};
    static const char *const fallbacks[] = {"none", "rectangle", "regions"};
    static const char *const devices[] = {"cpu", "cuda", "mps"};
    double v;
    int i;
    switch (index) {
    case X_MODEL_PATH: o->model_path = arg; return 0;
    case X_DETECTOR: return cli_choice(u->c, "detector", arg, detectors, 3, &o->detector);
    case X_DEVICE:
        if (strncmp(arg, "cuda:", 5) != 0 && cli_choice(u->c, "device", arg, devices, 3, &i) != 0)
            return -1;
        o->device = arg;
        return 0;
    case X_OVERVIEW_DIR: o->overview_dir = arg; return 0;
    case X_FALLBACK: return cli_choice(u->c, "fallback", arg, fallbacks, 3, &o->fallback);
    case X_MIN_CONFIDENCE:
        return cli_real(u->c, "min-confidence", arg, 0, 1, &o->min_confidence);
    case X_EROSION: return cli_real(u->c, "erosion", arg, 0, 1000, &o->erosion_px);
    case X_QUALITY:
        if (cli_real(u->c, "quality", arg, 1, 100, &v) != 0)
            return -1;
        o->encode.quality = (int)v;
        return 0;
    case X_LOSSLESS: o->encode.codec = DEID_CODEC_UNCOMPRESSED; return 0;
    case X_NO_MASK_JSON: o->mask_json = 0; return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static cli c;
    static us_cli u;
    u.c = &c;
    if (deid_us_options_init(&u.us, DEID_US_OPTIONS_VERSION) != DEID_OK ||
        deid_encode_options_init(&u.us.encode, DEID_ENCODE_OPTIONS_VERSION) != DEID_OK)
        return 1;
    static const cli_tool tool = {
        "deid-us",
        "De-identify ultrasound clips under INPUT (Modality US only): pixels outside the scan\n"
        "area are set to 0 in every frame, the clip is re-encoded (JPEG baseline q95), and the\n"
        "header is de-identified (PS3.15 Annex E with, by default, dates shifted per patient\n"
        "and the birth date reduced to its year: --retain-longitudinal-modified-dates\n"
        "--retain-patient-characteristics, which also keeps sex, age, size and weight).",
        extra, sizeof extra / sizeof extra[0], on_extra, &u, NULL};
    int rc = cli_parse(&c, &tool, argc, argv);
    if (rc != 0)
        return rc == CLI_EXIT_OK ? 0 : rc;
    c.profile.flags |= DEID_OPT_RETAIN_LONGITUDINAL_MODIFIED_DATES |
                       DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS;
    c.batch.us = &u.us;
    return cli_run(&c);
}
