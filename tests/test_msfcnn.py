"""msf-CNN's analytic model reproduces the published figures of its three models (DESIGN §2)."""
from __future__ import annotations

import numpy as np
import pytest

from msfsim.fusion import msfcnn
from msfsim.fusion.block import Block, BlockConfig, BlockInfeasible, LAYER
from msfsim.ir import IRBuilder, Model, QParams

Q = QParams(0.05, 0)

# (kind, args): "conv" (cout, k, s); "dw" (k, s); "mb" (cin, cout, e, s, k), DESIGN §2's MB()
MBV2 = ([("conv", (11, 3, 2)), ("mb", (11, 5, 1, 1, 3)), ("mb", (5, 8, 6, 2, 3)),
         ("mb", (8, 8, 6, 1, 3)), ("mb", (8, 11, 6, 2, 3))] + [("mb", (11, 11, 6, 1, 3))] * 2
        + [("mb", (11, 22, 6, 2, 3))] + [("mb", (22, 22, 6, 1, 3))] * 3
        + [("mb", (22, 33, 6, 1, 3))] + [("mb", (33, 33, 6, 1, 3))] * 2
        + [("mb", (33, 56, 6, 2, 3))] + [("mb", (56, 56, 6, 1, 3))] * 2
        + [("mb", (56, 112, 6, 1, 3)), ("conv", (448, 1, 1))])
# MB(40, 48) has expansion 6, as in msf-CNN's own model definition: with it the published MAC
# totals and overhead (11,578,496 vanilla MACs, F 1.96) are reproduced exactly.
VWW = [("conv", (16, 3, 2)), ("dw", (3, 1)), ("conv", (8, 1, 1)), ("mb", (8, 16, 6, 2, 3)),
       ("mb", (16, 16, 3, 1, 3)), ("mb", (16, 16, 3, 1, 3)), ("mb", (16, 24, 3, 2, 7)),
       ("mb", (24, 24, 6, 1, 3)), ("mb", (24, 24, 5, 1, 5)), ("mb", (24, 40, 6, 2, 7)),
       ("mb", (40, 40, 6, 1, 7)), ("mb", (40, 48, 6, 1, 3)), ("mb", (48, 48, 4, 1, 3)),
       ("mb", (48, 96, 5, 2, 5)), ("mb", (96, 96, 5, 1, 3)), ("mb", (96, 96, 4, 1, 3)),
       ("mb", (96, 160, 3, 1, 7))]
MCUNET = [("conv", (16, 3, 2)), ("dw", (3, 1)), ("conv", (8, 1, 1)), ("mb", (8, 16, 3, 2, 7)),
          ("mb", (16, 16, 5, 1, 3)), ("mb", (16, 16, 5, 1, 7)), ("mb", (16, 16, 4, 1, 5)),
          ("mb", (16, 24, 5, 2, 5)), ("mb", (24, 24, 5, 1, 5)), ("mb", (24, 24, 5, 1, 5)),
          ("mb", (24, 40, 5, 2, 3)), ("mb", (40, 40, 6, 1, 7)), ("mb", (40, 40, 4, 1, 5)),
          ("mb", (40, 48, 5, 1, 5)), ("mb", (48, 48, 5, 1, 7)), ("mb", (48, 48, 5, 1, 3)),
          ("mb", (48, 96, 6, 2, 3)), ("mb", (96, 96, 5, 1, 7)), ("mb", (96, 96, 4, 1, 3)),
          ("mb", (96, 160, 5, 1, 7))]
PROXIES = {"mbv2-w0.35-r144": (144, MBV2), "mcunetv2-vww5-r80": (80, VWW),
           "mcunet-320kb-r176": (176, MCUNET)}

# name: (layers, vanilla peak, F=inf minimum peak, its overhead F to 2 decimals)
PUBLISHED = {"mbv2-w0.35-r144": (53, 194_400, 7_887, 1.68),
             "mcunetv2-vww5-r80": (45, 96_000, 12_000, 1.96),
             "mcunet-320kb-r176": (54, 309_760, 42_643, 2.69)}


