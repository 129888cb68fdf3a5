/* Depthwise convolution, channel multiplier 1.
 *
 * An output pixel whose kernel window lies inside the tensor starts its accumulators at the
 * precomputed kernel sums, so its taps carry no input offset; a 3x3 window is fully unrolled.
 * A pixel at the tensor border clamps its window to the tensor once and adds the input offset
 * per tap, so padding contributes nothing. On DSP cores four channels go through each pass:
 * one word of input and one of weights per tap, SXTB16 lanes into SMLABB / SMLATT. */
#include "msf_kernels.h"
#include "msf_dsp_asm.h"

#if defined(__GNUC__) && !defined(__clang__)
/* GCC's pre-allocation scheduling otherwise stretches the unrolled loads' live ranges into
 * spills (RISC-V) */
#pragma GCC optimize("sched-pressure")
#endif

int32_t msf_depthwise_conv_s8_get_buffer_size(const msf_conv_params *p, int32_t channels)
{
    (void)p;
    (void)channels;
    return 0;
}

/* Taps [0, rows) x [0, cols) of one output pixel, every channel: src is the first tap's input
 * (channel 0), wt its weights. Accumulators start at the kernel sums (off == 0, the whole
 * window inside the tensor) or at the bias (off = input_offset, a window clamped to the
 * tensor). */
MSF_C_LOOPS void dw_taps(const msf_window *in, const msf_conv_params *p,
                                       const int8_t *src, const int8_t *wt, int32_t rows,
                                       int32_t cols, int32_t off, int8_t *dst, int fast)
{
    const int32_t ch = in->c, wrow_step = p->kernel_w * ch;
    const msf_channel_params *q = p->channels;
    const int32_t *bias = off != 0 ? p->bias : NULL;
    int32_t c = 0, ky, kx;
#if MSF_DSP
    const uint32_t off2 = ((uint32_t)off & 0xFFFFu) * 0x10001u;
    for (; c + 4 <= ch; c += 4) {
        int32_t a0, a1, a2, a3;
        if (off == 0) {
            a0 = q[c].kernel_sum, a1 = q[c + 1].kernel_sum;
            a2 = q[c + 2].kernel_sum, a3 = q[c + 3].kernel_sum;
        } else if (bias != NULL) {
            a0 = bias[c], a1 = bias[c + 1], a2 = bias[c + 2], a3 = bias[c + 3];
        } else {
            a0 = a1 = a2 = a3 = 0;
        }
        const int8_t *row = src + c, *wrow = wt + c;
        for (ky = 0; ky < rows; ky++) {
            const int8_t *s = row, *w = wrow;
            for (kx = 0; kx < cols; kx++) {
                const uint32_t xv = msf_read_s8x4(s), wv = msf_read_s8x4(w);
                const uint32_t x02 = msf_sxtab16(off2, xv), x13 = msf_sxtab16_ror8(off2, xv);
                const uint32_t w02 = msf_sxtb16(wv), w13 = msf_sxtb16_ror8(wv);
                a0 = msf_smlabb(x02, w02, a0);
                a2 = msf_smlatt(x02, w02, a2);
                a1 = msf_smlabb(x13, w13, a1);
                a3 = msf_smlatt(x13, w13, a3);
                s += ch;
                w += ch;
            }
            row = msf_window_next_row(in, row);
            wrow += wrow_step;
        }
        const int32_t v0 = msf_conv_output(a0, p, &q[c], c, fast);
        const int32_t v1 = msf_conv_output(a1, p, &q[c + 1], c + 1, fast);
        const int32_t v2 = msf_conv_output(a2, p, &q[c + 2], c + 2, fast);
        const int32_t v3 = msf_conv_output(a3, p, &q[c + 3], c + 3, fast);
        dst[c] = (int8_t)v0;
        dst[c + 1] = (int8_t)v1;
        dst[c + 2] = (int8_t)v2;
        dst[c + 3] = (int8_t)v3;
    }
#endif
    for (; c < ch; c++) {
        int32_t acc = off == 0 ? q[c].kernel_sum : (bias != NULL ? bias[c] : 0);
        const int8_t *row = src + c, *wrow = wt + c;
        for (ky = 0; ky < rows; ky++) {
            const int8_t *s = row, *w = wrow;
            for (kx = 0; kx < cols; kx++) {
                acc += (*s + off) * *w;
                s += ch;
                w += ch;
            }
            row = msf_window_next_row(in, row);
            wrow += wrow_step;
        }
        dst[c] = (int8_t)msf_conv_output(acc, p, &q[c], c, fast);
    }
}

