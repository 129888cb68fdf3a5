/* Pointwise convolution: no im2col, each output pixel is a dot product of one input pixel.
 *
 * The region's pixels are taken in pairs in row-major order (the two may lie in different
 * rows, so a one-column region pairs vertical neighbours) and the output channels in pairs:
 * a 2x2 block of accumulators per pass, started at the precomputed kernel sums so the inner
 * loop carries no input offset. A pixel left without a partner takes four channels per pass.
 * The same dot products serve the general convolution's im2col columns (msf_conv_vectors_s8). */
#include "msf_nnsupport.h"
#include "msf_dsp_asm.h"

#if defined(__GNUC__) && !defined(__clang__)
/* GCC's pre-allocation scheduling otherwise stretches the unrolled loads' live ranges into
 * spills (RISC-V) */
#pragma GCC optimize("sched-pressure")
#endif

int32_t msf_convolve_1x1_s8_get_buffer_size(const msf_conv_params *p, int32_t in_c)
{
    (void)p;
    (void)in_c;
    return 0;
}

/* A padding pixel is a zero-point input: only the bias contributes. */
static void pw_padding(const msf_conv_params *p, int32_t cout, int8_t *dst)
{
    int32_t co;
    for (co = 0; co < cout; co++) {
        const int32_t acc = p->bias ? p->bias[co] : 0;
        dst[co] = (int8_t)msf_conv_output(acc, p, &p->channels[co], co, 0);
    }
}

#if MSF_DSP_ASM
/* Work of msf_pw_pairs_dsp: `pairs` pairs of output channels of two input pixels. */
typedef struct {
    const int8_t *x0, *x1;       /* the two input pixels */
    int8_t *d0, *d1;             /* their outputs at the first channel of the first pair */
    const void *w;               /* weights of the first pair's first channel */
    const msf_channel_params *q; /* channel parameters of the first pair */
    int32_t pairs;               /* >= 1 */
    int32_t cin;                 /* >= 4 */
    int32_t wstep;               /* bytes from one weight row to the next */
} pw_job;
/* MSF_PW_PAIRS_ASM reads each field at these byte offsets. */
_Static_assert(offsetof(pw_job, x0) == 0, "pw_job layout read by the assembly");
_Static_assert(offsetof(pw_job, x1) == 4, "pw_job layout read by the assembly");
_Static_assert(offsetof(pw_job, d0) == 8, "pw_job layout read by the assembly");
_Static_assert(offsetof(pw_job, d1) == 12, "pw_job layout read by the assembly");
_Static_assert(offsetof(pw_job, w) == 16, "pw_job layout read by the assembly");
_Static_assert(offsetof(pw_job, q) == 20, "pw_job layout read by the assembly");
_Static_assert(offsetof(pw_job, pairs) == 24, "pw_job layout read by the assembly");
_Static_assert(offsetof(pw_job, cin) == 28, "pw_job layout read by the assembly");
_Static_assert(offsetof(pw_job, wstep) == 32, "pw_job layout read by the assembly");

/* Weights in the loops below: four (w0 w2 | w1 w3 lanes into `lo` | `hi`) from weight row
 * pointer `ptr`, and one tail weight. int8 rows take SXTB16; pre-widened rows
 * (msf_conv_params.weights_s16) are already in that order and take one LDRD. */
#define MSF_W4_S8(ptr, lo, hi)                                                              \
    "ldr     " hi ", [" ptr "], #4\n\t"                                                    \
    "sxtb16  " lo ", " hi "\n\t"                                                           \
    "sxtb16  " hi ", " hi ", ror #8\n\t"
#define MSF_W1_S8(ptr, dst) "ldrsb   " dst ", [" ptr "], #1\n\t"
#define MSF_W4_S16(ptr, lo, hi) "ldrd    " lo ", " hi ", [" ptr "], #8\n\t"
#define MSF_W1_S16(ptr, dst) "ldrsh   " dst ", [" ptr "], #2\n\t"

