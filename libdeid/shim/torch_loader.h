/* libdeid internal: TorchScript models for the capabilities (us/), run by libdeid_torch.so.
 *
 * libdeid never links libtorch (it would add ~0.3 s of start-up to every process, header-only
 * batches and gateways included). The first call below that needs it dlopen()s the module
 * once per process (pthread_once), looking in this order:
 *   1. $DEID_TORCH_MODULE, when set and non-empty (a full path; only that file is tried;
 *      ignored in set-uid/set-gid processes);
 *   2. libdeid_torch.so in the directory of the libdeid that is running (dladdr: beside
 *      libdeid.so, or beside the executable for a static link);
 *   3. libdeid_torch.so in the install libdir of this build (DEID_TORCH_INSTALL_LIBDIR).
 * Without it every call fails with DEID_ERR_UNSUPPORTED: "this build has no libtorch support
 * (libdeid_torch.so not found)", or the dynamic linker's reason when the file exists but does
 * not load (libtorch missing). The module is never unloaded.
 *
 * Handles may be used from several threads: runs on one handle are serialised, distinct
 * handles run concurrently. Messages never contain image data; paths are the model's. */
#ifndef DEID_TORCH_LOADER_H
#define DEID_TORCH_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include "deid/status.h"

/* Input of libdeid's corner model and of SlicerUltrasound's (1 x 1 x 240 x 320). */
#define DEID_TORCH_CORNER_ROWS 240
#define DEID_TORCH_CORNER_COLS 320

typedef struct deid__torch_model deid__torch_model;

/* 1 when libdeid_torch.so is (or can be) loaded, 0 otherwise (the reason then becomes the
 * thread's last error, DEID_ERR_UNSUPPORTED). Loads the module on the first call. */
int deid__torch_available(void);

/* The module's path once loaded, else NULL. */
const char *deid__torch_module_path(void);

/* "libtorch 1.13.1 (cpu)": version and usable devices, or NULL without the module. */
const char *deid__torch_describe(void);

/* Threads used inside one operator, process-wide (n >= 1). */
deid_status deid__torch_set_threads(int n);

/* Load a TorchScript model onto `device` (NULL/"cpu", "cuda", "cuda:N", "mps"); a missing
 * accelerator falls back to the CPU and deid__torch_model_warning says so (log it).
 * DEID_ERR_UNSUPPORTED without the module or for a file that is not a TorchScript model,
 * DEID_ERR_IO when it cannot be read, DEID_ERR_ARGUMENT for an unknown device. On success
 * *model is freed with deid__torch_model_free; on failure it is untouched. */
deid_status deid__torch_model_load(const char *path, const char *device,
                                   deid__torch_model **model);

/* Run a corner model on one c x h x w float32 image (planar; the exact tensor the model was
 * trained on, see deid__torch_resize_linear) and store its 8 outputs in out8: the corners
 * upper-left, upper-right, lower-left, lower-right as (x / width, y / height) pairs of the
 * original image (SlicerUltrasound's convention). DEID_ERR_UNSUPPORTED when the model fails
 * on this input or does not give 8 finite values. On failure out8 is untouched. */
deid_status deid__torch_model_run(deid__torch_model *model, const float *input, size_t c,
                                  size_t h, size_t w, float out8[8]);

/* Run any model on one c x h x w float32 input (planar, the exact tensor; given to the model
 * as 1 x c x h x w) and copy its output, which must have exactly `out_count` finite values,
 * to `out` in order (a segmentation map, for instance). DEID_ERR_ARGUMENT for NULL arguments or
 * out_count 0, DEID_ERR_UNSUPPORTED when the model fails on this input or gives another number
 * of values or a non-finite one, DEID_ERR_NOMEM. On failure `out` is untouched. */
deid_status deid__torch_model_run_map(deid__torch_model *model, const float *input, size_t c,
                                      size_t h, size_t w, float *out, size_t out_count);

/* Wall milliseconds of the calling thread's last successful deid__torch_model_run (the
 * forward pass and the copy of its output), 0 before any. */
double deid__torch_last_ms(void);

/* Input size the model expects: its deid_model.json extra file, else 1 x 240 x 320. */
void deid__torch_model_input(const deid__torch_model *model, size_t *c, size_t *h, size_t *w);

/* Device the model runs on ("cpu", "cuda:0", "mps"); "" for NULL. */
const char *deid__torch_model_device(const deid__torch_model *model);

/* Why the requested device is not used, "" when it is. */
const char *deid__torch_model_warning(const deid__torch_model *model);

/* Free a model; NULL is a no-op. */
void deid__torch_model_free(deid__torch_model *model);

/* Path of the corner model shipped with libdeid (corners.pt) in `buf`: <libdeid's dir>/../
 * share/deid, the install datadir, then the source tree (libdeid/us/model, for build trees).
 * DEID_ERR_IO when none exists, DEID_ERR_LIMIT when buf is too small. */
deid_status deid__torch_default_model(char *buf, size_t size);

/* The corner models' resize, identical to train_corners.py's (OpenCV INTER_LINEAR): bilinear
 * at pixel centres, source coordinate (i + 0.5) * n / out - 0.5 clamped to [0, n - 1], in
 * double, rounded half up to whole numbers 0..255, written as floats. `src` is rows x cols
 * grey bytes (row stride cols). The grey image the models expect is the maximum over frames
 * of each channel, then Y = (19595 R + 38470 G + 7471 B + 32768) >> 16 (PIL's 'L') for RGB.
 * No allocation. DEID_ERR_ARGUMENT for NULL or zero sizes. */
deid_status deid__torch_resize_linear(const uint8_t *src, size_t rows, size_t cols, float *dst,
                                      size_t out_rows, size_t out_cols);

#endif
