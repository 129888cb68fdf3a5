/*
 * msf_kernels.h - public API of msfsim's int8 kernels, in the style of CMSIS-NN's
 * arm_nnfunctions.h: the parameter structs generated code fills, the kernel entry points with
 * their *_get_buffer_size functions, and the constants generated code needs (MSF_INT8_*,
 * MSF_ADD_LEFT_SHIFT, MSF_DSP / MSF_DSP_ASM). The kernels' internal helpers (requantisation,
 * DSP intrinsic wrappers, dot products, window row addressing) are in msf_nnsupport.h, which
 * only the kernel sources and the executor include (as arm_nnsupportfunctions.h).
 *
 * Freestanding C99: only <stdint.h> and <stddef.h> (msf_nnsupport.h adds the compiler's
 * <arm_acle.h> on Cortex-M cores with the DSP extension), no libc, no allocation.
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

/* ------------------------------------------------------------------ DSP extension */

/* Cores with the DSP extension (Cortex-M4/M7/M33...) use SIMD multiply-accumulates on int16
 * pairs, as CMSIS-NN does; others use plain C. MSF_DSP_EMULATE=1 gives the DSP code paths on
 * any host with C versions of the intrinsics (tests). */
#if defined(MSF_DSP_EMULATE) && MSF_DSP_EMULATE
#define MSF_DSP 1
#elif defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(MSF_NO_DSP)
#define MSF_DSP 1
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
                                   in order, zero padding. Depthwise (C >= 4; a copy beside
                                   `weights`): per group of four channels c..c+3 (c = 0, 4, ...,
                                   then C - 4 if C % 4) the kh * kw taps as c c+2 c+1 c+3 */
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
 *     output_mult, output_shift), act_min, act_max). x2 has x1's shape or is (1, 1, C),
 * broadcast over H and W (TFLM's BroadcastAdd: the same arithmetic per element). */
typedef struct {
    int32_t input1_offset, input2_offset; /* minus the input zero points */
    int32_t left_shift;                   /* MSF_ADD_LEFT_SHIFT */
    int32_t input1_mult, input1_shift;
    int32_t input2_mult, input2_shift;
    int32_t output_mult, output_shift;
    int32_t output_offset;
    int32_t act_min, act_max;
    int32_t broadcast;     /* 1: in2 is (1, 1, C), pixel (0, 0) is added to every pixel */
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
 * Scratch: kh*kw*Cin int16 (0 for a 1x1 kernel, which takes the pointwise kernel), rounded up
 * to 4 bytes: it holds the int8 im2col columns of two output pixels. */
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

/* in1 and out windows hold the region; in2 holds it too, or its one pixel when broadcast.
 * No scratch. */
int32_t msf_elementwise_add_s8_get_buffer_size(const msf_add_params *p, int32_t channels);
void msf_elementwise_add_s8(const msf_window *in1, const msf_window *in2,
                            const msf_add_params *p, msf_window *out,
                            int32_t oy0, int32_t ox0, int32_t oh, int32_t ow);
/* The same with the second operand's scaled value subtracted (TFLite's int8 sub; the same
 * parameters). */
void msf_elementwise_sub_s8(const msf_window *in1, const msf_window *in2,
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
