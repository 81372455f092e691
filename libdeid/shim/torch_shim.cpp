// The libtorch shim (libdeid_torch.so): TorchScript models behind the C interface of
// torch_shim.h. Every entry point catches all exceptions and reports them through the host's
// deid__fail; no torch type leaves this file.
#include "shim/torch_shim.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <sys/stat.h>

struct deid_torch_model {
    torch::jit::Module module;
    c10::Device device{c10::kCPU};
    std::string device_name;
    std::string warning;
    size_t c = 1, h = 240, w = 320;
    std::mutex lock;
};

namespace {

const deid_torch_host *g_host = nullptr;

deid_status fail(deid_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

deid_status fail(deid_status status, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return g_host && g_host->fail ? g_host->fail(status, "torch", "%s", msg) : status;
}

// One line of a libtorch message (they carry C++ stack traces, source locations and
// TorchScript tracebacks): the final "...Error: reason" line of an interpreter traceback, else
// the first line.
std::string first_line(const char *what)
{
    std::string s(what ? what : "unknown error");
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    size_t last = s.rfind('\n');
    std::string tail = last == std::string::npos ? std::string() : s.substr(last + 1);
    if (tail.find("Error: ") != std::string::npos && tail.find(' ') > tail.find("Error: "))
        s = tail;
    else if (s.find('\n') != std::string::npos)
        s.resize(s.find('\n'));
    if (s.size() > 300)
        s = s.substr(0, 297) + "...";
    return s;
}

bool cuda_usable() { return torch::cuda::is_available(); }

bool mps_usable() { return at::hasMPS(); }

// Resolve a device name; fills *device and, when an accelerator is missing, *warning.
deid_status pick_device(const char *name, c10::Device *device, std::string *device_name,
                        std::string *warning)
{
    std::string n = name ? name : "";
    if (n.empty() || n == "cpu") {
        *device = c10::Device(c10::kCPU);
        *device_name = "cpu";
        return DEID_OK;
    }
    if (n == "cuda" || n.rfind("cuda:", 0) == 0) {
        long index = 0;
        if (n.size() > 5) {
            char *end = nullptr;
            errno = 0;
            index = std::strtol(n.c_str() + 5, &end, 10);
            if (errno || *end || index < 0 || index > 255)
                return fail(DEID_ERR_ARGUMENT, "unknown device '%s' (cpu, cuda, cuda:N, mps)",
                            n.c_str());
        }
        if (!cuda_usable()) {
            *warning = "device '" + n + "' unavailable (this libtorch has no CUDA support or "
                       "finds no GPU): running on cpu";
        } else if (index >= (long)torch::cuda::device_count()) {
            *warning = "device '" + n + "' unavailable (" +
                       std::to_string(torch::cuda::device_count()) +
                       " CUDA device(s)): running on cpu";
        } else {
            *device = c10::Device(c10::kCUDA, (c10::DeviceIndex)index);
            *device_name = "cuda:" + std::to_string(index);
            return DEID_OK;
        }
        *device = c10::Device(c10::kCPU);
        *device_name = "cpu";
        return DEID_OK;
    }
    if (n == "mps") {
        if (mps_usable()) {
            *device = c10::Device(c10::kMPS);
            *device_name = "mps";
        } else {
            *warning = "device 'mps' unavailable (this libtorch has no Metal support): "
                       "running on cpu";
            *device = c10::Device(c10::kCPU);
            *device_name = "cpu";
        }
        return DEID_OK;
    }
    return fail(DEID_ERR_ARGUMENT, "unknown device '%s' (cpu, cuda, cuda:N, mps)", n.c_str());
}

// {"input": {"shape": [1, C, H, W]}} from the model's deid_model.json; keeps the defaults
// when absent or malformed.
void parse_input_shape(const std::string &json, size_t *c, size_t *h, size_t *w)
{
    size_t at = json.find("\"input\"");
    if (at == std::string::npos)
        return;
    at = json.find("\"shape\"", at);
    if (at == std::string::npos)
        return;
    at = json.find('[', at);
    if (at == std::string::npos)
        return;
    const char *p = json.c_str() + at + 1;
    long v[4];
    for (int i = 0; i < 4; i++) {
        char *end = nullptr;
        v[i] = std::strtol(p, &end, 10);
        if (end == p || v[i] <= 0 || v[i] > 65536)
            return;
        p = end;
        while (*p == ' ' || *p == ',')
            p++;
    }
    if (v[0] != 1 || *p != ']')
        return;
    *c = (size_t)v[1];
    *h = (size_t)v[2];
    *w = (size_t)v[3];
}

deid_status check_file(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return fail(DEID_ERR_IO, "%s: cannot open model: %s", path, std::strerror(errno));
    if (S_ISDIR(st.st_mode))
        return fail(DEID_ERR_IO, "%s: cannot open model: is a directory", path);
    std::FILE *f = std::fopen(path, "rb");
    if (!f)
        return fail(DEID_ERR_IO, "%s: cannot open model: %s", path, std::strerror(errno));
    std::fclose(f);
    return DEID_OK;
}

} // namespace

extern "C" {

unsigned deid_torch_abi(void) { return DEID_TORCH_ABI; }

deid_status deid_torch_init(const deid_torch_host *host)
{
    if (!host || host->abi != DEID_TORCH_ABI)
        return DEID_ERR_UNSUPPORTED;
    g_host = host;
    return DEID_OK;
}

const char *deid_torch_describe(void)
{
    try {
        static const std::string text = [] {
            std::string s = std::string("libtorch ") + TORCH_VERSION + " (cpu";
            if (cuda_usable())
                s += ", cuda";
            if (mps_usable())
                s += ", mps";
            return s + ")";
        }();
        return text.c_str();
    } catch (...) {
        return "libtorch " TORCH_VERSION;
    }
}

deid_status deid_torch_set_threads(int n)
{
    if (n < 1 || n > 1024)
        return fail(DEID_ERR_ARGUMENT, "thread count %d out of range (1 to 1024)", n);
    try {
        at::set_num_threads(n);
        return DEID_OK;
    } catch (const std::exception &e) {
        return fail(DEID_ERR_GENERIC, "cannot set %d threads: %s", n,
                    first_line(e.what()).c_str());
    } catch (...) {
        return fail(DEID_ERR_GENERIC, "cannot set %d threads", n);
    }
}

deid_status deid_torch_model_load(const char *path, const char *device, deid_torch_model **out)
{
    if (!path || !*path || !out)
        return fail(DEID_ERR_ARGUMENT, "model load: NULL or empty argument");
    try {
        c10::Device dev(c10::kCPU);
        std::string dev_name, warning;
        deid_status st = pick_device(device, &dev, &dev_name, &warning);
        if (st != DEID_OK)
            return st;
        if ((st = check_file(path)) != DEID_OK)
            return st;
        std::unique_ptr<deid_torch_model> m(new deid_torch_model);
        torch::jit::ExtraFilesMap extra{{"deid_model.json", ""}};
        try {
            m->module = torch::jit::load(path, dev, extra);
        } catch (const c10::Error &e) {
            return fail(DEID_ERR_UNSUPPORTED,
                        "%s: not a TorchScript model this libtorch (%s) can load: %s", path,
                        TORCH_VERSION, first_line(e.what_without_backtrace()).c_str());
        }
        m->module.eval();
        m->device = dev;
        m->device_name = dev_name;
        m->warning = warning;
        parse_input_shape(extra["deid_model.json"], &m->c, &m->h, &m->w);
        *out = m.release();
        return DEID_OK;
    } catch (const std::bad_alloc &) {
        return fail(DEID_ERR_NOMEM, "%s: out of memory loading the model", path);
    } catch (const c10::Error &e) {
        return fail(DEID_ERR_UNSUPPORTED, "%s: %s", path,
                    first_line(e.what_without_backtrace()).c_str());
    } catch (const std::exception &e) {
        return fail(DEID_ERR_GENERIC, "%s: %s", path, first_line(e.what()).c_str());
    } catch (...) {
        return fail(DEID_ERR_GENERIC, "%s: unknown error loading the model", path);
    }
}

void deid_torch_model_input(const deid_torch_model *model, size_t *c, size_t *h, size_t *w)
{
    if (c)
        *c = model ? model->c : 1;
    if (h)
        *h = model ? model->h : 240;
    if (w)
        *w = model ? model->w : 320;
}

deid_status deid_torch_model_run(deid_torch_model *model, const float *input, size_t c,
                                 size_t h, size_t w, float *out, size_t out_count, double *ms)
{
    if (!model || !input || !out || !c || !h || !w || !out_count)
        return fail(DEID_ERR_ARGUMENT, "model run: NULL argument or zero size");
    if (c > 65536 || h > 65536 || w > 65536)
        return fail(DEID_ERR_LIMIT, "model run: input %zux%zux%zu too large", c, h, w);
    try {
        std::lock_guard<std::mutex> guard(model->lock);
        c10::InferenceMode inference;
        // A copy: a foreign model may work in place, and the caller's buffer is const.
        torch::Tensor x = torch::from_blob(const_cast<float *>(input),
                                           {1, (int64_t)c, (int64_t)h, (int64_t)w},
                                           torch::kFloat32)
                              .to(model->device, /*non_blocking=*/false, /*copy=*/true);
        auto t0 = std::chrono::steady_clock::now();
        c10::IValue result;
        try {
            result = model->module.forward({x});
        } catch (const c10::Error &e) {
            return fail(DEID_ERR_UNSUPPORTED, "model failed on a 1x%zux%zux%zu input: %s", c, h,
                        w, first_line(e.what_without_backtrace()).c_str());
        } catch (const std::bad_alloc &) {
            throw;
        } catch (const std::exception &e) { // TorchScript interpreter errors
            return fail(DEID_ERR_UNSUPPORTED, "model failed on a 1x%zux%zux%zu input: %s", c, h,
                        w, first_line(e.what()).c_str());
        }
        torch::Tensor y;
        if (result.isTensor())
            y = result.toTensor();
        else if (result.isTuple() && !result.toTupleRef().elements().empty() &&
                 result.toTupleRef().elements()[0].isTensor())
            y = result.toTupleRef().elements()[0].toTensor();
        else if (result.isTensorList() && result.toTensorList().size() > 0)
            y = result.toTensorList().get(0);
        else
            return fail(DEID_ERR_UNSUPPORTED, "model output is not a tensor (%s)",
                        result.tagKind().c_str());
        y = y.to(torch::kCPU, torch::kFloat32).contiguous();
        double elapsed = std::chrono::duration<double, std::milli>(
                             std::chrono::steady_clock::now() - t0)
                             .count();
        if ((size_t)y.numel() != out_count)
            return fail(DEID_ERR_UNSUPPORTED, "model output has %lld values, expected %zu",
                        (long long)y.numel(), out_count);
        const float *v = y.data_ptr<float>();
        for (size_t i = 0; i < out_count; i++)
            if (!std::isfinite(v[i]))
                return fail(DEID_ERR_UNSUPPORTED, "model output %zu is not finite", i);
        std::memcpy(out, v, out_count * sizeof *out);
        if (ms)
            *ms = elapsed;
        return DEID_OK;
    } catch (const std::bad_alloc &) {
        return fail(DEID_ERR_NOMEM, "out of memory running the model");
    } catch (const c10::Error &e) {
        return fail(DEID_ERR_UNSUPPORTED, "model run: %s",
                    first_line(e.what_without_backtrace()).c_str());
    } catch (const std::exception &e) {
        return fail(DEID_ERR_GENERIC, "model run: %s", first_line(e.what()).c_str());
    } catch (...) {
        return fail(DEID_ERR_GENERIC, "model run: unknown error");
    }
}

const char *deid_torch_model_device(const deid_torch_model *model)
{
    return model ? model->device_name.c_str() : "";
}

const char *deid_torch_model_warning(const deid_torch_model *model)
{
    return model ? model->warning.c_str() : "";
}

void deid_torch_model_free(deid_torch_model *model)
{
    try {
        delete model;
    } catch (...) {
    }
}

} // extern "C"
