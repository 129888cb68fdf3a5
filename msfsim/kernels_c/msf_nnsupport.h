/*
 * msf_nnsupport.h - internal support functions of msfsim's int8 kernels, in the style of
 * CMSIS-NN's arm_nnsupportfunctions.h: window row addressing, fixed-point requantisation,
 * clamping, the DSP intrinsic wrappers (SXTB16 / SMLAD ...), the dot-product blocks, the conv
 * output helpers and the MSF_ALWAYS_INLINE / MSF_C_LOOPS macros. Included by the kernel
 * sources (kernels/) and the executor, not by generated code, whose API is msf_kernels.h: not
 * a stable interface.
 */
#ifndef MSF_NNSUPPORT_H
#define MSF_NNSUPPORT_H

#include "msf_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------ windows */

/* Address of column x0 of tensor row y (y must be held by the window). */
static inline int8_t *msf_window_row(const msf_window *win, int32_t y)
{
    const int32_t r = (win->ring_rows > 0) ? (y % win->ring_rows) : (y - win->y0);
    return win->data + r * win->row_stride;
}

/* Address of channel 0 of tensor position (y, x) (held by the window). */
static inline int8_t *msf_window_pixel(const msf_window *win, int32_t y, int32_t x)
{
    return msf_window_row(win, y) + (x - win->x0) * win->c;
}

/* Advances a pointer into tensor row y to the same column of row y + 1, following the ring. */
static inline const int8_t *msf_window_next_row(const msf_window *win, const int8_t *p)
{
    p += win->row_stride;
    if (win->ring_rows > 0 && p >= win->data + win->ring_rows * win->row_stride) {
        p -= win->ring_rows * win->row_stride;
    }
    return p;
}

/* ------------------------------------------------------------------ fixed-point helpers */

/* Cores whose libgcc has no 64-bit multiply (__muldi3 is missing for the ESP8266 lx106) get
 * the signed 32x32->64 product from four 16x16 partial products. */
#if !defined(MSF_WIDE_MUL_SOFT)
#if defined(__XTENSA__)
#define MSF_WIDE_MUL_SOFT 1
#else
#define MSF_WIDE_MUL_SOFT 0
#endif
#endif

static inline int64_t msf_mul_wide(int32_t a, int32_t b)
{
#if MSF_WIDE_MUL_SOFT
    const uint32_t ua = a < 0 ? 0u - (uint32_t)a : (uint32_t)a;
    const uint32_t ub = b < 0 ? 0u - (uint32_t)b : (uint32_t)b;
    const uint32_t ll = (ua & 0xFFFFu) * (ub & 0xFFFFu);
    const uint32_t lh = (ua & 0xFFFFu) * (ub >> 16);
    const uint32_t hl = (ua >> 16) * (ub & 0xFFFFu);
    const uint32_t mid = (ll >> 16) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    const uint32_t lo = (ll & 0xFFFFu) | (mid << 16);
    const uint32_t hi = (ua >> 16) * (ub >> 16) + (lh >> 16) + (hl >> 16) + (mid >> 16);
    const int64_t p = (int64_t)(((uint64_t)hi << 32) | lo); /* <= 2^62: no overflow */
    return ((a < 0) != (b < 0)) ? -p : p;
#else
    return (int64_t)a * (int64_t)b;
#endif
}

/* SaturatingRoundingDoublingHighMul (gemmlowp): a * b / 2^31 rounded to nearest, ties
 * toward +infinity; saturates the one overflowing case INT32_MIN * INT32_MIN. gemmlowp's
 * nudge-then-truncate equals floor(a * b / 2^31 + 1/2), i.e. an arithmetic shift. */
static inline int32_t msf_doubling_high_mult(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)((msf_mul_wide(a, b) + ((int64_t)1 << 30)) >> 31);
}

