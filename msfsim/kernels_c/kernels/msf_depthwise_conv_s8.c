/* Depthwise convolution, channel multiplier 1.
 *
 * An output pixel whose kernel window lies inside the tensor starts its accumulators at the
 * precomputed kernel sums, so its taps carry no input offset; a 3x3 window is fully unrolled.
 * A pixel at the tensor border clamps its window to the tensor once, starts at the bias and
 * adds the input offset per tap, so padding contributes nothing and costs nothing. On DSP
 * cores four channels go through each pass: one word of input and one of weights per tap,
 * SXTB16 lanes into SMLABB / SMLATT; at the border SXTAB16 adds the offset in the same
 * instruction, so a 3x3 border window (2x3, 3x2, 2x2 taps, fully unrolled in assembly) costs
 * per tap what an interior one does. One assembly call does every channel of a pixel (C % 4
 * left over: the last four channels once more), and a 3x3 layer's pixels go in runs that share
 * one job: the border rows, the border columns, then the interior row by row, each pixel a few
 * pointer steps from the last. Other kernel sizes (5x5, 7x7) and windows one tap high or wide
 * run one loop over the window's rows and taps in assembly, four channels per pass, in both
 * forms (kernel sums, or bias plus offset), with int8 or pre-widened weights (one LDRD a tap
 * instead of a load and two SXTB16). Elsewhere the C loops take four channels per
 * pass, and with the wide C blocks (MSF_WIDE_C: RISC-V...) a 3x3 layer with fast outputs takes
 * interior pixels two rows at a time: the two pixels one above the other share each weight
 * load and, at stride 1, two of their three input rows. */
#include "msf_nnsupport.h"
#include "msf_dsp_asm.h"

#if defined(__GNUC__) && !defined(__clang__)
/* GCC's pre-allocation scheduling otherwise stretches the unrolled loads' live ranges into
 * spills (RISC-V) */
#pragma GCC optimize("sched-pressure")
#if defined(__riscv)
/* RV32 has registers for the accumulator blocks but not for every load the pre-allocation
 * scheduler hoists ahead of the multiplies; the core issues in order, so nothing is lost */
#pragma GCC optimize("no-schedule-insns")
#endif
#endif

int32_t msf_depthwise_conv_s8_get_buffer_size(const msf_conv_params *p, int32_t channels)
{
    (void)p;
    (void)channels;
    return 0;
}

#if MSF_DSP_ASM
/* The depthwise assembly's channel count for C >= 4 channels: C - 4, which is
 * (C / 4 - 1) << 2 | C % 4, the groups of four channels after the first and the channels left
 * after the last group. The assembly counts it down by four per group; with channels left
 * (C % 4) it then backs every pointer up to the last four channels and runs that group once
 * more: channels computed twice get the same values, and one call does the whole pixel. */
static inline MSF_ALWAYS_INLINE int32_t dw_asm_count(int32_t ch)
{
    return ch - 4;
}

/* Work of the kxk assembly (msf_dwkxk[_edge][_s16]_dsp): the C >= 4 channels of one output
 * pixel whose window (rows x cols taps inside the tensor) has its rows a fixed stride apart.
 * The first four fields are also where the assembly keeps its group state while the taps use
 * their registers (the job is its only frame beyond the saved registers, so that it adds
 * little stack); it reads each field at the offset asserted below. */
typedef struct {
    const msf_channel_params *q; /* channel parameters of the first group */
    int8_t *d;                   /* the output at the first group */
    int32_t count;               /* dw_asm_count(C): C - 4, so C itself needs no field */
    const int32_t *bias;         /* edge variants: the bias at the first group (the
                                    accumulators' start) */
    const int8_t *src;           /* the window's first tap, first group */
    intptr_t w;                  /* int8 weights: that tap's weights - src (a tap's weights lie
                                    this far from its input along a window row); pre-widened:
                                    the address of that tap's four int16 */
    int32_t wgroup;              /* pre-widened: the bytes of a group's weights (kh * kw taps),
                                    from a group's first tap to the next group's */
    uint32_t off2;               /* edge variants: input_offset in both int16 lanes */
    int32_t span;                /* cols * C: one window row of taps */
    int32_t row_skip;            /* input row stride - span */
    int32_t w_step;              /* int8: weight row stride - input row stride; pre-widened:
                                    the bytes of the taps a window row skips */
    int32_t rows;                /* >= 1 */
} dwk_job;
_Static_assert(offsetof(dwk_job, q) == 0, "dwk_job layout read by the assembly");
_Static_assert(offsetof(dwk_job, d) == 4, "dwk_job layout read by the assembly");
_Static_assert(offsetof(dwk_job, count) == 8, "dwk_job layout read by the assembly");
_Static_assert(offsetof(dwk_job, bias) == 12, "dwk_job layout read by the assembly");
_Static_assert(offsetof(dwk_job, src) == 16, "dwk_job layout read by the assembly");
_Static_assert(offsetof(dwk_job, w) == 20, "dwk_job layout read by the assembly");
_Static_assert(offsetof(dwk_job, wgroup) == 24, "dwk_job layout read by the assembly");
_Static_assert(offsetof(dwk_job, off2) == 28, "dwk_job layout read by the assembly");
_Static_assert(offsetof(dwk_job, span) == 32, "dwk_job layout read by the assembly");
_Static_assert(offsetof(dwk_job, row_skip) == 36, "dwk_job layout read by the assembly");
_Static_assert(offsetof(dwk_job, w_step) == 40, "dwk_job layout read by the assembly");
_Static_assert(offsetof(dwk_job, rows) == 44, "dwk_job layout read by the assembly");
/* Pre-widened depthwise weights (any kernel): per group of four channels, the kh x kw taps as
 * MSF_DW_TAP_S16 int16 each, the last group (C % 4 left) right after the aligned ones; a 3x3
 * layer's group is MSF_DW3X3_GROUP_S16 int16. The assembly loads a tap with one LDRD and
 * steps 8 bytes a tap (the kxk loop's post-index, the 3x3 loops' tap offsets). */
#define MSF_DW_TAP_S16 4
#define MSF_DW_TAP_S16_BYTES 8
_Static_assert(MSF_DW_TAP_S16 * sizeof(int16_t) == MSF_DW_TAP_S16_BYTES, "one LDRD a tap");

/* The kxk window, four channels per group, for Cortex-M DSP cores with the fast
 * requantisation. Tap loop registers: r0 the tap's input, r1 its weights (int8: their
 * distance from r0; pre-widened: their address, stepped by the load), r2 the end of the
 * window row, r3 rows left, r8 C, r9 the input offset in both lanes (edge variants), r4-r7
 * the accumulators, r10-r12 and lr temporaries; the job's address is the one word pushed
 * beyond the saved registers. Between groups r9-r12 hold the channel parameters, the output,
 * the count left (dw_asm_count) and the bias, kept in the job's first four words during the
 * taps. `START` loads the accumulators (kernel sums at r9, or the bias at r12 with
 * writeback); `LOAD_OFF` loads the offset's lanes into r9 (edge variants); `XEXT` widens the
 * input word (sxtb16, or sxtab16 adding r9); `WLOAD` / `WEXT` load the tap's weights as lr
 * (c0 c2) and r11 (c1 c3); `WNEXT` moves pre-widened weights' first tap on by a group (job
 * address in lr; r1 and r2 free). */