/* The 2x2 blocks of pw_pair with the fast requantisation, for Cortex-M DSP cores. Per pair of
 * channels: accumulators a00 a01 a10 a11 (pixel, channel) in r4-r7 start at the kernel sums;
 * four input channels per step (two words of input, SXTB16 lanes, against four weights of
 * each channel, W4, into eight SMLAD); the last cin % 4 channels one at a time (SMLABB); then
 * msf_requantize_fast and SSAT. The loop state lives in r8-r12 and is pushed around the
 * multiply-accumulate loop, which needs every other register. */
#define MSF_PW_PAIRS_ASM(W4, W1)                                                            \
    "push    {r4-r11, lr}\n\t"                                                             \
    "sub     sp, sp, #20\n\t"                                                              \
    "ldrd    r1, r2, [r0, #0]\n\t"      /* frame: x0, x1, wstep, cin % 4, x0 body end */   \
    "strd    r1, r2, [sp, #0]\n\t"                                                         \
    "ldr     r3, [r0, #32]\n\t"                                                            \
    "str     r3, [sp, #8]\n\t"                                                             \
    "ldr     r3, [r0, #28]\n\t"                                                            \
    "and     r4, r3, #3\n\t"                                                               \
    "str     r4, [sp, #12]\n\t"                                                            \
    "bic     r4, r3, #3\n\t"                                                               \
    "add     r4, r1, r4\n\t"                                                               \
    "str     r4, [sp, #16]\n\t"                                                            \
    "ldrd    r10, r11, [r0, #8]\n\t"    /* r10 d0, r11 d1 */                               \
    "ldrd    r8, r9, [r0, #16]\n\t"     /* r8 weights, r9 channel parameters */            \
    "ldr     r12, [r0, #24]\n\t"        /* r12 pairs left */                               \
    "1:\n\t"                                                                               \
    "ldr     r4, [r9, #0]\n\t"                                                             \
    "ldr     r5, [r9, #16]\n\t"                                                            \
    "mov     r6, r4\n\t"                                                                   \
    "mov     r7, r5\n\t"                                                                   \
    "ldrd    r0, r1, [sp, #0]\n\t"                                                         \
    "ldr     lr, [sp, #8]\n\t"                                                             \
    "mov     r2, r8\n\t"                                                                   \
    "add     r3, r8, lr\n\t"                                                               \
    "add     r8, r3, lr\n\t"                                                               \
    "push    {r8-r12}\n\t"              /* frame now at sp + 20 */                         \
    "2:\n\t"                                                                               \
    "ldr     r8, [r0], #4\n\t"                                                             \
    "ldr     r9, [r1], #4\n\t"                                                             \
    "sxtb16  r11, r8\n\t"                                                                  \
    "sxtb16  r8, r8, ror #8\n\t"                                                           \
    "sxtb16  r12, r9\n\t"                                                                  \
    "sxtb16  r9, r9, ror #8\n\t"                                                           \
    W4("r2", "lr", "r10")                                                                  \
    "smlad   r4, r11, lr, r4\n\t"                                                          \
    "smlad   r4, r8, r10, r4\n\t"                                                          \
    "smlad   r6, r12, lr, r6\n\t"                                                          \
    "smlad   r6, r9, r10, r6\n\t"                                                          \
    W4("r3", "lr", "r10")                                                                  \
    "smlad   r5, r11, lr, r5\n\t"                                                          \
    "smlad   r5, r8, r10, r5\n\t"                                                          \
    "smlad   r7, r12, lr, r7\n\t"                                                          \
    "smlad   r7, r9, r10, r7\n\t"                                                          \
    "ldr     r8, [sp, #36]\n\t"                                                            \
    "cmp     r0, r8\n\t"                                                                   \
    "bne     2b\n\t"                                                                       \
    "ldr     r12, [sp, #32]\n\t"                                                           \
    "cmp     r12, #0\n\t"                                                                  \
    "beq     4f\n\t"                                                                       \
    "3:\n\t"                                                                               \
    "ldrsb   r8, [r0], #1\n\t"                                                             \
    "ldrsb   r9, [r1], #1\n\t"                                                             \
    W1("r2", "r10")                                                                        \
    W1("r3", "r11")                                                                        \
    "smlabb  r4, r8, r10, r4\n\t"                                                          \
    "smlabb  r6, r9, r10, r6\n\t"                                                          \
    "smlabb  r5, r8, r11, r5\n\t"                                                          \
    "smlabb  r7, r9, r11, r7\n\t"                                                          \
    "subs    r12, r12, #1\n\t"                                                             \
    "bne     3b\n\t"                                                                       \
    "4:\n\t"                                                                               \
    "pop     {r8-r12}\n\t"                                                                 \
    MSF_CHANNEL_ASM("4", "12")          /* the first channel, both pixels */               \
    MSF_REQUANT_ASM("r4") MSF_REQUANT_ASM("r6")                                            \
    MSF_CHANNEL_ASM("20", "28")         /* the second channel */                           \
    MSF_REQUANT_ASM("r5") MSF_REQUANT_ASM("r7")                                            \
    "strb    r5, [r10, #1]\n\t"                                                            \
    "strb    r4, [r10], #2\n\t"                                                            \
    "strb    r7, [r11, #1]\n\t"                                                            \
    "strb    r6, [r11], #2\n\t"                                                            \
    "add     r9, r9, #32\n\t"                                                              \
    "subs    r12, r12, #1\n\t"                                                             \
    "bne     1b\n\t"                                                                       \
    "add     sp, sp, #20\n\t"                                                              \
    "pop     {r4-r11, pc}\n\t"

