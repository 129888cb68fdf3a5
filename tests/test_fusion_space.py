"""Candidate blocks: structural feasibility, live skips, tile options."""
from __future__ import annotations

import numpy as np
import pytest

from msfsim.fusion.block import LAYER, Block, BlockConfig
from msfsim.fusion.space import (candidate_blocks, graph_info, live_skips, tile_options,
                                 why_not)
from msfsim.ir import IRBuilder, Model, QParams

Q = QParams(0.05, 0)


class Net:
    """Tiny IRBuilder wrapper for test models (random int8 weights; costs depend on shapes)."""

    def __init__(self, name: str, shape: tuple[int, int, int], seed: int = 0):
        self.b = IRBuilder(name, shape, Q)
        self.rng = np.random.default_rng(seed)

    def c(self, x: int) -> int:
        return self.b.tensors[x].shape[2]

    def conv(self, x: int, cout: int, k: int = 1, s: int = 1) -> int:
        w = self.rng.integers(-127, 128, (cout, k, k, self.c(x)), dtype=np.int8)
        return self.b.conv(x, w, np.full(cout, 0.01), None, Q, stride=(s, s), pad=(k // 2,) * 4)

    def dw(self, x: int, k: int = 3, s: int = 1) -> int:
        w = self.rng.integers(-127, 128, (k, k, self.c(x)), dtype=np.int8)
        return self.b.conv(x, w, np.full(self.c(x), 0.01), None, Q, stride=(s, s),
                           pad=(k // 2,) * 4, depthwise=True)

    def add(self, a: int, b: int) -> int:
        return self.b.add(a, b, Q)

    def maxpool(self, x: int, k: int = 2) -> int:
        return self.b.pool(x, "max", (k, k), (k, k))

    def gap(self, x: int) -> int:
        return self.b.gap(x)

    def dense(self, x: int, cout: int) -> int:
        n = self.b.tensors[x].size
        return self.b.dense(x, self.rng.integers(-127, 128, (cout, n), dtype=np.int8),
                            np.full(cout, 0.01), None, Q)

    def build(self) -> Model:
        return self.b.build()


def random_chain(seed: int, n_layers: int, res: int = 12) -> Model:
    """A random conv / dwconv chain (strides 1-2, kernels 1/3/5)."""
    rng = np.random.default_rng(seed)
    net = Net(f"chain{seed}", (res, res, int(rng.integers(2, 5))), seed)
    x = net.b.input
    for _ in range(n_layers):
        h = net.b.tensors[x].shape[0]
        s = 2 if h >= 6 and rng.random() < 0.3 else 1
        if rng.random() < 0.4:
            x = net.dw(x, int(rng.choice([3, 5])), s)
        else:
            x = net.conv(x, int(rng.integers(2, 9)), int(rng.choice([1, 3])), s)
    return net.build()


def residual_net(res: int = 8) -> Model:
    """conv -> [conv1x1 -> dw3x3 -> conv1x1] + skip -> maxpool -> gap -> dense (8 layers)."""
    net = Net("residual", (res, res, 3))
    x0 = net.conv(net.b.input, 4, 3, 1)    # 0
    y = net.conv(x0, 8, 1)                 # 1
    y = net.dw(y, 3)                       # 2
    y = net.conv(y, 4, 1)                  # 3
    x1 = net.add(x0, y)                    # 4
    x2 = net.maxpool(x1)                   # 5
    net.dense(net.gap(x2), 5)              # 6 gap, 7 dense
    return net.build()


def test_residual_blocks_respect_escaping_tensors():
    m = residual_net()
    assert len(m.layers) == 8
    # x0 (output of layer 0) is read by the add at 4: a block [0, 2] would let it escape.
    assert "read after the block" in why_not(m, Block(0, 2, BlockConfig((1, 1), "recompute")))
    assert why_not(m, Block(0, 4, BlockConfig((2, 2), "recompute"))) is None
    # Inside the residual, x0 stays alive: it is a live skip of blocks [1, 3] and [2, 3].
    x0 = m.layers[0].output
    assert live_skips(m, Block(2, 3, BlockConfig((1, 1), "hcache"))) == (x0,)
    assert live_skips(m, Block(2, 2)) == (x0,)
    # Block [1, 4] reads x0 itself (as an input of the add): not a skip.
    assert live_skips(m, Block(1, 4, BlockConfig((1, 1), "stream2d"))) == ()
    assert set(graph_info(m).block_inputs(1, 4)) == {x0}
    assert live_skips(m, Block(5, 5)) == ()


def test_tail_rules():
    m = residual_net()
    rc = BlockConfig((1, 1), "recompute")
    assert why_not(m, Block(4, 7, rc)) is None            # add, pool, then gap + dense tail
    assert why_not(m, Block(5, 7, rc)) is None
    assert "must start with a spatial layer" in why_not(m, Block(6, 7, rc))
    assert why_not(m, Block(6, 6)) is None and why_not(m, Block(7, 7)) is None
    assert "cannot be tiled" in why_not(m, Block(6, 6, rc))
    # flatten: a dense reading a spatial tensor is an iterative tail too
    net = Net("flat", (8, 8, 2))
    net.dense(net.conv(net.conv(net.b.input, 3, 3, 2), 4, 1), 3)
    flat = net.build()
    assert why_not(flat, Block(0, 2, BlockConfig((2, 2), "stream2d"))) is None
    # nothing spatial after a tail
    net = Net("bad", (8, 8, 2))
    g = net.gap(net.conv(net.b.input, 3, 3))
    net.conv(g, 2, 1)
    bad = net.build()
    assert "follows the iterative tail" in why_not(bad, Block(0, 2, rc))


def test_layer_scheme_and_tiles():
    m = residual_net()
    assert why_not(m, Block(4, 5, LAYER)) is None          # producer + in-place max-pool
    assert "scheme 'layer'" in why_not(m, Block(1, 2, LAYER))
    assert "outside the block's 4x4 output" in why_not(m, Block(4, 5, BlockConfig((5, 1),
                                                                                  "recompute")))
    assert "outside the model" in why_not(m, Block(3, 8))


def test_tile_options_modest_and_valid():
    opts = tile_options(72, 72)
    assert opts["recompute"][:3] == [(1, 1), (2, 2), (4, 4)] and (8, 72) in opts["stream2d"]
    assert all(w < 72 for _, w in opts["hcache"])
    assert {(2, 1), (3, 1), (4, 2), (6, 2)} <= set(opts["hcache"])   # tall: less recompute
    assert sum(len(v) for v in opts.values()) <= 42
    assert tile_options(1, 1) == {"recompute": [(1, 1)], "hcache": [(1, 1)],
                                  "stream2d": [(1, 1)]}


@pytest.mark.parametrize("model", [random_chain(3, 7), residual_net()], ids=["chain", "residual"])
def test_candidates_are_valid_and_complete(model):
    blocks = candidate_blocks(model)
    assert len(set(blocks)) == len(blocks)
    assert all(why_not(model, b) is None for b in blocks)
    n = len(model.layers)
    ranges = {(b.first, b.last) for b in blocks}
    # every structurally valid multi-layer range is offered
    for i in range(n):
        for j in range(i + 1, n):
            ok = why_not(model, Block(i, j, BlockConfig((1, 1), "recompute"))) is None
            assert ok == ((i, j) in ranges), (i, j)
    per_range: dict[tuple[int, int], int] = {}
    for b in blocks:
        per_range[(b.first, b.last)] = per_range.get((b.first, b.last), 0) + 1
    assert max(per_range.values()) <= 30
