/* The learned fan detector: a TorchScript corner model run through the torch module
 * (shim/torch_loader.h) on the clip's maximum-over-frames grey image, its four corners turned
 * into a geometry the SlicerUltrasound way, in the model's fixed corner order. The input is prepared
 * exactly as libdeid/us/model/train_corners.py prepares it (values 0..255; the model
 * normalises them itself). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "dicom/dataset_int.h"
#include "us/stage_int.h"
#include "us/us_int.h"

static const char *M = "us";

#include "shim/torch_loader.h"

struct deid_us_model {
    deid__torch_model *torch;
};

deid_status deid_us_model_load(const char *path, const char *device, deid_us_model **out)
{
    if (!out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "model load: out is NULL");
    char shipped[4096];
    if (!path) {
        deid_status st = deid__torch_default_model(shipped, sizeof shipped);
        if (st != DEID_OK)
            return st;
        path = shipped;
    }
    deid_us_model *m = deid__calloc(1, sizeof *m);
    if (!m)
        return deid__fail(DEID_ERR_NOMEM, M, "model load: out of memory");
    deid_status st = deid__torch_model_load(path, device, &m->torch);
    if (st != DEID_OK) {
        free(m);
        return st;
    }
    *out = m;
    return DEID_OK;
}

const char *deid_us_model_warning(const deid_us_model *model)
{
    return model ? deid__torch_model_warning(model->torch) : "";
}

void deid_us_model_free(deid_us_model *model)
{
    if (!model)
        return;
    deid__torch_model_free(model->torch);
    free(model);
}

/* Grey maximum over frames (rows x cols bytes): per channel first, then PIL's 'L'. */
static uint8_t *max_grey(const deid_image *img)
{
    size_t n = img->rows * img->cols, s = img->samples;
    uint8_t *mx = deid__calloc(n, s), *grey = deid__calloc(n, 1);
    if (!mx || !grey) {
        free(mx);
        free(grey);
        return NULL;
    }
    for (size_t f = 0; f < img->frames; f++) {
        const uint8_t *p = img->data + f * n * s;
        for (size_t i = 0; i < n * s; i++)
            if (p[i] > mx[i])
                mx[i] = p[i];
    }
    for (size_t i = 0; i < n; i++)
        grey[i] = s == 3 ? (uint8_t)((19595u * mx[3 * i] + 38470u * mx[3 * i + 1] +
                                      7471u * mx[3 * i + 2] + 32768u) >> 16)
                         : mx[i];
    free(mx);
    return grey;
}

deid_status deid__us_model_detect(deid_us_model *model, const deid_image *img, deid_fan *out,
                                  double *inference_ms)
{
    if (!model || !img || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "model detection: NULL argument");
    if (img->bits != 8 || (img->samples != 1 && img->samples != 3))
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "model detection: 8-bit grey or RGB images only (got %u-bit, %zu "
                          "samples)", img->bits, img->samples);
    size_t c = 1, h = DEID_TORCH_CORNER_ROWS, w = DEID_TORCH_CORNER_COLS, hw;
    deid__torch_model_input(model->torch, &c, &h, &w);
    if (c != 1 || !deid__mul_size(h, w, &hw))
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "model detection: the model expects %zu input channels (1 supported)",
                          c);
    uint8_t *grey = max_grey(img);
    float *input = deid__calloc(hw, sizeof *input);
    deid_status st = grey && input ? DEID_OK : deid__fail(DEID_ERR_NOMEM, M, "out of memory");
    if (st == DEID_OK)
        st = deid__torch_resize_linear(grey, img->rows, img->cols, input, h, w);
    float c8[8];
    if (st == DEID_OK)
        st = deid__torch_model_run(model->torch, input, c, h, w, c8);
    free(grey);
    free(input);
    if (st != DEID_OK)
        return st;
    /* The model gives (x / width, y / height) per corner; the builder takes (row, col). */
    double rc[8];
    for (int k = 0; k < 4; k++) {
        rc[2 * k] = c8[2 * k + 1];
        rc[2 * k + 1] = c8[2 * k];
    }
    deid_fan fan;
    st = deid__fan_from_ordered_corners(rc, 1, img->rows, img->cols, &fan);
    if (st != DEID_OK)
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "model detection: the model's corners make no scan area");
    *out = fan;
    if (inference_ms)
        *inference_ms = deid__torch_last_ms();
    return DEID_OK;
}


deid_status deid_fan_detect_model(deid_us_model *model, const deid_image *img, deid_fan *out,
                                  double *confidence)
{
    deid_fan fan;
    double iou = 0;
    deid_status st = deid__us_model_detect(model, img, &fan, NULL);
    if (st == DEID_OK && confidence)
        st = deid__us_fan_agreement(img, &fan, &iou);
    if (st != DEID_OK)
        return st;
    *out = fan;
    if (confidence)
        *confidence = iou;
    return DEID_OK;
}

deid_status deid__us_fan_agreement(const deid_image *img, const deid_fan *fan, double *iou)
{
    deid_fan_prep p;
    if (!img || !fan || !iou || deid__fan_prepare(fan, 0, &p) != 0)
        return deid__fail(DEID_ERR_ARGUMENT, M, "fan agreement: invalid argument");
    deid_live_map map;
    deid_status st = deid__live_map(img, 32, NULL, &map);
    if (st == DEID_ERR_NO_PIXELS) {
        deid_clear_error();
        *iou = 0;
        return DEID_OK;
    }
    if (st != DEID_OK)
        return st;
    size_t both = 0, either = 0;
    double half = ((double)map.scale - 1) / 2;
    for (size_t i = 0; i < map.rows; i++)
        for (size_t j = 0; j < map.cols; j++) {
            int a = map.region[i * map.cols + j] != 0;
            int b = deid__fan_inside(&p, (double)map.scale * (double)i + half,
                                     (double)map.scale * (double)j + half);
            both += a && b;
            either += a || b;
        }
    deid__live_map_free(&map);
    *iou = either ? (double)both / (double)either : 0;
    return DEID_OK;
}
