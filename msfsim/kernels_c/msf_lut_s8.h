/*
 * msf_lut_s8.h - int8 unary activation by a 256-entry table (msfsim.ops.lut).
 *
 * out = table[x + 128]. The table holds the source framework's own int8 result for every
 * input value (TFLM's HARD_SWISH / LOGISTIC arithmetic, or an ONNX activation quantised), so
 * one kernel serves every unary activation, bit-exact by construction. msf_lut_channels_s8
 * takes a table per channel (TFLM's ADD / SUB / MUL of a constant per channel, PRELU):
 * out = table[c * MSF_LUT_SIZE + x + 128].
 */
#ifndef MSF_LUT_S8_H
#define MSF_LUT_S8_H

#include "msf_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MSF_LUT_SIZE 256

typedef struct {
    const int8_t *table;   /* MSF_LUT_SIZE entries indexed by x + 128 (msf_lut_channels_s8:
                              MSF_LUT_SIZE per channel, channel 0 first) */
} msf_lut_params;

/* Input and output windows hold the region (same shape). No scratch. */
int32_t msf_lut_s8_get_buffer_size(const msf_lut_params *p, int32_t channels);
void msf_lut_s8(const msf_window *in, const msf_lut_params *p, msf_window *out,
                int32_t oy0, int32_t ox0, int32_t oh, int32_t ow);
void msf_lut_channels_s8(const msf_window *in, const msf_lut_params *p, msf_window *out,
                         int32_t oy0, int32_t ox0, int32_t oh, int32_t ow);

#ifdef __cplusplus
}
#endif

#endif /* MSF_LUT_S8_H */
