"""Tile geometry of a fused block: which rectangle of every tensor each output tile needs.

A block's *spatial part* is the run of spatial layers (conv, dwconv, add, mul, lut, pools) from `first` up
to its last spatial layer L*; the optional *tail* after it (gap, dense) consumes L*'s output a
tile at a time. The output of L* is cut into tiles (th, tw), row-major. Rows and columns are
independent, so the region a tile needs in a tensor is rows(tile row) x cols(tile column); both
are computed for all tile rows / columns at once with numpy and cached per (model, block, tile).

Intervals are half-open [a, b). The input interval of an output interval [a, b) of a layer with
kernel k, stride s and leading pad p is [a*s - p, (b-1)*s - p + k), clipped to the input tensor:
positions outside the tensor are padding, which the kernels supply.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import numpy as np

from msfsim import ops
from msfsim.fusion.block import BlockInfeasible
from msfsim.ir import Layer, Model

Rect = tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open)


@dataclass(frozen=True)
class BlockStructure:
    """Which tensors a block reads, keeps and produces (independent of the tile)."""
    first: int
    last: int
    spatial: tuple[int, ...]     # layer indices of the spatial part, first..L*
    tail: tuple[int, ...]        # gap/dense layers after L*
    inputs: tuple[int, ...]      # tensors produced before the block and read in it (held whole)
    internal: tuple[int, ...]    # tensors produced by the spatial part, L*'s output excluded
    star_out: int                # output tensor of L* (-1 when there is no spatial part)
    output: int                  # output tensor of `last`
    skips: tuple[int, ...]       # tensors alive across the block that it neither reads nor makes


_STRUCT_CACHE: "weakref.WeakKeyDictionary[Model, dict]" = weakref.WeakKeyDictionary()


def _cache(model: Model) -> dict:
    c = _STRUCT_CACHE.get(model)
    if c is None:
        c = {}
        _STRUCT_CACHE[model] = c
    return c


def block_structure(model: Model, first: int, last: int) -> BlockStructure:
    """Validate that layers first..last can form one block and describe it (cached)."""
    key = ("struct", first, last)
    c = _cache(model)
    if key not in c:
        try:
            c[key] = _block_structure(model, first, last)
        except BlockInfeasible as exc:
            c[key] = exc
    res = c[key]
    if isinstance(res, BlockInfeasible):
        raise res
    return res


def _producers(model: Model) -> dict[int, int]:
    c = _cache(model)
    if "prod" not in c:
        c["prod"] = {layer.output: layer.index for layer in model.layers}
    return c["prod"]


def _live_before(model: Model, i: int) -> tuple[int, ...]:
    c = _cache(model)
    if "live" not in c:
        prod = _producers(model)
        n = len(model.layers)
        spans = []
        for t in model.tensors:
            last = max(model.consumers(t.id), default=-1)
            if t.id == model.output:
                last = n
            spans.append((t.id, prod.get(t.id, -1), last))
        c["live"] = [tuple(t for t, p, e in spans if p < k <= e) for k in range(n + 1)]
    return c["live"][i]


def _block_structure(model: Model, first: int, last: int) -> BlockStructure:
    n = len(model.layers)
    if not 0 <= first <= last < n:
        raise BlockInfeasible(f"layers {first}..{last} outside the model's 0..{n - 1}")
    prod = _producers(model)
    layers = model.layers[first:last + 1]
    spatial: list[int] = []
    tail: list[int] = []
    for layer in layers:
        if layer.is_spatial:
            if tail:
                raise BlockInfeasible(f"spatial layer {layer.index} after the tail layer {tail[0]}")
            spatial.append(layer.index)
        elif ops.get(layer.op).tail:
            tail.append(layer.index)
        else:
            raise BlockInfeasible(f"layer {layer.index}: op {layer.op.value} cannot be fused")
    produced = {layer.output for layer in layers}
    for layer in layers[:-1]:
        outside = [c for c in model.consumers(layer.output) if c > last]
        if outside or layer.output == model.output:
            raise BlockInfeasible(f"tensor of layer {layer.index} is read after the block "
                                  f"(layer {outside[0] if outside else 'output'})")
    for k, li in enumerate(tail):
        if k > 0 and model.tensor(model.layers[li].inputs[0]).shape[:2] != (1, 1):
            raise BlockInfeasible(f"tail layer {li} reads a spatial tensor that is not the "
                                  f"output of the block's last spatial layer")
    if tail and spatial:
        star = model.layers[spatial[-1]].output
        if model.layers[tail[0]].inputs[0] != star:
            raise BlockInfeasible(f"tail layer {tail[0]} does not read the last spatial layer")
        for li in tail[1:]:
            if model.layers[li].inputs[0] not in produced:
                raise BlockInfeasible(f"tail layer {li} reads a tensor from before the block")
    if tail and not spatial and len(layers) > 1:
        raise BlockInfeasible("a block of tail layers only cannot be fused")
    for layer in layers:  # a broadcast operand is read whole by every tile: held, not tiled
        out_hw = model.out_shape(layer)[:2]
        for t in layer.inputs[1:]:
            if t in produced and model.tensor(t).shape[:2] == (1, 1) != out_hw:
                raise BlockInfeasible(f"layer {layer.index} broadcasts a tensor produced in the "
                                      f"block (it must be computed before the block)")
    inputs = sorted({t for layer in layers for t in layer.inputs if t not in produced})
    star_out = model.layers[spatial[-1]].output if spatial else -1
    internal = tuple(model.layers[i].output for i in spatial[:-1])
    # every internal tensor must feed the block output, or it would never be computed
    needed = {star_out}
    for li in reversed(spatial):
        layer = model.layers[li]
        if layer.output in needed:
            needed.update(layer.inputs)
    dead = [t for t in internal if t not in needed]
    if dead:
        raise BlockInfeasible(f"tensor {dead[0]} is produced in the block but does not feed "
                              f"its output")
    after = set(_live_before(model, last + 1))
    skips = tuple(t for t in _live_before(model, first) if t in after and t not in inputs)
    return BlockStructure(first, last, tuple(spatial), tuple(tail), tuple(inputs), internal,
                          star_out, model.layers[last].output, skips)


def pool_in_place(model: Model, first: int, last: int) -> bool:
    """A layer whose op has a pool-fusion kernel (conv: `msf_convolve_maxpool_s8`) followed
    by a pool that folds in place (max pool) whose stride covers its window: run as one
    layer, each conv pixel folded into its pooled pixel as it is computed, the conv output
    never stored (the layer-by-layer baseline's fusion)."""
    if last != first + 1:
        return False
    prod, pool = model.layers[first], model.layers[last]
    return (ops.get(prod.op).pool_fusion() is not None and ops.get(pool.op).folds_in_place
            and pool.inputs == (prod.output,)
            and all(s >= k for s, k in zip(pool.stride, pool.kernel)))


# ------------------------------------------------------------------ interval maps

def layer_in_interval(layer: Layer, axis: int, a: np.ndarray, b: np.ndarray, n_in: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Input interval(s) [a', b') a layer reads to produce output interval(s) [a, b) on `axis`
    (0 = rows, 1 = columns), clipped to the input size n_in. Vectorised over arrays."""
    opdef = ops.get(layer.op)
    if opdef.elementwise:
        if n_in == 1:  # a broadcast operand (mul's (1, 1, C) scale): its one row / column
            return np.zeros_like(a), np.ones_like(b)
        return a.copy(), b.copy()
    k, s, p = opdef.window(layer, axis)
    lo = np.maximum(a * s - p, 0)
    hi = np.minimum((b - 1) * s - p + k, n_in)
    return lo, np.maximum(hi, lo)


def tile_starts(n: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Intervals [a, b) of the tiles of size t along a dimension of size n."""
    a = np.arange(0, n, t, dtype=np.int64)
    return a, np.minimum(a + t, n)


@dataclass(frozen=True)
class AxisRegions:
    """Per tensor, the interval every tile index needs along one axis: lo[t], hi[t] arrays."""
    lo: dict[int, np.ndarray]
    hi: dict[int, np.ndarray]


def _axis_regions(model: Model, star_out: int, layers: Iterable[int], axis: int,
                  a: np.ndarray, b: np.ndarray) -> AxisRegions:
    """Backward pass from intervals [a, b) of tensor `star_out` through `layers` (descending
    indices; layers whose output needs nothing, and non-spatial layers, are skipped)."""
    lo: dict[int, np.ndarray] = {star_out: a}
    hi: dict[int, np.ndarray] = {star_out: b}
    for li in layers:
        layer = model.layers[li]
        if layer.output not in lo or not layer.is_spatial:
            continue
        oa, ob = lo[layer.output], hi[layer.output]
        for tid in dict.fromkeys(layer.inputs):
            ia, ib = layer_in_interval(layer, axis, oa, ob, model.tensor(tid).shape[axis])
            if tid in lo:  # bounding box of the needs of several consumers
                empty_old = lo[tid] >= hi[tid]
                empty_new = ia >= ib
                nlo = np.where(empty_old, ia, np.where(empty_new, lo[tid], np.minimum(lo[tid], ia)))
                nhi = np.where(empty_old, ib, np.where(empty_new, hi[tid], np.maximum(hi[tid], ib)))
                lo[tid], hi[tid] = nlo, nhi
            else:
                lo[tid], hi[tid] = ia, ib
    for arr in (*lo.values(), *hi.values()):
        arr.setflags(write=False)
    return AxisRegions(lo, hi)


def clip_tile(model: Model, st: BlockStructure, tile: tuple[int, int]) -> tuple[int, int]:
    h, w, _ = model.tensor(st.star_out).shape
    th, tw = tile
    if th < 1 or tw < 1:
        raise BlockInfeasible(f"tile {tile} must be at least 1x1")
    return min(th, h), min(tw, w)


def axis_regions(model: Model, first: int, last: int, tile: tuple[int, int]
                 ) -> tuple[AxisRegions, AxisRegions]:
    """Row regions per tile row and column regions per tile column for every tensor the
    spatial part of block first..last touches (and, as a superset, every earlier tensor its
    last spatial layer L* depends on)."""
    st = block_structure(model, first, last)
    if not st.spatial:
        raise BlockInfeasible("the block has no spatial layer to tile")
    return star_axis_regions(model, st.spatial[-1], clip_tile(model, st, tile))


def star_axis_regions(model: Model, star: int, tile: tuple[int, int]
                      ) -> tuple[AxisRegions, AxisRegions]:
    """Regions of every tensor layer `star`'s output depends on, for the tile grid `tile` of
    that output (cached per model, layer and tile size). A block ending its spatial part at
    `star` uses the entries of its own tensors: they do not depend on where the block starts,
    because those tensors are read only inside the block."""
    c = _cache(model)
    star_out = model.layers[star].output
    out = []
    for axis, t in ((0, tile[0]), (1, tile[1])):
        key = ("axis", star, axis, t)
        if key not in c:
            a, b = tile_starts(model.tensor(star_out).shape[axis], t)
            c[key] = _axis_regions(model, star_out, range(star, -1, -1), axis, a, b)
        out.append(c[key])
    return out[0], out[1]


def tile_sequence(model: Model, first: int, last: int, tile: tuple[int, int]) -> list[Rect]:
    """Output tiles of L* in execution order (row-major)."""
    st = block_structure(model, first, last)
    h, w, _ = model.tensor(st.star_out).shape
    th, tw = clip_tile(model, st, tile)
    ya, yb = tile_starts(h, th)
    xa, xb = tile_starts(w, tw)
    return [(int(y0), int(y1), int(x0), int(x1)) for y0, y1 in zip(ya, yb) for x0, x1 in zip(xa, xb)]


def needed_regions(model: Model, block, tile_rect: Rect) -> dict[int, Rect]:
    """Rectangle of every tensor the spatial part of `block` reads or writes for one output tile
    `tile_rect` of L* (any rectangle, not only one of the tile grid)."""
    st = block_structure(model, block.first, block.last)
    y0, y1, x0, x1 = tile_rect
    layers = st.spatial[::-1]
    rows = _axis_regions(model, st.star_out, layers, 0, np.array([y0]), np.array([y1]))
    cols = _axis_regions(model, st.star_out, layers, 1, np.array([x0]), np.array([x1]))
    return {t: (int(rows.lo[t][0]), int(rows.hi[t][0]), int(cols.lo[t][0]), int(cols.hi[t][0]))
            for t in rows.lo}


@lru_cache(maxsize=None)
def receptive_field(kernels_strides: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """Receptive field size and jump of a chain of (kernel, stride) layers (no padding):
    one output pixel of the last layer sees `size` input pixels, neighbours `jump` apart."""
    size, jump = 1, 1
    for k, s in reversed(kernels_strides):
        size = (size - 1) * s + k
        jump *= s
    return size, jump


def new_span(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per step of a sequence of intervals, how many positions were not in the previous
    interval (the first step computes its whole interval). Intervals move forward monotonically,
    so this is what a cache of the previous interval saves."""
    prev_hi = np.concatenate(([np.iinfo(np.int64).min], hi[:-1]))
    return np.maximum(hi - np.maximum(lo, prev_hi), 0)


# ------------------------------------------------------------------ hcache column schedule

@dataclass(frozen=True)
class HCacheColumns:
    """Column schedule of hcache (msf-CNN's H-cache) for one band of rows.

    Columns are pulled depth-first: L* computes its tiles left to right; before a layer computes
    a column, every input column that column reads and that is not yet there is computed first,
    one column at a time, recursively. A tensor's window then holds only the columns its
    consumers still read: from the lowest column a consumer's next output column reads to the
    newest column written. The same schedule runs in the executor (`msf_pull_column`).
    Per tensor: `widths` = the most columns its window holds at once, `computed` = the columns
    it computes per band (each once).
    """
    widths: dict[int, int]
    computed: dict[int, int]

    def width(self, tid: int) -> int:
        """Columns the buffer of `tid` must hold."""
        return self.widths.get(tid, 0)


def hcache_columns(model: Model, star: int, tw: int) -> HCacheColumns:
    """The hcache column schedule of every tensor layer `star` depends on, for output tiles
    `tw` columns wide (cached per model, star and tile width). A block holds its inputs whole,
    so it pulls only its own tensors; their schedule does not depend on where the block
    starts (a tensor's window depends only on its consumers, which all lie downstream)."""
    c = _cache(model)
    key = ("hcache", star, tw)
    if key not in c:
        c[key] = _pull_schedule(model, star, tw)
    return c[key]


def _pull_schedule(model: Model, star: int, tw: int) -> HCacheColumns:
    layers = model.layers
    producer: dict[int, int] = {}
    todo = [star]
    while todo:                               # the spatial layers `star` depends on
        li = todo.pop()
        layer = layers[li]
        if layer.output in producer or not layer.is_spatial:
            continue
        producer[layer.output] = li
        todo += [_producers(model)[u] for u in layer.inputs if u != model.input]
    n_cols = {t.id: t.shape[1] for t in model.tensors}
    # per layer: (output, kernel, stride, pad) on the column axis (an add: 1, 1, 0)
    geo = {li: (layers[li].output, *ops.get(layers[li].op).window(layers[li], 1))
           for li in producer.values()}
    consumers: dict[int, list[tuple[int, int, int, int]]] = {}
    for li in producer.values():
        for u in dict.fromkeys(layers[li].inputs):
            consumers.setdefault(u, []).append(geo[li])
    done = dict.fromkeys(producer, 0)
    widths = dict.fromkeys(producer, 0)

    def pull(u: int, upto: int) -> None:
        """Compute columns of u up to `upto` (exclusive), one at a time, depth first."""
        li = producer[u]
        ins = [(v, n_cols[v]) for v in dict.fromkeys(layers[li].inputs) if v in producer]
        _, k, s, p = geo[li]
        cons = consumers.get(u, ())
        while done[u] < upto:
            x = done[u]
            for v, n_v in ins:
                pull(v, min(x * s - p + k, n_v))
            lo = x          # the lowest column a consumer's next output column reads
            for out, k2, s2, p2 in cons:
                d = done[out]
                if d < n_cols[out]:
                    lo = min(lo, max(d * s2 - p2, 0))
            widths[u] = max(widths[u], x + 1 - lo)
            done[u] = x + 1

    star_out, k, s, p = geo[star]
    w = n_cols[star_out]
    for x0 in range(0, w, tw):
        x1 = min(x0 + tw, w)
        done[star_out] = x0
        for v in dict.fromkeys(layers[star].inputs):
            if v in producer:
                pull(v, min((x1 - 1) * s - p + k, n_cols[v]))
        done[star_out] = x1
    widths[star_out] = 0
    return HCacheColumns(widths, dict(done))
