/*
 * msf_mul_s8.h - TFLite int8 elementwise multiply (msfsim.ops.mul).
 *
 *   out = clamp(output_offset + requantize((a + input1_offset) * (b + input2_offset),
 *               output_mult, output_shift), act_min, act_max)
 * as reference_integer_ops::Mul. Operand b has a's shape, or is (1, 1, C) and broadcast over
 * H and W (`broadcast`: the squeeze-and-excitation scale).
 */
#ifndef MSF_MUL_S8_H
#define MSF_MUL_S8_H

#include "msf_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t input1_offset, input2_offset, output_offset;
    int32_t output_mult, output_shift;
    int32_t act_min, act_max;
    int32_t broadcast;     /* 1: in2 is (1, 1, C), pixel (0, 0) multiplies every pixel */
} msf_mul_params;

/* in1 and out windows hold the region; in2 holds it too, or its one pixel when broadcast.
 * No scratch. */
int32_t msf_mul_s8_get_buffer_size(const msf_mul_params *p, int32_t channels);
void msf_mul_s8(const msf_window *in1, const msf_window *in2, const msf_mul_params *p,
                msf_window *out, int32_t oy0, int32_t ox0, int32_t oh, int32_t ow);

#ifdef __cplusplus
}
#endif

#endif /* MSF_MUL_S8_H */
