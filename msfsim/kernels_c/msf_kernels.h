/*
 * msf_kernels.h - int8 kernels of msfsim, in the style of CMSIS-NN.
 *
 * Freestanding C99: only <stdint.h> and <stddef.h> (and the compiler's <arm_acle.h> on
 * Cortex-M cores with the DSP extension), no libc, no allocation.
 *
 * Every spatial kernel is region-based: it computes the output rectangle
 * [oy0, oy0 + oh) x [ox0, ox0 + ow) (all channels) of its output tensor, in tensor
 * coordinates, reading its input from an msf_window (a rectangle of the input tensor held
 * in a buffer, rows optionally stored as a ring) and writing into an output msf_window.
 * Input positions outside the whole tensor are padding; the caller guarantees that every
 * non-padding input position a region needs is held by the input window and that the
 * output region lies inside the output window.
 *
 * Fixed-point arithmetic (TFLite / CMSIS-NN, arm_nn_requantize without single rounding):
 *   acc = bias[c] + sum((x + input_offset) * w)          input_offset = -input zero point
 *   out = clamp(output_offset + msf_requantize(acc, multiplier[c], shift[c]), act_min, act_max)
 * The convolutions compute acc as kernel_sum[c] + sum(x * w) (msf_channel_params, from code
 * generation), padding taps taking the input zero point, and requantise with
 * msf_requantize_fast when the layer allows it: the same values, bit for bit.
 * Weight layouts: conv OHWI (Cout, kh, kw, Cin); depthwise (kh, kw, C); dense (Cout, H*W*C)
 * with the input flattened in NHWC order.
 *
 * Each kernel states its scratch through *_get_buffer_size() (bytes, 0 when none) and takes
 * a scratch pointer (4-byte aligned) when it needs one.
 */
#ifndef MSF_KERNELS_H
#define MSF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MSF_INT8_MIN (-128)
#define MSF_INT8_MAX 127
/* Left shift applied to both inputs of an elementwise add before rescaling (TFLite int8 add). */
#define MSF_ADD_LEFT_SHIFT 20

/* ------------------------------------------------------------------------------ windows */

typedef struct {
    int8_t *data;               /* storage of the window */
    int32_t y0, x0;             /* tensor coordinates of the first stored row / column */
    int32_t h, w, c;            /* rows and columns held, channels */
    int32_t row_stride;         /* bytes between stored rows (>= w * c) */
    int32_t ring_rows;          /* 0: row y stored at data + (y - y0) * row_stride;
                                   n > 0: rows form a ring: row y at data + (y % n) * row_stride */
    int32_t tensor_h, tensor_w; /* the whole tensor: positions outside it are padding */
} msf_window;

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

/* Cores with the DSP extension (Cortex-M4/M7/M33...) use SIMD multiply-accumulates on int16
 * pairs, as CMSIS-NN does; others use plain C. MSF_DSP_EMULATE=1 gives the DSP code paths on
 * any host with C versions of the intrinsics (tests). */
#if defined(MSF_DSP_EMULATE) && MSF_DSP_EMULATE
#define MSF_DSP 1
#elif defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(MSF_NO_DSP)
#define MSF_DSP 1
#include <arm_acle.h>
#else
#define MSF_DSP 0
#endif
/* The hottest loops are hand-scheduled Thumb-2 on real DSP cores (GCC's register allocation
 * spills the 2x2 multiply-accumulate blocks); the C paths stay the reference. */
#if MSF_DSP && !(defined(MSF_DSP_EMULATE) && MSF_DSP_EMULATE) && defined(__thumb2__)
#define MSF_DSP_ASM 1
#else
#define MSF_DSP_ASM 0
#endif
/* For the kernels' C loops: the hot path where there is no assembly (inlined with constant
 * flags), a fallback kept out of line where there is, so that its spills do not deepen the
 * stack of the fast path. */
#if MSF_DSP_ASM && defined(__GNUC__)
#define MSF_C_LOOPS static __attribute__((noinline))
#else
#define MSF_C_LOOPS static inline MSF_ALWAYS_INLINE
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

/* ------------------------------------------------------------------ parameter structs */

/* Per output channel of a convolution, precomputed by code generation so that the inner loops
 * neither add the input offset nor derive rounding constants. */
typedef struct {
    int32_t kernel_sum;         /* bias + input_offset * (sum of the channel's weights): the
                                   accumulator then is kernel_sum + sum(x * w) */
    int32_t multiplier;         /* the channel's multiplier */
    int32_t rounding, rshift;   /* msf_requantize_fast's constants when fast_requant, else 0 */
} msf_channel_params;

