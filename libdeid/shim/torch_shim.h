/* libdeid internal: the libtorch shim, built as its own shared module (libdeid_torch.so).
 *
 * libtorch registers thousands of operators when it is loaded (~0.3 s per process), so libdeid
 * never links it: torch_loader.c dlopen()s this module the first time a model is needed and
 * calls the functions below through dlsym. Everything here is plain C; torch_shim.cpp is the
 * only code that sees a torch type, and every entry point catches all exceptions and reports
 * them through the host's deid__fail (passed in deid_torch_init, since the module cannot see
 * libdeid's hidden symbols). Code outside shim/ uses torch_loader.h, not this header. */
#ifndef DEID_TORCH_SHIM_H
#define DEID_TORCH_SHIM_H

#include <stddef.h>
#include "deid/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DEID_TORCH_EXPORT __attribute__((visibility("default")))
#else
#define DEID_TORCH_EXPORT
#endif

/* Version of the interface between libdeid and the module; a module built from another
 * version is refused (libdeid and libdeid_torch.so are always installed together). */
#define DEID_TORCH_ABI 1

/* What libdeid lends the module. */
typedef struct deid_torch_host {
    unsigned abi; /* DEID_TORCH_ABI */
    /* libdeid's deid__fail: records the calling thread's error and returns `status`. */
    deid_status (*fail)(deid_status status, const char *module, const char *fmt, ...);
} deid_torch_host;

/* A loaded TorchScript model on one device. Opaque. */
typedef struct deid_torch_model deid_torch_model;

/* DEID_TORCH_ABI of the module. */
DEID_TORCH_EXPORT unsigned deid_torch_abi(void);

/* Install the host functions; called once by the loader before anything else. */
DEID_TORCH_EXPORT deid_status deid_torch_init(const deid_torch_host *host);

/* "libtorch 1.13.1 (cpu)" or "... (cpu, cuda)": the version and the devices this build can
 * use. Static string. */
DEID_TORCH_EXPORT const char *deid_torch_describe(void);

/* Number of threads libtorch uses inside one operator (process-wide; at::set_num_threads).
 * n >= 1; DEID_ERR_ARGUMENT otherwise. */
DEID_TORCH_EXPORT deid_status deid_torch_set_threads(int n);

/* Load a TorchScript model (torch.jit.save output) from `path` onto `device`: NULL, "" or
 * "cpu", "cuda" or "cuda:N", "mps". An accelerator that this libtorch lacks or that is absent
 * falls back to the CPU: the model then runs on "cpu" and deid_torch_model_warning says why.
 * DEID_ERR_ARGUMENT for an unknown device name, DEID_ERR_IO when the file cannot be read,
 * DEID_ERR_UNSUPPORTED when it is not a TorchScript model, DEID_ERR_NOMEM. On success *out
 * is a handle to free with deid_torch_model_free; on failure it is untouched. */
DEID_TORCH_EXPORT deid_status deid_torch_model_load(const char *path, const char *device,
                                                    deid_torch_model **out);

/* Input size the model expects (channels, rows, cols): from the model's "deid_model.json"
 * extra file ({"input": {"shape": [1, C, H, W]}}) when it has one, otherwise 1 x 240 x 320
 * (SlicerUltrasound's corner models). */
DEID_TORCH_EXPORT void deid_torch_model_input(const deid_torch_model *model, size_t *c,
                                              size_t *h, size_t *w);

/* Run the model's forward() on one image: `input` holds c*h*w float32 values (planar
 * channels, rows, columns; the exact tensor, no preprocessing here), given as a
 * 1 x c x h x w tensor. The output (a tensor, or the first tensor of a tuple/list) must
 * have exactly `out_count` finite values, copied to `out` in order. *ms (may be NULL) gets the
 * wall time of the forward pass in milliseconds. Calls on one handle are serialised (a lock);
 * distinct handles run concurrently. DEID_ERR_ARGUMENT for NULL or zero sizes,
 * DEID_ERR_UNSUPPORTED when the model fails on the input or its output has another size or
 * non-finite values, DEID_ERR_NOMEM. On failure `out` is untouched. */
DEID_TORCH_EXPORT deid_status deid_torch_model_run(deid_torch_model *model, const float *input,
                                                   size_t c, size_t h, size_t w, float *out,
                                                   size_t out_count, double *ms);

/* The device the model runs on ("cpu", "cuda:0", "mps"). Valid while the handle lives. */
DEID_TORCH_EXPORT const char *deid_torch_model_device(const deid_torch_model *model);

/* Why the requested device was not used ("" when it was). Valid while the handle lives. */
DEID_TORCH_EXPORT const char *deid_torch_model_warning(const deid_torch_model *model);

/* Free a model; NULL is a no-op. */
DEID_TORCH_EXPORT void deid_torch_model_free(deid_torch_model *model);

#ifdef __cplusplus
}
#endif
#endif