#if MSF_DSP_ASM
/* Pre-widened depthwise 3x3 weights per group of four channels: 9 taps x 4 int16. */
#define MSF_DW3X3_GROUP_S16 36

/* Work of msf_dw3x3_dsp: `groups` groups of four channels of one output pixel. */
typedef struct {
    const int8_t *r0, *r1, *r2;  /* the window's rows at its first column, first group */
    const void *w;               /* weights at the first group: (3, 3, C) int8 or, for
                                    msf_dw3x3_s16_dsp, the group's pre-widened taps */
    int32_t ch;                  /* C, the stride between taps */
    const msf_channel_params *q; /* channel parameters of the first group */
    int8_t *d;                   /* the output at the first group */
    int32_t groups;              /* >= 1 */
} dw_job;

/* One tap of four channels: the input word at `xaddr` (SXTB16 lanes c0 c2 | c1 c3) against
 * the tap's weights in lr | r11, loaded by `wload`. */
#define MSF_DW_TAP_ASM(xaddr, wload)                                                        \
    "ldr     r10, " xaddr "\n\t"                                                            \
    wload                                                                                   \
    "sxtb16  r12, r10\n\t"                                                                  \
    "sxtb16  r10, r10, ror #8\n\t"                                                          \
    "smlabb  r4, r12, lr, r4\n\t"                                                           \
    "smlatt  r6, r12, lr, r6\n\t"                                                           \
    "smlabb  r5, r10, r11, r5\n\t"                                                          \
    "smlatt  r7, r10, r11, r7\n\t"
/* int8 weights (3, 3, C): the tap's word at `waddr`, widened */
#define MSF_DW_W8(waddr)                                                                    \
    "ldr     r11, " waddr "\n\t"                                                            \
    "sxtb16  lr, r11\n\t"                                                                   \
    "sxtb16  r11, r11, ror #8\n\t"
/* pre-widened weights: tap t of the group at r3, already c0 c2 | c1 c3 */
#define MSF_DW_W16(t) "ldrd    lr, r11, [r3, #" #t " * 8]\n\t"

/* dw3x3 for Cortex-M DSP cores with the fast requantisation: per group of four channels the
 * accumulators (r4-r7) start at the kernel sums, each of the nine taps is one word of input
 * (offsets ch and 2 * ch as scaled register offsets) and four weights, the row pointers
 * advance by four channels. int8 weights sit at the same offsets as the input (r3 for kernel
 * row 0, r9 for rows 1 and 2); pre-widened weights are the group's 72 bytes at r3. The
 * requantisation swaps the tap pointers out with one push, as the group state (r9-r11) is
 * pushed around the taps. */
#define MSF_DW3X3_ASM(W00, W01, W02, ROW1, W10, W11, W12, ROW2, W20, W21, W22, NEXT)        \
    "push    {r4-r11, lr}\n\t"                                                             \
    "mov     r12, r0\n\t"                                                                  \
    "ldrd    r0, r1, [r12, #0]\n\t"     /* rows */                                         \
    "ldrd    r2, r3, [r12, #8]\n\t"     /* row 2, weights */                               \
    "ldr     r8, [r12, #16]\n\t"        /* ch */                                           \
    "ldrd    r9, r10, [r12, #20]\n\t"   /* channel parameters, output */                   \
    "ldr     r11, [r12, #28]\n\t"       /* groups left */                                  \
    "1:\n\t"                                                                               \
    "ldr     r4, [r9, #0]\n\t"                                                             \
    "ldr     r5, [r9, #16]\n\t"                                                            \
    "ldr     r6, [r9, #32]\n\t"                                                            \
    "ldr     r7, [r9, #48]\n\t"                                                            \
    "push    {r9-r11}\n\t"                                                                 \
    ROW1                                                                                   \
    MSF_DW_TAP_ASM("[r0, r8, lsl #1]", W02)                                                \
    MSF_DW_TAP_ASM("[r0, r8]", W01)                                                        \
    MSF_DW_TAP_ASM("[r0], #4", W00)                                                        \
    MSF_DW_TAP_ASM("[r1, r8, lsl #1]", W12)                                                \
    MSF_DW_TAP_ASM("[r1, r8]", W11)                                                        \
    MSF_DW_TAP_ASM("[r1], #4", W10)                                                        \
    ROW2                                                                                   \
    MSF_DW_TAP_ASM("[r2, r8, lsl #1]", W22)                                                \
    MSF_DW_TAP_ASM("[r2, r8]", W21)                                                        \
    MSF_DW_TAP_ASM("[r2], #4", W20)                                                        \
    NEXT                                                                                   \
    "pop     {r9-r11}\n\t"                                                                 \
    "push    {r0-r3, r8}\n\t"                                                              \
    MSF_REQUANT4_STORE_ASM                                                                 \
    "pop     {r0-r3, r8}\n\t"                                                              \
    "subs    r11, r11, #1\n\t"                                                             \
    "bne     1b\n\t"                                                                       \
    "pop     {r4-r11, pc}\n\t"

