/* int8 softmax, TFLM's reference arithmetic (gemmlowp fixed point), as CMSIS-NN's
 * arm_softmax_s8 computes it. */
#include "msf_softmax_s8.h"
#include "msf_nnsupport.h"

#define MSF_SOFTMAX_DIFF_INT_BITS 5    /* kScaledDiffIntegerBits: differences in Q5.26 */
#define MSF_SOFTMAX_ACCUM_BITS 12      /* kAccumulationIntegerBits: the sum in Q12.19 */
#define MSF_SOFTMAX_OUT_BITS 8         /* int8 output */
/* 1/4 in Q5.26: exp is evaluated on [-1/4, 0) and the remainder's bits from here up select
 * the factors exp(-2^-2) .. exp(-2^4) */
#define MSF_SOFTMAX_QUARTER_SHIFT (31 - MSF_SOFTMAX_DIFF_INT_BITS - 2)
#define MSF_SOFTMAX_BARREL_STEPS (MSF_SOFTMAX_DIFF_INT_BITS + 2)
/* From this sum on the output shift would exceed 31 (TFLM aborts): every output is -128. */
#define MSF_SOFTMAX_SUM_LIMIT ((int32_t)1 << (MSF_SOFTMAX_OUT_BITS + 32 - MSF_SOFTMAX_ACCUM_BITS))

_Static_assert(MSF_SOFTMAX_QUARTER_SHIFT == 24, "exp barrel shifter: bit 24 is 2^-2 in Q5.26");
_Static_assert(MSF_SOFTMAX_SUM_LIMIT == (1 << 28), "output shift 35 - clz(sum) <= 31");

/* exp(-2^k) in Q0.31, k = -2 .. 4 */
static const int32_t msf_exp_barrel[MSF_SOFTMAX_BARREL_STEPS] = {
    1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};

