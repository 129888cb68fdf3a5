/* Pointwise convolution: no im2col, each output pixel is a dot product of one input pixel. */
#include "msf_kernels.h"

int32_t msf_convolve_1x1_s8_get_buffer_size(const msf_conv_params *p, int32_t in_c)
{
    (void)p;
    (void)in_c;
    return 0;
}

/* sum((x + off) * w) over n elements, unrolled by four. */
static inline int32_t dot_offset_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t off,
                                    int32_t acc)
{
    int32_t i = n >> 2;
    while (i-- > 0) {
        acc += (x[0] + off) * w[0];
        acc += (x[1] + off) * w[1];
        acc += (x[2] + off) * w[2];
        acc += (x[3] + off) * w[3];
        x += 4;
        w += 4;
    }
    i = n & 3;
    while (i-- > 0) {
        acc += (*x++ + off) * (*w++);
    }
    return acc;
}

void msf_convolve_1x1_s8(const msf_window *in, const msf_conv_params *p, msf_window *out,
                         int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    const int32_t cin = in->c, cout = out->c;
    const int32_t off = p->input_offset;
    int32_t oy, ox, co;

    for (oy = oy0; oy < oy0 + oh; oy++) {
        const int32_t iy = oy * p->stride_h - p->pad_top;
        const int32_t row_valid = iy >= 0 && iy < in->tensor_h;
        const int8_t *src_row = row_valid ? msf_window_row(in, iy) : NULL;
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        int32_t ix = ox0 * p->stride_w - p->pad_left;
        for (ox = 0; ox < ow; ox++) {
            /* a padding pixel is a zero-point input: only the bias contributes */
            const int8_t *src = (row_valid && ix >= 0 && ix < in->tensor_w)
                                    ? src_row + (ix - in->x0) * cin : NULL;
            const int8_t *w = p->weights;
            for (co = 0; co < cout; co++) {
                int32_t acc = p->bias ? p->bias[co] : 0;
                if (src != NULL) {
                    acc = dot_offset_s8(src, w, cin, off, acc);
                }
                w += cin;
                acc = msf_requantize(acc, p->multiplier[co], p->shift[co]) + p->output_offset;
                dst[co] = msf_clamp_s8(acc, p->act_min, p->act_max);
            }
            dst += cout;
            ix += p->stride_w;
        }
    }
}
