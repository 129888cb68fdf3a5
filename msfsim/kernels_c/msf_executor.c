/* msf_executor.c - runs a fused block described by msf_block_desc (see msf_executor.h and
 * docs/fusion.md). Rows and columns are independent: per band of tile rows the executor
 * computes the rows every tensor needs, per tile the columns, by walking the spatial layers
 * backwards from the tile of the last spatial layer; it then runs the layers forwards over
 * the part of each rectangle not already held. hcache differs on columns: they are pulled
 * depth first, one at a time (msfsim.fusion.geometry.hcache_columns runs the same schedule to
 * size the buffers). What each op runs comes from msf_op_table.h, generated from msfsim.ops:
 * the kernel call of every spatial op, the tail ops' init / feed / finish, which ops read the
 * rectangle they write, and (host builds) the MACs of each call. */
#include "msf_executor.h"

#include "msf_arena.h"
#include "msf_nnsupport.h"

#define MSF_AXIS_ROWS 0
#define MSF_AXIS_COLS 1

const int8_t *msf_exec_input;

#ifdef MSF_EXEC_COUNT_MACS
#define MSF_EXEC_ADD_MACS(n) (msf_exec_macs += (n))
#else
#define MSF_EXEC_ADD_MACS(n) ((void)0)
#endif

static int32_t msf_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
static int32_t msf_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }

#ifdef MSF_EXEC_COUNT_MACS
uint64_t msf_exec_macs;

/* Conv pixels that pooled rows (or columns) [o0, o0 + n) cover: windows never overlap. */
static int32_t msf_pooled_span(int32_t o0, int32_t n, int32_t k, int32_t s, int32_t p,
                               int32_t conv_n)
{
    int32_t count = 0;
    for (int32_t o = o0; o < o0 + n; ++o) {
        count += msf_max_i32(msf_min_i32(o * s - p + k, conv_n) - msf_max_i32(o * s - p, 0), 0);
    }
    return count;
}

static void msf_count_macs(const msf_block_desc *blk, const msf_layer_desc *l, int32_t oy,
                           int32_t ox, int32_t oh, int32_t ow)
{
    const int32_t cin = blk->tensors[l->in0].c;
    const int32_t cout = blk->tensors[l->out].c;
    switch (l->op) {
    MSF_OP_MACS_CASES(l, cin, cout, oy, ox, oh, ow)
    default:
        break;
    }
}
#endif

#if defined(__riscv)
/* RV32 has no misaligned word access: words are moved only at aligned addresses (the source
 * funnel-shifted from two aligned words when it is not aligned like the destination). */
typedef uint32_t msf_word __attribute__((may_alias));
#endif

#if defined(__GNUC__) && !defined(__clang__)
/* Keep GCC from turning the loop into a memmove call, which freestanding builds lack. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
void msf_copy_s8(int8_t *dst, const int8_t *src, uint32_t n)
{
#if defined(__riscv)
    /* Forward copy (also correct for overlapping ranges with dst <= src): bytes up to an
     * aligned destination, then aligned words, each stored after the source words that hold
     * it are loaded; the source words are aligned, so a read never leaves the aligned word of
     * a byte that is copied. */
    for (; n > 0 && ((uintptr_t)dst & 3u) != 0; n--) {
        *dst++ = *src++;
    }
    const uint32_t misalign = (uint32_t)(uintptr_t)src & 3u;
    msf_word *d = (msf_word *)dst;
    msf_word *const d_end = d + (n >> 2);
    const msf_word *s = (const msf_word *)(src - misalign);
    if (misalign == 0) {
        while (d != d_end) {
            *d++ = *s++;
        }
    } else {
        const uint32_t lo_shift = 8u * misalign, hi_shift = 32u - lo_shift;
        uint32_t lo = *s++;
        while (d != d_end) {
            const uint32_t hi = *s++;
            *d++ = (lo >> lo_shift) | (hi << hi_shift);
            lo = hi;
        }
    }
    dst = (int8_t *)d;
    src += n & ~3u;
    for (n &= 3u; n > 0; n--) {
        *dst++ = *src++;
    }
