/* The learned corner detector's engine: libdeid_torch.so loads the shipped TorchScript model
 * (libdeid/us/model/corners.pt) on first use, and the model finds a fan's four corners within
 * a few pixels, on a validation clip (the same numbers as PyTorch) and on a fan drawn here.
 * Failures are one clean line: no module, a bad model path, a file that is not a model, an
 * unknown device, a wrong input size. When the module is not built (no libtorch) only the
 * no-module message is checked, and the test says so. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "core/core.h"
#include "deid/deid.h"
#include "shim/torch_loader.h"

#define ROWS DEID_TORCH_CORNER_ROWS
#define COLS DEID_TORCH_CORNER_COLS

static int one_line(const char *s) { return s && *s && !strchr(s, '\n') && strlen(s) < 600; }

/* In a child process (the module is looked for once per process): with DEID_TORCH_MODULE
 * naming a missing file, or unset and no module installed, every call is a clean
 * DEID_ERR_UNSUPPORTED saying that this build has no libtorch support. */
static void check_missing_module(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        setenv("DEID_TORCH_MODULE", "/nonexistent/libdeid_torch.so", 1);
        int bad = 0;
        deid__torch_model *m = NULL;
        bad |= deid__torch_available() != 0;
        bad |= deid__torch_model_load("x.pt", NULL, &m) != DEID_ERR_UNSUPPORTED || m != NULL;
        bad |= !strstr(deid_last_error(), "no libtorch support") ||
               !strstr(deid_last_error(), "/nonexistent/libdeid_torch.so") ||
               !one_line(deid_last_error());
        bad |= deid__torch_describe() != NULL || deid__torch_module_path() != NULL;
        if (bad)
            fprintf(stderr, "missing module: %s\n", deid_last_error());
        _exit(bad);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int read_floats(FILE *f, float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fscanf(f, "%f", &v[i]) != 1)
            return 0;
    return 1;
}

/* Worst corner distance in pixels of a rows x cols image. */
static double worst_px(const float *a, const float *b, double rows, double cols)
{
    double worst = 0;
    for (int k = 0; k < 4; k++) {
        double d = hypot((a[2 * k] - b[2 * k]) * cols, (a[2 * k + 1] - b[2 * k + 1]) * rows);
        worst = d > worst ? d : worst;
    }
    return worst;
}

/* A validation clip's model input (written by train_corners.py export): the shim gives
 * PyTorch's output, and the corners lie within a few pixels of the truth. */
static void check_test_vector(deid__torch_model *m, const char *model_dir)
{
    char path[4096];
    uint8_t *u8 = malloc(ROWS * COLS);
    float *x = malloc(sizeof(float) * ROWS * COLS);
    float expect[8], truth[8], out[8];
    double rows = 0, cols = 0;
    snprintf(path, sizeof path, "%s/test_input_240x320.u8", model_dir);
    FILE *f = fopen(path, "rb");
    CHECK(f && u8 && x && fread(u8, 1, ROWS * COLS, f) == ROWS * COLS);
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "%s/test_expected.txt", model_dir);
    f = fopen(path, "r");
    CHECK(f != NULL);
    if (f) {
        char line[512];
        CHECK(fgets(line, sizeof line, f) != NULL); /* comment */
        CHECK(read_floats(f, expect, 8) && read_floats(f, truth, 8));
        CHECK(fscanf(f, "%lf %lf", &rows, &cols) == 2);
        fclose(f);
    }
    if (!u8 || !x || rows <= 0 || cols <= 0) {
        free(u8);
        free(x);
        return;
    }
    for (size_t i = 0; i < ROWS * COLS; i++)
        x[i] = u8[i];
    CHECK_OK(deid__torch_model_run(m, x, 1, ROWS, COLS, out));
    double vs_torch = 0;
    for (int i = 0; i < 8; i++)
        vs_torch = fmax(vs_torch, fabs(out[i] - expect[i]));
    double vs_truth = worst_px(out, truth, rows, cols);
    printf("validation clip (%.0fx%.0f): max |shim - PyTorch| %.2g, worst corner %.2f px from "
           "the truth\n", rows, cols, vs_torch, vs_truth);
    CHECK(vs_torch < 1e-3);
    CHECK(vs_truth < 3.0);
    free(u8);
    free(x);
}

