/*
 * msf_kernels.h - int8 kernels of msfsim, in the style of CMSIS-NN.
 *
 * Freestanding C99: only <stdint.h> and <stddef.h>, no libc, no allocation.
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
 * toward +infinity; saturates the one overflowing case INT32_MIN * INT32_MIN. */
static inline int32_t msf_doubling_high_mult(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = msf_mul_wide(a, b);
    const int64_t nudge = (ab >= 0) ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* RoundingDivideByPOT (gemmlowp): x / 2^exponent rounded to nearest, ties away from zero. */
static inline int32_t msf_divide_by_power_of_two(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* arm_nn_requantize: shift in [-31, 31], positive = left shift (wraps like int32 arithmetic). */
static inline int32_t msf_requantize(int32_t acc, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)acc << left);
    return msf_divide_by_power_of_two(msf_doubling_high_mult(shifted, multiplier), right);
}

static inline int8_t msf_clamp_s8(int32_t v, int32_t lo, int32_t hi)
{
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    return (int8_t)v;
}

/* ------------------------------------------------------------------ parameter structs */

/* Convolution and depthwise convolution (channel multiplier 1). */
typedef struct {
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;  /* bottom/right padding is implied by the tensor bounds */
    int32_t input_offset;       /* minus the input zero point */
    int32_t output_offset;      /* the output zero point */
    int32_t act_min, act_max;
    const int8_t *weights;      /* conv (Cout, kh, kw, Cin); depthwise (kh, kw, C) */
    const int32_t *bias;        /* Cout entries, or NULL */
    const int32_t *multiplier;  /* per output channel */
    const int32_t *shift;       /* per output channel */
} msf_conv_params;

/* Max and average pooling. Average pooling sums (x + input_offset) over the taps inside the
 * tensor (padding contributes zero) and maps the sum to the output scale with one
 * multiplier/shift into which the window size is folded. Max pooling ignores padding taps and
 * the offsets / multiplier (same quantisation in and out). */
typedef struct {
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t input_offset;       /* minus the input zero point (avg) */
    int32_t output_offset;      /* the output zero point (avg) */
    int32_t act_min, act_max;
    int32_t multiplier, shift;  /* avg only */
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

/* ------------------------------------------------------------------ convolution */

/* Any kernel size, stride and padding. Channels in = in->c, out = out->c.
 * Scratch: one int16 im2col column of kh*kw*Cin (0 for a 1x1 kernel, which takes the fast path). */
int32_t msf_convolve_s8_get_buffer_size(const msf_conv_params *p, int32_t in_c);
void msf_convolve_s8(const msf_window *in, const msf_conv_params *p, msf_window *out,
                     int32_t oy0, int32_t ox0, int32_t oh, int32_t ow, void *scratch);

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