#else
    /* Forward copy, sixteen then four bytes at a time (each chunk is read whole before it is
     * written): also correct for overlapping ranges with dst <= src. The 4-byte memcpy
     * compiles to one unaligned load/store pair where the core has them, to byte moves
     * elsewhere. */
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint32_t w0, w1, w2, w3;
        __builtin_memcpy(&w0, src + i, 4);
        __builtin_memcpy(&w1, src + i + 4, 4);
        __builtin_memcpy(&w2, src + i + 8, 4);
        __builtin_memcpy(&w3, src + i + 12, 4);
        __builtin_memcpy(dst + i, &w0, 4);
        __builtin_memcpy(dst + i + 4, &w1, 4);
        __builtin_memcpy(dst + i + 8, &w2, 4);
        __builtin_memcpy(dst + i + 12, &w3, 4);
    }
    for (; i + 4 <= n; i += 4) {
        uint32_t w;
        __builtin_memcpy(&w, src + i, 4);
        __builtin_memcpy(dst + i, &w, 4);
    }
    for (; i < n; ++i) {
        dst[i] = src[i];
    }
#endif
}

/* Input interval [*lo, *hi) layer `l` reads on one axis to produce output interval [a, b),
 * clipped to the input extent n (outside it is padding). */
static void msf_input_interval(const msf_layer_desc *l, int axis, int32_t a, int32_t b,
                               int32_t n, int32_t *lo, int32_t *hi)
{
    if (MSF_OP_ELEMENTWISE(l->op)) {
        /* [a, b) lies inside an operand of the output's extent; an operand of extent 1 is
         * broadcast (mul's (1, 1, C) scale) and the clip gives its one row / column */
        *lo = msf_min_i32(a, n - 1);
        *hi = msf_min_i32(b, n);
        return;
    }
    const int32_t k = axis == MSF_AXIS_ROWS ? l->kernel_h : l->kernel_w;
    const int32_t s = axis == MSF_AXIS_ROWS ? l->stride_h : l->stride_w;
    const int32_t p = axis == MSF_AXIS_ROWS ? l->pad_top : l->pad_left;
    *lo = msf_max_i32(a * s - p, 0);
    *hi = msf_max_i32(msf_min_i32((b - 1) * s - p + k, n), *lo);
}

/* Backward pass: the interval of every tensor that output interval [a, b) of the last spatial
 * layer needs on one axis (bounding box over the consumers; empty as [0, 0)). */
static void msf_needed_intervals(const msf_block_desc *blk, int axis, int32_t a, int32_t b)
{
    msf_tensor_state *st = blk->state;
    for (int32_t t = 0; t < blk->n_tensors; ++t) {
        int32_t *lo = axis == MSF_AXIS_ROWS ? &st[t].r_lo : &st[t].c_lo;
        int32_t *hi = axis == MSF_AXIS_ROWS ? &st[t].r_hi : &st[t].c_hi;
        *lo = INT32_MAX;
        *hi = INT32_MIN;
    }
    const int32_t star = blk->layers[blk->n_spatial - 1].out;
    if (axis == MSF_AXIS_ROWS) {
        st[star].r_lo = a;
        st[star].r_hi = b;
    } else {
        st[star].c_lo = a;
        st[star].c_hi = b;
    }
    for (int32_t li = blk->n_spatial - 1; li >= 0; --li) {
        const msf_layer_desc *l = &blk->layers[li];
        const msf_tensor_state *o = &st[l->out];
        const int32_t oa = axis == MSF_AXIS_ROWS ? o->r_lo : o->c_lo;
        const int32_t ob = axis == MSF_AXIS_ROWS ? o->r_hi : o->c_hi;
        if (oa >= ob) {
            continue;
        }
        const int8_t ins[2] = {l->in0, l->in1};
        for (int k = 0; k < 2; ++k) {
            if (ins[k] == MSF_NO_TENSOR) {
                continue;
            }
            const msf_tensor_desc *d = &blk->tensors[ins[k]];
            int32_t ia, ib;
            msf_input_interval(l, axis, oa, ob, axis == MSF_AXIS_ROWS ? d->h : d->w, &ia, &ib);
            if (ia >= ib) {
                continue;
            }
            int32_t *lo = axis == MSF_AXIS_ROWS ? &st[ins[k]].r_lo : &st[ins[k]].c_lo;
            int32_t *hi = axis == MSF_AXIS_ROWS ? &st[ins[k]].r_hi : &st[ins[k]].c_hi;
            *lo = msf_min_i32(*lo, ia);
            *hi = msf_max_i32(*hi, ib);
        }
    }
    for (int32_t t = 0; t < blk->n_tensors; ++t) {
        int32_t *lo = axis == MSF_AXIS_ROWS ? &st[t].r_lo : &st[t].c_lo;
        int32_t *hi = axis == MSF_AXIS_ROWS ? &st[t].r_hi : &st[t].c_hi;
        if (*lo >= *hi) {
            *lo = 0;
            *hi = 0;
        }
    }
}

