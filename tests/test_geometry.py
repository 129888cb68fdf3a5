"""Tile geometry: tiles partition the output; needed regions equal the receptive field computed
pixel by pixel; block structure validation."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from msfsim.fusion.block import Block, BlockConfig, BlockInfeasible
from msfsim.fusion.geometry import (block_structure, needed_regions, receptive_field,
                                    tile_sequence)
from msfsim.ir import IRBuilder, Model, QParams, conv_pad

Q = QParams(0.05, 0)


def conv_chain(h: int, w: int, specs: list[tuple[int, int, bool]], cin: int = 2,
               seed: int = 0) -> Model:
    """A chain of convs; specs = (kernel, stride, depthwise), SAME-style padding."""
    rng = np.random.default_rng(seed)
    b = IRBuilder("chain", (h, w, cin), Q)
    x = b.input
    for k, s, dw in specs:
        hh, ww, c = b.tensors[x].shape
        shape = (k, k, c) if dw else (c, k, k, c)
        ph, pw = conv_pad(hh, k, s), conv_pad(ww, k, s)
        x = b.conv(x, rng.integers(-127, 128, size=shape).astype(np.int8), np.full(c, 0.01),
                   None, Q, stride=(s, s), pad=(ph[0], pw[0], ph[1], pw[1]), depthwise=dw)
    return b.build()


def brute_force_input_region(model: Model, tile) -> tuple[int, int, int, int]:
    """Bounding box of the network input pixels the output pixels of `tile` depend on,
    propagating a boolean mask through every tap of every layer."""
    out = model.tensor(model.layers[-1].output).shape
    mask = np.zeros(out[:2], bool)
    y0, y1, x0, x1 = tile
    mask[y0:y1, x0:x1] = True
    for layer in reversed(model.layers):
        ih, iw, _ = model.in_shape(layer)
        need = np.zeros((ih, iw), bool)
        (kh, kw), (sh, sw), (pt, pl) = layer.kernel, layer.stride, layer.pad[:2]
        oy, ox = np.nonzero(mask)
        for dy in range(kh):
            for dx in range(kw):
                iy, ix = oy * sh - pt + dy, ox * sw - pl + dx
                ok = (iy >= 0) & (iy < ih) & (ix >= 0) & (ix < iw)
                need[iy[ok], ix[ok]] = True
        mask = need
    ys, xs = np.nonzero(mask)
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


layer_spec = hs.tuples(hs.sampled_from([1, 3, 5, 7]), hs.sampled_from([1, 2]), hs.booleans())


@settings(max_examples=60, deadline=None)
@given(h=hs.integers(5, 23), w=hs.integers(5, 23), specs=hs.lists(layer_spec, min_size=1, max_size=4),
       th=hs.integers(1, 6), tw=hs.integers(1, 6))
def test_tiles_partition_output_and_regions_match_receptive_field(h, w, specs, th, tw):
    model = conv_chain(h, w, specs)
    n = len(model.layers)
    out_h, out_w, _ = model.tensor(model.output).shape
    tiles = tile_sequence(model, 0, n - 1, (th, tw))
    cover = np.zeros((out_h, out_w), int)
    for y0, y1, x0, x1 in tiles:
        cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()
    assert tiles == sorted(tiles)  # row-major
    block = Block(0, n - 1, BlockConfig((th, tw), "recompute"))
    for tile in tiles:
        regions = needed_regions(model, block, tile)
        assert regions[model.output] == tile
        assert regions[model.input] == brute_force_input_region(model, tile)


def test_receptive_field_of_a_chain():
    assert receptive_field(((3, 1), (3, 1))) == (5, 1)
    assert receptive_field(((3, 2), (3, 1))) == (7, 2)
    assert receptive_field(((7, 2), (1, 1), (3, 2))) == (11, 4)  # 3 -> 3 -> (3-1)*2+7


def residual_net() -> Model:
    """conv -> conv -> add(conv out, block input) -> conv; the add reads a tensor from before."""
    rng = np.random.default_rng(1)
    b = IRBuilder("res", (9, 9, 4), Q)

    def conv(x, k):
        return b.conv(x, rng.integers(-127, 128, size=(4, k, k, 4)).astype(np.int8),
                      np.full(4, 0.01), None, Q, pad=(k // 2,) * 4)
    x0 = conv(b.input, 3)          # layer 0
    y = conv(x0, 3)                # layer 1
    y = conv(y, 1)                 # layer 2
    y = b.add(y, x0, Q)            # layer 3
    conv(y, 3)                     # layer 4
    return b.build()


def test_block_structure_inputs_skips_and_validation():
    m = residual_net()
    st = block_structure(m, 1, 3)
    assert st.inputs == (1,)                       # x0, read by layer 1 and the add
    assert st.internal == (2, 3) and st.star_out == 4
    st = block_structure(m, 2, 3)
    assert set(st.inputs) == {1, 2} and st.skips == ()
    st = block_structure(m, 2, 2)
    assert st.skips == (1,)                        # x0 lives across layer 2 for the add
    with pytest.raises(BlockInfeasible, match="read after the block"):
        block_structure(m, 0, 1)                   # x0 is read by the add outside the block
    with pytest.raises(BlockInfeasible):
        block_structure(m, 0, 9)


def test_union_of_consumers_is_the_bounding_box():
    m = residual_net()
    blk = Block(0, 3, BlockConfig((2, 2), "recompute"))
    r = needed_regions(m, blk, (4, 6, 4, 6))
    # x0 (tensor 1) is read by the 3x3 conv (needs 3..7 after the 1x1) and by the add (4..6)
    assert r[1] == (3, 7, 3, 7)
    assert r[0] == (2, 8, 2, 8)


def chain_hcache_expectation(model: Model, tw: int) -> tuple[dict[int, int], dict[int, int]]:
    """Per tensor of a chain (tensor li + 1 is layer li's output), from its consumer alone:
    the columns its window must hold when columns are pulled one at a time (the consumer's
    kernel, clipped to the tensor; for L*'s input the widest clipped window of a tile) and the
    columns it computes per band (up to the last one its consumer's computed columns read)."""
    n = len(model.layers)
    out_w = model.tensor(model.output).shape[1]
    widths, computed = {}, {model.output: out_w}
    for li in range(n - 1, 0, -1):
        t, consumer = li, model.layers[li]
        k, s, p = consumer.kernel[1], consumer.stride[1], consumer.pad[1]
        n_t = model.tensor(t).shape[1]

        def span(a: int, b: int) -> int:
            return min((b - 1) * s - p + k, n_t) - max(a * s - p, 0)
        if li == n - 1:
            widths[t] = max(span(x, min(x + tw, out_w)) for x in range(0, out_w, tw))
        else:
            widths[t] = max(span(x, x + 1) for x in range(computed[consumer.output]))
        computed[t] = min((computed[consumer.output] - 1) * s - p + k, n_t)
    return widths, computed


@settings(max_examples=60, deadline=None)
@given(w=hs.integers(5, 23), specs=hs.lists(layer_spec, min_size=1, max_size=5),
       tw=hs.integers(1, 6))
def test_hcache_pulls_columns_one_at_a_time(w, specs, tw):
    from msfsim.fusion.geometry import hcache_columns
    m = conv_chain(5, w, specs)
    n = len(m.layers)
    cols = hcache_columns(m, n - 1, tw)
    widths, computed = chain_hcache_expectation(m, tw)
    for t in widths:
        assert cols.width(t) == widths[t], t
        assert cols.computed[t] == computed[t], t
    assert cols.computed[m.output] == m.tensor(m.output).shape[1]


def test_hcache_window_is_the_consumers_window_whatever_the_strides_below():
    # the column windows do not grow with the strides downstream (msf-CNN's n' * s' new
    # columns per step): 5x5 stride 2 below 3x3 stride 2 still holds 5 columns
    from msfsim.fusion.geometry import hcache_columns
    m = conv_chain(9, 40, [(3, 1, False), (5, 2, True), (1, 1, False), (3, 2, True),
                           (3, 1, False)])
    for tw in (1, 2, 3):
        cols = hcache_columns(m, 4, tw)
        assert [cols.width(t) for t in (1, 2, 3, 4)] == [5, 1, 3, 3 + tw - 1]
