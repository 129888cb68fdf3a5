/* Pointwise convolution: no im2col, each output pixel is a dot product of one input pixel.
 *
 * The region's pixels are taken in pairs in row-major order (the two may lie in different
 * rows, so a one-column region pairs vertical neighbours) and the output channels in pairs:
 * a 2x2 block of accumulators per pass, started at the precomputed kernel sums so the inner
 * loop carries no input offset. A pixel left without a partner takes four channels per pass.
 * The same dot products serve the general convolution's im2col columns (msf_conv_vectors_s8).
 * With the wide C blocks (MSF_WIDE_C: RISC-V...) the pixels go three at a time against four
 * channels (twelve accumulators in registers), and the general convolution's 3-row windows
 * are read in place (msf_conv_windows_s8). */
#include "msf_nnsupport.h"
#include "msf_dsp_asm.h"

#if defined(__GNUC__) && !defined(__clang__)
/* GCC's pre-allocation scheduling otherwise stretches the unrolled loads' live ranges into
 * spills (RISC-V) */
#pragma GCC optimize("sched-pressure")
#if defined(__riscv)
/* RV32 has the registers for the accumulator blocks but not for every load this scheduling
 * pass hoists ahead of the multiplies (the core issues in order, so nothing is lost), nor for
 * the extra induction variables and hoisted tail tests of the tree loop optimisations, which
 * spill around every block */
#pragma GCC optimize("no-schedule-insns")
#pragma GCC optimize("no-tree-loop-optimize")
#endif
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