static void msf_window_full(msf_window *win, int8_t *data, const msf_tensor_desc *d)
{
    win->data = data;
    win->y0 = 0;
    win->x0 = 0;
    win->h = d->h;
    win->w = d->w;
    win->c = d->c;
    win->row_stride = d->w * d->c;
    win->ring_rows = 0;
    win->tensor_h = d->h;
    win->tensor_w = d->w;
}

/* Point each tensor's window at the rectangle of the current tile and decide what is new.
 * recompute: everything. stream2d: rows of earlier bands and columns of earlier tiles stay in
 * the ring. */
static void msf_prepare_tile(const msf_block_desc *blk)
{
    for (int32_t t = 0; t < blk->n_tensors; ++t) {
        const msf_tensor_desc *d = &blk->tensors[t];
        msf_tensor_state *s = &blk->state[t];
        msf_window *win = &s->win;
        s->new_r = s->r_lo;
        s->new_c = s->c_lo;
        if (d->kind == MSF_BUF_REGION) {
            win->y0 = s->r_lo;
            win->x0 = s->c_lo;
            win->h = s->r_hi - s->r_lo;
            win->w = s->c_hi - s->c_lo;
            win->row_stride = d->cols * d->c;
        } else if (d->kind == MSF_BUF_RING) {
            s->new_r = msf_max_i32(s->r_lo, s->done_r);
            s->new_c = msf_max_i32(s->c_lo, s->done_c);
            win->y0 = s->r_lo;
            win->h = s->r_hi - s->r_lo;
        }
    }
}

static void msf_run_spatial(const msf_block_desc *blk, const msf_layer_desc *l, void *scratch)
{
    msf_tensor_state *o = &blk->state[l->out];
    const int32_t oy = o->new_r, ox = o->new_c;
    const int32_t oh = o->r_hi - oy, ow = o->c_hi - ox;
    if (oh <= 0 || ow <= 0) {
        return;
    }
#ifdef MSF_EXEC_COUNT_MACS
    msf_count_macs(blk, l, oy, ox, oh, ow);
#endif
    const msf_window *in = &blk->state[l->in0].win;
    switch (l->op) {
    MSF_OP_SPATIAL_CASES(l, in, &blk->state[l->in1].win, &o->win, oy, ox, oh, ow, scratch)
    default:
        msf_fatal(MSF_FATAL_EXEC_BAD_DESC);
    }
}

static void msf_tail_init(const msf_layer_desc *l, int32_t *acc)
{
    MSF_OP_TAIL_INIT(l, acc)
}

/* Feed the rectangle [y0, y0+h) x [x0, x0+w) of the tail layer's input. */
static void msf_tail_feed(const msf_layer_desc *l, const msf_window *in, int32_t y0, int32_t x0,
                          int32_t h, int32_t w, int32_t *acc)
{
    MSF_OP_TAIL_FEED(l, in, y0, x0, h, w, acc)
}

static void msf_tail_finish(const msf_layer_desc *l, const int32_t *acc, int8_t *out)
{
    MSF_OP_TAIL_FINISH(l, acc, out)
}

/* hcache: the lowest column of tensor t that a consumer's next output column reads. */
static int32_t msf_lowest_read(const msf_block_desc *blk, int32_t t)
{
    int32_t lo = INT32_MAX;
    /* readers follow the producer (topological order) and end at last_reader */
    for (int32_t li = blk->state[t].producer + 1; li <= blk->tensors[t].last_reader; ++li) {
        const msf_layer_desc *l = &blk->layers[li];
        const int32_t d = blk->state[l->out].done_c;
        if ((l->in0 != t && l->in1 != t) || d >= blk->tensors[l->out].w) {
            continue;
        }
        int32_t ia, ib;
        msf_input_interval(l, MSF_AXIS_COLS, d, d + 1, blk->tensors[t].w, &ia, &ib);
        lo = msf_min_i32(lo, ia);
    }
    return lo;
}

/* hcache: t's window is full and column x comes next: drop the columns no consumer reads any
 * more and shift the kept ones to the front (a copy per row). Out of line: inlined into
 * msf_run_block, its values would sit beside the tile loop's and grow that frame, which every
 * kernel's stack sits on, by 8 B. */
