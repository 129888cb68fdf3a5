/* Channel concatenation of two int8 tensors (copy, or requantise to the output's scale). */
#include "msf_concat_s8.h"
#include "msf_nnsupport.h"

int32_t msf_concat_s8_get_buffer_size(const msf_concat_params *p, int32_t channels)
{
    (void)p;
    (void)channels;
    return 0;
}

/* One input pixel's channels into dst: bytes when the quantisation is shared. */
static void msf_concat_part(const int8_t *src, int8_t *dst, int32_t c, int32_t offset,
                            int32_t mult, int32_t shift, int32_t output_offset)
{
    if (mult == 0) {
        for (int32_t ch = 0; ch < c; ch++) {
            dst[ch] = src[ch];
        }
        return;
    }
    for (int32_t ch = 0; ch < c; ch++) {
        const int32_t v = msf_requantize(src[ch] + offset, mult, shift) + output_offset;
        dst[ch] = msf_clamp_s8(v, MSF_INT8_MIN, MSF_INT8_MAX);
    }
}

void msf_concat_s8(const msf_window *in1, const msf_window *in2, const msf_concat_params *p,
                   msf_window *out, int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    const int32_t ca = in1->c, cb = in2->c;

    for (int32_t oy = oy0; oy < oy0 + oh; oy++) {
        const int8_t *a = msf_window_pixel(in1, oy, ox0);
        const int8_t *b = msf_window_pixel(in2, oy, ox0);
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        for (int32_t ox = 0; ox < ow; ox++) {
            msf_concat_part(a, dst, ca, p->input1_offset, p->input1_mult, p->input1_shift,
                            p->output_offset);
            msf_concat_part(b, dst + ca, cb, p->input2_offset, p->input2_mult, p->input2_shift,
                            p->output_offset);
            a += ca;
            b += cb;
            dst += ca + cb;
        }
    }
}
