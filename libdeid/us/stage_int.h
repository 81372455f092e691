/* libdeid internal: what the ultrasound stage (stage.c) needs from the learned detector
 * (model_detect.c). */
#ifndef DEID_US_STAGE_INT_H
#define DEID_US_STAGE_INT_H

#include "deid/us.h"

/* Run the corner model on an 8-bit image (MONOCHROME2 or RGB, any number of frames): the
 * maximum over frames of each channel, in grey (PIL 'L'), resized to the model's input, four
 * normalised corners -> *out (image_size set to the image's). *inference_ms is the forward
 * pass. Errors: DEID_ERR_UNSUPPORTED (the model failed, or its corners make no fan),
 * DEID_ERR_NOMEM. */
deid_status deid__us_model_detect(deid_us_model *model, const deid_image *img, deid_fan *out,
                                  double *inference_ms);

/* How well `fan` explains the image's live area (the model-free detector's first step): the
 * IoU of the two on the live map's grid, in [0, 1]; 0 when nothing is live. */
deid_status deid__us_fan_agreement(const deid_image *img, const deid_fan *fan, double *iou);

#endif