static __attribute__((noinline)) void msf_cache_shift(const msf_block_desc *blk, int32_t t,
                                                      int32_t x)
{
    const msf_tensor_desc *d = &blk->tensors[t];
    msf_window *win = &blk->state[t].win;
    const int32_t lo = msf_min_i32(msf_lowest_read(blk, t), x);
    if (x - lo >= d->cols || lo < win->x0) {
        msf_fatal(MSF_FATAL_EXEC_BAD_DESC);  /* the buffer plan and the schedule disagree */
    }
    /* The window is full (its rows are row_stride = cols * c apart, with no gap), so moving
     * the whole buffer down by `drop` bytes moves every row's kept columns to its front in
     * one forward copy; what lands behind them are columns about to be computed. */
    /* nothing to keep (a one-column cache, always): the new columns overwrite the window */
    const int32_t drop = (lo - win->x0) * d->c;
    if (drop > 0 && drop < win->row_stride && win->h > 0) {
        msf_copy_s8(win->data, win->data + drop, (uint32_t)(win->h * win->row_stride - drop));
    }
    win->x0 = lo;
}

/* hcache: the first input of layer l (in0, then in1) that lacks a column output columns
 * [a, b) read, or MSF_NO_TENSOR. Block inputs are held whole. */
static int32_t msf_missing_input(const msf_block_desc *blk, const msf_layer_desc *l, int32_t a,
                                 int32_t b)
{
    const int8_t ins[2] = {l->in0, l->in1};
    for (int k = 0; k < 2; ++k) {
        const int32_t u = ins[k];
        if (u == MSF_NO_TENSOR || blk->state[u].producer < 0) {
            continue;
        }
        int32_t ia, ib;
        msf_input_interval(l, MSF_AXIS_COLS, a, b, blk->tensors[u].w, &ia, &ib);
        if (blk->state[u].done_c < ib) {
            return u;
        }
    }
    return MSF_NO_TENSOR;
}

/* hcache: make every input column that output columns [a, b) of layer `top` read available,
 * computing columns depth first, one at a time, over the band's rows (the order of
 * msfsim.fusion.geometry.hcache_columns). The path down from `top` lives in the tensors'
 * `parent` links, not on the call stack: stack use stays flat however deep the block. */
static void msf_pull_inputs(const msf_block_desc *blk, const msf_layer_desc *top, int32_t a,
                            int32_t b, void *scratch)
{
    msf_tensor_state *st = blk->state;
    int32_t t = MSF_NO_TENSOR;   /* the tensor whose next column is wanted; none: top's [a, b) */
    for (;;) {
        const msf_layer_desc *l = t == MSF_NO_TENSOR ? top : &blk->layers[st[t].producer];
        const int32_t x = t == MSF_NO_TENSOR ? a : st[t].done_c;
        const int32_t u = msf_missing_input(blk, l, x, t == MSF_NO_TENSOR ? b : x + 1);
        if (u != MSF_NO_TENSOR) {
            st[u].parent = t;
            t = u;
            continue;
        }
        if (t == MSF_NO_TENSOR) {
            return;
        }
        if (x - st[t].win.x0 >= blk->tensors[t].cols) {
            msf_cache_shift(blk, t, x);
        }
        st[t].new_r = st[t].r_lo;
        st[t].new_c = x;
        st[t].c_hi = x + 1;
        msf_run_spatial(blk, l, scratch);
        st[t].done_c = x + 1;
        t = st[t].parent;
    }
}

/* hcache band start: every window holds the band's rows and no column yet. */
static void msf_start_hcache_band(const msf_block_desc *blk)
{
    for (int32_t t = 0; t < blk->n_tensors; ++t) {
        const msf_tensor_desc *d = &blk->tensors[t];
        msf_tensor_state *s = &blk->state[t];
        s->done_c = 0;
        if (d->kind == MSF_BUF_CACHE || d->kind == MSF_BUF_REGION) {
            s->win.y0 = s->r_lo;
            s->win.x0 = 0;
            s->win.h = s->r_hi - s->r_lo;
        }
    }
}

/* The spatial part, tile by tile; each finished tile of the last spatial layer is fed to the
 * first tail layer when there is one. */