#define MSF_DWKXK_ASM(START, LOAD_OFF, XEXT, XOFF, WLOAD, WEXT, WNEXT)                      \
    "push    {r4-r11, lr}\n\t"                                                             \
    "push    {r0}\n\t"                                                                     \
    "ldm     r0, {r9-r12}\n\t"          /* channel parameters, output, count, bias */      \
    "add     r8, r11, #4\n\t"           /* C */                                            \
    "1:\n\t"                                                                               \
    START                                                                                  \
    "ldr     lr, [sp]\n\t"                                                                 \
    "stm     lr, {r9-r12}\n\t"                                                             \
    "ldrd    r0, r1, [lr, #16]\n\t"     /* the group's first tap, its weights */           \
    "ldr     r3, [lr, #44]\n\t"         /* rows */                                         \
    LOAD_OFF                                                                               \
    "2:\n\t"                                                                               \
    "ldr     r12, [sp]\n\t"                                                                \
    "ldr     r12, [r12, #32]\n\t"                                                          \
    "add     r2, r0, r12\n\t"           /* end of the window row */                        \
    "3:\n\t"                                                                               \
    "ldr     r10, [r0]\n\t"                                                                \
    WLOAD                                                                                  \
    "add     r0, r0, r8\n\t"                                                               \
    XEXT "  r12, " XOFF "r10\n\t"                                                          \
    XEXT "  r10, " XOFF "r10, ror #8\n\t"                                                  \
    WEXT                                                                                   \
    "smlabb  r4, r12, lr, r4\n\t"                                                          \
    "smlatt  r6, r12, lr, r6\n\t"                                                          \
    "smlabb  r5, r10, r11, r5\n\t"                                                         \
    "smlatt  r7, r10, r11, r7\n\t"                                                         \
    "cmp     r0, r2\n\t"                                                                   \
    "bne     3b\n\t"                                                                       \
    "ldr     r12, [sp]\n\t"                                                                \
    "ldrd    r12, lr, [r12, #36]\n\t"   /* row_skip, w_step */                             \
    "add     r0, r0, r12\n\t"                                                              \
    "add     r1, r1, lr\n\t"                                                               \
    "subs    r3, r3, #1\n\t"                                                               \
    "bne     2b\n\t"                                                                       \
    "ldr     lr, [sp]\n\t"                                                                 \
    WNEXT                                                                                  \
    "ldm     lr, {r9-r12}\n\t"                                                             \
    MSF_REQUANT4_STORE_ASM                                                                 \
    "ldr     lr, [sp]\n\t"                                                                 \
    "ldr     r0, [lr, #16]\n\t"                                                            \
    "add     r0, r0, #4\n\t"                                                               \
    "str     r0, [lr, #16]\n\t"         /* the next group's first tap */                   \
    "subs    r11, r11, #4\n\t"                                                             \
    "bpl     1b\n\t"                                                                       \
    "ands    r1, r11, #3\n\t"         /* channels left: back up to the last four */        \
    "beq     4f\n\t"                                                                       \
    "rsb     r1, r1, #4\n\t"                                                               \
    "sub     r0, r0, r1\n\t"                                                               \
    "str     r0, [lr, #16]\n\t"                                                            \
    "sub     r9, r9, r1, lsl #4\n\t"                                                       \
    "sub     r10, r10, r1\n\t"                                                             \
    "sub     r12, r12, r1, lsl #2\n\t"                                                     \
    "movs    r11, #0\n\t"                                                                  \
    "b       1b\n\t"                                                                       \
    "4:\n\t"                                                                               \
    "add     sp, sp, #4\n\t"                                                               \
    "pop     {r4-r11, pc}\n\t"

/* int8 weights (kh, kw, C): the tap's word r1 bytes past its input, widened */
#define MSF_DWKXK_W8 "ldr     r11, [r0, r1]\n\t"
#define MSF_DWKXK_W8_EXT "sxtb16  lr, r11\n\t" "sxtb16  r11, r11, ror #8\n\t"
/* pre-widened: the tap's 8 bytes, r1 stepped on to the next tap; per group, on to the next
 * group's first tap (the last group's follows the aligned ones, so channels left need no
 * back-up of r1) */
#define MSF_DWKXK_W16 "ldrd    lr, r11, [r1], #8\n\t"
#define MSF_DWKXK_W16_NEXT                                                                 \
    "ldrd    r1, r2, [lr, #20]\n\t"                                                        \
    "add     r1, r1, r2\n\t"                                                               \
    "str     r1, [lr, #20]\n\t"
/* the kernel sums, or the bias and the input offset (edge variants) */
#define MSF_DWKXK_SUMS                                                                     \
    "ldr     r4, [r9, #0]\n\t"                                                             \
    "ldr     r5, [r9, #16]\n\t"                                                            \
    "ldr     r6, [r9, #32]\n\t"                                                            \
    "ldr     r7, [r9, #48]\n\t"
#define MSF_DWKXK_BIAS "ldm     r12!, {r4-r7}\n\t"
#define MSF_DWKXK_OFF "ldr     r9, [lr, #28]\n\t"

/* inside the tensor: the accumulators start at the kernel sums */
MSF_ASM_FUNCTION(msf_dwkxk_dsp, dwk_job, MSF_DWKXK_ASM(
    MSF_DWKXK_SUMS, "", "sxtb16 ", "", MSF_DWKXK_W8, MSF_DWKXK_W8_EXT, ""))
MSF_ASM_FUNCTION(msf_dwkxk_s16_dsp, dwk_job, MSF_DWKXK_ASM(
    MSF_DWKXK_SUMS, "", "sxtb16 ", "", MSF_DWKXK_W16, "", MSF_DWKXK_W16_NEXT))
/* a window clipped to the tensor: the accumulators start at the bias, the taps add the input
 * offset as the input widens */
MSF_ASM_FUNCTION(msf_dwkxk_edge_dsp, dwk_job, MSF_DWKXK_ASM(
    MSF_DWKXK_BIAS, MSF_DWKXK_OFF, "sxtab16", "r9, ", MSF_DWKXK_W8, MSF_DWKXK_W8_EXT, ""))
MSF_ASM_FUNCTION(msf_dwkxk_edge_s16_dsp, dwk_job, MSF_DWKXK_ASM(
    MSF_DWKXK_BIAS, MSF_DWKXK_OFF, "sxtab16", "r9, ", MSF_DWKXK_W16, "", MSF_DWKXK_W16_NEXT))
#undef MSF_DWKXK_ASM
#undef MSF_DWKXK_W8
#undef MSF_DWKXK_W8_EXT
#undef MSF_DWKXK_W16
#undef MSF_DWKXK_W16_NEXT
#undef MSF_DWKXK_SUMS
#undef MSF_DWKXK_BIAS
#undef MSF_DWKXK_OFF

/* Taps [0, rows) x [0, cols) (>= 1 each) of one output pixel from the window's tap number
 * `tap` (ky * kw + kx) on, C >= 4, fast outputs, in the assembly when the window's rows do not
 * wrap around a ring (returns 1), else 0 and nothing done. src is that tap's input; the
 * accumulators start at the kernel sums (off == 0) or at the bias (which the caller
 * guarantees then). */
static inline MSF_ALWAYS_INLINE int dw_kxk_run(const msf_window *in, const msf_conv_params *p,
                                               const int8_t *src, int32_t tap, int32_t rows,
                                               int32_t cols, int32_t off, int8_t *dst, int wide)
{
    const int32_t ch = in->c, rs = in->row_stride;
    /* int8: two arrays, as integers */
    const intptr_t w = wide ? (intptr_t)(p->weights_s16 + tap * MSF_DW_TAP_S16)
                            : (intptr_t)(p->weights + tap * ch) - (intptr_t)src;
    if (in->ring_rows > 0 && src + (rows - 1) * rs >= in->data + in->ring_rows * rs) {
        return 0;
    }
    /* a compiler barrier: GCC otherwise starts the job's stores inside the ring check and
     * holds more registers, more stack under the assembly (-fstack-usage); the kernel size
     * is read after it */
    __asm__ volatile("" ::: "memory");
    const int32_t span = cols * ch;
    dwk_job job;
    job.q = p->channels;
    job.d = dst;
    job.count = dw_asm_count(ch);
    job.bias = p->bias;
    job.src = src;
    job.w = w;
    /* input_offset in [-127, 128] and x + input_offset in [-255, 255]: int16 lanes */
    job.off2 = ((uint32_t)off & 0xFFFFu) * 0x10001u;
    job.span = span;
    job.row_skip = rs - span;
    job.rows = rows;
    void (*run)(const dwk_job *);
    if (wide) {
        job.wgroup = p->kernel_h * p->kernel_w * MSF_DW_TAP_S16_BYTES;
        job.w_step = (p->kernel_w - cols) * MSF_DW_TAP_S16_BYTES;
        run = off == 0 ? msf_dwkxk_s16_dsp : msf_dwkxk_edge_s16_dsp;
    } else {
        job.w_step = p->kernel_w * ch - rs;
        run = off == 0 ? msf_dwkxk_dsp : msf_dwkxk_edge_dsp;
    }
    run(&job);
    return 1;
}

