/* General convolution (any kernel, stride, padding), and the convolution with a fused
 * non-overlapping max pool used by the layer-by-layer baseline.
 *
 * Each output pixel's receptive field is copied into an int8 im2col column of kh*kw*Cin
 * values (OHWI weight order), padding taps holding the input zero point: with the
 * precomputed kernel sums a zero-point input contributes nothing, so border pixels need no
 * other case. Two columns fit the scratch, and a pair of them goes through the pointwise
 * dot products (msf_conv_vectors_s8), two pixels against two output channels per pass.
 * With the wide C blocks (MSF_WIDE_C) a 3-row layer with fast outputs reads the windows inside
 * the tensor in place instead, three to a pass (conv_direct); only border windows take an
 * im2col column. */
#include "msf_nnsupport.h"

/* Bytes of the scratch: kh*kw*Cin int16, rounded up so that a following buffer stays 4-byte
 * aligned. It holds two int8 columns. */
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

#if defined(__GNUC__) && !defined(__clang__)
/* Keep GCC from turning the copy loops into memcpy / memset calls, which freestanding builds
 * lack (the copy helpers are inlined into functions carrying the attribute). */
#define MSF_NO_LIBC_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define MSF_NO_LIBC_LOOPS
#endif

static inline void copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i = 0;
#if MSF_DSP
    for (; i + 4 <= n; i += 4) { /* unaligned words: fine on Cortex-M4/M7 */
        __builtin_memcpy(dst + i, src + i, 4);
    }
#endif
    for (; i < n; i++) {
        dst[i] = src[i];
    }
}

static inline void fill_s8(int8_t *dst, int8_t v, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        dst[i] = v;
    }
}

/* The int8 im2col column of the output pixel whose window starts at tensor position
 * (iy0, ix0). */
static MSF_NO_LIBC_LOOPS void im2col_s8(const msf_window *in, const msf_conv_params *p,
                                        int32_t iy0, int32_t ix0, int8_t *col)
{
    const int32_t cin = in->c, kh = p->kernel_h, kw = p->kernel_w, row_len = kw * cin;
    const int8_t zp = (int8_t)(-p->input_offset);
    int32_t ky;

    if (iy0 >= 0 && iy0 + kh <= in->tensor_h && ix0 >= 0 && ix0 + kw <= in->tensor_w) {
        const int8_t *row = msf_window_pixel(in, iy0, ix0);
        for (ky = 0; ky < kh; ky++, col += row_len) {
            copy_s8(col, row, row_len);
            row = msf_window_next_row(in, row);
        }
        return;
    }
    const int32_t kx_lo = ix0 < 0 ? -ix0 : 0;
    const int32_t kx_hi = (in->tensor_w - ix0) < kw ? (in->tensor_w - ix0) : kw;
    const int32_t left = (kx_lo < kw ? kx_lo : kw) * cin;
    const int32_t mid = (kx_hi > kx_lo ? kx_hi - kx_lo : 0) * cin;
    for (ky = 0; ky < kh; ky++, col += row_len) {
        const int32_t iy = iy0 + ky;
        if (iy < 0 || iy >= in->tensor_h || mid == 0) {
            fill_s8(col, zp, row_len);
            continue;
        }
        fill_s8(col, zp, left);
        copy_s8(col + left, msf_window_pixel(in, iy, ix0 + kx_lo), mid);
        fill_s8(col + left + mid, zp, row_len - left - mid);
    }
}

#if MSF_WIDE_C
/* One output pixel through an im2col column. Out of line: its copy loops' spills stay out of
 * the stack under conv_direct's dot products. */
static __attribute__((noinline)) void conv_im2col_pixel(const msf_window *in,
                                                       const msf_conv_params *p, int32_t iy0,
                                                       int32_t ix0, int32_t cout, int8_t *dst,
                                                       int8_t *col)
{
    im2col_s8(in, p, iy0, ix0, col);
    msf_conv_vectors_s8(p, p->kernel_h * p->kernel_w * in->c, cout, col, NULL, dst, NULL);
}

/* With the wide C blocks, a 3-row layer with fast outputs whose input window is not a ring: a
 * window inside the tensor is read in place (its rows lie row_stride apart), three windows to
 * a pass of the dot products (msf_conv_windows_s8), which then load each weight once for three
 * pixels; a window crossing the tensor border goes through an im2col column on its own. Out
 * of line: msf_convolve_s8 reaches it by a tail call, without its own frame below. */