/* A curvilinear fan drawn here: speckle-like noise inside a sector whose apex is above the
 * image, black outside, with a few bright "text" blocks in the corners. */
static void draw_fan(uint8_t *img, size_t rows, size_t cols, double cx, double cy, double r1,
                     double r2, double a1, double a2, float corners[8])
{
    const double pi = 3.14159265358979323846;
    unsigned seed = 12345;
    memset(img, 0, rows * cols);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            double dx = (double)c - cx, dy = (double)r - cy;
            double d = sqrt(dx * dx + dy * dy), t = atan2(dy, dx) * 180 / pi;
            seed = seed * 1103515245u + 12345u;
            if (d >= r1 && d <= r2 && t >= a2 && t <= a1) {
                double depth = (d - r1) / (r2 - r1);
                double v = 40 + 150 * (double)((seed >> 16) & 0x7fff) / 32767.0 * (1 - 0.6 * depth);
                img[r * cols + c] = (uint8_t)v;
            }
        }
    for (size_t r = 8; r < 20; r++)          /* a banner and a label, outside the fan */
        for (size_t c = 12; c < 200; c += 1)
            img[r * cols + c] = ((c / 3) % 3) ? 230 : 0;
    for (size_t r = rows - 30; r < rows - 18; r++)
        for (size_t c = cols - 150; c < cols - 20; c++)
            img[r * cols + c] = ((c / 4) % 2) ? 200 : 0;
    double rad[4] = {r1, r1, r2, r2}, ang[4] = {a1, a2, a1, a2};
    for (int k = 0; k < 4; k++) {
        corners[2 * k] = (float)((cx + rad[k] * cos(ang[k] * pi / 180)) / (double)cols);
        corners[2 * k + 1] = (float)((cy + rad[k] * sin(ang[k] * pi / 180)) / (double)rows);
    }
}

static void check_drawn_fan(deid__torch_model *m)
{
    const size_t rows = 600, cols = 800;
    uint8_t *img = malloc(rows * cols);
    float *x = malloc(sizeof(float) * ROWS * COLS);
    float truth[8], out[8];
    CHECK(img && x);
    if (!img || !x) {
        free(img);
        free(x);
        return;
    }
    draw_fan(img, rows, cols, 410, -60, 150, 560, 124, 56, truth);
    CHECK_OK(deid__torch_resize_linear(img, rows, cols, x, ROWS, COLS));
    CHECK_OK(deid__torch_model_run(m, x, 1, ROWS, COLS, out));
    double worst = worst_px(out, truth, (double)rows, (double)cols);
    printf("fan drawn in C (600x800): worst corner %.2f px from the truth\n", worst);
    CHECK(worst < 5.0);
    /* timing: the forward pass as the shim measures it */
    double total = 0;
    int runs = 10;
    for (int i = 0; i < runs; i++) {
        CHECK_OK(deid__torch_model_run(m, x, 1, ROWS, COLS, out));
        total += deid__torch_last_ms();
    }
    double t0 = deid__now();
    CHECK_OK(deid__torch_resize_linear(img, rows, cols, x, ROWS, COLS));
    printf("inference: %.1f ms per image (mean of %d, %s); resize 600x800 -> 240x320: %.2f ms\n",
           total / runs, runs, deid__torch_describe(), (deid__now() - t0) * 1000);
    free(img);
    free(x);
}

/* The resize the models expect: 2x reduction = mean of 2x2 rounded half up; same size = copy. */
static void check_resize(void)
{
    const uint8_t src[16] = {0, 2, 10, 10, 1, 2, 10, 11, 255, 255, 0, 0, 255, 254, 0, 1};
    float out[4], same[16];
    CHECK_OK(deid__torch_resize_linear(src, 4, 4, out, 2, 2));
    CHECK(out[0] == 1 && out[1] == 10 && out[2] == 255 && out[3] == 0);
    CHECK_OK(deid__torch_resize_linear(src, 4, 4, same, 4, 4));
    for (int i = 0; i < 16; i++)
        CHECK(same[i] == src[i]);
    CHECK(deid__torch_resize_linear(NULL, 4, 4, out, 2, 2) == DEID_ERR_ARGUMENT);
}