/* An interior pixel of a kxk layer (not 3x3) with fast outputs and C >= 4 (top-left tap at
 * src): dw_kxk_run. Out of line with a small frame: it sits at the kernel's deepest stack; each
 * weight form inlined apart, as a `wide` known only at run time holds more registers. */
static __attribute__((noinline)) int dw_kxk_dsp(const msf_window *in, const msf_conv_params *p,
                                                const int8_t *src, int8_t *dst)
{
    if (p->weights_s16 != NULL) {
        return dw_kxk_run(in, p, src, 0, p->kernel_h, p->kernel_w, 0, dst, 1);
    }
    return dw_kxk_run(in, p, src, 0, p->kernel_h, p->kernel_w, 0, dst, 0);
}
#endif


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
#else
    /* four channels per pass: one address per tap for four loads of input and of weights */
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
                a0 += (s[0] + off) * w[0];
                a1 += (s[1] + off) * w[1];
                a2 += (s[2] + off) * w[2];
                a3 += (s[3] + off) * w[3];
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
/* Pre-widened depthwise 3x3 weights per group of four channels: 9 taps x 4 int16, the last
 * group (C % 4 channels left) right after the aligned ones, where the assembly's weight
 * pointer ends up (it steps 72 bytes a group). */
#define MSF_DW3X3_GROUP_S16 (9 * MSF_DW_TAP_S16)
_Static_assert(MSF_DW3X3_GROUP_S16 * sizeof(int16_t) == 72, "the assembly's group step");

/* Work of the dw3x3 assembly (msf_dw3x3_dsp and the border variants msf_dw3x3_edge*_dsp):
 * the C >= 4 channels of one output pixel. The assembly reads each field at the byte offset
 * asserted below. */
typedef struct {
    const int8_t *r0, *r1, *r2;  /* the window's rows at its first column, first group (the
                                    border variants: the first tap inside the tensor; r2
                                    unused by two-row windows) */
    const void *w;               /* weights of that tap at the first group: (3, 3, C) int8 or
                                    the group's pre-widened taps (the _s16 variants) */
    int32_t ch;                  /* C, the stride between taps */
    const msf_channel_params *q; /* channel parameters of the first group */
    int8_t *d;                   /* the output at the first group */
    int32_t count;               /* dw_asm_count(C) (C < 2^15 for the border variants) */
    const int32_t *bias;         /* border variants: the bias at the first group (the
                                    accumulators' start) */
    uint32_t off2;               /* border variants: input_offset in both int16 lanes (the
                                    assembly reads the low one) */
} dw_job;
_Static_assert(offsetof(dw_job, r0) == 0, "dw_job layout read by the assembly");
_Static_assert(offsetof(dw_job, r1) == 4, "dw_job layout read by the assembly");
_Static_assert(offsetof(dw_job, r2) == 8, "dw_job layout read by the assembly");
_Static_assert(offsetof(dw_job, w) == 12, "dw_job layout read by the assembly");
_Static_assert(offsetof(dw_job, ch) == 16, "dw_job layout read by the assembly");
_Static_assert(offsetof(dw_job, q) == 20, "dw_job layout read by the assembly");
_Static_assert(offsetof(dw_job, d) == 24, "dw_job layout read by the assembly");
_Static_assert(offsetof(dw_job, count) == 28, "dw_job layout read by the assembly");
_Static_assert(offsetof(dw_job, bias) == 32, "dw_job layout read by the assembly");
_Static_assert(offsetof(dw_job, off2) == 36, "dw_job layout read by the assembly");
/* MSF_REQUANT4_STORE_ASM: one LDM of four words per channel */
_Static_assert(sizeof(msf_channel_params) == 16, "msf_channel_params read by the assembly");
_Static_assert(offsetof(msf_channel_params, kernel_sum) == 0, "msf_channel_params layout");
_Static_assert(offsetof(msf_channel_params, multiplier) == 4, "msf_channel_params layout");
_Static_assert(offsetof(msf_channel_params, rounding) == 8, "msf_channel_params layout");
_Static_assert(offsetof(msf_channel_params, rshift) == 12, "msf_channel_params layout");

/* One tap of four channels: the input word at `xaddr` widened into lanes c0 c2 | c1 c3 by
 * `xext` (sxtb16, or sxtab16 adding the int16 lanes of register `xoff`) against the tap's
 * weights in lr | r11, loaded by `wload`. */
#define MSF_DW_TAP_EXT_ASM(xaddr, wload, xext, xoff)                                        \
    "ldr     r10, " xaddr "\n\t"                                                            \
    wload                                                                                   \
    xext "  r12, " xoff "r10\n\t"                                                           \
    xext "  r10, " xoff "r10, ror #8\n\t"                                                   \
    "smlabb  r4, r12, lr, r4\n\t"                                                           \
    "smlatt  r6, r12, lr, r6\n\t"                                                           \
    "smlabb  r5, r10, r11, r5\n\t"                                                          \
    "smlatt  r7, r10, r11, r7\n\t"
/* interior: the accumulators hold the kernel sums, the input goes in as it is */
#define MSF_DW_TAP_ASM(xaddr, wload) MSF_DW_TAP_EXT_ASM(xaddr, wload, "sxtb16 ", "")
/* border: the accumulators hold the bias, the input offset (r9) is added as the input widens,
 * in the same two instructions */
#define MSF_DW_TAP_OFF_ASM(xaddr, wload) MSF_DW_TAP_EXT_ASM(xaddr, wload, "sxtab16", "r9, ")
/* int8 weights (3, 3, C): the tap's word at `waddr`, widened */
#define MSF_DW_W8(waddr)                                                                    \
    "ldr     r11, " waddr "\n\t"                                                            \
    "sxtb16  lr, r11\n\t"                                                                   \
    "sxtb16  r11, r11, ror #8\n\t"
/* pre-widened weights: tap t of the group at r3, already c0 c2 | c1 c3 */
#define MSF_DW_W16(t) "ldrd    lr, r11, [r3, #" #t " * 8]\n\t"
/* int8 weights of the next kernel row, 3 * ch on: into r2, or r3 itself */
#define MSF_DW_WROW_R2 "add     r2, r3, r8, lsl #1\n\t" "add     r2, r2, r8\n\t"
#define MSF_DW_WROW_R3 "add     r3, r3, r8, lsl #1\n\t" "add     r3, r3, r8\n\t"

/* The row pointers, channel parameters and output backed up by lr channels, once the groups
 * are done with channels left */
#define MSF_DW_BACK_ASM                                                                     \
    "sub     r0, r0, lr\n\t"                                                                \
    "sub     r1, r1, lr\n\t"                                                                \
    "sub     r2, r2, lr\n\t"                                                                \
    "sub     r9, r9, lr, lsl #4\n\t"                                                        \
    "sub     r10, r10, lr\n\t"
#define MSF_DW_BACK_W8 "sub     r3, r3, lr\n\t"