#if !MSF_WIDE_C

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

    if (cols_inside && oy0 * p->stride_h - p->pad_top >= 0 &&
        (oy0 + oh - 1) * p->stride_h - p->pad_top < in->tensor_h && in->ring_rows == 0 &&
        out->ring_rows == 0) {
        /* no padding pixel and no ring: rows at fixed steps in both windows (a one-column
         * region, as hcache runs, pairs vertical neighbours without per-row addressing) */
        const int8_t *src_row = msf_window_pixel(in, oy0 * p->stride_h - p->pad_top, ix0);
        int8_t *dst_row = msf_window_pixel(out, oy0, ox0);
        const int32_t src_row_step = p->stride_h * in->row_stride;
        for (oy = 0; oy < oh; oy++, src_row += src_row_step, dst_row += out->row_stride) {
            const int8_t *src = src_row;
            int8_t *dst = dst_row;
            for (ox = 0; ox < ow; ox++, src += src_step, dst += cout) {
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
        return;
    }
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

#else /* MSF_WIDE_C */

/* Without SIMD multiply-accumulates (RISC-V...) every product costs a load, a multiply and
 * an add, so what a block of outputs saves is loads and loop overhead: up to three input
 * vectors (pixels, or im2col columns) against up to four weight rows (output channels) load
 * each input byte once for every row and each weight byte once for every vector, the up to
 * twelve int32 accumulators a<vector><row> staying in registers. `npix` and `nrow` are
 * constants wherever a block is instantiated, so the unused accumulators, loads and pointers
 * fold away. */

/* Statement S(i, j) for every vector i < npix and weight row j < nrow. */
#define MSF_PW_EACH(S)                                                                      \
    do {                                                                                    \
        S(0, 0);                                                                            \
        if (npix > 1) S(1, 0);                                                              \
        if (npix > 2) S(2, 0);                                                              \
        if (nrow > 1) {                                                                     \
            S(0, 1);                                                                        \
            if (npix > 1) S(1, 1);                                                          \
            if (npix > 2) S(2, 1);                                                          \
        }                                                                                   \
        if (nrow > 2) {                                                                     \
            S(0, 2);                                                                        \
            if (npix > 1) S(1, 2);                                                          \
            if (npix > 2) S(2, 2);                                                          \
        }                                                                                   \
        if (nrow > 3) {                                                                     \
            S(0, 3);                                                                        \
            if (npix > 1) S(1, 3);                                                          \
            if (npix > 2) S(2, 3);                                                          \
        }                                                                                   \
    } while (0)
/* Element n of the vectors against weight row j (one weight load for every vector); rows in
 * turn, so that only one weight is live at a time beside the accumulators. */
#define MSF_PW_ROW(j, n)                                                                    \
    do {                                                                                    \
        const int32_t wv = w##j[n];                                                         \
        a0##j += xv0 * wv;                                                                  \
        if (npix > 1) a1##j += xv1 * wv;                                                    \
        if (npix > 2) a2##j += xv2 * wv;                                                    \
    } while (0)
#define MSF_PW_STEP(n)                                                                      \
    do {                                                                                    \
        const int32_t xv0 = x0[n];                                                          \
        const int32_t xv1 = npix > 1 ? x1[n] : 0;                                           \
        const int32_t xv2 = npix > 2 ? x2[n] : 0;                                           \
        MSF_PW_ROW(0, n);                                                                   \
        if (nrow > 1) MSF_PW_ROW(1, n);                                                     \
        if (nrow > 2) MSF_PW_ROW(2, n);                                                     \
        if (nrow > 3) MSF_PW_ROW(3, n);                                                     \
    } while (0)
#define MSF_PW_ADVANCE(n)                                                                   \
    do {                                                                                    \
        x0 += n;                                                                            \
        if (npix > 1) x1 += n;                                                              \
        if (npix > 2) x2 += n;                                                              \
        w0 += n;                                                                            \
        if (nrow > 1) w1 += n;                                                              \
        if (nrow > 2) w2 += n;                                                              \
        if (nrow > 3) w3 += n;                                                              \
    } while (0)
#define MSF_PW_INIT(i, j) (a##i##j = q[j].kernel_sum)
/* pixels sharing a channel: its doubled multiplier formed once (msf_conv_output_shared) */
#define MSF_PW_OUTPUT(i, j)                                                                 \
    (a##i##j = npix > 1 ? msf_conv_output_shared(a##i##j, p, &q[j], co + j, fast)           \
                        : msf_conv_output(a##i##j, p, &q[j], co + j, fast))
#define MSF_PW_STORE(i, j) (d##i[co + j] = (int8_t)a##i##j)

/* One segment of seg_len elements: eight per loop pass (one pointer step each), the
 * seg_len % 8 after the loop unrolled, without a count. */
#define MSF_PW_SEGMENT(seg_len)                                                             \
    do {                                                                                    \
        const int8_t *const end = x0 + ((seg_len) & ~7);                                    \
        while (x0 != end) {                                                                 \
            MSF_PW_STEP(0);                                                                 \
            MSF_PW_STEP(1);                                                                 \
            MSF_PW_STEP(2);                                                                 \
            MSF_PW_STEP(3);                                                                 \
            MSF_PW_STEP(4);                                                                 \
            MSF_PW_STEP(5);                                                                 \
            MSF_PW_STEP(6);                                                                 \
            MSF_PW_STEP(7);                                                                 \
            MSF_PW_ADVANCE(8);                                                              \
        }                                                                                   \
        if ((seg_len) & 4) {                                                                \
            MSF_PW_STEP(0);                                                                 \
            MSF_PW_STEP(1);                                                                 \
            MSF_PW_STEP(2);                                                                 \
            MSF_PW_STEP(3);                                                                 \
            MSF_PW_ADVANCE(4);                                                              \
        }                                                                                   \
        if ((seg_len) & 2) {                                                                \
            MSF_PW_STEP(0);                                                                 \
            MSF_PW_STEP(1);                                                                 \
            MSF_PW_ADVANCE(2);                                                              \
        }                                                                                   \
        if ((seg_len) & 1) {                                                                \
            MSF_PW_STEP(0);                                                                 \
            MSF_PW_ADVANCE(1);                                                              \
        }                                                                                   \
    } while (0)
#define MSF_PW_SKIP(n)                                                                      \
    do {                                                                                    \
        x0 += n;                                                                            \
        if (npix > 1) x1 += n;                                                              \
        if (npix > 2) x2 += n;                                                              \
    } while (0)

/* Output channels [co, co + nrow) of npix vectors of k int8 (x0, x1, x2; unused ones may be
 * NULL) into d0, d1, d2: the dot products with the weight rows (Cout, k), started at the
 * kernel sums. `rows` is 1 for a pointwise convolution's input pixels (seg_len = k), 3 for
 * windows of a 3-row convolution read in place: three segments of seg_len int8, seg_skip
 * bytes apart (rows and npix are constants where a block is instantiated). The outputs are
 * all computed before any is stored: an int8 store may alias the parameters, which would
 * force them to be reloaded. */
static inline MSF_ALWAYS_INLINE void pw_block(const msf_conv_params *p, int32_t k, int32_t co,
                                              const int8_t *x0, const int8_t *x1,
                                              const int8_t *x2, int8_t *d0, int8_t *d1,
                                              int8_t *d2, int npix, int nrow, int fast,
                                              int rows, int32_t seg_len, int32_t seg_skip)
{
    const msf_channel_params *q = p->channels + co;
    const int8_t *w0 = p->weights + co * k, *w1 = NULL, *w2 = NULL, *w3 = NULL;
    int32_t a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
    int32_t a20 = 0, a21 = 0, a22 = 0, a23 = 0;
    if (nrow > 1) w1 = w0 + k;
    if (nrow > 2) w2 = w1 + k;
    if (nrow > 3) w3 = w2 + k;
    MSF_PW_EACH(MSF_PW_INIT);
    MSF_PW_SEGMENT(seg_len);
    if (rows == 3) {
        MSF_PW_SKIP(seg_skip);
        MSF_PW_SEGMENT(seg_len);
        MSF_PW_SKIP(seg_skip);
        MSF_PW_SEGMENT(seg_len);
    }
    MSF_PW_EACH(MSF_PW_OUTPUT);
    MSF_PW_EACH(MSF_PW_STORE);
}
#undef MSF_PW_SEGMENT
#undef MSF_PW_SKIP
#undef MSF_PW_EACH
#undef MSF_PW_ROW
#undef MSF_PW_STEP
#undef MSF_PW_ADVANCE
#undef MSF_PW_INIT
#undef MSF_PW_OUTPUT
#undef MSF_PW_STORE

/* All output channels of npix vectors: four channels per block, then the last cout % 4
 * in one block. */
static inline MSF_ALWAYS_INLINE void pw_vectors_c(const msf_conv_params *p, int32_t k,
                                                  int32_t cout, const int8_t *const x[3],
                                                  int8_t *const d[3], int npix, int fast,
                                                  int rows, int32_t seg_len, int32_t seg_skip)
{
    const int8_t *x0 = x[0], *x1 = npix > 1 ? x[1] : NULL, *x2 = npix > 2 ? x[2] : NULL;
    int8_t *d0 = d[0], *d1 = npix > 1 ? d[1] : NULL, *d2 = npix > 2 ? d[2] : NULL;
    int32_t co;
    for (co = 0; co + 4 <= cout; co += 4) {
        pw_block(p, k, co, x0, x1, x2, d0, d1, d2, npix, 4, fast, rows, seg_len, seg_skip);
    }
    switch (cout - co) {
    case 3:
        pw_block(p, k, co, x0, x1, x2, d0, d1, d2, npix, 3, fast, rows, seg_len, seg_skip);
        break;
    case 2:
        pw_block(p, k, co, x0, x1, x2, d0, d1, d2, npix, 2, fast, rows, seg_len, seg_skip);
        break;
    case 1:
        pw_block(p, k, co, x0, x1, x2, d0, d1, d2, npix, 1, fast, rows, seg_len, seg_skip);
        break;
    default:
        break;
    }
}

/* All output channels of n (1 to 3) vectors x[i] of k int8 into d[i], each block instantiated
 * once. Out of line, one function per instantiation: the caller's loop state stays out of the
 * blocks' registers and each frame holds only its own block's spills. */
#define MSF_PW_VECTORS(name, npix, fast)                                                    \
    static __attribute__((noinline)) void name(const msf_conv_params *p, int32_t k,          \
                                               int32_t cout, const int8_t *const x[3],       \
                                               int8_t *const d[3])                           \
    {                                                                                       \
        pw_vectors_c(p, k, cout, x, d, npix, fast, 1, k, 0);                                \
    }
MSF_PW_VECTORS(pw_vectors1_fast, 1, 1)
MSF_PW_VECTORS(pw_vectors2_fast, 2, 1)
MSF_PW_VECTORS(pw_vectors3_fast, 3, 1)
MSF_PW_VECTORS(pw_vectors1, 1, 0)
MSF_PW_VECTORS(pw_vectors2, 2, 0)
MSF_PW_VECTORS(pw_vectors3, 3, 0)
#undef MSF_PW_VECTORS

static void pw_vectors(const msf_conv_params *p, int32_t k, int32_t cout,
                       const int8_t *const x[3], int8_t *const d[3], int32_t n)
{
    if (msf_conv_fast_output(p)) {
        (n == 3 ? pw_vectors3_fast : n == 2 ? pw_vectors2_fast : pw_vectors1_fast)(
            p, k, cout, x, d);
    } else {
        (n == 3 ? pw_vectors3 : n == 2 ? pw_vectors2 : pw_vectors1)(p, k, cout, x, d);
    }
}

/* The same for windows of a 3-row convolution with fast outputs read in place: three
 * segments of row_len int8, row_step bytes apart (msf_nnsupport.h). */
#define MSF_PW_WINDOWS(name, npix)                                                          \
    static __attribute__((noinline)) void name(const msf_conv_params *p,                    \
                                               int32_t row_len, int32_t row_step,            \
                                               int32_t cout, const int8_t *const x[3],       \
                                               int8_t *const d[3])                           \
    {                                                                                       \
        pw_vectors_c(p, 3 * row_len, cout, x, d, npix, 1, 3, row_len, row_step - row_len); \
    }
MSF_PW_WINDOWS(pw_windows1_fast, 1)
MSF_PW_WINDOWS(pw_windows2_fast, 2)
MSF_PW_WINDOWS(pw_windows3_fast, 3)
#undef MSF_PW_WINDOWS

void msf_conv_windows_s8(const msf_conv_params *p, int32_t row_len, int32_t row_step,
                         int32_t cout, const int8_t *const x[3], int8_t *const d[3], int32_t n)
{
    (n == 3 ? pw_windows3_fast : n == 2 ? pw_windows2_fast : pw_windows1_fast)(
        p, row_len, row_step, cout, x, d);
}

/* pw_padding out of line: its general requantisation stays out of the region loop's frame. */
static __attribute__((noinline)) void pw_padding_c(const msf_conv_params *p, int32_t cout,
                                                   int8_t *dst)
{
    pw_padding(p, cout, dst);
}

/* The region's pixels in row-major order, three at a time (a one-column region groups
 * vertical neighbours), the last one or two together. */
static void pw_region(const msf_window *in, const msf_conv_params *p, msf_window *out,
                      int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    const int32_t cin = in->c, cout = out->c;
    const int32_t ix0 = ox0 * p->stride_w - p->pad_left;
    const int32_t iy_first = oy0 * p->stride_h - p->pad_top;
    const int32_t iy_last = (oy0 + oh - 1) * p->stride_h - p->pad_top;
    const int32_t src_step = p->stride_w * cin;
    /* whether every column of the region reads an input pixel (no padding columns) */
    const int cols_inside = ix0 >= 0 && ix0 + (ow - 1) * p->stride_w < in->tensor_w;
    const int8_t *xs[3]; /* pixels waiting for the group to fill */
    int8_t *ds[3];
    int32_t n = 0, oy, ox;

    if (cols_inside && iy_first >= 0 && iy_last < in->tensor_h && in->ring_rows == 0 &&
        out->ring_rows == 0) {
        /* no padding pixel and no ring: rows at fixed steps in both windows */
        const int8_t *src_row = msf_window_pixel(in, iy_first, ix0);
        int8_t *dst_row = msf_window_pixel(out, oy0, ox0);
        const int32_t src_row_step = p->stride_h * in->row_stride;
        for (oy = 0; oy < oh; oy++, src_row += src_row_step, dst_row += out->row_stride) {
            const int8_t *src = src_row;
            int8_t *dst = dst_row;
            for (ox = 0; ox < ow; ox++, src += src_step, dst += cout) {
                xs[n] = src;
                ds[n] = dst;
                if (++n == 3) {
                    pw_vectors(p, cin, cout, xs, ds, 3);
                    n = 0;
                }
            }
        }
    } else {
        for (oy = oy0; oy < oy0 + oh; oy++) {
            const int32_t iy = oy * p->stride_h - p->pad_top;
            const int row_valid = iy >= 0 && iy < in->tensor_h;
            int8_t *dst = msf_window_pixel(out, oy, ox0);
            int32_t ix = ix0;
            for (ox = 0; ox < ow; ox++, dst += cout, ix += p->stride_w) {
                if (!row_valid || ix < 0 || ix >= in->tensor_w) {
                    pw_padding_c(p, cout, dst); /* a padding pixel is a zero-point input */
                    continue;
                }
                xs[n] = msf_window_pixel(in, iy, ix);
                ds[n] = dst;
                if (++n == 3) {
                    pw_vectors(p, cin, cout, xs, ds, 3);
                    n = 0;
                }
            }
        }
    }
    if (n > 0) {
        pw_vectors(p, cin, cout, xs, ds, n);
    }
}

void msf_conv_vectors_s8(const msf_conv_params *p, int32_t k, int32_t cout, const int8_t *x0,
                         const int8_t *x1, int8_t *d0, int8_t *d1)
{
    const int8_t *const xs[3] = {x0, x1, NULL};
    int8_t *const ds[3] = {d0, d1, NULL};
    pw_vectors(p, k, cout, xs, ds, x1 != NULL ? 2 : 1);
}

void msf_convolve_1x1_s8(const msf_window *in, const msf_conv_params *p, msf_window *out,
                         int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    pw_region(in, p, out, oy0, ox0, oh, ow);
}

#endif /* MSF_WIDE_C */
