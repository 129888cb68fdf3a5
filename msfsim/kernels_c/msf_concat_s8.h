/*
 * msf_concat_s8.h - two int8 tensors of the same H x W joined along channels
 * (msfsim.ops.concat).
 *
 * Output channels [0, Ca) come from in1, [Ca, Ca + Cb) from in2. An input whose multiplier is
 * 0 has the output's quantisation and is copied byte for byte (TFLite Micro's int8
 * CONCATENATION); another is requantised:
 *   out = clamp(output_offset + requantize(x + input_offset, mult, shift), -128, 127).
 */
#ifndef MSF_CONCAT_S8_H
#define MSF_CONCAT_S8_H

#include "msf_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t input1_offset, input2_offset, output_offset;
    int32_t input1_mult, input1_shift;   /* mult 0: copy */
    int32_t input2_mult, input2_shift;
} msf_concat_params;

/* All three windows hold the region. No scratch. */
int32_t msf_concat_s8_get_buffer_size(const msf_concat_params *p, int32_t channels);
void msf_concat_s8(const msf_window *in1, const msf_window *in2, const msf_concat_params *p,
                   msf_window *out, int32_t oy0, int32_t ox0, int32_t oh, int32_t ow);

#ifdef __cplusplus
}
#endif

#endif /* MSF_CONCAT_S8_H */