/* RoundingDivideByPOT (gemmlowp): x / 2^exponent rounded to nearest, ties away from zero. */
static inline int32_t msf_divide_by_power_of_two(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* arm_nn_requantize: shift in [-31, 31], positive = left shift (wraps like int32 arithmetic).
 *
 * For a right shift e = -shift >= 1 the two roundings fold into one 64-bit expression: with
 * p = acc * multiplier, x = DoublingHighMul = floor((p + 2^30) / 2^31) and
 * RoundingDivideByPOT(x, e) = floor((x + 2^(e-1) - [x < 0]) / 2^e), so the result is
 * floor((p + 2^30 + 2^(30+e) - [x < 0] * 2^31) / 2^(31+e)). [p < 0] may stand for [x < 0]:
 * they differ only when x == 0, where the term cannot change the quotient. This also gives
 * the saturated value for INT32_MIN * INT32_MIN. */
static inline int32_t msf_requantize(int32_t acc, int32_t multiplier, int32_t shift)
{
    if (shift >= 0) {
        return msf_doubling_high_mult((int32_t)((uint32_t)acc << shift), multiplier);
    }
    const int64_t p = msf_mul_wide(acc, multiplier);
    const int64_t r = p + ((int64_t)1 << 30) + ((int64_t)1 << (30 - shift))
                      - (p < 0 ? ((int64_t)1 << 31) : 0);
    return (int32_t)(r >> 32) >> (-shift - 1);   /* |r| < 2^63; r >> 32 fits int32 */
}

static inline int8_t msf_clamp_s8(int32_t v, int32_t lo, int32_t hi)
{
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    return (int8_t)v;
}

/* ------------------------------------------------------------------ kernel internals */

/* For `static inline` helpers instantiated with constant flags inside the kernels' loops. */
#if defined(__GNUC__)
#define MSF_ALWAYS_INLINE __attribute__((always_inline))
#else
#define MSF_ALWAYS_INLINE
#endif

/* The ACLE intrinsics of the DSP code paths on real DSP cores (MSF_DSP, msf_kernels.h). */
#if MSF_DSP && !(defined(MSF_DSP_EMULATE) && MSF_DSP_EMULATE)
#include <arm_acle.h>
#endif
/* For the kernels' C loops: the hot path where there is no assembly (inlined with constant
 * flags), a fallback kept out of line where there is, so that its spills do not deepen the
 * stack of the fast path. */
#if MSF_DSP_ASM && defined(__GNUC__)
#define MSF_C_LOOPS static __attribute__((noinline))
#else
#define MSF_C_LOOPS static inline MSF_ALWAYS_INLINE
#endif
/* The kernels' wide C blocks (three pixels against four channels of pointwise products, two
 * depthwise output rows at a time, 3-row convolution windows read in place), for cores
 * without the DSP extension that have the registers for them (RISC-V: 31, hosts). Cores with
 * 16 (Xtensa lx106, Arm without DSP) keep the 2x2 blocks, which do not spill there. */
#if !defined(MSF_WIDE_C)
#if MSF_DSP || defined(__XTENSA__) || defined(__arm__)
#define MSF_WIDE_C 0
#else
#define MSF_WIDE_C 1
#endif
#endif

#if MSF_DSP
/* Four consecutive int8 as one word (little-endian), any alignment. */
static inline uint32_t msf_read_s8x4(const int8_t *p)
{
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

#if defined(MSF_DSP_EMULATE) && MSF_DSP_EMULATE
static inline uint32_t msf_pack16(int32_t lo, int32_t hi)
{
    return (uint32_t)(uint16_t)lo | ((uint32_t)(uint16_t)hi << 16);
}
static inline uint32_t msf_sxtb16(uint32_t x)
{
    return msf_pack16((int8_t)x, (int8_t)(x >> 16));
}
static inline uint32_t msf_sxtb16_ror8(uint32_t x)
{
    return msf_pack16((int8_t)(x >> 8), (int8_t)(x >> 24));
}
static inline uint32_t msf_sxtab16(uint32_t a, uint32_t x)
{
    return msf_pack16((int16_t)a + (int8_t)x, (int16_t)(a >> 16) + (int8_t)(x >> 16));
}
static inline uint32_t msf_sxtab16_ror8(uint32_t a, uint32_t x)
{
    return msf_pack16((int16_t)a + (int8_t)(x >> 8), (int16_t)(a >> 16) + (int8_t)(x >> 24));
}
static inline int32_t msf_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)((int16_t)x * (int16_t)y)
                     + (uint32_t)((int16_t)(x >> 16) * (int16_t)(y >> 16)));
}
static inline int32_t msf_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)((int16_t)x * (int16_t)y));
}
static inline int32_t msf_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)((int16_t)(x >> 16) * (int16_t)(y >> 16)));
}
static inline int32_t msf_ssat8(int32_t v)
{
    return v < -128 ? -128 : (v > 127 ? 127 : v);
}
#else
/* int8 lanes 0 and 2 sign-extended to int16 lanes */
static inline uint32_t msf_sxtb16(uint32_t x)
{
    return (uint32_t)__sxtb16(x);
}
/* int8 lanes 1 and 3; GCC does not fold a rotation into SXTB16, hence the asm */
static inline uint32_t msf_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
/* a + int8 lanes 0 and 2 of x, per int16 lane */
static inline uint32_t msf_sxtab16(uint32_t a, uint32_t x)
{
    return (uint32_t)__sxtab16(a, x);
}
/* a + int8 lanes 1 and 3 of x, per int16 lane */
static inline uint32_t msf_sxtab16_ror8(uint32_t a, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}
static inline int32_t msf_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlad(x, y, acc);
}
static inline int32_t msf_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlabb(x, y, acc);
}
static inline int32_t msf_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlatt(x, y, acc);
}
static inline int32_t msf_ssat8(int32_t v)
{
    return __ssat(v, 8);
}
#endif
#endif /* MSF_DSP */

