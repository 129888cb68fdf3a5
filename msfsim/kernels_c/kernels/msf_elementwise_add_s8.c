/* TFLite int8 add and sub, same shape or with a (1, 1, C) operand broadcast over H and W. */
#include "msf_nnsupport.h"

int32_t msf_elementwise_add_s8_get_buffer_size(const msf_add_params *p, int32_t channels)
{
    (void)p;
    (void)channels;
    return 0;
}

/* One output value from the two int8 inputs: their scaled values summed, or (sub) the
 * second's subtracted (TFLM's SubElementwise). */
static inline MSF_ALWAYS_INLINE int8_t msf_add_one(int32_t a, int32_t b,
                                                   const msf_add_params *p, int sub)
{
    const int32_t a1 = msf_requantize((int32_t)((uint32_t)(a + p->input1_offset) << p->left_shift),
                                      p->input1_mult, p->input1_shift);
    const int32_t b1 = msf_requantize((int32_t)((uint32_t)(b + p->input2_offset) << p->left_shift),
                                      p->input2_mult, p->input2_shift);
    const int32_t raw = sub ? a1 - b1 : a1 + b1;
    const int32_t sum = msf_requantize(raw, p->output_mult, p->output_shift) + p->output_offset;
    return msf_clamp_s8(sum, p->act_min, p->act_max);
}

static inline MSF_ALWAYS_INLINE void msf_add_region(const msf_window *in1, const msf_window *in2,
                                                    const msf_add_params *p, msf_window *out,
                                                    int32_t oy0, int32_t ox0, int32_t oh,
                                                    int32_t ow, int sub)
{
    const int32_t c = out->c;
    const int32_t n = ow * c;  /* a row of the region is contiguous */
    int32_t oy, ox, i;

    if (p->broadcast) {
        const int8_t *b = msf_window_pixel(in2, 0, 0);  /* the one (1, 1, C) pixel */
        for (oy = oy0; oy < oy0 + oh; oy++) {
            const int8_t *a = msf_window_pixel(in1, oy, ox0);
            int8_t *dst = msf_window_pixel(out, oy, ox0);
            for (ox = 0; ox < ow; ox++) {
                for (i = 0; i < c; i++) {
                    *dst++ = msf_add_one(*a++, b[i], p, sub);
                }
            }
        }
        return;
    }
    for (oy = oy0; oy < oy0 + oh; oy++) {
        const int8_t *a = msf_window_pixel(in1, oy, ox0);
        const int8_t *b = msf_window_pixel(in2, oy, ox0);
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        for (i = 0; i < n; i++) {
            *dst++ = msf_add_one(*a++, *b++, p, sub);
        }
    }
}

void msf_elementwise_add_s8(const msf_window *in1, const msf_window *in2,
                            const msf_add_params *p, msf_window *out,
                            int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    msf_add_region(in1, in2, p, out, oy0, ox0, oh, ow, 0);
}

void msf_elementwise_sub_s8(const msf_window *in1, const msf_window *in2,
                            const msf_add_params *p, msf_window *out,
                            int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    msf_add_region(in1, in2, p, out, oy0, ox0, oh, ow, 1);
}