/* dw3x3 for Cortex-M DSP cores with the fast requantisation: per group of four channels the
 * accumulators (r4-r7) start at the kernel sums, each of the nine taps is one word of input
 * (offsets ch and 2 * ch as scaled register offsets) and four weights, the row pointers
 * advance by four channels. int8 weights sit at the same offsets as the input (r3 for kernel
 * row 0, r9 for rows 1 and 2); pre-widened weights are the group's 72 bytes at r3. The
 * requantisation swaps the tap pointers out with one push, as the group state (r9-r11) is
 * pushed around the taps. `BACK` backs the weights up by lr channels (int8 weights; the
 * pre-widened last group follows the aligned ones). */
#define MSF_DW3X3_ASM(W00, W01, W02, ROW1, W10, W11, W12, ROW2, W20, W21, W22, NEXT, BACK)  \
    "push    {r4-r11, lr}\n\t"                                                             \
    "mov     r12, r0\n\t"                                                                  \
    "ldrd    r0, r1, [r12, #0]\n\t"     /* rows */                                         \
    "ldrd    r2, r3, [r12, #8]\n\t"     /* row 2, weights */                               \
    "ldr     r8, [r12, #16]\n\t"        /* ch */                                           \
    "ldrd    r9, r10, [r12, #20]\n\t"   /* channel parameters, output */                   \
    "ldr     r11, [r12, #28]\n\t"       /* count left */                                   \
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
    "subs    r11, r11, #4\n\t"                                                             \
    "bpl     1b\n\t"                                                                       \
    "ands    lr, r11, #3\n\t"         /* channels left: back up to the last four */        \
    "beq     2f\n\t"                                                                       \
    "rsb     lr, lr, #4\n\t"                                                               \
    MSF_DW_BACK_ASM BACK                                                                   \
    "movs    r11, #0\n\t"                                                                  \
    "b       1b\n\t"                                                                       \
    "2:\n\t"                                                                               \
    "pop     {r4-r11, pc}\n\t"

MSF_ASM_FUNCTION(msf_dw3x3_dsp, dw_job, MSF_DW3X3_ASM(
    MSF_DW_W8("[r3], #4"), MSF_DW_W8("[r3, r8]"), MSF_DW_W8("[r3, r8, lsl #1]"),
    "add     r9, r3, r8, lsl #1\n\t"
    "add     r9, r9, r8\n\t",               /* weights of kernel row 1 */
    MSF_DW_W8("[r9]"), MSF_DW_W8("[r9, r8]"), MSF_DW_W8("[r9, r8, lsl #1]"),
    "add     r9, r9, r8, lsl #1\n\t"
    "add     r9, r9, r8\n\t",               /* weights of kernel row 2 */
    MSF_DW_W8("[r9]"), MSF_DW_W8("[r9, r8]"), MSF_DW_W8("[r9, r8, lsl #1]"), "",
    MSF_DW_BACK_W8))

/* The same with the layer's pre-widened weights (msf_conv_params.weights_s16): a group's
 * MSF_DW3X3_GROUP_S16 int16 (72 bytes) at r3. */
MSF_ASM_FUNCTION(msf_dw3x3_s16_dsp, dw_job, MSF_DW3X3_ASM(
    MSF_DW_W16(0), MSF_DW_W16(1), MSF_DW_W16(2), "",
    MSF_DW_W16(3), MSF_DW_W16(4), MSF_DW_W16(5), "",
    MSF_DW_W16(6), MSF_DW_W16(7), MSF_DW_W16(8),
    "add     r3, r3, #72\n\t", ""))            /* the next group's taps */

/* A border pixel's window clipped to the tensor (2x3, 3x2 or 2x2 taps), same registers as
 * MSF_DW3X3_ASM: the accumulators start at the bias (ldm, advancing r12) and every tap adds
 * the input offset as it widens the input (MSF_DW_TAP_OFF_ASM), so padding taps need no work
 * at all and an in-tensor tap costs what an interior one does. The input offset shares r11
 * with the count, count left << 16 | offset (int16), so that it costs no stack: PKHBT copies
 * it into both lanes of r9 per group (r9 is the channel parameters' pointer during the
 * requantisation) and the groups run out when r11 turns negative. `TAPS` are the window's
 * taps and the weight-pointer moves, ending with every row pointer advanced by four channels
 * (and r3 for int8 weights); `NEXT` moves pre-widened weights to the next group; `BACK` as
 * for MSF_DW3X3_ASM. */
#define MSF_DW_EDGE_ASM(TAPS, NEXT, BACK)                                                  \
    "push    {r4-r11, lr}\n\t"                                                             \
    "mov     r12, r0\n\t"                                                                  \
    "ldrd    r0, r1, [r12, #0]\n\t"     /* rows */                                         \
    "ldrd    r2, r3, [r12, #8]\n\t"     /* row 2, weights */                               \
    "ldr     r8, [r12, #16]\n\t"        /* ch */                                           \
    "ldrd    r9, r10, [r12, #20]\n\t"   /* channel parameters, output */                   \
    "ldr     r11, [r12, #28]\n\t"       /* count */                                        \
    "ldrh    lr, [r12, #36]\n\t"        /* input offset */                                 \
    "ldr     r12, [r12, #32]\n\t"       /* bias */                                         \
    "orr     r11, lr, r11, lsl #16\n\t"                                                    \
    "1:\n\t"                                                                               \
    "ldm     r12!, {r4-r7}\n\t"                                                            \
    "push    {r9-r12}\n\t"                                                                 \
    "pkhbt   r9, r11, r11, lsl #16\n\t"                                                    \
    TAPS                                                                                   \
    NEXT                                                                                   \
    "pop     {r9-r12}\n\t"                                                                 \
    "push    {r0-r3, r8}\n\t"                                                              \
    MSF_REQUANT4_STORE_ASM                                                                 \
    "pop     {r0-r3, r8}\n\t"                                                              \
    "subs    r11, r11, #0x40000\n\t"                                                       \
    "bpl     1b\n\t"                                                                       \
    "ubfx    lr, r11, #16, #2\n\t"    /* channels left: back up to the last four */        \
    "cmp     lr, #0\n\t"                                                                   \
    "beq     2f\n\t"                                                                       \
    "rsb     lr, lr, #4\n\t"                                                               \
    MSF_DW_BACK_ASM BACK                                                                   \
    "sub     r12, r12, lr, lsl #2\n\t" /* the bias */                                      \
    "bfc     r11, #16, #16\n\t"       /* count 0 */                                       \
    "b       1b\n\t"                                                                       \
    "2:\n\t"                                                                               \
    "pop     {r4-r11, pc}\n\t"

/* Taps of one window row at `row` (kernel columns 2, 1, 0 of the window, or 1, 0), the row
 * pointer advanced by four channels on the last. */
#define MSF_DW_ROW3_ASM(row, W0, W1, W2)                                                   \
    MSF_DW_TAP_OFF_ASM("[" row ", r8, lsl #1]", W2)                                        \
    MSF_DW_TAP_OFF_ASM("[" row ", r8]", W1)                                                \
    MSF_DW_TAP_OFF_ASM("[" row "], #4", W0)
#define MSF_DW_ROW2_ASM(row, W0, W1)                                                       \
    MSF_DW_TAP_OFF_ASM("[" row ", r8]", W1)                                                \
    MSF_DW_TAP_OFF_ASM("[" row "], #4", W0)

/* int8 weights: two-row windows keep kernel row 1's weights in r2 (free: no third row);
 * the 3x2 window walks r3 down the kernel rows and back (Thumb-2 has no subtracted or 3 * ch
 * register offset). */
MSF_ASM_FUNCTION(msf_dw3x3_edge2x3_dsp, dw_job, MSF_DW_EDGE_ASM(
    MSF_DW_WROW_R2
    MSF_DW_ROW3_ASM("r0", MSF_DW_W8("[r3], #4"), MSF_DW_W8("[r3, r8]"),
                    MSF_DW_W8("[r3, r8, lsl #1]"))
    MSF_DW_ROW3_ASM("r1", MSF_DW_W8("[r2]"), MSF_DW_W8("[r2, r8]"),
                    MSF_DW_W8("[r2, r8, lsl #1]")), "", MSF_DW_BACK_W8))
