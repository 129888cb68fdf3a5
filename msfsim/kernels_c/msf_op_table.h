/* msf_op_table.h - the executor's op codes and dispatch (msf_executor.c).
 * Generated from msfsim.ops by `python -m msfsim.ops.ctable`: do not edit; each
 * op module's CKernel entries say what its codes run (tests/test_ops.py checks that
 * this file is current). */
#ifndef MSF_OP_TABLE_H
#define MSF_OP_TABLE_H

/* The parameter structs and kernels of the ops with their own header. */
#include "msf_concat_s8.h"
#include "msf_lut_s8.h"
#include "msf_mul_s8.h"
#include "msf_softmax_s8.h"

/* msf_layer_desc.op */
enum {
    MSF_OP_CONV = 0,          /* conv: msf_convolve_s8 */
    MSF_OP_CONV_1X1 = 1,      /* conv: msf_convolve_1x1_s8 (1x1 kernels) */
    MSF_OP_DWCONV = 2,        /* dwconv: msf_depthwise_conv_s8 */
    MSF_OP_ADD = 3,           /* add: msf_elementwise_add_s8 */
    MSF_OP_MAXPOOL = 4,       /* maxpool: msf_max_pool_s8 */
    MSF_OP_AVGPOOL = 5,       /* avgpool: msf_avg_pool_s8 */
    MSF_OP_GAP = 6,           /* gap: tail, running per-channel sum */
    MSF_OP_DENSE = 7,         /* dense: tail, running accumulators over the flattened input */
    MSF_OP_CONV_MAXPOOL = 8,  /* conv: msf_convolve_maxpool_s8 (+ max pool, conv output unstored) */
    MSF_OP_LUT = 9,           /* lut: msf_lut_s8 */
    MSF_OP_MUL = 10,          /* mul: msf_mul_s8 */
    MSF_OP_CONCAT = 11,       /* concat: msf_concat_s8 */
    MSF_OP_SOFTMAX = 12,      /* softmax: tail, int8 softmax of the (1, 1, C) input */
    MSF_OP_LUT_CHANNELS = 13, /* lut: msf_lut_channels_s8 (a table per channel) */
    MSF_OP_SUB = 14,          /* sub: msf_elementwise_sub_s8 */
    MSF_OP_SOFTMAX_MAP = 15   /* softmax_map: msf_softmax_map_s8 (every pixel of a map) */
};

#define MSF_OP_COUNT 16

/* Ops that read, of every input, the rectangle they write (no window): one bit
 * test, so that the executor's interval walk stays small (its frame is stack). */
#define MSF_OP_ELEMENTWISE(op) ((1u << (op)) & ((1u << MSF_OP_LUT) | (1u << MSF_OP_LUT_CHANNELS) | (1u << MSF_OP_MUL) | (1u << MSF_OP_ADD) | (1u << MSF_OP_CONCAT) | (1u << MSF_OP_SOFTMAX_MAP) | (1u << MSF_OP_SUB)))

/* msf_run_spatial: the kernel call of each spatial op, output rectangle
 * [oy, oy + oh) x [ox, ox + ow) into window `out` from windows `in` (and `in1`). */
#define MSF_OP_SPATIAL_CASES(l, in, in1, out, oy, ox, oh, ow, scratch) \
    case MSF_OP_CONV: \
        msf_convolve_s8(in, (const msf_conv_params *)l->params, out, oy, ox, oh, ow, scratch); \
        break; \
    case MSF_OP_CONV_1X1: \
        msf_convolve_1x1_s8(in, (const msf_conv_params *)l->params, out, oy, ox, oh, ow); \
        break; \
    case MSF_OP_DWCONV: \
        msf_depthwise_conv_s8(in, (const msf_conv_params *)l->params, out, oy, ox, oh, ow); \
        break; \
    case MSF_OP_ADD: \
        msf_elementwise_add_s8(in, in1, (const msf_add_params *)l->params, out, oy, ox, oh, ow); \
        break; \
    case MSF_OP_MAXPOOL: \
        msf_max_pool_s8(in, (const msf_pool_params *)l->params, out, oy, ox, oh, ow); \
        break; \
    case MSF_OP_AVGPOOL: \
        msf_avg_pool_s8(in, (const msf_pool_params *)l->params, out, oy, ox, oh, ow); \
        break; \
    case MSF_OP_CONV_MAXPOOL: \
        msf_convolve_maxpool_s8(in, (const msf_conv_params *)l->params, l->pool, l->conv_out_h, \
                                l->conv_out_w, out, oy, ox, oh, ow, scratch); \
        break; \
    case MSF_OP_LUT: \
        msf_lut_s8(in, (const msf_lut_params *)l->params, out, oy, ox, oh, ow); \
        break; \
    case MSF_OP_MUL: \
        msf_mul_s8(in, in1, (const msf_mul_params *)l->params, out, oy, ox, oh, ow); \
        break; \
    case MSF_OP_CONCAT: \
        msf_concat_s8(in, in1, (const msf_concat_params *)l->params, out, oy, ox, oh, ow); \
        break; \
    case MSF_OP_LUT_CHANNELS: \
        msf_lut_channels_s8(in, (const msf_lut_params *)l->params, out, oy, ox, oh, ow); \
        break; \
    case MSF_OP_SUB: \
        msf_elementwise_sub_s8(in, in1, (const msf_add_params *)l->params, out, oy, ox, oh, ow); \
        break; \
    case MSF_OP_SOFTMAX_MAP: \
        msf_softmax_map_s8(in, (const msf_softmax_params *)l->params, out, oy, ox, oh, ow); \
        break;