/* SaturatingRoundingMultiplyByPOT<exponent> for exponent in [1, 30]. */
static inline int32_t msf_mul_by_power_of_two_sat(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)(((uint32_t)1 << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* gemmlowp exp_on_negative_values: a <= 0 in Q5.26 -> exp(a) in Q0.31. */
static int32_t msf_exp_on_negative_values(int32_t a)
{
    const int32_t quarter = (int32_t)1 << MSF_SOFTMAX_QUARTER_SHIFT;
    const int32_t a_mod = (a & (quarter - 1)) - quarter;            /* in [-1/4, 0) */
    const int32_t remainder = (int32_t)((uint32_t)a_mod - (uint32_t)a);
    /* exp on [-1/4, 0): Taylor expansion around -1/8 (1 << 28 in Q0.31); the Q5.26 -> Q0.31
     * rescale of a_mod is exact */
    const int32_t x = (int32_t)((uint32_t)a_mod << MSF_SOFTMAX_DIFF_INT_BITS) + (1 << 28);
    const int32_t x2 = msf_doubling_high_mult(x, x);
    const int32_t x3 = msf_doubling_high_mult(x2, x);
    const int32_t x4 = msf_doubling_high_mult(x2, x2);
    const int32_t x4_over_4 = msf_divide_by_power_of_two(x4, 2);
    const int32_t poly = msf_divide_by_power_of_two(
        msf_doubling_high_mult(x4_over_4 + x3, 715827883 /* 1/3 */) + x2, 1);
    int32_t result = 1895147668 /* exp(-1/8) */ +
                     msf_doubling_high_mult(1895147668, x + poly);
    for (int32_t k = 0; k < MSF_SOFTMAX_BARREL_STEPS; ++k) {
        if (remainder & ((int32_t)1 << (MSF_SOFTMAX_QUARTER_SHIFT + k))) {
            result = msf_doubling_high_mult(result, msf_exp_barrel[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a), a in [0, 1), Q0.31 in and out. */
static int32_t msf_one_over_one_plus_x(int32_t a)
{
    /* RoundingHalfSum(a, 1): (a + 2^31 - 1 + 1) / 2, no overflow in uint32 for a >= 0 */
    const int32_t half = (int32_t)(((uint32_t)a + 0x80000000u) >> 1);
    int32_t x = 1515870810 /* 48/17 in Q2.29 */ + msf_doubling_high_mult(half, -1010580540);
    for (int32_t k = 0; k < 3; ++k) {  /* Newton-Raphson in Q2.29 */
        const int32_t one_minus = (1 << 29) - msf_doubling_high_mult(half, x);
        x += msf_mul_by_power_of_two_sat(msf_doubling_high_mult(x, one_minus), 2);
    }
    return msf_mul_by_power_of_two_sat(x, 1);
}

/* exp((x - max) * beta * scale) in Q0.31 for diff = x - max >= diff_min (no overflow there). */
static inline int32_t msf_softmax_exp(int32_t diff, const msf_softmax_params *p)
{
    const int32_t scaled = msf_doubling_high_mult(
        (int32_t)((uint32_t)diff << p->input_left_shift), p->input_mult);
    return msf_exp_on_negative_values(scaled);
}

int32_t msf_softmax_s8_get_buffer_size(const msf_softmax_params *p)
{
    return p->channels;
}

void msf_softmax_s8(const int8_t *input, const msf_softmax_params *p, int8_t *output)
{
    const int32_t n = p->channels;
    int8_t max = input[0];
    for (int32_t i = 1; i < n; ++i) {
        max = input[i] > max ? input[i] : max;
    }
    int32_t sum = 0;  /* Q12.19; each term <= 2^19: stops below 2^31 */
    for (int32_t i = 0; i < n && sum < MSF_SOFTMAX_SUM_LIMIT; ++i) {
        const int32_t diff = input[i] - max;
        if (diff >= p->diff_min) {
            sum += msf_divide_by_power_of_two(msf_softmax_exp(diff, p), MSF_SOFTMAX_ACCUM_BITS);
        }
    }
    if (sum >= MSF_SOFTMAX_SUM_LIMIT) {
        for (int32_t i = 0; i < n; ++i) {
            output[i] = (int8_t)-128;
        }
        return;
    }
    /* sum >= 2^19 (the maximum's exp): headroom in [4, 12], output shift in [23, 31] */
    const int32_t headroom = (int32_t)__builtin_clz((uint32_t)sum);
    const int32_t scale = msf_one_over_one_plus_x(
        (int32_t)(((uint32_t)sum << headroom) - 0x80000000u));
    const int32_t out_shift = MSF_SOFTMAX_ACCUM_BITS - headroom + 31 - MSF_SOFTMAX_OUT_BITS;
    for (int32_t i = 0; i < n; ++i) {
        const int32_t diff = input[i] - max;
        if (diff >= p->diff_min) {
            const int32_t v = msf_divide_by_power_of_two(
                msf_doubling_high_mult(scale, msf_softmax_exp(diff, p)), out_shift) - 128;
            output[i] = msf_clamp_s8(v, -128, 127);
        } else {
            output[i] = (int8_t)-128;
        }
    }
}

void msf_softmax_accumulate_s8(const msf_window *in, const msf_softmax_params *p, int32_t y0,
                               int32_t x0, int32_t h, int32_t w, int8_t *buf)
{
    const int32_t n = w * in->c;  /* a row of the rectangle is contiguous */
    (void)p;
    for (int32_t y = y0; y < y0 + h; ++y) {
        const int8_t *src = msf_window_pixel(in, y, x0);
        int8_t *dst = buf + (y * in->tensor_w + x0) * in->c;
        for (int32_t i = 0; i < n; ++i) {
            dst[i] = src[i];
        }
    }
}

void msf_softmax_finish_s8(const msf_softmax_params *p, const int8_t *buf, int8_t *out)
{
    msf_softmax_s8(buf, p, out);
}

void msf_softmax_map_s8(const msf_window *in, const msf_softmax_params *p, msf_window *out,
                        int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    const int32_t c = p->channels;

    for (int32_t oy = oy0; oy < oy0 + oh; oy++) {
        const int8_t *src = msf_window_pixel(in, oy, ox0);
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        for (int32_t ox = 0; ox < ow; ox++, src += c, dst += c) {
            msf_softmax_s8(src, p, dst);
        }
    }
}
