/* TFLite int8 multiply, same shape or with a (1, 1, C) operand broadcast over H and W. */
#include "msf_mul_s8.h"
#include "msf_nnsupport.h"

int32_t msf_mul_s8_get_buffer_size(const msf_mul_params *p, int32_t channels)
{
    (void)p;
    (void)channels;
    return 0;
}

void msf_mul_s8(const msf_window *in1, const msf_window *in2, const msf_mul_params *p,
                msf_window *out, int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    const int32_t c = out->c;

    for (int32_t oy = oy0; oy < oy0 + oh; oy++) {
        const int8_t *a = msf_window_pixel(in1, oy, ox0);
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        /* broadcast: every pixel restarts at the one (1, 1, C) pixel; else b runs along a */
        const int8_t *b = p->broadcast ? msf_window_pixel(in2, 0, 0)
                                       : msf_window_pixel(in2, oy, ox0);
        for (int32_t ox = 0; ox < ow; ox++) {
            const int8_t *bp = p->broadcast ? b : b + ox * c;
            for (int32_t ch = 0; ch < c; ch++) {
                /* |a + off| <= 255, |b + off| <= 255: the product fits int32 */
                const int32_t prod = (a[ch] + p->input1_offset) * (bp[ch] + p->input2_offset);
                const int32_t v = msf_requantize(prod, p->output_mult, p->output_shift) +
                                  p->output_offset;
                dst[ch] = msf_clamp_s8(v, p->act_min, p->act_max);
            }
            a += c;
            dst += c;
        }
    }
}