/* Convolution and depthwise convolution (channel multiplier 1). */
typedef struct {
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;  /* bottom/right padding is implied by the tensor bounds */
    int32_t input_offset;       /* minus the input zero point */
    int32_t output_offset;      /* the output zero point */
    int32_t act_min, act_max;
    const int8_t *weights;      /* conv (Cout, kh, kw, Cin); depthwise (kh, kw, C); NULL when
                                   weights_s16 holds them */
    const int16_t *weights_s16; /* or NULL: weights pre-widened for the DSP loops (MSF_DSP_ASM
                                   builds of a layer whose outputs are fast, from codegen), word
                                   aligned. Conv (k = kh*kw*Cin >= 4, Cout >= 4; `weights` then
                                   NULL): rows of msf_wide_row_bytes(k) bytes, each group of
                                   four as w0 w2 w1 w3 (the SXTB16 lane order), the k % 4 tail
                                   in order, zero padding. Depthwise 3x3 (C >= 4; a copy beside
                                   `weights`): per group of four channels c..c+3 (c = 0, 4, ...,
                                   then C - 4 if C % 4) the nine taps as c c+2 c+1 c+3 */
    const int32_t *bias;        /* Cout entries, or NULL */
    const int32_t *multiplier;  /* per output channel */
    const int32_t *shift;       /* per output channel */
    const msf_channel_params *channels; /* per output channel (required) */
    int32_t fast_requant;       /* 1 when the channels' rounding and rshift are valid: every
                                   channel has multiplier >= 0, -22 <= shift <= -1 and
                                   |kernel_sum| + 128 * (sum of |weights|) < 2^30 (so |acc| <
                                   2^30), and output_offset is in [-128, 127] */
} msf_conv_params;

/* Max and average pooling. Average pooling sums (x + input_offset) over the taps inside the
 * tensor (padding contributes zero) and maps the sum to the output scale with one
 * multiplier/shift into which the window size is folded; with tflite_div set it follows TFLite
 * (Micro)'s int8 AveragePool instead: the sum of the raw taps inside the tensor divided by
 * their count, rounded half away from zero (same quantisation in and out; offsets and
 * multiplier unused). Max pooling ignores padding taps and the offsets / multiplier (same
 * quantisation in and out). */
typedef struct {
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t input_offset;       /* minus the input zero point (avg) */
    int32_t output_offset;      /* the output zero point (avg) */
    int32_t act_min, act_max;
    int32_t multiplier, shift;  /* avg only */
    int32_t tflite_div;         /* avg only: 1 = TFLite's rounded division by the tap count */
} msf_pool_params;

/* TFLite int8 add: out = clamp(output_offset + requantize(
 *     requantize((x1 + input1_offset) << left_shift, input1_mult, input1_shift) +
 *     requantize((x2 + input2_offset) << left_shift, input2_mult, input2_shift),
 *     output_mult, output_shift), act_min, act_max). */
typedef struct {
    int32_t input1_offset, input2_offset; /* minus the input zero points */
    int32_t left_shift;                   /* MSF_ADD_LEFT_SHIFT */
    int32_t input1_mult, input1_shift;
    int32_t input2_mult, input2_shift;
    int32_t output_mult, output_shift;
    int32_t output_offset;
    int32_t act_min, act_max;
} msf_add_params;

/* Global average pooling: one multiplier/shift maps the sum over H*W to the output scale. */
typedef struct {
    int32_t channels;
    int32_t input_offset;       /* minus the input zero point */
    int32_t output_offset;
    int32_t act_min, act_max;
    int32_t multiplier, shift;
} msf_gap_params;

/* Fully connected over the NHWC-flattened input. */
typedef struct {
    int32_t in_size;            /* H * W * C of the input */
    int32_t out_size;           /* Cout */
    int32_t input_offset;       /* minus the input zero point */
    int32_t output_offset;
    int32_t act_min, act_max;
    const int8_t *weights;      /* (Cout, in_size) */
    const int32_t *bias;        /* Cout entries, or NULL */
    const int32_t *multiplier;  /* per output channel */
    const int32_t *shift;
} msf_fc_params;

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

/* ------------------------------------------------------------------ convolution */

/* Any kernel size, stride and padding. Channels in = in->c, out = out->c.
 * Scratch: kh*kw*Cin int16 (0 for a 1x1 kernel, which takes the pointwise kernel), rounded up
 * to 4 bytes: it holds the int8 im2col columns of two output pixels. */
int32_t msf_convolve_s8_get_buffer_size(const msf_conv_params *p, int32_t in_c);
void msf_convolve_s8(const msf_window *in, const msf_conv_params *p, msf_window *out,
                     int32_t oy0, int32_t ox0, int32_t oh, int32_t ow, void *scratch);