MSF_ASM_FUNCTION(msf_dw3x3_edge2x2_dsp, dw_job, MSF_DW_EDGE_ASM(
    MSF_DW_WROW_R2
    MSF_DW_ROW2_ASM("r0", MSF_DW_W8("[r3], #4"), MSF_DW_W8("[r3, r8]"))
    MSF_DW_ROW2_ASM("r1", MSF_DW_W8("[r2]"), MSF_DW_W8("[r2, r8]")), "", MSF_DW_BACK_W8))
MSF_ASM_FUNCTION(msf_dw3x3_edge3x2_dsp, dw_job, MSF_DW_EDGE_ASM(
    MSF_DW_ROW2_ASM("r0", MSF_DW_W8("[r3]"), MSF_DW_W8("[r3, r8]"))
    MSF_DW_WROW_R3
    MSF_DW_ROW2_ASM("r1", MSF_DW_W8("[r3]"), MSF_DW_W8("[r3, r8]"))
    MSF_DW_WROW_R3
    MSF_DW_ROW2_ASM("r2", MSF_DW_W8("[r3], #4"), MSF_DW_W8("[r3, r8]"))
    "sub     r3, r3, r8, lsl #2\n\t"
    "sub     r3, r3, r8, lsl #1\n\t",       /* back up six rows of C: next group's row 0 */
    "", MSF_DW_BACK_W8))

/* pre-widened weights: r3 is the group's first in-tensor tap, the window's taps sit at
 * fixed multiples of 8 bytes from it (tap ky * 3 + kx of the 3x3) */
MSF_ASM_FUNCTION(msf_dw3x3_edge2x3_s16_dsp, dw_job, MSF_DW_EDGE_ASM(
    MSF_DW_ROW3_ASM("r0", MSF_DW_W16(0), MSF_DW_W16(1), MSF_DW_W16(2))
    MSF_DW_ROW3_ASM("r1", MSF_DW_W16(3), MSF_DW_W16(4), MSF_DW_W16(5)),
    "add     r3, r3, #72\n\t", ""))
MSF_ASM_FUNCTION(msf_dw3x3_edge2x2_s16_dsp, dw_job, MSF_DW_EDGE_ASM(
    MSF_DW_ROW2_ASM("r0", MSF_DW_W16(0), MSF_DW_W16(1))
    MSF_DW_ROW2_ASM("r1", MSF_DW_W16(3), MSF_DW_W16(4)),
    "add     r3, r3, #72\n\t", ""))
MSF_ASM_FUNCTION(msf_dw3x3_edge3x2_s16_dsp, dw_job, MSF_DW_EDGE_ASM(
    MSF_DW_ROW2_ASM("r0", MSF_DW_W16(0), MSF_DW_W16(1))
    MSF_DW_ROW2_ASM("r1", MSF_DW_W16(3), MSF_DW_W16(4))
    MSF_DW_ROW2_ASM("r2", MSF_DW_W16(6), MSF_DW_W16(7)),
    "add     r3, r3, #72\n\t", ""))
#undef MSF_DW_EDGE_ASM
#undef MSF_DW_BACK_ASM
#undef MSF_DW_BACK_W8
#undef MSF_DW_ROW3_ASM
#undef MSF_DW_ROW2_ASM
#undef MSF_DW3X3_ASM
#undef MSF_DW_TAP_EXT_ASM
#undef MSF_DW_TAP_ASM
#undef MSF_DW_TAP_OFF_ASM
#undef MSF_DW_W8
#undef MSF_DW_W16
#undef MSF_DW_WROW_R2
#undef MSF_DW_WROW_R3

/* A pixel of a depthwise layer with the fast requantisation, C >= 4 and a bias whose window
 * (top-left input iy0, ix0) crosses the tensor border, in assembly (returns 1): the kxk loop
 * (5x5, 7x7; a 3x3 layer whose region has a window one tap high or wide, which
 * dw_region_3x3_dsp leaves here); 0 and nothing done for a window without a tap in the tensor
 * or one that wraps a ring. */
static inline MSF_ALWAYS_INLINE int dw_border_kxk(const msf_window *in, const msf_conv_params *p,
                                                  int32_t iy0, int32_t ix0, int8_t *dst,
                                                  int wide)
{
    const int32_t kh = p->kernel_h, kw = p->kernel_w;
    const int32_t ky_lo = iy0 < 0 ? -iy0 : 0, kx_lo = ix0 < 0 ? -ix0 : 0;
    const int32_t rows = (in->tensor_h - iy0 < kh ? in->tensor_h - iy0 : kh) - ky_lo;
    const int32_t cols = (in->tensor_w - ix0 < kw ? in->tensor_w - ix0 : kw) - kx_lo;
    if (rows <= 0 || cols <= 0) {
        return 0; /* the bias alone: C */
    }
    return dw_kxk_run(in, p, msf_window_pixel(in, iy0 + ky_lo, ix0 + kx_lo), ky_lo * kw + kx_lo,
                      rows, cols, p->input_offset, dst, wide);
}

/* dw_border_kxk per weight form, out of line: the per-pixel loop of dw_region keeps its
 * registers, and each has the frame of one form's job (one function for both holds more
 * registers: 8 bytes more stack under the assembly, -fstack-usage) */
static __attribute__((noinline)) int dw_border_kxk_dsp(const msf_window *in,
                                                       const msf_conv_params *p, int32_t iy0,
                                                       int32_t ix0, int8_t *dst)
{
    return dw_border_kxk(in, p, iy0, ix0, dst, 0);
}
static __attribute__((noinline)) int dw_border_kxk_s16_dsp(const msf_window *in,
                                                           const msf_conv_params *p,
                                                           int32_t iy0, int32_t ix0, int8_t *dst)
{
    return dw_border_kxk(in, p, iy0, ix0, dst, 1);
}

/* Border pixels of a 3x3 depthwise layer with the fast requantisation, C >= 4 and a bias, in
 * the 3x3 border assembly: a run of n >= 1 output pixels whose windows clip to the same shape
 * of two or three taps each way, the first with its window's top-left input at (iy0, ix0) and
 * its output at dst, the others along the output row (out NULL: windows stride_w columns
 * apart, outputs C apart) or down the output column (out the output window: windows stride_h
 * rows apart). One job serves the run, as the assembly leaves it as it was: a pixel of a run
 * costs its assembly and a few pointer steps. */