/* msf_requantize(acc, m, shift) + output_offset in the form the kernels' inner loops use, for
 * |acc| < 2^30, m >= 0, e = -shift in [1, 22] and output_offset in [-128, 127], with the
 * per-channel constants rounding = 2^(e-1) + output_offset * 2^e and rshift = e
 * (msf_channel_params). 2 * acc then fits int32, so DoublingHighMul is
 * x = floor((2 * acc * m + 2^31) / 2^32) (one SMMULR on Cortex-M), and RoundingDivideByPOT is
 * (x + 2^(e-1) - [x < 0]) >> e, where [acc < 0] may stand for [x < 0]: they differ only when
 * x == 0, where the term cannot change the quotient. Every intermediate fits int32. */
static inline int32_t msf_requantize_fast(int32_t acc, int32_t multiplier, int32_t rounding,
                                          int32_t rshift)
{
#if MSF_DSP_ASM
    int32_t x;
    __asm__("smmlar %0, %1, %2, %3"
            : "=r"(x) : "r"((int32_t)((uint32_t)acc << 1)), "r"(multiplier), "r"(rounding));
    return (x + (acc >> 31)) >> rshift;
#else
    const int64_t p = msf_mul_wide((int32_t)((uint32_t)acc << 1), multiplier);
    const int32_t x = (int32_t)(p >> 32) + (int32_t)((uint32_t)p >> 31);
    return (x + rounding + (acc >> 31)) >> rshift;
#endif
}


/* acc[2 * i + j] += sum over k < n of x_i[k] * w_j[k]: two int8 vectors (pixels) against two
 * int8 weight rows (output channels), so each loaded byte feeds two multiply-accumulates. */
static inline MSF_ALWAYS_INLINE void msf_dot_2x2_s8(const int8_t *x0, const int8_t *x1,
                                                    const int8_t *w0, const int8_t *w1,
                                                    int32_t n, int32_t acc[4])
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t i;
#if MSF_DSP
    for (i = n >> 2; i > 0; i--) {
        const uint32_t xa = msf_read_s8x4(x0), xb = msf_read_s8x4(x1);
        const uint32_t wa = msf_read_s8x4(w0), wb = msf_read_s8x4(w1);
        const uint32_t xa02 = msf_sxtb16(xa), xa13 = msf_sxtb16_ror8(xa);
        const uint32_t xb02 = msf_sxtb16(xb), xb13 = msf_sxtb16_ror8(xb);
        const uint32_t wa02 = msf_sxtb16(wa), wa13 = msf_sxtb16_ror8(wa);
        const uint32_t wb02 = msf_sxtb16(wb), wb13 = msf_sxtb16_ror8(wb);
        a00 = msf_smlad(xa02, wa02, a00);
        a00 = msf_smlad(xa13, wa13, a00);
        a10 = msf_smlad(xb02, wa02, a10);
        a10 = msf_smlad(xb13, wa13, a10);
        a01 = msf_smlad(xa02, wb02, a01);
        a01 = msf_smlad(xa13, wb13, a01);
        a11 = msf_smlad(xb02, wb02, a11);
        a11 = msf_smlad(xb13, wb13, a11);
        x0 += 4;
        x1 += 4;
        w0 += 4;
        w1 += 4;
    }