MSF_ASM_FUNCTION(msf_dw3x3_dsp, dw_job, MSF_DW3X3_ASM(
    MSF_DW_W8("[r3], #4"), MSF_DW_W8("[r3, r8]"), MSF_DW_W8("[r3, r8, lsl #1]"),
    "add     r9, r3, r8, lsl #1\n\t"
    "add     r9, r9, r8\n\t",               /* weights of kernel row 1 */
    MSF_DW_W8("[r9]"), MSF_DW_W8("[r9, r8]"), MSF_DW_W8("[r9, r8, lsl #1]"),
    "add     r9, r9, r8, lsl #1\n\t"
    "add     r9, r9, r8\n\t",               /* weights of kernel row 2 */
    MSF_DW_W8("[r9]"), MSF_DW_W8("[r9, r8]"), MSF_DW_W8("[r9, r8, lsl #1]"), ""))

/* The same with the layer's pre-widened weights (msf_conv_params.weights_s16): a group's
 * MSF_DW3X3_GROUP_S16 int16 (72 bytes) at r3. */
MSF_ASM_FUNCTION(msf_dw3x3_s16_dsp, dw_job, MSF_DW3X3_ASM(
    MSF_DW_W16(0), MSF_DW_W16(1), MSF_DW_W16(2), "",
    MSF_DW_W16(3), MSF_DW_W16(4), MSF_DW_W16(5), "",
    MSF_DW_W16(6), MSF_DW_W16(7), MSF_DW_W16(8),
    "add     r3, r3, #72\n\t"))                /* the next group's taps */
#undef MSF_DW3X3_ASM
#undef MSF_DW_TAP_ASM
#undef MSF_DW_W8
#undef MSF_DW_W16
#endif