MSF_ASM_FUNCTION(msf_pw_pairs_dsp, pw_job, MSF_PW_PAIRS_ASM(MSF_W4_S8, MSF_W1_S8))
MSF_ASM_FUNCTION(msf_pw_pairs_s16_dsp, pw_job, MSF_PW_PAIRS_ASM(MSF_W4_S16, MSF_W1_S16))

/* Work of msf_pw_quads_dsp: `quads` groups of four output channels of one input pixel. */
typedef struct {
    const int8_t *x;             /* the input pixel */
    int32_t cin;                 /* >= 4 */
    const void *w;               /* weights of the first group's first channel */
    const msf_channel_params *q; /* channel parameters of the first group */
    int8_t *d;                   /* the output at the first group's first channel */
    int32_t quads;               /* >= 1 */
    int32_t wstep;               /* bytes from one weight row to the next */
} pw1_job;
/* MSF_PW_QUADS_ASM reads each field at these byte offsets. */
_Static_assert(offsetof(pw1_job, x) == 0, "pw1_job layout read by the assembly");
_Static_assert(offsetof(pw1_job, cin) == 4, "pw1_job layout read by the assembly");
_Static_assert(offsetof(pw1_job, w) == 8, "pw1_job layout read by the assembly");
_Static_assert(offsetof(pw1_job, q) == 12, "pw1_job layout read by the assembly");
_Static_assert(offsetof(pw1_job, d) == 16, "pw1_job layout read by the assembly");
_Static_assert(offsetof(pw1_job, quads) == 20, "pw1_job layout read by the assembly");
_Static_assert(offsetof(pw1_job, wstep) == 24, "pw1_job layout read by the assembly");

/* One pixel against four output channels per pass (a00..a03 in r4-r7), as msf_pw_pairs_dsp:
 * the input word's SXTB16 lanes (r9 | r8) feed four weight rows; MSF_PW1_ROW_ASM is one row
 * (pointer `ptr`) into accumulator `acc`. */
#define MSF_PW1_ROW_ASM(W4, ptr, acc)                                                       \
    W4(ptr, "r11", "r10")                                                                  \
    "smlad   " acc ", r9, r11, " acc "\n\t"                                                 \
    "smlad   " acc ", r8, r10, " acc "\n\t"