static void msf_run_tiles(const msf_block_desc *blk, void *scratch, int32_t *acc)
{
    const msf_layer_desc *star_layer = &blk->layers[blk->n_spatial - 1];
    const msf_tensor_desc *star = &blk->tensors[star_layer->out];
    const msf_layer_desc *tail = blk->n_tail > 0 ? &blk->layers[blk->n_spatial] : 0;
    msf_tensor_state *st = blk->state;
    for (int32_t t = 0; t < blk->n_tensors; ++t) {
        st[t].done_r = INT32_MIN;
    }
    const int hcache = blk->scheme == MSF_SCHEME_HCACHE;
    for (int32_t ty = 0; ty < star->h; ty += blk->tile_h) {
        msf_needed_intervals(blk, MSF_AXIS_ROWS, ty, msf_min_i32(ty + blk->tile_h, star->h));
        for (int32_t t = 0; t < blk->n_tensors; ++t) {
            st[t].done_c = INT32_MIN;
        }
        if (hcache) {
            msf_start_hcache_band(blk);
        }
        for (int32_t tx = 0; tx < star->w; tx += blk->tile_w) {
            const int32_t tx_end = msf_min_i32(tx + blk->tile_w, star->w);
            msf_tensor_state *s = &st[star_layer->out];
            if (hcache) {
                s->done_c = tx;
                msf_pull_inputs(blk, star_layer, tx, tx_end, scratch);
                s->new_r = s->r_lo;
                s->new_c = s->c_lo = tx;
                s->c_hi = tx_end;
                if (blk->tensors[star_layer->out].kind == MSF_BUF_REGION) {
                    s->win.x0 = tx;   /* the tile buffer a tail reads */
                }
                msf_run_spatial(blk, star_layer, scratch);
                s->done_c = tx_end;
            } else {
                msf_needed_intervals(blk, MSF_AXIS_COLS, tx, tx_end);
                msf_prepare_tile(blk);
                for (int32_t li = 0; li < blk->n_spatial; ++li) {
                    msf_run_spatial(blk, &blk->layers[li], scratch);
                }
                for (int32_t t = 0; t < blk->n_tensors; ++t) {
                    st[t].done_c = st[t].c_hi;
                }
            }
            if (tail) {
                msf_tail_feed(tail, &s->win, s->r_lo, tx, s->r_hi - s->r_lo, tx_end - tx, acc);
            }
        }
        for (int32_t t = 0; t < blk->n_tensors; ++t) {
            st[t].done_r = st[t].r_hi;
        }
    }
}

void msf_run_block(const msf_block_desc *block)
{
    if (block->n_spatial + block->n_tail < 1 || (block->n_spatial > 0 &&
                                                (block->tile_h < 1 || block->tile_w < 1))) {
        msf_fatal(MSF_FATAL_EXEC_BAD_DESC);
    }
    for (int32_t t = 0; t < block->n_tensors; ++t) {
        block->state[t].producer = -1;
    }
    for (int32_t li = 0; li < block->n_spatial; ++li) {
        block->state[block->layers[li].out].producer = li;
    }
    for (int32_t t = 0; t < block->n_tensors; ++t) {
        const msf_tensor_desc *d = &block->tensors[t];
        msf_window *win = &block->state[t].win;
        /* kernels never write their input window: the cast only drops const */
        msf_window_full(win, d->kind == MSF_BUF_EXTERN ? (int8_t *)msf_exec_input
                                                       : (int8_t *)msf_arena_claim(d->offset, d->bytes), d);
        if (d->kind == MSF_BUF_RING) {
            win->x0 = d->col0;
            win->w = d->cols;
            win->ring_rows = d->rows;
            win->row_stride = d->cols * d->c;
        } else if (d->kind == MSF_BUF_REGION || d->kind == MSF_BUF_CACHE) {
            win->w = d->cols;
            win->row_stride = d->cols * d->c;
        }
    }
    void *scratch = block->scratch_bytes ? msf_arena_claim(block->scratch_offset,
                                                           block->scratch_bytes) : 0;
    int32_t *acc = block->acc_bytes ? (int32_t *)msf_arena_claim(block->acc_offset,
                                                                 block->acc_bytes) : 0;
    if (block->n_tail > 0) {
        msf_tail_init(&block->layers[block->n_spatial], acc);
    }
    if (block->n_spatial > 0) {
        msf_run_tiles(block, scratch, acc);
    } else {
        const msf_layer_desc *l = &block->layers[0];
        const msf_tensor_desc *d = &block->tensors[l->in0];
        msf_tail_feed(l, &block->state[l->in0].win, 0, 0, d->h, d->w, acc);
    }
    /* The first tail layer has seen its whole input; later ones read (1, 1, C) tensors. */
    for (int32_t k = 0; k < block->n_tail; ++k) {
        const msf_layer_desc *l = &block->layers[block->n_spatial + k];
        if (k > 0) {
            const msf_tensor_desc *d = &block->tensors[l->in0];
            msf_tail_init(l, acc);
            msf_tail_feed(l, &block->state[l->in0].win, 0, 0, d->h, d->w, acc);
        }
        msf_tail_finish(l, acc, block->state[l->out].win.data);
    }
}
