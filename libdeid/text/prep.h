/* libdeid internal: image operations of the text passes (prepare.c). */
#ifndef DEID_TEXT_PREP_H
#define DEID_TEXT_PREP_H

#include <stddef.h>
#include <stdint.h>
#include "deid/status.h"

/* Min (is_max 0) or max (1) filter with a k x k square window (k odd), edges replicated. */
deid_status deid__text_minmax(const uint8_t *in, uint8_t *out, size_t rows, size_t cols,
                              size_t k, int is_max);

/* White top-hat (in - opening; dark 0) or black top-hat (closing - in; dark 1) with a k x k
 * square: the contrast of strokes thinner than k against their surroundings. */
deid_status deid__text_tophat(const uint8_t *in, uint8_t *out, size_t rows, size_t cols,
                              size_t k, int dark);

/* Contrast-limited adaptive histogram equalisation with tiles x tiles tiles and clip limit
 * `clip` (times the mean bin height). */
deid_status deid__text_clahe(const uint8_t *in, uint8_t *out, size_t rows, size_t cols,
                             size_t tiles, double clip);

#endif