#define MSF_PW_QUADS_ASM(W4, W1)                                                            \
    "push    {r4-r11, lr}\n\t"                                                             \
    "sub     sp, sp, #16\n\t"                                                              \
    "ldrd    r1, r2, [r0, #0]\n\t"      /* frame: x, wstep, cin % 4, x body end */         \
    "and     r3, r2, #3\n\t"                                                               \
    "str     r3, [sp, #8]\n\t"                                                             \
    "bic     r3, r2, #3\n\t"                                                               \
    "add     r3, r1, r3\n\t"                                                               \
    "str     r3, [sp, #12]\n\t"                                                            \
    "ldr     r2, [r0, #24]\n\t"                                                            \
    "strd    r1, r2, [sp, #0]\n\t"                                                         \
    "ldrd    r8, r9, [r0, #8]\n\t"      /* r8 weights, r9 channel parameters */            \
    "ldrd    r10, r11, [r0, #16]\n\t"   /* r10 output, r11 groups left */                  \
    "1:\n\t"                                                                               \
    "ldr     r4, [r9, #0]\n\t"                                                             \
    "ldr     r5, [r9, #16]\n\t"                                                            \
    "ldr     r6, [r9, #32]\n\t"                                                            \
    "ldr     r7, [r9, #48]\n\t"                                                            \
    "ldrd    r0, lr, [sp, #0]\n\t"      /* x, wstep */                                     \
    "mov     r1, r8\n\t"                                                                   \
    "add     r2, r1, lr\n\t"                                                               \
    "add     r3, r2, lr\n\t"                                                               \
    "add     r12, r3, lr\n\t"                                                              \
    "add     r8, r12, lr\n\t"                                                              \
    "push    {r8-r11}\n\t"              /* frame now at sp + 16 */                         \
    "2:\n\t"                                                                               \
    "ldr     r8, [r0], #4\n\t"                                                             \
    "sxtb16  r9, r8\n\t"                                                                   \
    "sxtb16  r8, r8, ror #8\n\t"                                                           \
    MSF_PW1_ROW_ASM(W4, "r1", "r4") MSF_PW1_ROW_ASM(W4, "r2", "r5")                        \
    MSF_PW1_ROW_ASM(W4, "r3", "r6") MSF_PW1_ROW_ASM(W4, "r12", "r7")                       \
    "ldr     r10, [sp, #28]\n\t"                                                           \
    "cmp     r0, r10\n\t"                                                                  \
    "bne     2b\n\t"                                                                       \
    "ldr     r11, [sp, #24]\n\t"                                                           \
    "cmp     r11, #0\n\t"                                                                  \
    "beq     4f\n\t"                                                                       \
    "3:\n\t"                                                                               \
    "ldrsb   r8, [r0], #1\n\t"                                                             \
    W1("r1", "r9")                                                                         \
    "smlabb  r4, r8, r9, r4\n\t"                                                           \
    W1("r2", "r9")                                                                         \
    "smlabb  r5, r8, r9, r5\n\t"                                                           \
    W1("r3", "r9")                                                                         \
    "smlabb  r6, r8, r9, r6\n\t"                                                           \
    W1("r12", "r9")                                                                        \
    "smlabb  r7, r8, r9, r7\n\t"                                                           \
    "subs    r11, r11, #1\n\t"                                                             \
    "bne     3b\n\t"                                                                       \
    "4:\n\t"                                                                               \
    "pop     {r8-r11}\n\t"                                                                 \
    MSF_REQUANT4_STORE_ASM                                                                 \
    "subs    r11, r11, #1\n\t"                                                             \
    "bne     1b\n\t"                                                                       \
    "add     sp, sp, #16\n\t"                                                              \
    "pop     {r4-r11, pc}\n\t"

MSF_ASM_FUNCTION(msf_pw_quads_dsp, pw1_job, MSF_PW_QUADS_ASM(MSF_W4_S8, MSF_W1_S8))
MSF_ASM_FUNCTION(msf_pw_quads_s16_dsp, pw1_job, MSF_PW_QUADS_ASM(MSF_W4_S16, MSF_W1_S16))
#undef MSF_PW_PAIRS_ASM
#undef MSF_PW_QUADS_ASM
#undef MSF_PW1_ROW_ASM

#endif

/* All output channels of two input pixels, in C. Outputs are computed before they are
 * stored: an int8 store may alias the parameters, which would force them to be reloaded. */