static __attribute__((noinline)) void dw_border_run(dw_job *job, const msf_window *in,
                                                   const msf_conv_params *p, int32_t iy0,
                                                   int32_t ix0, int8_t *dst, int32_t n,
                                                   const msf_window *out)
{
    const int32_t ch = in->c;
    const int32_t ky_lo = iy0 < 0 ? -iy0 : 0, kx_lo = ix0 < 0 ? -ix0 : 0;
    const int32_t rows = (in->tensor_h - iy0 < 3 ? in->tensor_h - iy0 : 3) - ky_lo;
    const int32_t cols = (in->tensor_w - ix0 < 3 ? in->tensor_w - ix0 : 3) - kx_lo;
    const int wide = p->weights_s16 != NULL;
    void (*run)(const dw_job *);
    if (rows == 3) { /* 3x2 */
        run = wide ? msf_dw3x3_edge3x2_s16_dsp : msf_dw3x3_edge3x2_dsp;
    } else if (cols == 3) {
        run = wide ? msf_dw3x3_edge2x3_s16_dsp : msf_dw3x3_edge2x3_dsp;
    } else {
        run = wide ? msf_dw3x3_edge2x2_s16_dsp : msf_dw3x3_edge2x2_dsp;
    }
    const int32_t tap = ky_lo * 3 + kx_lo; /* the window's first in-tensor tap */
    /* a two-row window's r2 is never read: the row after its last, past the tensor at its
     * bottom */
    job->r0 = msf_window_pixel(in, iy0 + ky_lo, ix0 + kx_lo);
    job->r1 = msf_window_next_row(in, job->r0);
    job->r2 = msf_window_next_row(in, job->r1);
    job->w = wide ? (const void *)(p->weights_s16 + tap * MSF_DW_TAP_S16)
                  : (const void *)(p->weights + tap * ch);
    job->ch = ch;
    job->q = p->channels;
    job->d = dst;
    job->count = dw_asm_count(ch);
    job->bias = p->bias;
    /* input_offset in [-127, 128] and x + input_offset in [-255, 255]: int16 lanes */
    job->off2 = ((uint32_t)p->input_offset & 0xFFFFu) * 0x10001u;
    if (out == NULL || (in->ring_rows == 0 && out->ring_rows == 0)) {
        /* along the row, or down a column without rings: every pointer a fixed step on */
        const int32_t step = out == NULL ? p->stride_w * ch : p->stride_h * in->row_stride;
        const int32_t dstep = out == NULL ? ch : out->row_stride;
        for (;;) {
            run(job);
            if (--n == 0) {
                break;
            }
            job->r0 += step;
            job->r1 += step;
            job->r2 += step;
            job->d += dstep;
        }
    } else { /* down the column: stride_h rows on, following rings */
        const int32_t sh = p->stride_h;
        for (;;) {
            run(job);
            if (--n == 0) {
                break;
            }
            const int8_t *r = job->r0;
            for (int32_t k = 0; k < sh; k++) {
                r = msf_window_next_row(in, r);
            }
            job->r0 = r;
            job->r1 = msf_window_next_row(in, r);
            job->r2 = msf_window_next_row(in, job->r1);
            job->d = (int8_t *)msf_window_next_row(out, job->d);
        }
    }
}
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

#if MSF_WIDE_C
/* dw3x3 with the fast requantisation, without SIMD multiply-accumulates (RISC-V...): per
 * group of `nch` channels (four, or the last ch % 4) the taps of one output pixel, or of two
 * output pixels one above the other (npix = 2, their windows `stride` input rows apart). The
 * two share every weight load and, at stride 1, the loads of two of their three input rows.
 * Input rows r[0] .. r[2] (r[3], r[4] for the lower pixel) and the weight rows advance a
 * column (ch) per kernel column; the accumulators start at the kernel sums. npix, stride and
 * nch are constants wherever a group is instantiated. */
#define MSF_DW_LANE(j)                                                                      \
    do {                                                                                    \
        const int32_t wa = w0[j], wb = w1[j], wc = w2[j];                                   \
        const int32_t u1 = x1[j], u2 = x2[j];                                               \
        a##j += x0[j] * wa + u1 * wb + u2 * wc;                                             \
        if (npix > 1 && stride == 1) b##j += u1 * wa + u2 * wb + x3[j] * wc;               \
        if (npix > 1 && stride == 2) b##j += u2 * wa + x3[j] * wb + x4[j] * wc;            \
    } while (0)
#define MSF_DW_OUT(j)                                                                       \
    do {                                                                                    \
        if (npix > 1) {                                                                     \
            a##j = msf_conv_output_shared(a##j, p, &q[j], c + j, 1);                        \
            b##j = msf_conv_output_shared(b##j, p, &q[j], c + j, 1);                        \
        } else {                                                                            \
            a##j = msf_conv_output(a##j, p, &q[j], c + j, 1);                               \
        }                                                                                   \
    } while (0)
#define MSF_DW_STORE(j)                                                                     \
    do {                                                                                    \
        d0[c + j] = (int8_t)a##j;                                                           \
        if (npix > 1) d1[c + j] = (int8_t)b##j;                                             \
    } while (0)
static inline MSF_ALWAYS_INLINE void dw3x3_group(const msf_conv_params *p, int32_t ch,
                                                 int32_t c, const int8_t *const r[5],
                                                 int8_t *d0, int8_t *d1, int npix, int stride,
                                                 int nch)
{
    const msf_channel_params *q = p->channels + c;
    const int8_t *w0 = p->weights + c, *w1 = w0 + 3 * ch, *w2 = w1 + 3 * ch;
    const int8_t *x0 = r[0] + c, *x1 = r[1] + c, *x2 = r[2] + c;
    const int8_t *x3 = npix > 1 ? r[3] + c : NULL;
    const int8_t *x4 = npix > 1 && stride == 2 ? r[4] + c : NULL;
    int32_t a0 = q[0].kernel_sum, a1 = 0, a2 = 0, a3 = 0;
    int32_t kx;
    if (nch > 1) a1 = q[1].kernel_sum;
    if (nch > 2) a2 = q[2].kernel_sum;
    if (nch > 3) a3 = q[3].kernel_sum;
    int32_t b0 = a0, b1 = a1, b2 = a2, b3 = a3;
    for (kx = 0; kx < 3; kx++) {
        MSF_DW_LANE(0);
        if (nch > 1) MSF_DW_LANE(1);
        if (nch > 2) MSF_DW_LANE(2);
        if (nch > 3) MSF_DW_LANE(3);
        x0 += ch;
        x1 += ch;
        x2 += ch;
        if (npix > 1) x3 += ch;
        if (npix > 1 && stride == 2) x4 += ch;
        w0 += ch;
        w1 += ch;
        w2 += ch;
    }
    /* all outputs before the stores, as in dw3x3_c */
    MSF_DW_OUT(0);
    if (nch > 1) MSF_DW_OUT(1);
    if (nch > 2) MSF_DW_OUT(2);
    if (nch > 3) MSF_DW_OUT(3);
    MSF_DW_STORE(0);
    if (nch > 1) MSF_DW_STORE(1);
    if (nch > 2) MSF_DW_STORE(2);
    if (nch > 3) MSF_DW_STORE(3);
}
#undef MSF_DW_LANE
#undef MSF_DW_OUT
#undef MSF_DW_STORE

static inline MSF_ALWAYS_INLINE void dw3x3_groups(const msf_conv_params *p, int32_t ch,
                                                  const int8_t *const r[5], int8_t *d0,
                                                  int8_t *d1, int npix, int stride)
{
    int32_t c;
    for (c = 0; c + 4 <= ch; c += 4) {
        dw3x3_group(p, ch, c, r, d0, d1, npix, stride, 4);
    }
    switch (ch - c) {
    case 3:
        dw3x3_group(p, ch, c, r, d0, d1, npix, stride, 3);
        break;
    case 2:
        dw3x3_group(p, ch, c, r, d0, d1, npix, stride, 2);
        break;
    case 1:
        dw3x3_group(p, ch, c, r, d0, d1, npix, stride, 1);
        break;
    default:
        break;
    }
}

/* Every channel of one interior pixel (rows r[0..2], output d0; `stride` 0), or of two, the
 * lower one (output d1) `stride` (1 or 2) rows further down (rows r[0 .. 2 + stride]). Out of
 * line: the region loop's state stays out of the accumulators' registers. */
static __attribute__((noinline)) void dw3x3_fast_c(const msf_conv_params *p, int32_t ch,
                                                   const int8_t *const r[5], int8_t *d0,
                                                   int8_t *d1, int32_t stride)
{
    if (stride == 1) {
        dw3x3_groups(p, ch, r, d0, d1, 2, 1);
    } else if (stride == 2) {
        dw3x3_groups(p, ch, r, d0, d1, 2, 2);
    } else {
        dw3x3_groups(p, ch, r, d0, NULL, 1, 0);
    }
}
#endif