def build_chain(name: str, res: int, spec: list) -> Model:
    """A bias-free int8 chain from a layer spec; weights are random (costs depend on shapes)."""
    rng = np.random.default_rng(0)
    b = IRBuilder(name, (res, res, 3), Q)
    x = b.input

    def conv(x: int, cout: int, k: int, s: int) -> int:
        cin = b.tensors[x].shape[2]
        w = rng.integers(-127, 128, (cout, k, k, cin), dtype=np.int8)
        return b.conv(x, w, np.full(cout, 0.01), None, Q, stride=(s, s), pad=(k // 2,) * 4)

    def dw(x: int, k: int, s: int) -> int:
        c = b.tensors[x].shape[2]
        w = rng.integers(-127, 128, (k, k, c), dtype=np.int8)
        return b.conv(x, w, np.full(c, 0.01), None, Q, stride=(s, s), pad=(k // 2,) * 4,
                      depthwise=True)

    for kind, args in spec:
        if kind == "conv":
            x = conv(x, *args)
        elif kind == "dw":
            x = dw(x, *args)
        else:
            cin, cout, e, s, k = args
            x = conv(dw(conv(x, cin * e, 1, 1), k, s), cout, 1, 1)
    return b.build()


def build_proxy(name: str) -> Model:
    res, spec = PROXIES[name]
    return build_chain(name, res, spec)


def front_of(model: Model):
    from msfsim.search.pareto import build_dag, pareto_front
    from msfsim.search.weights import EdgeWeights
    w = EdgeWeights(model, msfcnn.block_cost)
    return pareto_front(build_dag(len(model.layers), msfcnn.candidate_blocks(model), w))


@pytest.fixture(scope="module", params=list(PROXIES))
def proxy(request):
    return request.param, build_proxy(request.param)


def test_published_vanilla_and_minimum(proxy):
    name, model = proxy
    n_layers, vanilla_peak, min_peak, min_f = PUBLISHED[name]
    assert len(model.layers) == n_layers
    vanilla = [msfcnn.block_cost(model, Block(i, i)) for i in range(n_layers)]
    assert max(c.act for c in vanilla) == vanilla_peak
    assert sum(c.macs for c in vanilla) == model.total_macs
    front = front_of(model)
    assert front[0].ram == min_peak
    assert round(front[0].cost / model.total_macs, 2) == min_f
    assert front[-1].cost == model.total_macs  # fusing without recompute costs nothing extra


def test_published_plans_and_macs():
    """msf-CNN's published result files give the plans and MAC totals behind the figures."""
    from msfsim.search.api import select
    mbv2 = build_proxy("mbv2-w0.35-r144")
    assert mbv2.total_macs == 18_909_490
    front = front_of(mbv2)
    p = select(front, mbv2.total_macs, "ram", None, None)
    assert p.cost == 31_758_160
    assert [(b.first, b.last) for b in p.blocks] == [
        (0, 12), (13, 15), (16, 21), (22, 24), (25, 27), (28, 30), (31, 33), (34, 36),
        (37, 39), (40, 42), (43, 45), (46, 48), (49, 52)]
    p = select(front, mbv2.total_macs, "ram", 1.3, None)  # published "F 1.3": 21,288 B
    assert (p.ram, p.cost) == (21_288, 24_536_110)
    vww = build_proxy("mcunetv2-vww5-r80")
    assert vww.total_macs == 11_578_496
    p = select(front_of(vww), vww.total_macs, "ram", None, None)
    assert (p.ram, p.cost) == (12_000, 22_655_616)


def test_last_tile_quirk():
    """The H-cache is sized from the bottom tile row: at 144x144 input, a 3x3/s2 conv then a
    1x1 conv have a 3-row input tile at stride 2; the last tile row (input row 140) gets no
    bottom padding and yields one row, so the 1x1 conv's cache is 1 * 1 * 11."""
    m = build_proxy("mbv2-w0.35-r144")
    buffers, macs = msfcnn.fused_buffers(m, [m.layers[0], m.layers[1]])
    assert buffers == [3 * 3 * 3, 1 * 1 * 11]
    c = msfcnn.block_cost(m, Block(0, 1, msfcnn.HCACHE_1x1))
    assert c.act == sum(buffers) + 72 * 72 * 11            # network input left out
    assert c.act_io == c.act + 144 * 144 * 3
    assert macs == m.macs(m.layers[0]) + m.macs(m.layers[1])  # no overlap along rows


def test_outside_msfcnn_space_is_rejected():
    m = build_proxy("mcunetv2-vww5-r80")
    for cfg in (BlockConfig((2, 2), "hcache"), BlockConfig((1, 1), "recompute")):
        with pytest.raises(BlockInfeasible, match="1x1 output tiles"):
            msfcnn.block_cost(m, Block(0, 3, cfg))
    assert all(b.config in (LAYER, msfcnn.HCACHE_1x1) for b in msfcnn.candidate_blocks(m))


def test_asymmetric_padding_is_outside_msfcnn():
    """SAME padding on an even size pads one side only; msf-CNN's formulas do not model it."""
    b = IRBuilder("same", (8, 8, 2), Q)
    rng = np.random.default_rng(0)
    x = b.conv(b.input, rng.integers(-127, 128, (4, 1, 1, 2), dtype=np.int8), np.full(4, .01),
               None, Q)
    b.conv(x, rng.integers(-127, 128, (3, 3, 4), dtype=np.int8), np.full(4, .01), None, Q,
           stride=(2, 2), pad=(0, 0, 1, 1), depthwise=True)
    m = b.build()
    with pytest.raises(BlockInfeasible, match="symmetric padding"):
        msfcnn.block_cost(m, Block(0, 1, msfcnn.HCACHE_1x1))
    assert msfcnn.block_cost(m, Block(1, 1)).macs == m.macs(m.layers[1])


def test_zoo_proxies_match_when_available():
    zoo = pytest.importorskip("msfsim.zoo")
    for name, (n_layers, vanilla_peak, min_peak, _) in PUBLISHED.items():
        if name == "mcunet-320kb-r176":
            continue  # the largest model: its figures are checked on the local proxy above
        model = zoo.load(name)
        assert len(model.layers) == n_layers
        assert max(msfcnn.block_cost(model, Block(i, i)).act for i in range(n_layers)) \
            == vanilla_peak
        assert front_of(model)[0].ram == min_peak
