/*
 * msf_executor.h - descriptor-driven executor of fused blocks.
 *
 * Generated code (msfsim.codegen) describes each block as const structs: its tensors (shape,
 * buffer kind, arena offset and capacity) and its layers (op, tensor slots, kernel geometry,
 * kernel parameters). msf_run_block() runs any block with any scheme and output tile by calling
 * the region-based kernels of msf_kernels.h; the semantics of the schemes are in docs/fusion.md:
 *   MSF_SCHEME_LAYER      one layer, whole output from whole input
 *   MSF_SCHEME_RECOMPUTE  per output tile, every intermediate region recomputed (MCUNetV2)
 *   MSF_SCHEME_HCACHE     columns pulled depth first, one at a time; per intermediate, only the
 *                         columns its consumers still read are kept (msf-CNN's H-cache)
 *   MSF_SCHEME_STREAM2D   intermediates as rings of full-width rows: nothing computed twice
 */
#ifndef MSF_EXECUTOR_H
#define MSF_EXECUTOR_H

#include <stdint.h>

#include "msf_kernels.h"

enum {
    MSF_SCHEME_LAYER = 0,
    MSF_SCHEME_RECOMPUTE = 1,
    MSF_SCHEME_HCACHE = 2,
    MSF_SCHEME_STREAM2D = 3
};

/* MSF_OP_* (msf_layer_desc.op) and the executor's dispatch: generated from msfsim.ops. */
#include "msf_op_table.h"

enum {
    MSF_BUF_FULL = 0,     /* the whole tensor */
    MSF_BUF_REGION = 1,   /* the rectangle one tile needs (rows x cols capacity) */
    MSF_BUF_RING = 2,     /* a ring of `rows` rows, `cols` columns from `col0` */
    MSF_BUF_CACHE = 3,    /* hcache column window: `rows` x `cols`, kept columns at the front */
    MSF_BUF_EXTERN = 4    /* the whole tensor, read in place at msf_exec_input (not in the arena) */
};

#define MSF_NO_TENSOR (-1)
#define MSF_FATAL_EXEC_BAD_DESC 16

typedef struct {
    int32_t h, w, c;          /* tensor shape */
    uint8_t kind;             /* MSF_BUF_* */
    uint32_t offset;          /* arena offset of the buffer */
    uint32_t bytes;           /* buffer bytes claimed */
    int32_t rows, cols, col0; /* REGION / RING capacity; RING first column */
    int32_t last_reader;      /* last spatial layer (index in the block) reading it, -1: none */
} msf_tensor_desc;

typedef struct {
    uint8_t op;               /* MSF_OP_* */
    int8_t in0, in1, out;     /* tensor slots of the block (in1: MSF_NO_TENSOR but for two-input ops) */
    int32_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left; /* region geometry */
    const void *params;       /* msf_conv_params / msf_pool_params / msf_add_params /
                                 msf_gap_params / msf_fc_params by op */
    const msf_pool_params *pool;  /* MSF_OP_CONV_MAXPOOL: the pool, and the conv's output */
    int32_t conv_out_h, conv_out_w;
} msf_layer_desc;

/* Per-tensor run state; the generated code provides storage for the largest block. */
typedef struct {
    msf_window win;
    int32_t r_lo, r_hi, c_lo, c_hi;  /* rectangle the current tile needs */
    int32_t new_r, new_c;            /* first row / column not computed earlier */
    int32_t done_r, done_c;          /* rows / columns computed by earlier bands / tiles */
    int32_t producer;                /* spatial layer writing the tensor, -1 for block inputs */
    int32_t parent;                  /* hcache: the tensor whose column asked for this one */
} msf_tensor_state;

typedef struct {
    uint8_t scheme;           /* MSF_SCHEME_* */
    int32_t tile_h, tile_w;   /* output tile of the last spatial layer (clipped) */
    const msf_tensor_desc *tensors;
    int32_t n_tensors;
    const msf_layer_desc *layers; /* spatial layers then tail layers, topological order */
    int32_t n_spatial, n_tail;
    uint32_t scratch_offset, scratch_bytes; /* largest kernel scratch of the spatial layers */
    uint32_t acc_offset, acc_bytes;         /* int32 accumulators of the tail */
    msf_tensor_state *state;  /* n_tensors entries */
} msf_block_desc;

#ifdef MSF_EXEC_COUNT_MACS
/* Host builds only: MACs of every kernel call (conv, depthwise, dense), for tests that check
 * the exact cost model against what the executor really runs. */
extern uint64_t msf_exec_macs;
#endif

/* The network input when it is read in place (MSF_BUF_EXTERN): set before msf_run_block. */
extern const int8_t *msf_exec_input;

/* Claim the block's buffers in the arena and run it. */
void msf_run_block(const msf_block_desc *block);

/* Byte copy that the compiler cannot turn into a libc call (freestanding builds). */
void msf_copy_s8(int8_t *dst, const int8_t *src, uint32_t n);

#endif /* MSF_EXECUTOR_H */