#else
#define MSF_MAC_2X2(k)                                                                      \
    do {                                                                                    \
        const int32_t xa = x0[k], xb = x1[k], wa = w0[k], wb = w1[k];                       \
        a00 += xa * wa;                                                                     \
        a01 += xa * wb;                                                                     \
        a10 += xb * wa;                                                                     \
        a11 += xb * wb;                                                                     \
    } while (0)
    for (i = n >> 2; i > 0; i--) {
        MSF_MAC_2X2(0);
        MSF_MAC_2X2(1);
        MSF_MAC_2X2(2);
        MSF_MAC_2X2(3);
        x0 += 4;
        x1 += 4;
        w0 += 4;
        w1 += 4;
    }
#undef MSF_MAC_2X2
#endif
    for (i = n & 3; i > 0; i--) {
        const int32_t xa = *x0++, xb = *x1++, wa = *w0++, wb = *w1++;
        a00 += xa * wa;
        a01 += xa * wb;
        a10 += xb * wa;
        a11 += xb * wb;
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* acc[j] += sum over k < n of x[k] * w_j[k]: one int8 vector against two weight rows. */
static inline MSF_ALWAYS_INLINE void msf_dot_1x2_s8(const int8_t *x, const int8_t *w0,
                                                    const int8_t *w1, int32_t n, int32_t acc[2])
{
    int32_t a0 = acc[0], a1 = acc[1];
    int32_t i;
#if MSF_DSP
    for (i = n >> 2; i > 0; i--) {
        const uint32_t xv = msf_read_s8x4(x), wa = msf_read_s8x4(w0), wb = msf_read_s8x4(w1);
        const uint32_t x02 = msf_sxtb16(xv), x13 = msf_sxtb16_ror8(xv);
        a0 = msf_smlad(x02, msf_sxtb16(wa), a0);
        a0 = msf_smlad(x13, msf_sxtb16_ror8(wa), a0);
        a1 = msf_smlad(x02, msf_sxtb16(wb), a1);
        a1 = msf_smlad(x13, msf_sxtb16_ror8(wb), a1);
        x += 4;
        w0 += 4;
        w1 += 4;
    }
#else
    for (i = n >> 2; i > 0; i--) {
        a0 += x[0] * w0[0] + x[1] * w0[1] + x[2] * w0[2] + x[3] * w0[3];
        a1 += x[0] * w1[0] + x[1] * w1[1] + x[2] * w1[2] + x[3] * w1[3];
        x += 4;
        w0 += 4;
        w1 += 4;
    }
#endif
    for (i = n & 3; i > 0; i--) {
        const int32_t xv = *x++;
        a0 += xv * *w0++;
        a1 += xv * *w1++;
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* sum over k < n of x[k] * w[k], added to acc. */
static inline MSF_ALWAYS_INLINE int32_t msf_dot_1x1_s8(const int8_t *x, const int8_t *w,
                                                       int32_t n, int32_t acc)
{
    int32_t i;
#if MSF_DSP
    for (i = n >> 2; i > 0; i--) {
        const uint32_t xv = msf_read_s8x4(x), wv = msf_read_s8x4(w);
        acc = msf_smlad(msf_sxtb16(xv), msf_sxtb16(wv), acc);
        acc = msf_smlad(msf_sxtb16_ror8(xv), msf_sxtb16_ror8(wv), acc);
        x += 4;
        w += 4;
    }
    n &= 3;
#endif
    for (i = 0; i < n; i++) {
        acc += x[i] * w[i];
    }
    return acc;
}

/* ------------------------------------------------------------------ conv outputs */

/* Bytes of one row of k pre-widened weights (msf_conv_params.weights_s16). */
static inline int32_t msf_wide_row_bytes(int32_t k)
{
    return ((k + 3) & ~3) * 2;
}

/* Whether a conv layer's outputs can take msf_requantize_fast and a plain int8 saturation. */
static inline int msf_conv_fast_output(const msf_conv_params *p)
{
    return p->fast_requant && p->act_min == MSF_INT8_MIN && p->act_max == MSF_INT8_MAX;
}

/* Output value (in int8 range) of channel c for accumulator acc (kernel_sum included). `fast`
 * is msf_conv_fast_output(p), a constant where the kernels instantiate their loops. */
static inline MSF_ALWAYS_INLINE int32_t msf_conv_output(int32_t acc, const msf_conv_params *p,
                                                        const msf_channel_params *q, int32_t c,
                                                        int fast)
{
    if (fast) {
        const int32_t v = msf_requantize_fast(acc, q->multiplier, q->rounding, q->rshift);
#if MSF_DSP
        return msf_ssat8(v);
#else
        /* one unsigned compare for the common in-range case */
        return (uint32_t)(v + 128) <= 255u ? v : (v >> 31) ^ 127;
#endif
    }
    const int32_t v = msf_requantize(acc, q->multiplier, p->shift[c]) + p->output_offset;
    return msf_clamp_s8(v, p->act_min, p->act_max);
}

#if MSF_WIDE_C
/* msf_requantize_fast without the low product word, for a multiplier given doubled:
 * m2 = 2 * multiplier as uint32 (multiplier >= 0). y = floor(2 * acc * m2 / 2^32) =
 * floor(acc * multiplier / 2^30) is one signed-by-unsigned high multiply (RISC-V MULHSU), and
 * DoublingHighMul x = floor((acc * multiplier + 2^30) / 2^31) = (y + 1) >> 1, |x| < 2^30; x's
 * own sign gives RoundingDivideByPOT's [x < 0]. */
static inline int32_t msf_requantize_fast_m2(int32_t acc, uint32_t m2, int32_t rounding,
                                             int32_t rshift)
{
    const int32_t y = (int32_t)(((int64_t)(int32_t)((uint32_t)acc << 1) * (int64_t)m2) >> 32);
    const int32_t x = (y + 1) >> 1;
    return (x + rounding + (x >> 31)) >> rshift;
}

/* msf_conv_output for an output whose channel q other pixels of the same pass share: with
 * fast outputs the m2 form, whose doubled multiplier the pixels then form once (cores with a
 * soft 64-bit multiply keep msf_conv_output). */
static inline MSF_ALWAYS_INLINE int32_t msf_conv_output_shared(int32_t acc,
                                                               const msf_conv_params *p,
                                                               const msf_channel_params *q,
                                                               int32_t c, int fast)
{
#if !MSF_WIDE_MUL_SOFT
    if (fast) {
        const int32_t v = msf_requantize_fast_m2(acc, (uint32_t)q->multiplier << 1, q->rounding,
                                                 q->rshift);
        return (uint32_t)(v + 128) <= 255u ? v : (v >> 31) ^ 127;
    }
#endif
    return msf_conv_output(acc, p, q, c, fast);
}
#endif

/* Internal to the convolution kernels: all `cout` outputs of one or two int8 vectors of k
 * elements (a pixel of a pointwise convolution, an im2col column): the dot products with the
 * weight rows of p (Cout, k) plus the kernel sums, requantised into d0 (and d1); x1 == NULL
 * for one vector. */
void msf_conv_vectors_s8(const msf_conv_params *p, int32_t k, int32_t cout, const int8_t *x0,
                         const int8_t *x1, int8_t *d0, int8_t *d1);

#if MSF_WIDE_C
/* Internal to the convolution kernels, with the wide C blocks: all `cout` outputs of n (1 to
 * 3) windows of a 3-row layer with fast outputs (msf_conv_fast_output) read in place, each
 * three rows of row_len int8 (kw * Cin) row_step bytes apart starting at x[i] (weights
 * (Cout, 3, kw, Cin)), requantised into d[i]. */
void msf_conv_windows_s8(const msf_conv_params *p, int32_t row_len, int32_t row_step,
                         int32_t cout, const int8_t *const x[3], int8_t *const d[3], int32_t n);
#endif

#ifdef __cplusplus
}
#endif

#endif /* MSF_NNSUPPORT_H */