/* A 3x3 window inside the tensor whose rows start at r0, r1, r2 (channel 0), in C. */
MSF_C_LOOPS void dw3x3_c(const msf_conv_params *p, int32_t ch, const int8_t *r0,
                                       const int8_t *r1, const int8_t *r2, int8_t *dst,
                                       int fast)
{
    const int8_t *w = p->weights;
    const msf_channel_params *q = p->channels;
    const int32_t ch2 = 2 * ch, ch3 = 3 * ch;
    int32_t c = 0;
#if MSF_DSP
    for (; c + 4 <= ch; c += 4) {
        int32_t a0 = q[c].kernel_sum, a1 = q[c + 1].kernel_sum;
        int32_t a2 = q[c + 2].kernel_sum, a3 = q[c + 3].kernel_sum;
        const int8_t *wk = w + c;
#define MSF_DW_TAP(s, wp)                                                                   \
    do {                                                                                    \
        const uint32_t xv = msf_read_s8x4(s), wv = msf_read_s8x4(wp);                       \
        const uint32_t x02 = msf_sxtb16(xv), x13 = msf_sxtb16_ror8(xv);                     \
        const uint32_t w02 = msf_sxtb16(wv), w13 = msf_sxtb16_ror8(wv);                     \
        a0 = msf_smlabb(x02, w02, a0);                                                      \
        a2 = msf_smlatt(x02, w02, a2);                                                      \
        a1 = msf_smlabb(x13, w13, a1);                                                      \
        a3 = msf_smlatt(x13, w13, a3);                                                      \
    } while (0)
        MSF_DW_TAP(r0 + c, wk);
        MSF_DW_TAP(r0 + c + ch, wk + ch);
        MSF_DW_TAP(r0 + c + ch2, wk + ch2);
        wk += ch3;
        MSF_DW_TAP(r1 + c, wk);
        MSF_DW_TAP(r1 + c + ch, wk + ch);
        MSF_DW_TAP(r1 + c + ch2, wk + ch2);
        wk += ch3;
        MSF_DW_TAP(r2 + c, wk);
        MSF_DW_TAP(r2 + c + ch, wk + ch);
        MSF_DW_TAP(r2 + c + ch2, wk + ch2);
#undef MSF_DW_TAP
        const int32_t v0 = msf_conv_output(a0, p, &q[c], c, fast);
        const int32_t v1 = msf_conv_output(a1, p, &q[c + 1], c + 1, fast);
        const int32_t v2 = msf_conv_output(a2, p, &q[c + 2], c + 2, fast);
        const int32_t v3 = msf_conv_output(a3, p, &q[c + 3], c + 3, fast);
        dst[c] = (int8_t)v0;
        dst[c + 1] = (int8_t)v1;
        dst[c + 2] = (int8_t)v2;
        dst[c + 3] = (int8_t)v3;
    }
#else
    /* four channels per pass: the tap addresses are found once for four loads */
    for (; c + 4 <= ch; c += 4) {
        int32_t a0 = q[c].kernel_sum, a1 = q[c + 1].kernel_sum;
        int32_t a2 = q[c + 2].kernel_sum, a3 = q[c + 3].kernel_sum;
        const int8_t *wk = w + c;
#define MSF_DW_ROW(row)                                                                     \
    do {                                                                                    \
        const int8_t *s = (row) + c;                                                        \
        int32_t kx;                                                                         \
        for (kx = 0; kx < 3; kx++, s += ch, wk += ch) {                                     \
            a0 += s[0] * wk[0];                                                             \
            a1 += s[1] * wk[1];                                                             \
            a2 += s[2] * wk[2];                                                             \
            a3 += s[3] * wk[3];                                                             \
        }                                                                                   \
    } while (0)
        MSF_DW_ROW(r0);
        MSF_DW_ROW(r1);
        MSF_DW_ROW(r2);
#undef MSF_DW_ROW
        const int32_t v0 = msf_conv_output(a0, p, &q[c], c, fast);
        const int32_t v1 = msf_conv_output(a1, p, &q[c + 1], c + 1, fast);
        const int32_t v2 = msf_conv_output(a2, p, &q[c + 2], c + 2, fast);
        const int32_t v3 = msf_conv_output(a3, p, &q[c + 3], c + 3, fast);
        dst[c] = (int8_t)v0;
        dst[c + 1] = (int8_t)v1;
        dst[c + 2] = (int8_t)v2;
        dst[c + 3] = (int8_t)v3;
    }
#endif
    for (; c < ch; c++) {
        const int8_t *wk = w + c;
        int32_t acc = q[c].kernel_sum;
        acc += r0[c] * wk[0] + r0[c + ch] * wk[ch] + r0[c + ch2] * wk[ch2];
        wk += ch3;
        acc += r1[c] * wk[0] + r1[c + ch] * wk[ch] + r1[c + ch2] * wk[ch2];
        wk += ch3;
        acc += r2[c] * wk[0] + r2[c + ch] * wk[ch] + r2[c + ch2] * wk[ch2];
        dst[c] = (int8_t)msf_conv_output(acc, p, &q[c], c, fast);
    }
}

