/* Depthwise convolution, channel multiplier 1. Padding is handled by clamping the kernel
 * window to the tensor once per output pixel, so the tap loops carry no bounds checks. */
#include "msf_kernels.h"

int32_t msf_depthwise_conv_s8_get_buffer_size(const msf_conv_params *p, int32_t channels)
{
    (void)p;
    (void)channels;
    return 0;
}

void msf_depthwise_conv_s8(const msf_window *in, const msf_conv_params *p, msf_window *out,
                           int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    const int32_t ch = in->c;
    const int32_t kh = p->kernel_h, kw = p->kernel_w;
    const int32_t off = p->input_offset;
    int32_t oy, ox, c, ky, kx;

    for (oy = oy0; oy < oy0 + oh; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t ky_lo = iy0 < 0 ? -iy0 : 0;
        const int32_t ky_hi = (in->tensor_h - iy0) < kh ? (in->tensor_h - iy0) : kh;
        const int8_t *row0 = ky_hi > ky_lo ? msf_window_row(in, iy0 + ky_lo) : NULL;
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        int32_t ix0 = ox0 * p->stride_w - p->pad_left;
        for (ox = 0; ox < ow; ox++) {
            const int32_t kx_lo = ix0 < 0 ? -ix0 : 0;
            const int32_t kx_hi = (in->tensor_w - ix0) < kw ? (in->tensor_w - ix0) : kw;
            const int32_t taps_w = kx_hi - kx_lo;
            const int8_t *src0 = (row0 != NULL && taps_w > 0) ? row0 + (ix0 + kx_lo - in->x0) * ch : NULL;
            const int8_t *w0 = p->weights + (ky_lo * kw + kx_lo) * ch;
            for (c = 0; c < ch; c++) {
                int32_t acc = p->bias ? p->bias[c] : 0;
                const int8_t *src = src0 + c;
                const int8_t *wrow = w0 + c;
                if (src0 != NULL) {
                    for (ky = ky_lo; ky < ky_hi; ky++) {
                        const int8_t *s = src;
                        const int8_t *w = wrow;
                        for (kx = 0; kx < taps_w; kx++) {
                            acc += (*s + off) * (*w);
                            s += ch;
                            w += ch;
                        }
                        src = msf_window_next_row(in, src);
                        wrow += kw * ch;
                    }
                }
                acc = msf_requantize(acc, p->multiplier[c], p->shift[c]) + p->output_offset;
                dst[c] = msf_clamp_s8(acc, p->act_min, p->act_max);
            }
            dst += ch;
            ix0 += p->stride_w;
        }
    }
}
