/* Loads libdeid_torch.so on first use (dlopen) and forwards to it: libdeid itself never links
 * libtorch, so processes that need no model never pay for it. */
#define _GNU_SOURCE /* dladdr, secure_getenv */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "shim/torch_loader.h"
#include "shim/torch_shim.h"

#ifndef DEID_TORCH_INSTALL_LIBDIR
#define DEID_TORCH_INSTALL_LIBDIR ""
#endif
#ifndef DEID_TORCH_INSTALL_DATADIR
#define DEID_TORCH_INSTALL_DATADIR ""
#endif
#ifndef DEID_TORCH_SOURCE_MODEL_DIR
#define DEID_TORCH_SOURCE_MODEL_DIR ""
#endif

#define MODULE_NAME "libdeid_torch.so"
#define PATH_MAX_LEN 4096

struct deid__torch_model {
    deid_torch_model *impl;
};

/* The module's entry points, filled once. */
static struct {
    unsigned (*abi)(void);
    deid_status (*init)(const deid_torch_host *);
    const char *(*describe)(void);
    deid_status (*set_threads)(int);
    deid_status (*load)(const char *, const char *, deid_torch_model **);
    void (*input)(const deid_torch_model *, size_t *, size_t *, size_t *);
    deid_status (*run)(deid_torch_model *, const float *, size_t, size_t, size_t, float *,
                       size_t, double *);
    const char *(*device)(const deid_torch_model *);
    const char *(*warning)(const deid_torch_model *);
    void (*free_model)(deid_torch_model *);
} api;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;
static char loaded_path[PATH_MAX_LEN];
static char why_not[1024]; /* reason the module is unavailable, written once */
static const deid_torch_host host = {DEID_TORCH_ABI, deid__fail};
static _Thread_local double last_ms;

/* Directory of the running libdeid (libdeid.so, or the executable it is linked into). */
static int own_dir(char *buf, size_t size)
{
    Dl_info info;
    if (!dladdr((void *)&deid__torch_available, &info) || !info.dli_fname)
        return 0;
    const char *slash = strrchr(info.dli_fname, '/');
    if (!slash) /* a bare name: the executable found through PATH; use the cwd-free check */
        return 0;
    size_t n = (size_t)(slash - info.dli_fname);
    if (n + 1 > size)
        return 0;
    memcpy(buf, info.dli_fname, n);
    buf[n] = '\0';
    return 1;
}

static int join(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    return n > 0 && (size_t)n < size;
}

/* Try one candidate; 1 when loaded. `must` records a failure even when the file is absent. */
static int try_open(const char *path, int must)
{
    if (access(path, F_OK) != 0) {
        if (must)
            snprintf(why_not, sizeof why_not,
                     "this build has no libtorch support (%s, named by DEID_TORCH_MODULE, not "
                     "found)", path);
        return 0;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why_not, sizeof why_not, "%s cannot be loaded: %s", path, e ? e : "dlopen failed");
        return 0;
    }
#define SYM(field, name)                                                                       \
    do {                                                                                       \
        *(void **)(&api.field) = dlsym(h, name);                                               \
        if (!api.field) {                                                                      \
            snprintf(why_not, sizeof why_not, "%s: missing symbol %s", path, name);            \
            return 0;                                                                          \
        }                                                                                      \
    } while (0)
    SYM(abi, "deid_torch_abi");
    SYM(init, "deid_torch_init");
    SYM(describe, "deid_torch_describe");
    SYM(set_threads, "deid_torch_set_threads");
    SYM(load, "deid_torch_model_load");
    SYM(input, "deid_torch_model_input");
    SYM(run, "deid_torch_model_run");
    SYM(device, "deid_torch_model_device");
    SYM(warning, "deid_torch_model_warning");
    SYM(free_model, "deid_torch_model_free");
#undef SYM
    if (api.abi() != DEID_TORCH_ABI || api.init(&host) != DEID_OK) {
        snprintf(why_not, sizeof why_not, "%s: interface version %u, libdeid needs %u", path,
                 api.abi(), DEID_TORCH_ABI);
        return 0; /* left loaded: unloading libtorch is not safe */
    }
    snprintf(loaded_path, sizeof loaded_path, "%s", path);
    return 1;
}

static void load_once(void)
{
    char path[PATH_MAX_LEN], dir[PATH_MAX_LEN];
    snprintf(why_not, sizeof why_not,
             "this build has no libtorch support (" MODULE_NAME " not found)");
    const char *env = secure_getenv("DEID_TORCH_MODULE");
    if (env && *env) {
        loaded = try_open(env, 1);
        return;
    }
    if (own_dir(dir, sizeof dir) && join(path, sizeof path, dir, MODULE_NAME) &&
        (loaded = try_open(path, 0)))
        return;
    if (*DEID_TORCH_INSTALL_LIBDIR &&
        join(path, sizeof path, DEID_TORCH_INSTALL_LIBDIR, MODULE_NAME))
        loaded = try_open(path, 0);
}

int deid__torch_available(void)
{
    pthread_once(&once, load_once);
    if (!loaded)
        deid__fail(DEID_ERR_UNSUPPORTED, "torch", "%s", why_not);
    return loaded;
}

const char *deid__torch_module_path(void)
{
    pthread_once(&once, load_once);
    return loaded ? loaded_path : NULL;
}

const char *deid__torch_describe(void)
{
    return deid__torch_available() ? api.describe() : NULL;
}