/* A 3x3 window inside the tensor whose rows start at r0, r1, r2 (channel 0). */
static inline MSF_ALWAYS_INLINE void dw3x3(const msf_conv_params *p, int32_t ch,
                                           const int8_t *r0, const int8_t *r1, const int8_t *r2,
                                           int8_t *dst, int fast)
{
#if MSF_DSP_ASM
    if (fast && ch >= 4) {
        const int wide = p->weights_s16 != NULL;
        dw_job job; /* the border fields (bias, off2) are not read here */
        job.r0 = r0;
        job.r1 = r1;
        job.r2 = r2;
        job.w = wide ? (const void *)p->weights_s16 : (const void *)p->weights;
        job.ch = ch;
        job.q = p->channels;
        job.d = dst;
        job.count = dw_asm_count(ch);
        (wide ? msf_dw3x3_s16_dsp : msf_dw3x3_dsp)(&job);
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
#if MSF_DSP_ASM
    if (fast && ch >= 4 && p->bias != NULL &&
        (p->weights_s16 != NULL ? dw_border_kxk_s16_dsp : dw_border_kxk_dsp)(in, p, iy0, ix0,
                                                                              dst)) {
        return;
    }
#endif
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

#if MSF_WIDE_C
/* A pixel without the fast 3x3 path: a window crossing the tensor border, or a layer that is
 * not 3x3 or whose outputs are not fast. Out of line, one function per output kind: its
 * loops' spills stay out of the stack under the region loop and the fast pixels. */
static inline MSF_ALWAYS_INLINE void dw_pixel(const msf_window *in, const msf_conv_params *p,
                                              int32_t iy0, int32_t ix0, int8_t *dst, int fast)
{
    const int32_t ch = in->c, kh = p->kernel_h, kw = p->kernel_w;
    if (iy0 < 0 || iy0 + kh > in->tensor_h || ix0 < 0 || ix0 + kw > in->tensor_w) {
        dw_border(in, p, iy0, ix0, dst, fast);
        return;
    }
    const int8_t *row0 = msf_window_pixel(in, iy0, ix0);
    if (kh == 3 && kw == 3 && !fast) {
        const int8_t *row1 = msf_window_next_row(in, row0);
        dw3x3_c(p, ch, row0, row1, msf_window_next_row(in, row1), dst, 0);
    } else {
        dw_taps(in, p, row0, p->weights, kh, kw, 0, dst, fast);
    }
}
static __attribute__((noinline)) void dw_pixel_fast_c(const msf_window *in,
                                                      const msf_conv_params *p, int32_t iy0,
                                                      int32_t ix0, int8_t *dst)
{
    dw_pixel(in, p, iy0, ix0, dst, 1);
}
static __attribute__((noinline)) void dw_pixel_c(const msf_window *in, const msf_conv_params *p,
                                                 int32_t iy0, int32_t ix0, int8_t *dst)
{
    dw_pixel(in, p, iy0, ix0, dst, 0);
}

/* Row by row; a 3x3 layer with fast outputs takes two rows at a time where both rows'
 * windows lie inside the tensor rows (dw3x3_fast_c), its border pixels one by one. */
static void dw_region(const msf_window *in, const msf_conv_params *p, msf_window *out,
                      int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    const int32_t ch = in->c, kh = p->kernel_h, kw = p->kernel_w, sh = p->stride_h;
    const int fast = msf_conv_fast_output(p), fast3x3 = fast && kh == 3 && kw == 3;
    int32_t oy, ox;

    for (oy = oy0; oy < oy0 + oh; oy++) {
        const int32_t iy0 = oy * sh - p->pad_top;
        /* output rows done in this pass by the fast path: 0 (none), 1, or 2 (oy and oy + 1) */
        int32_t rows = 0;
        const int8_t *row[5] = {NULL, NULL, NULL, NULL, NULL};
        if (fast3x3 && iy0 >= 0 && iy0 + kh <= in->tensor_h) {
            rows = sh <= 2 && oy + 1 < oy0 + oh && iy0 + sh + kh <= in->tensor_h ? 2 : 1;
            row[0] = msf_window_row(in, iy0);
            row[1] = msf_window_next_row(in, row[0]);
            row[2] = msf_window_next_row(in, row[1]);
            if (rows == 2) {
                row[3] = msf_window_next_row(in, row[2]);
                row[4] = sh == 2 ? msf_window_next_row(in, row[3]) : NULL;
            }
        }
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        int8_t *dst1 = rows == 2 ? msf_window_pixel(out, oy + 1, ox0) : NULL;
        int32_t ix0 = ox0 * p->stride_w - p->pad_left;
        for (ox = 0; ox < ow; ox++, dst += ch, ix0 += p->stride_w) {
            if (rows == 0 || ix0 < 0 || ix0 + kw > in->tensor_w) {
                if (fast) {
                    dw_pixel_fast_c(in, p, iy0, ix0, dst);
                } else {
                    dw_pixel_c(in, p, iy0, ix0, dst);
                }
                if (rows == 2) { /* fast */
                    dw_pixel_fast_c(in, p, iy0 + sh, ix0, dst1 + ox * ch);
                }
                continue;
            }
            const int32_t col = (ix0 - in->x0) * ch;
            const int8_t *const r[5] = {row[0] + col, row[1] + col, row[2] + col,
                                        rows == 2 ? row[3] + col : NULL,
                                        row[4] != NULL ? row[4] + col : NULL};
            dw3x3_fast_c(p, ch, r, dst, rows == 2 ? dst1 + ox * ch : NULL, rows == 2 ? sh : 0);
        }
        if (rows == 2) {
            oy++;
        }
    }
}

void msf_depthwise_conv_s8(const msf_window *in, const msf_conv_params *p, msf_window *out,
                           int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    dw_region(in, p, out, oy0, ox0, oh, ow);
}

#else
#if MSF_DSP_ASM
/* [*a, *b): the positions o in [0, n) whose windows (k taps from input first + o * s) lie
 * inside [0, t); *b == *a when there are none. */
static inline MSF_ALWAYS_INLINE void dw_inside(int32_t first, int32_t s, int32_t k, int32_t t,
                                               int32_t n, int32_t *a, int32_t *b)
{
    int32_t lo = first >= 0 ? 0 : (s - 1 - first) / s;
    int32_t hi = t - k - first < 0 ? 0 : (t - k - first) / s + 1;
    lo = lo < n ? lo : n;
    hi = hi < n ? hi : n;
    *a = lo;
    *b = hi > lo ? hi : lo;
}

/* Whether every window of a region of a 3x3 layer keeps two taps or more in the tensor each
 * way: the tensor is two pixels or more each way, and the windows start at most one tap before
 * it and end at most one after it. */
static inline MSF_ALWAYS_INLINE int dw_windows_fit(const msf_window *in,
                                                   const msf_conv_params *p, int32_t oy0,
                                                   int32_t ox0, int32_t oh, int32_t ow)
{
    const int32_t iy = oy0 * p->stride_h - p->pad_top, ix = ox0 * p->stride_w - p->pad_left;
    return in->tensor_h >= 2 && in->tensor_w >= 2 && iy >= -1 && ix >= -1 &&
           iy + (oh - 1) * p->stride_h <= in->tensor_h - 2 &&
           ix + (ow - 1) * p->stride_w <= in->tensor_w - 2;
}

/* A region of a 3x3 layer with the fast requantisation, C >= 4 and a bias that
 * dw_windows_fit, in assembly with one job: the border pixels in runs (dw_border_run),
 * each output row above or below the tensor's inside rows as the pixels left of its inside
 * columns, one run across those and the pixels right of them, then each column left or right
 * of the inside columns as one run down the inside rows; then the interior pixels row by row,
 * each a few pointer steps from the last. Out of line and reached by a tail call from
 * msf_depthwise_conv_s8, so its frame replaces the region loop's. */
static __attribute__((noinline)) void dw_region_3x3_dsp(const msf_window *in,
                                                        const msf_conv_params *p,
                                                        msf_window *out, int32_t oy0,
                                                        int32_t ox0, int32_t oh, int32_t ow)
{
    const int32_t ch = in->c, sh = p->stride_h, sw = p->stride_w;
    const int32_t iy_first = oy0 * sh - p->pad_top, ix_first = ox0 * sw - p->pad_left;
    int32_t oy_a, oy_b, ox_a, ox_b, oy, ox;
    dw_job job;
    dw_inside(iy_first, sh, 3, in->tensor_h, oh, &oy_a, &oy_b);
    dw_inside(ix_first, sw, 3, in->tensor_w, ow, &ox_a, &ox_b);
    for (oy = 0; oy < oh; oy++) {
        if (oy == oy_a && oy_b > oy_a) {
            oy = oy_b - 1;
            continue;
        }
        int8_t *dst = msf_window_pixel(out, oy0 + oy, ox0);
        for (ox = 0; ox < ow;) {
            const int32_t n = ox == ox_a && ox_b > ox_a ? ox_b - ox_a : 1;
            dw_border_run(&job, in, p, iy_first + oy * sh, ix_first + ox * sw, dst + ox * ch,
                          n, NULL);
            ox += n;
        }
    }
    if (oy_b == oy_a) {
        return;
    }
    for (ox = 0; ox < ow; ox++) {
        if (ox == ox_a && ox_b > ox_a) {
            ox = ox_b - 1;
            continue;
        }
        dw_border_run(&job, in, p, iy_first + oy_a * sh, ix_first + ox * sw,
                      msf_window_pixel(out, oy0 + oy_a, ox0 + ox), oy_b - oy_a, out);
    }
    if (ox_b == ox_a) {
        return;
    }
    /* the interior: kernel sums, the layer's weights from tap 0 */
    void (*run)(const dw_job *) = msf_dw3x3_dsp;
    job.w = p->weights;
    if (p->weights_s16 != NULL) {
        run = msf_dw3x3_s16_dsp;
        job.w = p->weights_s16;
    }
    job.ch = ch;
    job.q = p->channels;
    job.count = dw_asm_count(ch);
    const int32_t step = sw * ch;
    for (oy = oy_a; oy < oy_b; oy++) {
        job.r0 = msf_window_pixel(in, iy_first + oy * sh, ix_first + ox_a * sw);
        job.r1 = msf_window_next_row(in, job.r0);
        job.r2 = msf_window_next_row(in, job.r1);
        job.d = msf_window_pixel(out, oy0 + oy, ox0 + ox_a);
        for (ox = ox_a;;) {
            run(&job);
            if (++ox == ox_b) {
                break;
            }
            job.r0 += step;
            job.r1 += step;
            job.r2 += step;
            job.d += ch;
        }
    }
}
#endif

static inline MSF_ALWAYS_INLINE void dw_region(const msf_window *in, const msf_conv_params *p,
                                               msf_window *out, int32_t oy0, int32_t ox0,
                                               int32_t oh, int32_t ow, int fast)
{
    const int32_t ch = in->c;
    const int32_t kh = p->kernel_h, kw = p->kernel_w;
    const int is3x3 = kh == 3 && kw == 3;
    int32_t oy, ox;

    const int32_t ix_first = ox0 * p->stride_w - p->pad_left;
    const int32_t iy_first = oy0 * p->stride_h - p->pad_top;
    if (is3x3 && in->ring_rows == 0 && out->ring_rows == 0 && iy_first >= 0 &&
        (oy0 + oh - 1) * p->stride_h - p->pad_top + 3 <= in->tensor_h && ix_first >= 0 &&
        ix_first + (ow - 1) * p->stride_w + 3 <= in->tensor_w) {
        /* every window inside the tensor and no ring: windows and outputs at fixed steps
         * (a one-column region, as hcache runs, without per-row window addressing) */
        const int32_t rs = in->row_stride, row_step = p->stride_h * rs;
        const int32_t col_step = p->stride_w * ch;
        const int8_t *src_row = msf_window_pixel(in, iy_first, ix_first);
        int8_t *dst_row = msf_window_pixel(out, oy0, ox0);
        for (oy = 0; oy < oh; oy++, src_row += row_step, dst_row += out->row_stride) {
            const int8_t *src = src_row;
            int8_t *dst = dst_row;
            for (ox = 0; ox < ow; ox++, src += col_step, dst += ch) {
                dw3x3(p, ch, src, src + rs, src + 2 * rs, dst, fast);
            }
        }
        return;
    }
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
#if MSF_DSP_ASM
                if (fast && ch >= 4 && dw_kxk_dsp(in, p, row0 + col, dst)) {
                    continue;
                }
#endif
                dw_taps(in, p, row0 + col, p->weights, kh, kw, 0, dst, fast);
            }
        }
    }
}

