"""The exact cost model and the buffer plan: RAM conventions, MACs per scheme, plan layout,
scratch formulas equal to the kernels' own *_get_buffer_size, costing speed."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from msfsim import host_build
from msfsim.fusion.block import Block, BlockConfig, BlockInfeasible
from msfsim.fusion.exact import block_cost, computed_pixels, plan_cost
from msfsim.fusion.space import why_not
from msfsim.fusion.memplan import (align, block_plan, conv_maxpool_scratch, conv_scratch,
                                   plan_layout)
from test_executor import Net, chain_net, pool_net, residual_net, tail_net
from test_geometry import conv_chain

KERNELS_C = Path(__file__).resolve().parent.parent / "msfsim" / "kernels_c"


def test_layer_block_ram_and_macs():
    m = chain_net()
    for i, layer in enumerate(m.layers):
        c = block_cost(m, Block(i, i))
        ins = sum(align(m.tensor(t).size) for t in set(layer.inputs))
        out = align(m.tensor(layer.output).size)
        scratch = c.buffers.get("scratch", 0)
        assert c.act_io == ins + out + scratch
        assert c.macs == m.macs(layer)
    c0 = block_cost(m, Block(0, 0))
    assert c0.act == c0.act_io - align(m.tensor(m.input).size)   # network input excluded
    last = len(m.layers) - 1
    cl = block_cost(m, Block(last, last))
    assert cl.act == cl.act_io - align(m.tensor(m.output).size)  # network output excluded


def test_scheme_macs_order_and_stream2d_computes_each_pixel_once():
    m = chain_net()
    n = len(m.layers)
    vanilla = sum(m.macs(layer) for layer in m.layers)
    for tile in [(1, 1), (2, 3), (3, 3)]:
        rc, hc, s2 = (block_cost(m, Block(0, n - 1, BlockConfig(tile, s))).macs
                      for s in ("recompute", "hcache", "stream2d"))
        assert rc >= hc >= s2 == vanilla
        px = computed_pixels(m, Block(0, n - 1, BlockConfig(tile, "stream2d")))
        assert all(px[i] == np.prod(m.out_shape(m.layers[i])[:2]) for i in range(n))
    # a 1x1 output tile with a 3x3 chain recomputes: strictly more than vanilla
    assert block_cost(m, Block(0, n - 1, BlockConfig((1, 1), "recompute"))).macs > vanilla


def test_recompute_macs_by_hand():
    # two 3x3 stride-1 convs, 6x6 output, 3x3 tiles: the first conv's tile region is 5x5
    # clipped at the borders to 4x4 for every one of the 4 tiles
    m = conv_chain(6, 6, [(3, 1, False), (3, 1, False)], cin=2)
    px = computed_pixels(m, Block(0, 1, BlockConfig((3, 3), "recompute")))
    assert px == {0: 4 * 16, 1: 36}
    px = computed_pixels(m, Block(0, 1, BlockConfig((3, 3), "hcache")))
    assert px == {0: 2 * 4 * 6, 1: 36}            # per band: 4 rows x (4 + 2 new) columns
    c = block_cost(m, Block(0, 1, BlockConfig((3, 3), "recompute")))
    assert c.buffers["region:t1"] == align(4 * 4 * 2)


def test_infeasible_blocks_say_why():
    m = residual_net()
    with pytest.raises(BlockInfeasible, match="single layer"):
        block_cost(m, Block(1, 2, BlockConfig((1, 1), "layer")))
    with pytest.raises(BlockInfeasible, match="read after"):
        block_cost(m, Block(0, 2, BlockConfig((1, 1), "hcache")))
    t = tail_net()
    with pytest.raises(BlockInfeasible):
        block_cost(t, Block(2, 3, BlockConfig((1, 1), "recompute")))


def test_plan_cost_and_layout():
    m = residual_net()
    blocks = [Block(0, 4, BlockConfig((2, 2), "hcache")), Block(5, 8, BlockConfig((1, 3), "stream2d"))]
    pc = plan_cost(m, blocks)
    costs = [block_cost(m, b) for b in blocks]
    assert pc.act == max(c.act for c in costs) and pc.macs == sum(c.macs for c in costs)
    layout = plan_layout(m, blocks)
    assert layout.arena_bytes >= pc.act_io
    for bp in layout.blocks:  # the buffers one block uses never overlap (slots apart)
        assert_apart(bp)
    with pytest.raises(BlockInfeasible):
        plan_layout(m, blocks[:1])


def assert_apart(bp) -> None:
    """No two buffers of a block overlap, except a transient cache inside its own slot."""
    spans = sorted((b.offset, b.offset + b.size) for b in bp.buffers if b.slot < 0)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert all(b.offset % 4 == 0 for b in bp.buffers)
    slots = [b for b in bp.buffers if b.kind == "slot"]
    for b in bp.buffers:
        if b.slot >= 0:
            s = slots[b.slot]
            assert b.kind == "cache" and b.cols == 1
            assert s.offset == b.offset and b.size <= s.size


def test_transient_caches_share_two_slots():
    # conv 3x3 s2, then pw -> dw -> pw -> pw -> dw -> pw: the one-column outputs read by a single
    # pointwise reader take turns in two slots; the dw inputs keep their 3-column caches
    m = conv_chain(33, 33, [(3, 2, False), (1, 1, False), (3, 1, True), (1, 1, False),
                            (1, 1, False), (3, 2, True), (1, 1, False)], cin=3)
    block = Block(0, 6, BlockConfig((2, 1), "hcache"))
    bp = block_plan(m, block)
    assert_apart(bp)
    by_t = {b.tensor: b for b in bp.buffers if b.kind == "cache"}
    slots = [b for b in bp.buffers if b.kind == "slot"]
    assert len(slots) == 2
    # t1 (read by the pw layer 1) and t3 (dw output, read by pw 3) in one slot; t4 (pw output
    # read by pw 4) in the other; t2 and t5 feed 3x3 windows: caches of their own
    assert by_t[1].slot == by_t[3].slot != by_t[4].slot >= 0
    assert by_t[2].slot == by_t[5].slot == -1 and by_t[2].cols == by_t[5].cols == 3
    cost = block_cost(m, block)
    shared = sum(b.size for b in bp.buffers if b.slot >= 0)
    assert cost.act_io == bp.arena_bytes == sum(b.size for b in bp.buffers) - shared
    assert slots[0].size + slots[1].size < shared


def test_single_block_layout_is_contiguous():
    m = chain_net()
    bp = block_plan(m, Block(0, 7, BlockConfig((2, 2), "stream2d")))
    off = 0
    for b in bp.buffers:
        assert b.offset == off
        off += b.size
    assert bp.arena_bytes == block_cost(m, bp.block).act_io


def test_scratch_formula_mirrors_the_kernel():
    ffi, lib = host_build.build("kernels", sorted((KERNELS_C / "kernels").glob("*.c")),
                                host_build.cdef_from_header(KERNELS_C / "msf_kernels.h"),
                                include_dirs=[KERNELS_C], headers=["msf_kernels.h"])
    for kh, kw, cin in [(1, 1, 8), (3, 3, 3), (5, 5, 7), (7, 7, 1), (3, 1, 5)]:
        p = ffi.new("msf_conv_params *", {"kernel_h": kh, "kernel_w": kw})
        assert align(conv_scratch(kh, kw, cin)) == lib.msf_convolve_s8_get_buffer_size(p, cin)
        for cout in (1, 6, 8):
            assert conv_maxpool_scratch(kh, kw, cin, cout) == \
                lib.msf_convolve_maxpool_s8_get_buffer_size(p, ffi.NULL, cin, cout)


def test_pool_in_place_macs_count_only_pooled_conv_pixels():
    m = pool_net()  # conv 15x13x6 (3x3 on 3 channels), max pool 2x2 s2 -> 7x6
    c = block_cost(m, Block(0, 1))
    assert c.macs == (7 * 2) * (6 * 2) * 9 * 3 * 6
    assert c.buffers["scratch"] == conv_maxpool_scratch(3, 3, 3, 6)


def test_costing_many_blocks_is_fast():
    # a 54-layer MobileNet-like chain: all blocks x 12 configs
    specs = [(3, 2, False), (3, 1, True), (1, 1, False)]
    for k, s in [(7, 2), (3, 1), (7, 1), (5, 1), (5, 2), (5, 1), (5, 1), (3, 2), (7, 1), (5, 1),
                 (5, 1), (7, 1), (3, 1), (3, 2), (7, 1), (3, 1), (7, 1)]:
        specs += [(1, 1, False), (k, s, True), (1, 1, False)]
    m = conv_chain(176, 176, specs, cin=4)
    n = len(m.layers)
    assert n == 54
    cfgs = [BlockConfig((t, t), s) for t in (1, 2, 4, 8) for s in ("recompute", "hcache", "stream2d")]
    t0 = time.perf_counter()
    count = sum(1 for i in range(n) for j in range(i, n) for c in cfgs
                if block_cost(m, Block(i, j, c)).act > 0)
    elapsed = time.perf_counter() - t0
    assert count == n * (n + 1) // 2 * len(cfgs)
    assert elapsed < 6.0, f"{count} blocks took {elapsed:.2f} s"


def test_hcache_keeps_only_the_consumers_window():
    # three 3x3 stride-1 convs on 12x30x2, 1x1 tiles: recompute holds the 5x5 / 3x3 regions,
    # hcache 3 columns of the band's rows (a 3x3 consumer computing 1 new column per step)
    m = conv_chain(12, 30, [(3, 1, False), (3, 1, False), (3, 1, False)], cin=2)
    rc = block_cost(m, Block(0, 2, BlockConfig((1, 1), "recompute")))
    hc = block_cost(m, Block(0, 2, BlockConfig((1, 1), "hcache")))
    assert rc.buffers["region:t1"] == align(5 * 5 * 2) and rc.buffers["region:t2"] == align(3 * 3 * 2)
    assert hc.buffers["cache:t1"] == align(5 * 3 * 2) and hc.buffers["cache:t2"] == align(3 * 3 * 2)
    # every pixel of t1 / t2 computed once per band that needs its row, never twice in a band
    px = computed_pixels(m, Block(0, 2, BlockConfig((1, 1), "hcache")))
    assert px == {0: (12 * 5 - 2 - 2 - 1 - 1) * 30, 1: (12 * 3 - 2) * 30, 2: 12 * 30}


def test_hcache_ram_below_recompute_and_close_to_msfcnn():
    from msfsim.fusion import msfcnn
    m = conv_chain(49, 49, [(3, 2, False), (1, 1, False), (3, 1, True), (1, 1, False),
                            (3, 2, True), (1, 1, False)], cin=8)
    n = len(m.layers)
    for tile in [(1, 1), (2, 2), (4, 4)]:
        rc = block_cost(m, Block(0, n - 1, BlockConfig(tile, "recompute")))
        hc = block_cost(m, Block(0, n - 1, BlockConfig(tile, "hcache")))
        assert hc.act < rc.act and hc.macs <= rc.macs
    ours = block_cost(m, Block(0, n - 1, BlockConfig((1, 1), "hcache"))).act
    theirs = msfcnn.block_cost(m, Block(0, n - 1, BlockConfig((1, 1), "hcache"))).act
    assert 0.5 * theirs <= ours <= 1.5 * theirs   # recompute is far above: checked above


def test_chain_plan_arena_equals_its_peak():
    m = chain_net()
    vanilla = [Block(i, i) for i in range(len(m.layers))]
    assert plan_layout(m, vanilla).arena_bytes == plan_cost(m, vanilla).act_io
    fused = [Block(0, 3, BlockConfig((2, 2), "hcache")), Block(4, 7, BlockConfig((1, 3), "stream2d"))]
    assert plan_layout(m, fused).arena_bytes == plan_cost(m, fused).act_io


def test_pool_in_place_after_a_depthwise_is_infeasible_with_a_reason():
    n = Net("dwpool", (12, 10, 4), 9)
    x = n.conv(n.b.input, 0, 3, 1, dw=True)
    n.b.pool(x, "max", (2, 2), (2, 2))
    m = n.build()
    assert why_not(m, Block(0, 1)) is None            # the fusion space offers it
    with pytest.raises(BlockInfeasible, match="no fused kernel"):
        block_cost(m, Block(0, 1))
    assert block_cost(m, Block(0, 1, BlockConfig((1, 1), "hcache"))).act > 0