static __attribute__((noinline)) void conv_direct(const msf_window *in,
                                                  const msf_conv_params *p, msf_window *out,
                                                  int32_t oy0, int32_t ox0, int32_t oh,
                                                  int32_t ow, int8_t *col)
{
    const int32_t cout = out->c, kw = p->kernel_w, row_len = kw * in->c;
    const int32_t iy_first = oy0 * p->stride_h - p->pad_top;
    const int32_t iy_last = (oy0 + oh - 1) * p->stride_h - p->pad_top;
    const int32_t ix_first = ox0 * p->stride_w - p->pad_left;
    const int32_t ix_last = (ox0 + ow - 1) * p->stride_w - p->pad_left;
    const int8_t *xs[3]; /* windows waiting for the group to fill */
    int8_t *ds[3];
    int32_t n = 0, oy, ox;

    if (iy_first >= 0 && iy_last + 3 <= in->tensor_h && ix_first >= 0 &&
        ix_last + kw <= in->tensor_w && out->ring_rows == 0) {
        /* every window inside the tensor: windows and outputs at fixed steps */
        const int8_t *src_row = msf_window_pixel(in, iy_first, ix_first);
        int8_t *dst_row = msf_window_pixel(out, oy0, ox0);
        const int32_t src_row_step = p->stride_h * in->row_stride;
        const int32_t src_step = p->stride_w * in->c;
        for (oy = 0; oy < oh; oy++, src_row += src_row_step, dst_row += out->row_stride) {
            const int8_t *src = src_row;
            int8_t *dst = dst_row;
            for (ox = 0; ox < ow; ox++, src += src_step, dst += cout) {
                xs[n] = src;
                ds[n] = dst;
                if (++n == 3) {
                    msf_conv_windows_s8(p, row_len, in->row_stride, cout, xs, ds, 3);
                    n = 0;
                }
            }
        }
    } else {
        for (oy = oy0; oy < oy0 + oh; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const int rows_inside = iy0 >= 0 && iy0 + 3 <= in->tensor_h;
            int8_t *dst = msf_window_pixel(out, oy, ox0);
            int32_t ix0 = ix_first;
            for (ox = 0; ox < ow; ox++, dst += cout, ix0 += p->stride_w) {
                if (!rows_inside || ix0 < 0 || ix0 + kw > in->tensor_w) {
                    conv_im2col_pixel(in, p, iy0, ix0, cout, dst, col);
                    continue;
                }
                xs[n] = msf_window_pixel(in, iy0, ix0);
                ds[n] = dst;
                if (++n == 3) {
                    msf_conv_windows_s8(p, row_len, in->row_stride, cout, xs, ds, 3);
                    n = 0;
                }
            }
        }
    }
    if (n > 0) {
        msf_conv_windows_s8(p, row_len, in->row_stride, cout, xs, ds, n);
    }
}
#endif

void msf_convolve_s8(const msf_window *in, const msf_conv_params *p, msf_window *out,
                     int32_t oy0, int32_t ox0, int32_t oh, int32_t ow, void *scratch)
{
    if (p->kernel_h == 1 && p->kernel_w == 1) {
        msf_convolve_1x1_s8(in, p, out, oy0, ox0, oh, ow);
        return;
    }
#if MSF_WIDE_C
    if (p->kernel_h == 3 && in->ring_rows == 0 && msf_conv_fast_output(p)) {
        conv_direct(in, p, out, oy0, ox0, oh, ow, (int8_t *)scratch);
        return;
    }
#endif
    const int32_t cout = out->c;
    const int32_t k = p->kernel_h * p->kernel_w * in->c;
    int8_t *col0 = (int8_t *)scratch, *col1 = col0 + k;
    int8_t *pend_dst = NULL; /* a pixel whose column waits in col0 for a partner */
    int32_t oy, ox;

    for (oy = oy0; oy < oy0 + oh; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        int32_t ix0 = ox0 * p->stride_w - p->pad_left;
        for (ox = 0; ox < ow; ox++, dst += cout, ix0 += p->stride_w) {
            if (pend_dst == NULL) {
                im2col_s8(in, p, iy0, ix0, col0);
                pend_dst = dst;
            } else {
                im2col_s8(in, p, iy0, ix0, col1);
                msf_conv_vectors_s8(p, k, cout, col0, col1, pend_dst, dst);
                pend_dst = NULL;
            }
        }
    }
    if (pend_dst != NULL) {
        msf_conv_vectors_s8(p, k, cout, col0, NULL, pend_dst, NULL);
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
    const int32_t k = conv->kernel_h * conv->kernel_w * in->c;
    int8_t *col = (int8_t *)scratch;
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
                    im2col_s8(in, conv, iy0, cx * conv->stride_w - conv->pad_left, col);
                    msf_conv_vectors_s8(conv, k, cout, col, NULL, pixel, NULL);
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
