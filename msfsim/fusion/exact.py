"""The `exact` cost model: the bytes the generated code allocates and the MACs it executes.

RAM comes from `memplan.block_buffers` (the buffers codegen emits); MACs count, per layer, every
output pixel the executor computes times the layer's MACs per output pixel, so recomputed
pixels (recompute, the rows hcache recomputes across bands) are counted each time.
See docs/fusion.md for the semantics of each scheme.
"""
from __future__ import annotations

import weakref

import numpy as np

from msfsim import ops
from msfsim.fusion.block import Block, BlockCost, BlockInfeasible
from msfsim.fusion.geometry import (block_structure, hcache_columns, new_span, pool_in_place,
                                    star_axis_regions)
from msfsim.fusion.memplan import block_buffers, footprint, plan_layout
from msfsim.ir import Layer, Model

_CACHE: "weakref.WeakKeyDictionary[Model, dict]" = weakref.WeakKeyDictionary()


def macs_per_pixel(model: Model, layer: Layer) -> int:
    """MACs per output pixel (all channels) of a spatial layer."""
    return ops.get(layer.op).macs_per_pixel(model, layer)


def computed_pixels(model: Model, block: Block) -> dict[int, int]:
    """Output pixels each spatial layer of the block computes, per layer index."""
    st = block_structure(model, block.first, block.last)
    if block.config.scheme == "layer" and pool_in_place(model, block.first, block.last):
        return _pool_in_place_pixels(model, block.first)
    if block.config.scheme == "layer":
        return {i: int(np.prod(model.out_shape(model.layers[i])[:2])) for i in st.spatial}
    tile, _ = block_buffers(model, block)
    px = _star_pixels(model, st.spatial[-1], block.config.scheme, tile)
    return {i: int(px[i]) for i in st.spatial}


def _pool_in_place_pixels(model: Model, conv_index: int) -> dict[int, int]:
    """The conv computes only the pixels inside pool windows (clipped to its output)."""
    pool = model.layers[conv_index + 1]
    ch, cw, _ = model.out_shape(model.layers[conv_index])
    ph, pw, _ = model.out_shape(pool)
    counts = []
    for axis, (n_conv, n_pool) in enumerate(((ch, ph), (cw, pw))):
        start = np.arange(n_pool) * pool.stride[axis] - pool.pad[axis]
        counts.append(int((np.minimum(start + pool.kernel[axis], n_conv) - np.maximum(start, 0)).sum()))
    return {conv_index: counts[0] * counts[1], conv_index + 1: ph * pw}


def _star_pixels(model: Model, star: int, scheme: str, tile: tuple[int, int]) -> np.ndarray:
    """Pixels computed per layer 0..star when a block's spatial part ends at `star` (cached)."""
    c = _CACHE.setdefault(model, {})
    key = ("px", star, scheme, tile)
    if key not in c:
        rows, cols = star_axis_regions(model, star, tile)
        hcols = hcache_columns(model, star, tile[1]) if scheme == "hcache" else None
        px = np.zeros(star + 1, np.int64)
        for i in range(star + 1):
            t = model.layers[i].output
            # a tail's (1, 1, C) output read by a spatial layer (an SE scale) is a block input,
            # never tiled: only spatial layers compute pixels here
            if t not in rows.lo or not model.layers[i].is_spatial:
                continue
            rl, rh, cl, ch = rows.lo[t], rows.hi[t], cols.lo[t], cols.hi[t]
            n_rows = new_span(rl, rh).sum() if scheme == "stream2d" else (rh - rl).sum()
            if hcols is not None:
                n_cols = hcols.computed[t]
            elif scheme == "stream2d":
                n_cols = new_span(cl, ch).sum()
            else:
                n_cols = (ch - cl).sum()
            px[i] = n_rows * n_cols
        c[key] = px
    return c[key]


def _star_macs_cumsum(model: Model, star: int, scheme: str, tile: tuple[int, int]) -> np.ndarray:
    """Prefix sums of the MACs of layers 0..star (index k = MACs of layers < k)."""
    c = _CACHE.setdefault(model, {})
    key = ("macs", star, scheme, tile)
    if key not in c:
        mpp = np.array([macs_per_pixel(model, model.layers[i]) if model.layers[i].is_spatial
                        else 0 for i in range(star + 1)], np.int64)
        c[key] = np.concatenate(([0], np.cumsum(_star_pixels(model, star, scheme, tile) * mpp)))
    return c[key]


def block_macs(model: Model, block: Block, tile: tuple[int, int] | None = None) -> int:
    """MACs the executor runs; `tile` = the clipped tile when the caller already has it."""
    st = block_structure(model, block.first, block.last)
    macs = sum(model.macs(model.layers[i]) for i in st.tail)
    if not st.spatial:
        return macs
    if block.config.scheme == "layer":
        px = computed_pixels(model, block)
        return macs + sum(n * macs_per_pixel(model, model.layers[i]) for i, n in px.items())
    star = st.spatial[-1]
    if tile is None:
        tile = block_buffers(model, block)[0]
    cs = _star_macs_cumsum(model, star, block.config.scheme, tile)
    return macs + int(cs[star + 1] - cs[st.first])


def block_cost(model: Model, block: Block) -> BlockCost:
    """RAM (act, act_io) and MACs of one block; raises BlockInfeasible with the reason."""
    tile, bufs = block_buffers(model, block)
    act_io = footprint(bufs)
    net_io = sum(b.size for b in bufs
                 if (b.tensor == model.input and b.kind in ("input", "skip"))
                 or (b.tensor == model.output and b.kind == "output"))
    return BlockCost(act=act_io - net_io, act_io=act_io, macs=block_macs(model, block, tile),
                     buffers={b.name: b.size for b in bufs if b.slot < 0})


def plan_cost(model: Model, blocks: list[Block]) -> BlockCost:
    """A whole plan: peak act / act_io = max over its blocks, MACs = sum. `buffers` gives the
    arena the whole plan's generated code uses ("arena") next to the per-block peaks."""
    if not blocks:
        raise BlockInfeasible("empty plan")
    costs = [block_cost(model, b) for b in blocks]
    layout = plan_layout(model, blocks)
    return BlockCost(act=max(c.act for c in costs), act_io=max(c.act_io for c in costs),
                     macs=sum(c.macs for c in costs),
                     buffers={"arena": layout.arena_bytes,
                              **{b.key: c.act_io for b, c in zip(blocks, costs)}})