/* Host builds counting MACs (MSF_EXEC_COUNT_MACS): the MACs of one kernel call. */
#define MSF_OP_MACS_CASES(l, cin, cout, oy, ox, oh, ow) \
    case MSF_OP_CONV: \
    case MSF_OP_CONV_1X1: \
        msf_exec_macs += (uint64_t)oh * ow * l->kernel_h * l->kernel_w * cin * cout; \
        break; \
    case MSF_OP_DWCONV: \
        msf_exec_macs += (uint64_t)oh * ow * l->kernel_h * l->kernel_w * cout; \
        break; \
    case MSF_OP_CONV_MAXPOOL: \
        msf_exec_macs += (uint64_t)msf_pooled_span(oy, oh, l->pool->kernel_h, l->pool->stride_h, l->pool->pad_top, l->conv_out_h) \
            * (uint64_t)msf_pooled_span(ox, ow, l->pool->kernel_w, l->pool->stride_w, l->pool->pad_left, l->conv_out_w) \
            * ((const msf_conv_params *)l->params)->kernel_h * ((const msf_conv_params *)l->params)->kernel_w * cin * cout; \
        break;

/* Tail ops: start the accumulators, feed them the input rectangle
 * [y0, y0 + h) x [x0, x0 + w) of window `in`, write the (1, 1, C) output. */
#define MSF_OP_TAIL_INIT(l, acc) \
    if (l->op == MSF_OP_GAP) { \
        msf_global_avg_pool_init_s8((const msf_gap_params *)l->params, acc); \
    } else if (l->op == MSF_OP_DENSE) { \
        msf_fully_connected_init_s8((const msf_fc_params *)l->params, acc); \
    } else { \
        /* the feed writes every value of the input copy */ \
    }

#define MSF_OP_TAIL_FEED(l, in, y0, x0, h, w, acc) \
    if (l->op == MSF_OP_GAP) { \
        msf_global_avg_pool_accumulate_s8(in, (const msf_gap_params *)l->params, y0, x0, h, w, acc); \
    } else if (l->op == MSF_OP_DENSE) { \
        const msf_fc_params *p = (const msf_fc_params *)l->params; \
        MSF_EXEC_ADD_MACS((uint64_t)h * w * in->c * p->out_size); \
        for (int32_t y = y0; y < y0 + h; ++y) { \
            const int32_t offset = (y * in->tensor_w + x0) * in->c; \
            msf_fully_connected_accumulate_s8(p, msf_window_pixel(in, y, x0), offset, w * in->c, acc); \
        } \
    } else { \
        msf_softmax_accumulate_s8(in, (const msf_softmax_params *)l->params, y0, x0, h, w, (int8_t *)acc); \
    }

#define MSF_OP_TAIL_FINISH(l, acc, out) \
    if (l->op == MSF_OP_GAP) { \
        msf_global_avg_pool_finish_s8((const msf_gap_params *)l->params, acc, out); \
    } else if (l->op == MSF_OP_DENSE) { \
        msf_fully_connected_finish_s8((const msf_fc_params *)l->params, acc, out); \
    } else { \
        msf_softmax_finish_s8((const msf_softmax_params *)l->params, (const int8_t *)acc, out); \
    }

#endif /* MSF_OP_TABLE_H */