deid_status deid__torch_set_threads(int n)
{
    if (!deid__torch_available())
        return DEID_ERR_UNSUPPORTED;
    return api.set_threads(n);
}

deid_status deid__torch_model_load(const char *path, const char *device,
                                   deid__torch_model **model)
{
    if (!path || !model)
        return deid__fail(DEID_ERR_ARGUMENT, "torch", "model load: NULL argument");
    if (!deid__torch_available())
        return DEID_ERR_UNSUPPORTED;
    deid__torch_model *m = deid__malloc(sizeof *m);
    if (!m)
        return DEID_ERR_NOMEM;
    deid_status st = api.load(path, device, &m->impl);
    if (st != DEID_OK) {
        free(m);
        return st;
    }
    *model = m;
    return DEID_OK;
}

deid_status deid__torch_model_run(deid__torch_model *model, const float *input, size_t c,
                                  size_t h, size_t w, float out8[8])
{
    if (!model || !input || !out8)
        return deid__fail(DEID_ERR_ARGUMENT, "torch", "model run: NULL argument");
    double ms = 0;
    deid_status st = api.run(model->impl, input, c, h, w, out8, 8, &ms);
    if (st == DEID_OK)
        last_ms = ms;
    return st;
}

deid_status deid__torch_model_run_map(deid__torch_model *model, const float *input, size_t c,
                                      size_t h, size_t w, float *out, size_t out_count)
{
    if (!model || !input || !out || out_count == 0)
        return deid__fail(DEID_ERR_ARGUMENT, "torch", "model run: NULL argument or no output");
    double ms = 0;
    deid_status st = api.run(model->impl, input, c, h, w, out, out_count, &ms);
    if (st == DEID_OK)
        last_ms = ms;
    return st;
}

double deid__torch_last_ms(void) { return last_ms; }

void deid__torch_model_input(const deid__torch_model *model, size_t *c, size_t *h, size_t *w)
{
    if (model) {
        api.input(model->impl, c, h, w);
        return;
    }
    if (c)
        *c = 1;
    if (h)
        *h = DEID_TORCH_CORNER_ROWS;
    if (w)
        *w = DEID_TORCH_CORNER_COLS;
}

const char *deid__torch_model_device(const deid__torch_model *model)
{
    return model ? api.device(model->impl) : "";
}

const char *deid__torch_model_warning(const deid__torch_model *model)
{
    return model ? api.warning(model->impl) : "";
}

void deid__torch_model_free(deid__torch_model *model)
{
    if (!model)
        return;
    api.free_model(model->impl);
    free(model);
}

deid_status deid__torch_default_model(char *buf, size_t size)
{
    char dir[PATH_MAX_LEN], path[PATH_MAX_LEN];
    const char *candidates[3] = {NULL, DEID_TORCH_INSTALL_DATADIR, DEID_TORCH_SOURCE_MODEL_DIR};
    if (!buf || !size)
        return deid__fail(DEID_ERR_ARGUMENT, "torch", "default model: NULL buffer");
    if (own_dir(dir, sizeof dir) && strlen(dir) + 16 < sizeof dir) {
        strcat(dir, "/../share/deid");
        candidates[0] = dir;
    }
    for (size_t i = 0; i < 3; i++) {
        if (!candidates[i] || !*candidates[i] ||
            !join(path, sizeof path, candidates[i], "corners.pt") || access(path, R_OK) != 0)
            continue;
        if (strlen(path) + 1 > size)
            return deid__fail(DEID_ERR_LIMIT, "torch", "default model: path longer than %zu",
                              size);
        memcpy(buf, path, strlen(path) + 1);
        return DEID_OK;
    }
    return deid__fail(DEID_ERR_IO, "torch",
                      "the corner model corners.pt is not installed (share/deid)");
}

/* Source index pair and weight of output index i (OpenCV INTER_LINEAR, half-pixel centres). */
static void linear_tap(size_t i, size_t n, size_t out, size_t *i0, size_t *i1, double *f)
{
    double s = ((double)i + 0.5) * ((double)n / (double)out) - 0.5;
    if (s < 0)
        s = 0;
    double fl = floor(s);
    size_t k = (size_t)fl;
    *f = s - fl;
    if (k >= n - 1) {
        k = n - 1;
        *f = 0;
    }
    *i0 = k;
    *i1 = k + 1 < n ? k + 1 : n - 1;
}

deid_status deid__torch_resize_linear(const uint8_t *src, size_t rows, size_t cols, float *dst,
                                      size_t out_rows, size_t out_cols)
{
    if (!src || !dst || !rows || !cols || !out_rows || !out_cols)
        return deid__fail(DEID_ERR_ARGUMENT, "torch", "resize: NULL argument or zero size");
    for (size_t i = 0; i < out_rows; i++) {
        size_t y0, y1;
        double fy;
        linear_tap(i, rows, out_rows, &y0, &y1, &fy);
        const uint8_t *r0 = src + y0 * cols, *r1 = src + y1 * cols;
        for (size_t j = 0; j < out_cols; j++) {
            size_t x0, x1;
            double fx;
            linear_tap(j, cols, out_cols, &x0, &x1, &fx);
            /* Same operations, in the same order, as train_corners.resize_linear. */
            double t0 = (double)r0[x0] * (1.0 - fx) + (double)r0[x1] * fx;
            double t1 = (double)r1[x0] * (1.0 - fx) + (double)r1[x1] * fx;
            double v = floor(t0 * (1.0 - fy) + t1 * fy + 0.5);
            dst[i * out_cols + j] = (float)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    return DEID_OK;
}
