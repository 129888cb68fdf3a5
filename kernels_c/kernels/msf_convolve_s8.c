/* General convolution (any kernel, stride, padding) through an int16 im2col column, and the
 * convolution with a fused non-overlapping max pool used by the layer-by-layer baseline. */
#include "msf_kernels.h"

/* Bytes of the im2col column, rounded up so that a following buffer stays 4-byte aligned. */
static int32_t col_bytes(const msf_conv_params *p, int32_t in_c)
{
    const int32_t bytes = p->kernel_h * p->kernel_w * in_c * (int32_t)sizeof(int16_t);
    return (bytes + 3) & ~3;
}

int32_t msf_convolve_s8_get_buffer_size(const msf_conv_params *p, int32_t in_c)
{
    if (p->kernel_h == 1 && p->kernel_w == 1) {
        return 0;
    }
    return col_bytes(p, in_c);
}

/* Dot product of an int16 column with int8 weights, unrolled by four. */
static int32_t dot_s16_s8(const int16_t *col, const int8_t *w, int32_t n, int32_t acc)
{
    int32_t i = n >> 2;
    while (i-- > 0) {
        acc += (int32_t)col[0] * w[0];
        acc += (int32_t)col[1] * w[1];
        acc += (int32_t)col[2] * w[2];
        acc += (int32_t)col[3] * w[3];
        col += 4;
        w += 4;
    }
    i = n & 3;
    while (i-- > 0) {
        acc += (int32_t)(*col++) * (*w++);
    }
    return acc;
}

/* Fills `col` with (x + input_offset) for every tap (ky, kx, ci) of the output pixel whose
 * receptive field starts at tensor position (iy0, ix0); taps in the padding hold 0, which is
 * exactly the contribution of a zero-point input. */
static void im2col_pixel(const msf_window *in, const msf_conv_params *p, int32_t iy0,
                         int32_t ix0, int16_t *col)
{
    const int32_t cin = in->c;
    const int32_t kh = p->kernel_h, kw = p->kernel_w;
    const int32_t off = p->input_offset;
    const int32_t ky_lo = iy0 < 0 ? -iy0 : 0;
    const int32_t ky_hi = (in->tensor_h - iy0) < kh ? (in->tensor_h - iy0) : kh;
    const int32_t kx_lo = ix0 < 0 ? -ix0 : 0;
    const int32_t kx_hi = (in->tensor_w - ix0) < kw ? (in->tensor_w - ix0) : kw;
    const int32_t row_len = kw * cin;
    const int32_t left = kx_lo * cin;
    const int32_t mid = (kx_hi > kx_lo ? kx_hi - kx_lo : 0) * cin;
    const int32_t right = row_len - left - mid;
    int32_t ky, i;

    for (ky = 0; ky < ky_lo && ky < kh; ky++) {
        for (i = 0; i < row_len; i++) {
            *col++ = 0;
        }
    }
    if (ky_hi > ky_lo && mid > 0) {
        const int8_t *src = msf_window_pixel(in, iy0 + ky_lo, ix0 + kx_lo);
        for (ky = ky_lo; ky < ky_hi; ky++) {
            const int8_t *s = src;
            for (i = 0; i < left; i++) {
                *col++ = 0;
            }
            for (i = 0; i < mid; i++) {
                *col++ = (int16_t)(*s++ + off);
            }
            for (i = 0; i < right; i++) {
                *col++ = 0;
            }
            src = msf_window_next_row(in, src);
        }
    } else if (ky_hi > ky_lo) {
        for (i = 0; i < (ky_hi - ky_lo) * row_len; i++) {
            *col++ = 0;
        }
    }
    for (ky = (ky_hi > ky_lo ? ky_hi : ky_lo); ky < kh; ky++) {
        for (i = 0; i < row_len; i++) {
            *col++ = 0;
        }
    }
}