/* Internal to the convolution kernels: all `cout` outputs of one or two int8 vectors of k
 * elements (a pixel of a pointwise convolution, an im2col column): the dot products with the
 * weight rows of p (Cout, k) plus the kernel sums, requantised into d0 (and d1); x1 == NULL
 * for one vector. */
void msf_conv_vectors_s8(const msf_conv_params *p, int32_t k, int32_t cout, const int8_t *x0,
                         const int8_t *x1, int8_t *d0, int8_t *d1);

/* 1x1 kernel, any stride and padding; no scratch. */
int32_t msf_convolve_1x1_s8_get_buffer_size(const msf_conv_params *p, int32_t in_c);
void msf_convolve_1x1_s8(const msf_window *in, const msf_conv_params *p, msf_window *out,
                         int32_t oy0, int32_t ox0, int32_t oh, int32_t ow);

/* Convolution followed by a max pool whose stride >= its window, so every conv output pixel
 * belongs to at most one pool window and the conv output is never stored: each computed pixel
 * is folded into its pooled output pixel by a running max. The region is in pooled-output
 * coordinates; conv_out_h / conv_out_w are the conv output dimensions (the pool's padding
 * bounds). Scratch: the conv's plus one output pixel (Cout bytes), rounded up to 4 bytes. */
int32_t msf_convolve_maxpool_s8_get_buffer_size(const msf_conv_params *conv,
                                                const msf_pool_params *pool, int32_t in_c,
                                                int32_t out_c);
void msf_convolve_maxpool_s8(const msf_window *in, const msf_conv_params *conv,
                             const msf_pool_params *pool, int32_t conv_out_h, int32_t conv_out_w,
                             msf_window *out, int32_t oy0, int32_t ox0, int32_t oh, int32_t ow,
                             void *scratch);

/* Depthwise, channel multiplier 1 (out->c == in->c); no scratch. */
int32_t msf_depthwise_conv_s8_get_buffer_size(const msf_conv_params *p, int32_t channels);
void msf_depthwise_conv_s8(const msf_window *in, const msf_conv_params *p, msf_window *out,
                           int32_t oy0, int32_t ox0, int32_t oh, int32_t ow);

/* ------------------------------------------------------------------ pooling, add */

int32_t msf_max_pool_s8_get_buffer_size(const msf_pool_params *p, int32_t channels);
void msf_max_pool_s8(const msf_window *in, const msf_pool_params *p, msf_window *out,
                     int32_t oy0, int32_t ox0, int32_t oh, int32_t ow);

int32_t msf_avg_pool_s8_get_buffer_size(const msf_pool_params *p, int32_t channels);
void msf_avg_pool_s8(const msf_window *in, const msf_pool_params *p, msf_window *out,
                     int32_t oy0, int32_t ox0, int32_t oh, int32_t ow);

/* Both inputs have the output's shape; each window holds the region. No scratch. */
int32_t msf_elementwise_add_s8_get_buffer_size(const msf_add_params *p, int32_t channels);
void msf_elementwise_add_s8(const msf_window *in1, const msf_window *in2,
                            const msf_add_params *p, msf_window *out,
                            int32_t oy0, int32_t ox0, int32_t oh, int32_t ow);

/* ------------------------------------------------------------------ iterative tails */

/* Global average pooling as a running int32 per-channel sum (the scratch, `channels` int32):
 * init once, accumulate the input a region [y0, y0+h) x [x0, x0+w) at a time (each position
 * exactly once), finish writes the (1, 1, C) output. */
int32_t msf_global_avg_pool_s8_get_buffer_size(const msf_gap_params *p);
void msf_global_avg_pool_init_s8(const msf_gap_params *p, int32_t *sum);
void msf_global_avg_pool_accumulate_s8(const msf_window *in, const msf_gap_params *p,
                                       int32_t y0, int32_t x0, int32_t h, int32_t w,
                                       int32_t *sum);
void msf_global_avg_pool_finish_s8(const msf_gap_params *p, const int32_t *sum, int8_t *out);

/* Fully connected as int32 accumulators (the scratch, out_size int32): init sets them to the
 * bias, accumulate feeds `count` consecutive elements of the flattened input starting at
 * element `offset`, finish requantises into the (1, 1, Cout) output. */
int32_t msf_fully_connected_s8_get_buffer_size(const msf_fc_params *p);
void msf_fully_connected_init_s8(const msf_fc_params *p, int32_t *acc);
void msf_fully_connected_accumulate_s8(const msf_fc_params *p, const int8_t *in,
                                       int32_t offset, int32_t count, int32_t *acc);
void msf_fully_connected_finish_s8(const msf_fc_params *p, const int32_t *acc, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* MSF_KERNELS_H */