MSF_C_LOOPS void pw_pair_c(const msf_conv_params *p, int32_t cin, int32_t cout,
                                         const int8_t *x0, const int8_t *x1, int8_t *d0,
                                         int8_t *d1, int fast)
{
    const int8_t *w = p->weights;
    const msf_channel_params *q = p->channels;
    int32_t co = 0;
    for (; co + 1 < cout; co += 2) {
        int32_t acc[4];
        acc[0] = acc[2] = q[0].kernel_sum;
        acc[1] = acc[3] = q[1].kernel_sum;
        msf_dot_2x2_s8(x0, x1, w, w + cin, cin, acc);
        const int32_t v00 = msf_conv_output(acc[0], p, &q[0], co, fast);
        const int32_t v10 = msf_conv_output(acc[2], p, &q[0], co, fast);
        const int32_t v01 = msf_conv_output(acc[1], p, &q[1], co + 1, fast);
        const int32_t v11 = msf_conv_output(acc[3], p, &q[1], co + 1, fast);
        d0[co] = (int8_t)v00;
        d0[co + 1] = (int8_t)v01;
        d1[co] = (int8_t)v10;
        d1[co + 1] = (int8_t)v11;
        w += 2 * cin;
        q += 2;
    }
    if (co < cout) {
        int32_t acc[2];
        acc[0] = acc[1] = q[0].kernel_sum;
        msf_dot_1x2_s8(w, x0, x1, cin, acc); /* one weight row against both pixels */
        const int32_t v0 = msf_conv_output(acc[0], p, &q[0], co, fast);
        const int32_t v1 = msf_conv_output(acc[1], p, &q[0], co, fast);
        d0[co] = (int8_t)v0;
        d1[co] = (int8_t)v1;
    }
}

/* All output channels of one input pixel, in C. */
MSF_C_LOOPS void pw_single_c(const msf_conv_params *p, int32_t cin, int32_t cout,
                                           const int8_t *x, int8_t *d, int fast)
{
    const int8_t *w = p->weights;
    const msf_channel_params *q = p->channels;
    int32_t co;
    for (co = 0; co + 1 < cout; co += 2) {
        int32_t acc[2];
        acc[0] = q[0].kernel_sum;
        acc[1] = q[1].kernel_sum;
        msf_dot_1x2_s8(x, w, w + cin, cin, acc);
        const int32_t v0 = msf_conv_output(acc[0], p, &q[0], co, fast);
        const int32_t v1 = msf_conv_output(acc[1], p, &q[1], co + 1, fast);
        d[co] = (int8_t)v0;
        d[co + 1] = (int8_t)v1;
        w += 2 * cin;
        q += 2;
    }
    if (co < cout) {
        const int32_t acc = msf_dot_1x1_s8(x, w, cin, q[0].kernel_sum);
        d[co] = (int8_t)msf_conv_output(acc, p, &q[0], co, fast);
    }
}

/* All output channels of two input pixels. */
static inline MSF_ALWAYS_INLINE void pw_pair(const msf_conv_params *p, int32_t cin, int32_t cout,
                                             const int8_t *x0, const int8_t *x1, int8_t *d0,
                                             int8_t *d1, int fast)
{
#if MSF_DSP_ASM
    if (fast && cin >= 4 && cout >= 2) {
        const int wide = p->weights_s16 != NULL;
        const int32_t wstep = wide ? msf_wide_row_bytes(cin) : cin;
        const int8_t *w = wide ? (const int8_t *)p->weights_s16 : p->weights;
        void (*const run)(const pw_job *) = wide ? msf_pw_pairs_s16_dsp : msf_pw_pairs_dsp;
        pw_job job = {x0, x1, d0, d1, w, p->channels, cout >> 1, cin, wstep};
        run(&job);
        if (cout & 1) { /* the last pair again one channel lower: cout - 2 is stored twice */
            const int32_t c = cout - 2;
            job.d0 = d0 + c;
            job.d1 = d1 + c;
            job.w = w + c * wstep;
            job.q = p->channels + c;
            job.pairs = 1;
            run(&job);
        }
        return;
    }
#endif
    pw_pair_c(p, cin, cout, x0, x1, d0, d1, fast);
}