static void check_errors(const char *model_dir)
{
    char path[4096];
    deid__torch_model *m = NULL;
    CHECK(deid__torch_model_load("/nonexistent/corners.pt", NULL, &m) == DEID_ERR_IO);
    CHECK(m == NULL && one_line(deid_last_error()) && strstr(deid_last_error(), "cannot open"));
    printf("bad path: %s\n", deid_last_error());
    snprintf(path, sizeof path, "%s/test_expected.txt", model_dir);
    CHECK(deid__torch_model_load(path, "cpu", &m) == DEID_ERR_UNSUPPORTED);
    CHECK(m == NULL && one_line(deid_last_error()) && strstr(deid_last_error(), "TorchScript"));
    printf("not a model: %s\n", deid_last_error());
    CHECK(deid__torch_model_load(model_dir, "cpu", &m) == DEID_ERR_IO && m == NULL);
    snprintf(path, sizeof path, "%s/corners.pt", model_dir);
    CHECK(deid__torch_model_load(path, "tpu", &m) == DEID_ERR_ARGUMENT && m == NULL);
    CHECK(one_line(deid_last_error()) && strstr(deid_last_error(), "tpu"));
}

int main(void)
{
    check_resize();
    check_missing_module();

    const char *src = getenv("DEID_SOURCE_DIR"), *build = getenv("DEID_BUILD_DIR");
    char module[4096], model_dir[2048], path[4096];
    if (build && !getenv("DEID_TORCH_MODULE")) {
        snprintf(module, sizeof module, "%s/libdeid/libdeid_torch.so", build);
        if (access(module, R_OK) == 0)
            setenv("DEID_TORCH_MODULE", module, 1);
    }
    double t_module = deid__now();
    int available = deid__torch_available();
    t_module = deid__now() - t_module;
    if (!available) {
        CHECK(one_line(deid_last_error()) && deid_last_error_code() == DEID_ERR_UNSUPPORTED);
        CHECK(strstr(deid_features(), "torch") == NULL || getenv("DEID_TORCH_MODULE") == NULL);
        printf("note: %s; skipping the model checks\n", deid_last_error());
        return check_done("test_torch_model");
    }
    printf("module %s: %s; dlopen %.0f ms\n", deid__torch_module_path(), deid__torch_describe(),
           t_module * 1000);
    CHECK(strstr(deid_features(), "torch") != NULL);
    snprintf(model_dir, sizeof model_dir, "%s/libdeid/us/model", src ? src : ".");
    snprintf(path, sizeof path, "%s/corners.pt", model_dir);
    if (access(path, R_OK) != 0) {
        printf("note: %s absent (model not trained yet); skipping the model checks\n", path);
        return check_done("test_torch_model");
    }
    check_errors(model_dir);

    /* an accelerator this build lacks falls back to the CPU with a warning */
    const char *accel[2] = {"cuda", "mps"};
    for (int i = 0; i < 2; i++) {
        deid__torch_model *m = NULL;
        CHECK_OK(deid__torch_model_load(path, accel[i], &m));
        if (m && strcmp(deid__torch_model_device(m), "cpu") == 0) {
            CHECK(one_line(deid__torch_model_warning(m)));
            printf("%s: %s\n", accel[i], deid__torch_model_warning(m));
        }
        deid__torch_model_free(m);
    }

    CHECK_OK(deid__torch_set_threads(1));
    deid__torch_model *m = NULL;
    double t0 = deid__now();
    CHECK_OK(deid__torch_model_load(path, "cpu", &m));
    printf("load: %.0f ms\n", (deid__now() - t0) * 1000);
    if (!m)
        return check_done("test_torch_model");
    size_t c = 0, h = 0, w = 0;
    deid__torch_model_input(m, &c, &h, &w);
    CHECK(c == 1 && h == ROWS && w == COLS);
    CHECK(strcmp(deid__torch_model_device(m), "cpu") == 0 && !*deid__torch_model_warning(m));

    check_test_vector(m, model_dir);
    check_drawn_fan(m);

    /* wrong input size: a clean failure, the output untouched */
    float small[64 * 64] = {0}, out[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    CHECK(deid__torch_model_run(m, small, 1, 64, 64, out) != DEID_OK);
    CHECK(one_line(deid_last_error()) && out[0] == -1);
    printf("wrong size: %s\n", deid_last_error());
    deid__torch_model_free(m);
    deid__torch_model_free(NULL);
    return check_done("test_torch_model");
}