/* Every region the fast 3x3 assembly does not take. */
static __attribute__((noinline)) void dw_region_any(const msf_window *in,
                                                    const msf_conv_params *p, msf_window *out,
                                                    int32_t oy0, int32_t ox0, int32_t oh,
                                                    int32_t ow)
{
    if (msf_conv_fast_output(p)) {
        dw_region(in, p, out, oy0, ox0, oh, ow, 1);
    } else {
        dw_region(in, p, out, oy0, ox0, oh, ow, 0);
    }
}

#if MSF_DSP_ASM
/* A region of a 3x3 layer with the fast requantisation, C >= 4 and a bias: one output pixel
 * alone (one-pixel tiles call the kernel per pixel) here, in assembly; larger regions in
 * dw_region_3x3_dsp; regions with a window of fewer than two taps in the tensor either way in
 * dw_region_any. */
static __attribute__((noinline)) void dw_3x3_dsp(const msf_window *in, const msf_conv_params *p,
                                                 msf_window *out, int32_t oy0, int32_t ox0,
                                                 int32_t oh, int32_t ow)
{
    if (!dw_windows_fit(in, p, oy0, ox0, oh, ow)) {
        dw_region_any(in, p, out, oy0, ox0, oh, ow);
        return;
    }
    if (oh > 1 || ow > 1) {
        dw_region_3x3_dsp(in, p, out, oy0, ox0, oh, ow);
        return;
    }
    const int32_t iy0 = oy0 * p->stride_h - p->pad_top, ix0 = ox0 * p->stride_w - p->pad_left;
    dw_job job;
    int8_t *dst = msf_window_pixel(out, oy0, ox0);
    if (iy0 < 0 || ix0 < 0 || iy0 + 3 > in->tensor_h || ix0 + 3 > in->tensor_w) {
        dw_border_run(&job, in, p, iy0, ix0, dst, 1, NULL);
        return;
    }
    const int wide = p->weights_s16 != NULL;
    job.r0 = msf_window_pixel(in, iy0, ix0);
    job.r1 = msf_window_next_row(in, job.r0);
    job.r2 = msf_window_next_row(in, job.r1);
    job.w = wide ? (const void *)p->weights_s16 : (const void *)p->weights;
    job.ch = in->c;
    job.q = p->channels;
    job.d = dst;
    job.count = dw_asm_count(in->c);
    (wide ? msf_dw3x3_s16_dsp : msf_dw3x3_dsp)(&job);
}
#endif

/* Tail calls only: the region functions' frames are the kernel's whole stack. */
void msf_depthwise_conv_s8(const msf_window *in, const msf_conv_params *p, msf_window *out,
                           int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
#if MSF_DSP_ASM
    if (msf_conv_fast_output(p) && p->kernel_h == 3 && p->kernel_w == 3 && in->c >= 4 &&
        p->bias != NULL) {
        dw_3x3_dsp(in, p, out, oy0, ox0, oh, ow);
        return;
    }
#endif
    dw_region_any(in, p, out, oy0, ox0, oh, ow);
}

#endif /* MSF_WIDE_C */