/* All output channels of one input pixel. */
static inline MSF_ALWAYS_INLINE void pw_single(const msf_conv_params *p, int32_t cin,
                                               int32_t cout, const int8_t *x, int8_t *d, int fast)
{
#if MSF_DSP_ASM
    if (fast && cin >= 4 && cout >= 4) {
        const int wide = p->weights_s16 != NULL;
        const int32_t wstep = wide ? msf_wide_row_bytes(cin) : cin;
        const int8_t *w = wide ? (const int8_t *)p->weights_s16 : p->weights;
        void (*const run)(const pw1_job *) = wide ? msf_pw_quads_s16_dsp : msf_pw_quads_dsp;
        pw1_job job = {x, cin, w, p->channels, d, cout >> 2, wstep};
        run(&job);
        if (cout & 3) { /* the last group again, ending at the last channel */
            const int32_t c = cout - 4;
            job.w = w + c * wstep;
            job.q = p->channels + c;
            job.d = d + c;
            job.quads = 1;
            run(&job);
        }
        return;
    }
#endif
    pw_single_c(p, cin, cout, x, d, fast);
}

static inline MSF_ALWAYS_INLINE void pw_region(const msf_window *in, const msf_conv_params *p,
                                               msf_window *out, int32_t oy0, int32_t ox0,
                                               int32_t oh, int32_t ow, int fast)
{
    const int32_t cin = in->c, cout = out->c;
    const int32_t ix0 = ox0 * p->stride_w - p->pad_left;
    const int32_t src_step = p->stride_w * cin;
    /* whether every column of the region reads an input pixel (no padding columns) */
    const int cols_inside = ix0 >= 0 && ix0 + (ow - 1) * p->stride_w < in->tensor_w;
    const int8_t *pend_src = NULL; /* a pixel waiting for a partner */
    int8_t *pend_dst = NULL;
    int32_t oy, ox;

    for (oy = oy0; oy < oy0 + oh; oy++) {
        const int32_t iy = oy * p->stride_h - p->pad_top;
        const int row_valid = iy >= 0 && iy < in->tensor_h;
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        if (row_valid && cols_inside) {
            const int8_t *src = msf_window_row(in, iy) + (ix0 - in->x0) * cin;
            for (ox = 0; ox < ow; ox++, src += src_step, dst += cout) {
                if (pend_src == NULL) {
                    pend_src = src;
                    pend_dst = dst;
                } else {
                    pw_pair(p, cin, cout, pend_src, src, pend_dst, dst, fast);
                    pend_src = NULL;
                }
            }
            continue;
        }
        /* a row with padding pixels: a padding pixel is a zero-point input */
        int32_t ix = ix0;
        for (ox = 0; ox < ow; ox++, dst += cout, ix += p->stride_w) {
            if (!row_valid || ix < 0 || ix >= in->tensor_w) {
                pw_padding(p, cout, dst);
                continue;
            }
            const int8_t *src = msf_window_pixel(in, iy, ix);
            if (pend_src == NULL) {
                pend_src = src;
                pend_dst = dst;
            } else {
                pw_pair(p, cin, cout, pend_src, src, pend_dst, dst, fast);
                pend_src = NULL;
            }
        }
    }
    if (pend_src != NULL) {
        pw_single(p, cin, cout, pend_src, pend_dst, fast);
    }
}

void msf_conv_vectors_s8(const msf_conv_params *p, int32_t k, int32_t cout, const int8_t *x0,
                         const int8_t *x1, int8_t *d0, int8_t *d1)
{
    if (msf_conv_fast_output(p)) {
        if (x1 != NULL) {
            pw_pair(p, k, cout, x0, x1, d0, d1, 1);
        } else {
            pw_single(p, k, cout, x0, d0, 1);
        }
    } else if (x1 != NULL) {
        pw_pair(p, k, cout, x0, x1, d0, d1, 0);
    } else {
        pw_single(p, k, cout, x0, d0, 0);
    }
}

void msf_convolve_1x1_s8(const msf_window *in, const msf_conv_params *p, msf_window *out,
                         int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    if (msf_conv_fast_output(p)) {
        pw_region(in, p, out, oy0, ox0, oh, ow, 1);
    } else {
        pw_region(in, p, out, oy0, ox0, oh, ow, 0);
    }
}
