/*
 * msf_softmax_s8.h - int8 softmax over the C values of a (1, 1, C) tensor (msfsim.ops.softmax),
 * bit-exact with TensorFlow Lite Micro's reference_ops::Softmax<int8_t, int8_t> (and CMSIS-NN's
 * arm_softmax_s8).
 *
 *   d = x - max(x); exp(d * beta * scale) by gemmlowp's fixed point (Q5.26 in, Q0.31 out),
 *   summed in Q12.19; out = exp / sum at scale 1/256, zero point -128; d < diff_min -> -128.
 * input_mult / input_left_shift / diff_min are TFLM's SoftmaxPrepare values. Where TFLM aborts
 * (the sum reaches 2^28: 512 or more values at the maximum) every output is -128.
 *
 * As a block tail the executor feeds the input a rectangle at a time into a buffer of
 * msf_softmax_s8_get_buffer_size() bytes (msf_softmax_accumulate_s8: a copy at each value's
 * flat position) and calls msf_softmax_finish_s8 once the buffer holds all of it.
 */
#ifndef MSF_SOFTMAX_S8_H
#define MSF_SOFTMAX_S8_H

#include "msf_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t channels;          /* C: values in the softmax */
    int32_t input_mult;        /* Q31, > 2^30 */
    int32_t input_left_shift;  /* [0, 31] */
    int32_t diff_min;          /* <= 0 */
} msf_softmax_params;

/* Bytes of the buffer the tail hooks keep: the copy of the input (C). */
int32_t msf_softmax_s8_get_buffer_size(const msf_softmax_params *p);
/* The softmax of p->channels contiguous values. */
void msf_softmax_s8(const int8_t *input, const msf_softmax_params *p, int8_t *output);

/* Tail hooks: copy the input rectangle [y0, y0 + h) x [x0, x0 + w) of window `in` into `buf`,
 * then (all of it copied) the softmax of `buf` into `out`. */
void msf_softmax_accumulate_s8(const msf_window *in, const msf_softmax_params *p, int32_t y0,
                               int32_t x0, int32_t h, int32_t w, int8_t *buf);
void msf_softmax_finish_s8(const msf_softmax_params *p, const int8_t *buf, int8_t *out);

/* The softmax over the p->channels values of every pixel of the output rectangle
 * [oy0, oy0 + oh) x [ox0, ox0 + ow) (input and output windows hold it). No scratch. */
void msf_softmax_map_s8(const msf_window *in, const msf_softmax_params *p, msf_window *out,
                        int32_t oy0, int32_t ox0, int32_t oh, int32_t ow);

#ifdef __cplusplus
}
#endif

#endif /* MSF_SOFTMAX_S8_H */