/* All output channels of one output pixel from a filled column. */
static void conv_column(const msf_conv_params *p, const int16_t *col, int32_t col_len,
                        int32_t cout, int8_t *dst)
{
    const int8_t *w = p->weights;
    int32_t co;
    for (co = 0; co < cout; co++) {
        int32_t acc = p->bias ? p->bias[co] : 0;
        acc = dot_s16_s8(col, w, col_len, acc);
        w += col_len;
        acc = msf_requantize(acc, p->multiplier[co], p->shift[co]) + p->output_offset;
        dst[co] = msf_clamp_s8(acc, p->act_min, p->act_max);
    }
}

void msf_convolve_s8(const msf_window *in, const msf_conv_params *p, msf_window *out,
                     int32_t oy0, int32_t ox0, int32_t oh, int32_t ow, void *scratch)
{
    if (p->kernel_h == 1 && p->kernel_w == 1) {
        msf_convolve_1x1_s8(in, p, out, oy0, ox0, oh, ow);
        return;
    }
    const int32_t cout = out->c;
    const int32_t col_len = p->kernel_h * p->kernel_w * in->c;
    int16_t *col = (int16_t *)scratch;
    int32_t oy, ox;

    for (oy = oy0; oy < oy0 + oh; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        int32_t ix0 = ox0 * p->stride_w - p->pad_left;
        for (ox = 0; ox < ow; ox++) {
            im2col_pixel(in, p, iy0, ix0, col);
            conv_column(p, col, col_len, cout, dst);
            dst += cout;
            ix0 += p->stride_w;
        }
    }
}

int32_t msf_convolve_maxpool_s8_get_buffer_size(const msf_conv_params *conv,
                                                const msf_pool_params *pool, int32_t in_c,
                                                int32_t out_c)
{
    (void)pool;
    return col_bytes(conv, in_c) + ((out_c + 3) & ~3);
}

void msf_convolve_maxpool_s8(const msf_window *in, const msf_conv_params *conv,
                             const msf_pool_params *pool, int32_t conv_out_h, int32_t conv_out_w,
                             msf_window *out, int32_t oy0, int32_t ox0, int32_t oh, int32_t ow,
                             void *scratch)
{
    const int32_t cout = out->c;
    const int32_t col_len = conv->kernel_h * conv->kernel_w * in->c;
    int16_t *col = (int16_t *)scratch;
    int8_t *pixel = (int8_t *)scratch + col_bytes(conv, in->c);
    int32_t py, px, cy, cx, c;

    for (py = oy0; py < oy0 + oh; py++) {
        const int32_t cy0 = py * pool->stride_h - pool->pad_top;
        const int32_t cy_lo = cy0 < 0 ? 0 : cy0;
        const int32_t cy_hi = (cy0 + pool->kernel_h) < conv_out_h ? cy0 + pool->kernel_h : conv_out_h;
        int8_t *dst = msf_window_pixel(out, py, ox0);
        for (px = ox0; px < ox0 + ow; px++) {
            const int32_t cx0 = px * pool->stride_w - pool->pad_left;
            const int32_t cx_lo = cx0 < 0 ? 0 : cx0;
            const int32_t cx_hi = (cx0 + pool->kernel_w) < conv_out_w ? cx0 + pool->kernel_w : conv_out_w;
            for (c = 0; c < cout; c++) {
                dst[c] = MSF_INT8_MIN;
            }
            for (cy = cy_lo; cy < cy_hi; cy++) {
                const int32_t iy0 = cy * conv->stride_h - conv->pad_top;
                for (cx = cx_lo; cx < cx_hi; cx++) {
                    im2col_pixel(in, conv, iy0, cx * conv->stride_w - conv->pad_left, col);
                    conv_column(conv, col, col_len, cout, pixel);
                    for (c = 0; c < cout; c++) {
                        dst[c] = pixel[c] > dst[c] ? pixel[c] : dst[c];
                    }
                }
            }
            for (c = 0; c < cout; c++) {
                dst[c] = msf_clamp_s8(dst[c], pool->act_min, pool->act_max);
            }
            dst += cout;
        }
    }
}
