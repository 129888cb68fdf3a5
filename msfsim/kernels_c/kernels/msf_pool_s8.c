/* Max and average pooling. The window is clamped to the tensor once per output pixel:
 * max pooling ignores padding taps, average pooling counts them as zero contributions (the
 * divisor, folded into the multiplier, is the full window size) or, with tflite_div, divides
 * the raw sum of the taps inside by their count as TFLite's int8 AveragePool does. */
#include "msf_nnsupport.h"

int32_t msf_max_pool_s8_get_buffer_size(const msf_pool_params *p, int32_t channels)
{
    (void)p;
    (void)channels;
    return 0;
}

int32_t msf_avg_pool_s8_get_buffer_size(const msf_pool_params *p, int32_t channels)
{
    (void)p;
    (void)channels;
    return 0;
}

/* Tap range [lo, hi) of a window of `k` taps starting at tensor coordinate i0, clamped to [0, n). */
static void clamp_taps(int32_t i0, int32_t k, int32_t n, int32_t *lo, int32_t *hi)
{
    *lo = i0 < 0 ? -i0 : 0;
    *hi = (n - i0) < k ? (n - i0) : k;
}

void msf_max_pool_s8(const msf_window *in, const msf_pool_params *p, msf_window *out,
                     int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    const int32_t ch = in->c;
    int32_t oy, ox, c, ky, kx, ky_lo, ky_hi, kx_lo, kx_hi;

    for (oy = oy0; oy < oy0 + oh; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        clamp_taps(iy0, p->kernel_h, in->tensor_h, &ky_lo, &ky_hi);
        const int8_t *row0 = ky_hi > ky_lo ? msf_window_row(in, iy0 + ky_lo) : NULL;
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        int32_t ix0 = ox0 * p->stride_w - p->pad_left;
        for (ox = 0; ox < ow; ox++) {
            clamp_taps(ix0, p->kernel_w, in->tensor_w, &kx_lo, &kx_hi);
            const int8_t *src0 = (row0 != NULL && kx_hi > kx_lo)
                                     ? row0 + (ix0 + kx_lo - in->x0) * ch : NULL;
            for (c = 0; c < ch; c++) {
                int32_t m = MSF_INT8_MIN;
                if (src0 != NULL) {
                    const int8_t *src = src0 + c;
                    for (ky = ky_lo; ky < ky_hi; ky++) {
                        const int8_t *s = src;
                        for (kx = kx_lo; kx < kx_hi; kx++) {
                            m = *s > m ? *s : m;
                            s += ch;
                        }
                        src = msf_window_next_row(in, src);
                    }
                }
                dst[c] = msf_clamp_s8(m, p->act_min, p->act_max);
            }
            dst += ch;
            ix0 += p->stride_w;
        }
    }
}

void msf_avg_pool_s8(const msf_window *in, const msf_pool_params *p, msf_window *out,
                     int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    const int32_t ch = in->c;
    int32_t oy, ox, c, ky, kx, ky_lo, ky_hi, kx_lo, kx_hi;

    for (oy = oy0; oy < oy0 + oh; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        clamp_taps(iy0, p->kernel_h, in->tensor_h, &ky_lo, &ky_hi);
        const int8_t *row0 = ky_hi > ky_lo ? msf_window_row(in, iy0 + ky_lo) : NULL;
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        int32_t ix0 = ox0 * p->stride_w - p->pad_left;
        for (ox = 0; ox < ow; ox++) {
            clamp_taps(ix0, p->kernel_w, in->tensor_w, &kx_lo, &kx_hi);
            const int8_t *src0 = (row0 != NULL && kx_hi > kx_lo)
                                     ? row0 + (ix0 + kx_lo - in->x0) * ch : NULL;
            /* the offset of every valid tap, added once instead of per tap */
            const int32_t taps = src0 != NULL ? (ky_hi - ky_lo) * (kx_hi - kx_lo) : 0;
            const int32_t bias = p->tflite_div ? 0 : taps * p->input_offset;
            for (c = 0; c < ch; c++) {
                int32_t sum = bias;
                if (src0 != NULL) {
                    const int8_t *src = src0 + c;
                    for (ky = ky_lo; ky < ky_hi; ky++) {
                        const int8_t *s = src;
                        for (kx = kx_lo; kx < kx_hi; kx++) {
                            sum += *s;
                            s += ch;
                        }
                        src = msf_window_next_row(in, src);
                    }
                }
                if (p->tflite_div) {
                    /* TFLite: round half away from zero (C division truncates); a window
                     * with no tap inside is refused when the model is imported */
                    sum = taps == 0 ? 0
                        : (sum > 0 ? (sum + taps / 2) / taps : (sum - taps / 2) / taps);
                } else {
                    sum = msf_requantize(sum, p->multiplier, p->shift) + p->output_offset;
                }
                dst[c] = msf_clamp_s8(sum, p->act_min, p->act_max);
            }
            dst += ch;
            ix0 += p->stride_w;
        }
    }
}