/* A 3x3 window inside the tensor whose rows start at r0, r1, r2 (channel 0). */
static inline MSF_ALWAYS_INLINE void dw3x3(const msf_conv_params *p, int32_t ch,
                                           const int8_t *r0, const int8_t *r1, const int8_t *r2,
                                           int8_t *dst, int fast)
{
#if MSF_DSP_ASM
    if (fast && ch >= 4) {
        const int wide = p->weights_s16 != NULL;
        void (*const run)(const dw_job *) = wide ? msf_dw3x3_s16_dsp : msf_dw3x3_dsp;
        dw_job job = {r0, r1, r2, wide ? (const void *)p->weights_s16 : p->weights, ch,
                      p->channels, dst, ch >> 2};
        run(&job);
        if (ch & 3) { /* the last group again, ending at the last channel */
            const int32_t c = ch - 4;
            job.r0 = r0 + c;
            job.r1 = r1 + c;
            job.r2 = r2 + c;
            /* pre-widened: that group follows the ch / 4 aligned ones */
            job.w = wide ? (const void *)(p->weights_s16 + (ch >> 2) * MSF_DW3X3_GROUP_S16)
                         : p->weights + c;
            job.q = p->channels + c;
            job.d = dst + c;
            job.groups = 1;
            run(&job);
        }
        return;
    }
#endif
    dw3x3_c(p, ch, r0, r1, r2, dst, fast);
}

/* A pixel whose window crosses the tensor border: the window clamped to the tensor. (With a
 * zero input offset the kernel sums equal the bias, so dw_taps' choice is right either way.) */
static inline MSF_ALWAYS_INLINE void dw_border(const msf_window *in, const msf_conv_params *p,
                                               int32_t iy0, int32_t ix0, int8_t *dst, int fast)
{
    const int32_t ch = in->c, kh = p->kernel_h, kw = p->kernel_w;
    const int32_t ky_lo = iy0 < 0 ? -iy0 : 0;
    const int32_t ky_hi = (in->tensor_h - iy0) < kh ? (in->tensor_h - iy0) : kh;
    const int32_t kx_lo = ix0 < 0 ? -ix0 : 0;
    const int32_t kx_hi = (in->tensor_w - ix0) < kw ? (in->tensor_w - ix0) : kw;
    const int8_t *wt = p->weights + (ky_lo * kw + kx_lo) * ch;
    if (ky_hi <= ky_lo || kx_hi <= kx_lo) { /* no tap inside the tensor: the bias alone */
        dw_taps(in, p, wt, wt, 0, 0, p->input_offset, dst, fast);
        return;
    }
    dw_taps(in, p, msf_window_pixel(in, iy0 + ky_lo, ix0 + kx_lo), wt, ky_hi - ky_lo,
            kx_hi - kx_lo, p->input_offset, dst, fast);
}

static inline MSF_ALWAYS_INLINE void dw_region(const msf_window *in, const msf_conv_params *p,
                                               msf_window *out, int32_t oy0, int32_t ox0,
                                               int32_t oh, int32_t ow, int fast)
{
    const int32_t ch = in->c;
    const int32_t kh = p->kernel_h, kw = p->kernel_w;
    const int is3x3 = kh == 3 && kw == 3;
    int32_t oy, ox;

    for (oy = oy0; oy < oy0 + oh; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int row_inside = iy0 >= 0 && iy0 + kh <= in->tensor_h;
        const int8_t *row0 = row_inside ? msf_window_row(in, iy0) : NULL;
        const int8_t *row1 = row_inside && kh > 1 ? msf_window_next_row(in, row0) : NULL;
        const int8_t *row2 = row_inside && kh > 2 ? msf_window_next_row(in, row1) : NULL;
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        int32_t ix0 = ox0 * p->stride_w - p->pad_left;
        for (ox = 0; ox < ow; ox++, dst += ch, ix0 += p->stride_w) {
            if (!row_inside || ix0 < 0 || ix0 + kw > in->tensor_w) {
                dw_border(in, p, iy0, ix0, dst, fast);
                continue;
            }
            const int32_t col = (ix0 - in->x0) * ch;
            if (is3x3) {
                dw3x3(p, ch, row0 + col, row1 + col, row2 + col, dst, fast);
            } else {
                dw_taps(in, p, row0 + col, p->weights, kh, kw, 0, dst, fast);
            }
        }
    }
}

void msf_depthwise_conv_s8(const msf_window *in, const msf_conv_params *p, msf_window *out,
                           int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    if (msf_conv_fast_output(p)) {
        dw_region(in, p, out, oy0, ox0, oh, ow, 1);
    } else {
        dw_region(in, p, out, oy0, ox0, oh, ow, 0);
    }
}
