"""The ops MobileNetV3 and squeeze-and-excite blocks need: lut (any int8 unary activation by a
256-entry table: TFLite HARD_SWISH / LOGISTIC / TANH / MUL by a constant scalar, ONNX HardSwish /
HardSigmoid / Sigmoid) and mul (TFLite's int8 MUL, same shape or a (1, 1, C) operand broadcast
over H and W).

(a) the C kernels built for the host against the reference, on random shapes and partial
windows; (b) the .tflite fixtures mbv3_small, sigmoid_net and the three single-activation tables (real
TFLiteConverter output) against TFLM's interpreter, bit for bit: the reference layer by layer, every candidate block
of the fusion space and the layer-by-layer and analytic min-RAM plans through the generated C;
(c) an ONNX graph (tests/onnx_models.se_net) against onnxruntime layer by layer, as
tests/test_ort_reference.py compares; (d) `msfsim search` on the MobileNetV3-like fixture and
one fused block with the broadcast mul measured in the unicorn-emulated Cortex-M7.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from msfsim import host, plan, refmodel
from msfsim.fusion import space
from msfsim.fusion.exact import block_cost
from msfsim.fusion.geometry import block_structure
from msfsim.importers.tflite import import_tflite, luts
from msfsim.ir import IRBuilder, Op, QParams, quantize_weights
from msfsim.importers.onnx import import_model
from msfsim.ops.lut import float_table
from msfsim.search.api import search_analytic

sys.path.insert(0, str(Path(__file__).resolve().parent))
import onnx_models as om  # noqa: E402
import tflite_models as tm  # noqa: E402
from test_kernels import kl, rand_clamp, rand_rect, window  # noqa: E402,F401  (kl: a fixture)

ROOT = Path(__file__).resolve().parents[1]
NEW_FIXTURES = ["mbv3_small", "sigmoid_net", "concat"]
# one activation after the input (Rescaling: a MUL by a constant scalar): fed the 256 int8
# values, the output is TFLM's whole table
TABLE_FIXTURES = ["hard_swish_table", "sigmoid_table", "tanh_table"]


# ------------------------------------------------------------------ (a) kernels

def test_lut_kernel_regions(kl):
    ffi, lib = kl
    rng = np.random.default_rng(7)
    for _ in range(20):
        shape = (int(rng.integers(1, 10)), int(rng.integers(1, 10)), int(rng.integers(1, 12)))
        table = rng.integers(-128, 128, 256).astype(np.int8)
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        x.flat[:min(x.size, 2)] = [-128, 127][:min(x.size, 2)]  # both ends of the table
        want = refmodel.lut(x, table)
        p = ffi.new("msf_lut_params *", dict(table=ffi.from_buffer("int8_t[]", table)))
        oy0, ox0, oh, ow = rand_rect(rng, shape[0], shape[1])
        win = window(ffi, rng, x, shape, oy0, ox0, oh, ow, extra=int(rng.integers(0, 4)),
                     ring=oh + 1 if rng.random() < 0.5 else 0)
        out = window(ffi, rng, None, shape, oy0, ox0, oh, ow, ring=oh if rng.random() < 0.5 else 0)
        lib.msf_lut_s8(win.ptr, p, out.ptr, oy0, ox0, oh, ow)
        np.testing.assert_array_equal(out.read(oy0, ox0, oh, ow), want[oy0:oy0 + oh, ox0:ox0 + ow])
        assert lib.msf_lut_s8_get_buffer_size(p, shape[2]) == 0


@pytest.mark.parametrize("broadcast", [False, True])
def test_mul_kernel_regions(kl, broadcast):
    from msfsim.ops.fixedpoint import quantize_multiplier
    ffi, lib = kl
    rng = np.random.default_rng(8 + broadcast)
    for _ in range(20):
        shape = (int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 12)))
        bshape = (1, 1, shape[2]) if broadcast else shape
        sa, sb, so = rng.uniform(0.002, 0.1, 3)
        m, s = quantize_multiplier(sa * sb / so)
        zpa, zpb, zpo = (int(v) for v in rng.integers(-128, 128, 3))
        lo, hi = rand_clamp(rng, zpo)
        a = rng.integers(-128, 128, size=shape, dtype=np.int8)
        b = rng.integers(-128, 128, size=bshape, dtype=np.int8)
        want = refmodel.mul(a, b, m, s, zpa, zpb, zpo, lo, hi)
        p = ffi.new("msf_mul_params *", dict(
            input1_offset=-zpa, input2_offset=-zpb, output_offset=zpo, output_mult=m,
            output_shift=s, act_min=lo, act_max=hi, broadcast=int(broadcast)))
        oy0, ox0, oh, ow = rand_rect(rng, shape[0], shape[1])
        wa = window(ffi, rng, a, shape, oy0, ox0, oh, ow, extra=int(rng.integers(0, 4)))
        wb = (window(ffi, rng, b, bshape) if broadcast
              else window(ffi, rng, b, shape, 0, 0, ring=shape[0] + 1))
        wo = window(ffi, rng, None, shape, oy0, ox0, oh, ow, ring=oh)
        lib.msf_mul_s8(wa.ptr, wb.ptr, p, wo.ptr, oy0, ox0, oh, ow)
        np.testing.assert_array_equal(wo.read(oy0, ox0, oh, ow), want[oy0:oy0 + oh, ox0:ox0 + ow])
        assert lib.msf_mul_s8_get_buffer_size(p, shape[2]) == 0


@pytest.mark.parametrize("requant", [False, True])
def test_concat_kernel_regions(kl, requant):
    from msfsim.ops.concat import requant as concat_requant
    ffi, lib = kl
    rng = np.random.default_rng(10 + requant)
    for _ in range(20):
        h, w = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        ca, cb = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        qo = QParams(float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128)))
        qa = QParams(float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128))) if requant else qo
        qb = QParams(float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128)))
        (ma, sa), (mb, sb) = concat_requant(qa, qo), concat_requant(qb, qo)
        a = rng.integers(-128, 128, size=(h, w, ca), dtype=np.int8)
        b = rng.integers(-128, 128, size=(h, w, cb), dtype=np.int8)
        want = refmodel.concat(a, b, [ma, mb], [sa, sb], qa.zero_point, qb.zero_point,
                               qo.zero_point)
        if not requant:
            np.testing.assert_array_equal(want[:, :, :ca], a)
        p = ffi.new("msf_concat_params *", dict(
            input1_offset=-qa.zero_point, input2_offset=-qb.zero_point,
            output_offset=qo.zero_point, input1_mult=ma, input1_shift=sa, input2_mult=mb,
            input2_shift=sb))
        oy0, ox0, oh, ow = rand_rect(rng, h, w)
        wa = window(ffi, rng, a, a.shape, oy0, ox0, oh, ow, extra=int(rng.integers(0, 4)))
        wb = window(ffi, rng, b, b.shape, 0, 0, ring=h + 1)
        wo = window(ffi, rng, None, (h, w, ca + cb), oy0, ox0, oh, ow, ring=oh)
        lib.msf_concat_s8(wa.ptr, wb.ptr, p, wo.ptr, oy0, ox0, oh, ow)
        np.testing.assert_array_equal(wo.read(oy0, ox0, oh, ow), want[oy0:oy0 + oh, ox0:ox0 + ow])
        assert lib.msf_concat_s8_get_buffer_size(p, ca + cb) == 0


def se_model(seed: int = 0):
    """conv -> lut -> SE (gap -> dense -> lut) -> broadcast mul -> conv, odd channel counts."""
    rng = np.random.default_rng(seed)
    b = IRBuilder("se", (11, 9, 5), QParams(0.02, 3))
    w, s = quantize_weights(rng.normal(0, 0.3, (7, 3, 3, 5)), 0)
    x = b.conv(b.input, w, s, rng.normal(0, .1, 7), QParams(0.03, -5), pad=(1, 1, 1, 1))
    x = b.lut(x, rng.integers(-128, 128, 256).astype(np.int8), QParams(0.02, -20))
    g = b.gap(x, QParams(0.01, 2))
    w2, s2 = quantize_weights(rng.normal(0, 0.3, (7, 7)), 0)
    d = b.dense(g, w2, s2, None, QParams(0.05, 0))
    d = b.lut(d, rng.integers(-128, 128, 256).astype(np.int8), QParams(1 / 256, -128))
    y = b.mul(x, d, QParams(0.02, 1))
    w3, s3 = quantize_weights(rng.normal(0, 0.3, (3, 3, 3, 7)), 0)
    y = b.conv(y, w3, s3, None, QParams(0.05, 0), pad=(1, 1, 1, 1))
    y = b.mul(y, b.lut(y, rng.integers(-128, 128, 256).astype(np.int8), QParams(0.03, 4)),
              QParams(0.04, -3))
    return b.build(merge=False)  # y * table(y) stays a same-shape mul, the one under test


def test_every_candidate_range_bit_exact_and_arena_equals_act_io():
    """Every layer range of the fusion space through the generated C, each in one of its
    configurations (taken in turn, so every scheme is run): the reference's output, and the
    arena high-water mark the exact cost model predicts."""
    m = se_model()
    x = np.random.default_rng(1).integers(-128, 128, (11, 9, 5)).astype(np.int8)
    vals = refmodel.run_layers(m, x)
    blocks = space.candidate_blocks(m)
    ranges = {(b.first, b.last) for b in blocks}
    assert {(0, 1), (5, 6), (5, 8), (6, 8), (7, 8)} <= ranges  # mul and lut fuse
    assert not any(b.first <= 4 < 5 <= b.last for b in blocks)  # the broadcast scale is whole
    by_range: dict[tuple[int, int], list] = {}
    for blk in blocks:
        by_range.setdefault((blk.first, blk.last), []).append(blk)
    chosen = []  # schemes in turn, then each scheme's tiles in turn
    for k, bs in enumerate(by_range.values()):
        schemes = sorted({b.config.scheme for b in bs})
        of = [b for b in bs if b.config.scheme == schemes[k % len(schemes)]]
        chosen.append(of[k // len(schemes) % len(of)])
    assert {b.config.scheme for b in chosen} == {b.config.scheme for b in blocks}
    for blk in chosen:
        st = block_structure(m, blk.first, blk.last)
        out, hw = host.run_block(m, blk, [vals[t] for t in st.inputs])
        np.testing.assert_array_equal(out, vals[st.output], err_msg=blk.key)
        assert hw == block_cost(m, blk).act_io, blk.key


def test_broadcast_operand_produced_in_the_block_is_refused():
    m = se_model()
    from msfsim.fusion.block import Block, BlockConfig, BlockInfeasible
    assert "broadcasts" in space.range_reason(m, 4, 5)
    with pytest.raises(BlockInfeasible, match="broadcasts"):
        block_structure(m, 4, 5)
    assert space.why_not(m, Block(5, 6, BlockConfig((2, 2), "stream2d"))) is None


# ------------------------------------------------------------------ (b) TFLM oracle

inputs, tflm = tm.inputs, tm.tflm


def test_fixtures_have_the_new_ops():
    mb = import_tflite(tm.fixture("mbv3_small"))
    acts = [layer.activation for layer in mb.layers if layer.op == Op.LUT]
    assert acts.count("hard_swish") == 4 and acts.count("mul") == 2  # hard_sigmoid's * 1/6
    muls = [layer for layer in mb.layers if layer.op == Op.MUL]
    assert len(muls) == 2 and all(mb.tensor(mm.inputs[1]).shape[:2] == (1, 1) for mm in muls)
    sg = import_tflite(tm.fixture("sigmoid_net"))
    assert sg.layers[0].op == Op.LUT and sg.layers[0].activation == "logistic"
    # x * LOGISTIC(x) (Keras' swish): one table of x
    assert [la.activation for la in sg.layers if la.op == Op.LUT].count("x*logistic") == 1
    assert Op.MUL not in [layer.op for layer in sg.layers]
    assert sg.layers[-1].activation == "tanh"
    for name in NEW_FIXTURES + TABLE_FIXTURES:
        assert tm.fixture(name).stat().st_size < 100_000
    for name, act in zip(TABLE_FIXTURES, ("hard_swish", "logistic", "tanh")):
        m = import_tflite(tm.fixture(name))
        # MUL by a constant, then the activation: one table, the two composed
        assert [(la.op, la.activation) for la in m.layers] == [(Op.LUT, f"mul+{act}")]


@pytest.mark.parametrize("name", NEW_FIXTURES + TABLE_FIXTURES)
def test_reference_bit_exact_with_tflm(name):
    tm.check_reference_with_tflm(name)


@pytest.mark.parametrize("name", NEW_FIXTURES)
def test_generated_c_plans_bit_exact_with_tflm(name):
    """Layer by layer and the analytic min-RAM plan through the generated C on the host."""
    tm.check_plans_with_tflm(name)


def test_mbv3_fusion_space_blocks_bit_exact():
    """The multi-layer ranges of the fusion space that start or end at a mul or a lut, each in
    one of its configurations (taken in turn), run on the host from the reference's values
    (which equal TFLM's output): each block's output is the reference's, its arena the exact
    cost model's act_io."""
    m = import_tflite(tm.fixture("mbv3_small"))
    vals = refmodel.run_layers(m, inputs(m, 1, seed=3)[0])
    new = {layer.index for layer in m.layers if layer.op in (Op.MUL, Op.LUT)}
    ranges: dict = {}
    for b in space.candidate_blocks(m):
        if b.first < b.last and any(b.first <= i <= b.last for i in new):
            ranges.setdefault((b.first, b.last), []).append(b)
    run = {r: c for r, c in ranges.items() if r[0] in new or r[1] in new}  # a cold build each
    muls = [layer.index for layer in m.layers if layer.op == Op.MUL]
    # the SE branch (gap, dense, dense, lut) ends blocks, so a mul starts one and fuses with the
    # main path after it; hard-swish luts fuse on both sides
    assert all(any(f == i for f, _ in ranges) for i in muls)
    assert any(f < i < last for f, last in ranges for i in new - set(muls))
    for k, (_, configs) in enumerate(sorted(run.items())):
        blk = configs[k % len(configs)]
        st = block_structure(m, blk.first, blk.last)
        out, hw = host.run_block(m, blk, [vals[t] for t in st.inputs])
        np.testing.assert_array_equal(out, vals[st.output], err_msg=blk.key)
        assert hw == block_cost(m, blk).act_io, blk.key


def test_tflm_tables_are_total_and_monotone():
    """Sanity of the TFLM tables on their own: hard-swish is 0 at 0 and tracks x for large x;
    the logistic is monotone, -128 far left, 127 far right, and 0 (= 0.5) at 0."""
    hs = luts.hard_swish_table(0.05, 0, 0.05, 0)
    assert hs[128] == 0 and hs[255] >= 120 and abs(int(hs[0])) <= 2
    lg = luts.logistic_table(0.1, 0, 1 / 256, -128)
    assert np.all(np.diff(lg.astype(int)) >= 0) and lg[0] == -128 and lg[255] == 127
    assert lg[128] == 0
    with pytest.raises(ValueError, match="1/256"):
        luts.logistic_table(0.1, 0, 0.01, -128)


# ------------------------------------------------------------------ (c) onnxruntime

def test_onnx_se_net_against_onnxruntime():
    """HardSwish, an SE block (GlobalAveragePool -> conv -> Relu -> conv -> HardSigmoid ->
    broadcast Mul) and x * HardSigmoid(x), as a QDQ model with msfsim's calibrated qparams,
    layer by layer on onnxruntime's own int8 intermediates. The float-defined tables are
    computed in float64 and onnxruntime evaluates float32, its requantisation (conv, mul)
    rounds floats: at most 1 LSB, on few elements (as tests/test_ort_reference.py)."""
    ort = pytest.importorskip("onnxruntime")
    from test_ort_reference import ort_intermediates
    m0 = import_model(om.se_net(), name="se")
    assert [layer.op for layer in m0.layers].count(Op.LUT) == 4
    assert m0.layers[-1].op == Op.CONCAT
    proto = om.se_net(qparams={t.name: (t.q.scale, t.q.zero_point) for t in m0.tensors})
    onnx.checker.check_model(proto)
    m = import_model(proto, name="se")
    assert [layer.op for layer in m.layers] == [layer.op for layer in m0.layers]
    assert ort.__version__
    worst, differing, total = {}, 0, 0
    for seed in range(3):
        xq = np.random.default_rng(seed).integers(-128, 128, m.tensor(m.input).shape, dtype=np.int8)
        vals = ort_intermediates(proto, m, xq)
        for layer in m.layers:
            ours = refmodel.run_layer(m, layer, vals).astype(np.int32)
            d = np.abs(ours - vals[layer.output].astype(np.int32))
            worst[layer.op] = max(worst.get(layer.op, 0), int(d.max()))
            differing += int((d > 0).sum())
            total += d.size
    assert max(worst.values()) <= 1, worst
    assert differing / total < 0.02, (differing, total)


def test_onnx_float_table_matches_float_function():
    q_in, q_out = QParams(0.05, 10), QParams(0.03, -100)
    t = float_table("hardswish", {}, q_in, q_out)
    x = (np.arange(-128, 128) - 10) * 0.05
    y = x * np.clip(x * (1.0 / 6.0) + 0.5, 0, 1)  # the ONNX definition (alpha = 1/6)
    np.testing.assert_array_equal(t, np.clip(np.rint(y / 0.03) - 100, -128, 127).astype(np.int8))


# (op, attributes, constant operand or None, the constant first?) of ONNX nodes that become a
# table; the table must be what onnxruntime computes on the dequantised input
TABLE_NODES = {
    "LeakyRelu": ("LeakyRelu", {"alpha": 0.1}, None, False),
    "Elu": ("Elu", {"alpha": 0.7}, None, False),
    "Selu": ("Selu", {}, None, False),
    "Softplus": ("Softplus", {}, None, False),
    "Softsign": ("Softsign", {}, None, False),
    "Mish": ("Mish", {}, None, False),
    "PRelu": ("PRelu", {}, 0.25, False),
    "Mul": ("Mul", {}, -1.5, True),
    "Div": ("Div", {}, 3.0, False),
    "Sub-from": ("Sub", {}, 0.5, True),
    "Erf": ("Erf", {}, None, False),      # torch's exact GELU: Div, Erf, Add, Mul, Mul
    "Gelu": ("Gelu", {}, None, False),    # opset 20
    "Gelu-tanh": ("Gelu", {"approximate": "tanh"}, None, False),
    "Abs": ("Abs", {}, None, False),
    "Neg": ("Neg", {}, None, False),
}


def _table_net(op, attrs, const, const_first, qdq=None):
    """input -> 1x1 conv -> 2x2 max pool (so that no Add / Sub / Clip folds into the conv) ->
    the node; qdq = (in scale, in zp, out scale, out zp): the node alone between DequantizeLinear
    and QuantizeLinear of an int8 input (onnxruntime's reference for one table)."""
    from onnx import TensorProto, helper
    mk = helper.make_node
    inits, first = [], "s"
    if qdq is None:
        nodes = [mk("Conv", ["input", "w"], ["c"], name="conv"),
                 mk("MaxPool", ["c"], ["s"], kernel_shape=[2, 2], strides=[1, 1])]
        inits.append(om._init("w", np.random.default_rng(0).normal(0, 1, (4, 3, 1, 1))))
    else:
        nodes = [mk("DequantizeLinear", ["input", "si", "zi"], ["s"])]
        inits += [om._init("si", qdq[0]), onnx.numpy_helper.from_array(np.int8(qdq[1]), "zi"),
                  om._init("so", qdq[2]), onnx.numpy_helper.from_array(np.int8(qdq[3]), "zo")]
    ins = [first]
    if const is not None:
        inits.append(om._init("k", np.array(const)))
        ins = ["k", first] if const_first else [first, "k"]
    out = "out" if qdq is None else "f"
    nodes.append(mk(op, ins, [out], name="node", **attrs))
    if qdq is not None:
        nodes.append(mk("QuantizeLinear", ["f", "so", "zo"], ["out"]))
    etype = TensorProto.FLOAT if qdq is None else TensorProto.INT8
    shape = [1, 3, 4, 4] if qdq is None else [1, 1, 16, 16]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("input", etype, shape)],
                          [helper.make_tensor_value_info("out", etype, None)], inits)
    opset = 20 if op == "Gelu" else 18
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)


@pytest.mark.parametrize("case", sorted(TABLE_NODES))
def test_onnx_table_nodes_match_onnxruntime(case):
    """LeakyRelu, Elu, Selu, Softplus, Softsign, Mish, PRelu with one slope, arithmetic with
    one constant number: one table layer each, equal to
    onnxruntime's QDQ evaluation of the node on all 256 int8 inputs (float64 tables against
    float32: at most 1 LSB, on few inputs)."""
    ort = pytest.importorskip("onnxruntime")
    op, attrs, const, const_first = TABLE_NODES[case]
    m = import_model(_table_net(op, attrs, const, const_first), name="t")
    assert [la.op for la in m.layers] == [Op.CONV, Op.MAXPOOL, Op.LUT]
    layer = m.layers[-1]
    qi, qo = m.tensor(layer.inputs[0]).q, m.tensor(layer.output).q
    proto = _table_net(op, attrs, const, const_first,
                       qdq=(qi.scale, qi.zero_point, qo.scale, qo.zero_point))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 16, 16)
    want = sess.run(None, {"input": x})[0].ravel().astype(np.int32)
    got = layer.weight.astype(np.int32)
    assert np.abs(got - want).max() <= 1 and (got != want).sum() <= 4, (got, want)
    assert len(set(got.tolist())) > 8  # a real function of x, not a constant table


@pytest.mark.parametrize("node", ["Mul", "Div", "Sub", "PRelu"])
def test_onnx_per_channel_constant_after_a_table(node):
    """After a table nothing folds: Mul, Div or Sub by a per-channel constant becomes a 1x1
    depthwise conv (msfsim.ops.affine); a PRelu with a slope per channel becomes
    x + (1 - a) * relu(-x): a table, a 1x1 depthwise conv and an add."""
    proto = _table_net(node, {}, None, False)
    proto.graph.initializer.append(om._init("k", np.array([2.0, 0.5, -0.25, 0.1]).reshape(1, 4, 1, 1)))
    proto.graph.node[-1].input.append("k")
    m = import_model(proto, name="t")
    if node == "PRelu":
        assert [(la.op, la.activation) for la in m.layers[-3:]] == [
            (Op.LUT, "negrelu"), (Op.DWCONV, "none"), (Op.ADD, "none")]
        return
    assert m.layers[-1].op == Op.DWCONV and m.layers[-1].kernel == (1, 1)


def test_onnx_clip_of_the_network_input_is_a_table():
    """Clip(-0.5, 1) with no layer before it to take the clamp: a table of its own."""
    from onnx import TensorProto, helper
    g = helper.make_graph(
        [helper.make_node("Clip", ["input", "lo", "hi"], ["x"], name="clip"),
         helper.make_node("Conv", ["x", "w"], ["out"], name="conv")],
        "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2, 4, 4])],
        [om._init("w", np.ones((2, 2, 1, 1))), om._init("lo", -0.5), om._init("hi", 1.0)])
    m = import_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)],
                                       ir_version=8), name="g")
    assert [la.op for la in m.layers] == [Op.LUT, Op.CONV]
    clip = m.layers[0]
    qi, qo = m.tensor(clip.inputs[0]).q, m.tensor(clip.output).q
    x = (np.arange(-128, 128) - qi.zero_point) * qi.scale
    want = np.clip(np.rint(np.clip(x, -0.5, 1.0) / qo.scale) + qo.zero_point, -128, 127)
    np.testing.assert_array_equal(clip.weight, want.astype(np.int8))


def test_onnx_scalar_add_still_folds_into_the_bias():
    """conv -> Add 0.5 -> Sub 0.25: the conv's bias, no layer of their own."""
    from onnx import TensorProto, helper
    g = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["c"], name="conv"),
         helper.make_node("Add", ["c", "a"], ["d"]), helper.make_node("Sub", ["d", "b"], ["out"])],
        "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2, 4, 4])],
        [om._init("w", np.ones((2, 2, 1, 1))), om._init("a", 0.5), om._init("b", 0.25)])
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    m = import_model(proto, name="g")
    assert [la.op for la in m.layers] == [Op.CONV]


def test_onnx_mul_by_a_channel_constant_folds_and_others_are_refused():
    """Conv -> Mul by a (1, C, 1, 1) constant folds into the conv's weights and bias; a
    constant varying along H is refused naming the node."""
    from msfsim import UnsupportedModel
    from onnx import TensorProto, helper

    def net(k):
        g = helper.make_graph(
            [helper.make_node("Conv", ["input", "w", "b"], ["c"], name="conv"),
             helper.make_node("Mul", ["c", "k"], ["out"], name="scale")], "g",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, 4, 4])],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2, 4, 4])],
            [om._init("w", np.ones((2, 2, 1, 1))), om._init("b", np.array([0.5, -1.0])),
             om._init("k", k)])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)

    m = import_model(net(np.array([2.0, -3.0]).reshape(1, 2, 1, 1)), name="g")
    assert [la.op for la in m.layers] == [Op.CONV]
    assert m.tensor(m.output).name == "out"
    with pytest.raises(UnsupportedModel, match=r"node 'scale' \(Mul, output 'out'\): constant "
                                               r"operand 'k' of shape \[1, 2, 4, 1\]"):
        import_model(net(np.ones((1, 2, 4, 1))), name="g")


# ------------------------------------------------------------------ (d) CLI and emulator

def test_cli_search_on_mbv3_fixture():
    r = subprocess.run([sys.executable, "-m", "msfsim", "search", str(tm.fixture("mbv3_small")),
                        "--platform", "stm32f746", "--cost", "analytic"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_measured_fused_se_block_in_unicorn(tmp_path):
    """One fused block holding the broadcast mul (SE scale in, the 1x1 conv after it), as a
    firmware for the stm32f746 in unicorn: its output digest equals the reference's, which
    equals TFLM's end to end."""
    pytest.importorskip("unicorn")
    from msfsim import ToolMissing
    from msfsim.codegen import generate_block
    from msfsim.fusion.block import Block, BlockConfig
    from msfsim.measure import Item, Measurer, output_digest
    m = import_tflite(tm.fixture("mbv3_small"))
    vals = refmodel.run_layers(m, inputs(m, 1, seed=9)[0])
    mul = next(layer.index for layer in m.layers if layer.op == Op.MUL)
    block = Block(mul, mul + 1, BlockConfig((2, 2), "hcache"))
    assert space.why_not(m, block) is None
    st = block_structure(m, block.first, block.last)
    code = generate_block(m, block, [vals[t] for t in st.inputs])
    item = Item(block.key, code, output_digest(vals[st.output]), budget=10**9)
    try:
        with Measurer("stm32f746", jobs=1, cache_dir=tmp_path, progress=False) as meas:
            o = meas.measure([item])[block.key]
    except ToolMissing as exc:
        pytest.skip(str(exc))
    assert o.ok, o
    assert o.instructions > 0


def test_onnx_torch_style_se_block_imports_and_runs():
    """PyTorch's SE export: GlobalAveragePool -> Flatten -> Gemm -> Relu -> Gemm ->
    HardSigmoid -> Reshape to (N, C, 1, 1) -> Mul; HardSwish; Tanh. The reshaped scale is
    broadcast; the flat one (no Reshape) is refused, as ONNX would broadcast it along W."""
    from onnx import TensorProto, helper, numpy_helper

    from msfsim import UnsupportedModel
    rng = np.random.default_rng(2)

    def graph(reshape: bool):
        inits = [om._init("w1", rng.normal(0, .4, (8, 3, 3, 3))),
                 om._init("f1", rng.normal(0, .4, (4, 8))), om._init("f2", rng.normal(0, .4, (8, 4))),
                 numpy_helper.from_array(np.array([1, 8, 1, 1], np.int64), "shape")]
        mk = helper.make_node
        nodes = [mk("Conv", ["input", "w1"], ["c"], pads=[1, 1, 1, 1], name="conv"),
                 mk("HardSwish", ["c"], ["h"], name="hswish"),
                 mk("GlobalAveragePool", ["h"], ["g"], name="gap"),
                 mk("Flatten", ["g"], ["f"], name="flat"),
                 mk("Gemm", ["f", "f1"], ["e1"], transB=1, name="fc1"),
                 mk("Relu", ["e1"], ["r"], name="relu"),
                 mk("Gemm", ["r", "f2"], ["e2"], transB=1, name="fc2"),
                 mk("HardSigmoid", ["e2"], ["s"], alpha=1.0 / 6.0, name="hsig")]
        if reshape:
            nodes.append(mk("Reshape", ["s", "shape"], ["s4"], name="view"))
        nodes += [mk("Mul", ["h", "s4" if reshape else "s"], ["m"], name="excite"),
                  mk("Tanh", ["m"], ["out"], name="tanh")]
        g = helper.make_graph(nodes, "torch_se",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 8, 8, 8])],
                              inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)

    m = import_model(graph(True), name="torch_se")
    assert [layer.op for layer in m.layers] == [Op.CONV, Op.LUT, Op.GAP, Op.DENSE, Op.DENSE,
                                                Op.LUT, Op.MUL, Op.LUT]
    x = inputs(m, 1, seed=4)[0]
    want = refmodel.run(m, x)
    for blocks in (plan.vanilla(m), plan.from_json(m, search_analytic(m, "stm32f746").to_plan_json())):
        y, _ = host.run_plan(m, blocks, x)
        np.testing.assert_array_equal(y, want)
    with pytest.raises(UnsupportedModel, match="flattened"):
        import_model(graph(False), name="torch_se")


@pytest.mark.parametrize("alpha,in_q,out_q", [
    (0.1, (0.05, 3), (0.04, -7)), (0.2, (0.02, -128), (0.03, 0)), (0.0, (0.1, 0), (0.1, 0)),
    (1.5, (0.01, 20), (0.02, -20)), (0.25, (0.05, 0), (0.2, 10))])
def test_tflite_leaky_relu_is_tflm_bit_exact(tmp_path, alpha, in_q, out_q):
    """A .tflite LEAKY_RELU on all 256 int8 inputs: msfsim's table against TFLM's kernel."""
    pytest.importorskip("tflite_micro")
    from tflite_micro.python.tflite_micro import runtime
    p = tmp_path / "leaky.tflite"
    p.write_bytes(tm.one_op_model("LEAKY_RELU", [1, 16, 16, 1], in_q, out_q,
                                  ("LeakyReluOptions", {"Alpha": alpha})))
    m = import_tflite(p)
    assert [la.op for la in m.layers] == [Op.LUT]
    x = np.arange(-128, 128, dtype=np.int8).reshape(16, 16, 1)
    it = runtime.Interpreter.from_file(str(p))
    it.set_input(x.reshape(1, 16, 16, 1), 0)
    it.invoke()
    want = np.array(it.get_output(0)).reshape(-1)
    np.testing.assert_array_equal(refmodel.run(m, x).reshape(-1), want)
    assert len(set(want.tolist())) > 8


@pytest.mark.parametrize("alpha,msg", [(float("nan"), "alpha nan is not finite"),
                                       (-0.25, r"a negative alpha \(-0.25\)")])
def test_tflite_leaky_relu_with_a_bad_alpha_is_refused(tmp_path, alpha, msg):
    """NaN, or negative: where TFLM rounds some outputs differently (alpha -0.25 and -0.5 on
    its kernel), refused rather than off by one."""
    from msfsim import UnsupportedModel
    p = tmp_path / "leaky.tflite"
    p.write_bytes(tm.one_op_model("LEAKY_RELU", [1, 4, 4, 1], (0.1, 0), (0.1, 0),
                                  ("LeakyReluOptions", {"Alpha": alpha})))
    with pytest.raises(UnsupportedModel, match=r"LEAKY_RELU.*" + msg):
        import_tflite(p)


@pytest.mark.parametrize("op", ["GlobalMaxPool", "ReduceMax"])
def test_onnx_global_max_is_a_whole_map_max_pool(op):
    """conv -> GlobalMaxPool (or ReduceMax over H, W) -> Flatten -> Gemm: a max pool with the
    map as its window, its output each channel's max; every candidate block holding it, in
    each of its configurations, bit-exact through the generated C."""
    from onnx import TensorProto, helper
    rng = np.random.default_rng(3)
    mk = helper.make_node
    reduce = (mk("GlobalMaxPool", ["c"], ["g"], name="gmax") if op == "GlobalMaxPool" else
              mk("ReduceMax", ["c", "axes"], ["g"], name="gmax", keepdims=1))
    g = helper.make_graph(
        [mk("Conv", ["input", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]), reduce,
         mk("Flatten", ["g"], ["f"]), mk("Gemm", ["f", "fc"], ["out"], transB=1, name="fc")],
        "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 9, 7])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 5])],
        [om._init("w", rng.normal(0, 0.5, (6, 3, 3, 3))), om._init("fc", rng.normal(0, 0.3, (5, 6))),
         onnx.numpy_helper.from_array(np.array([2, 3], np.int64), "axes")])
    m = import_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)],
                                       ir_version=8), name="g")
    assert [la.op for la in m.layers] == [Op.CONV, Op.MAXPOOL, Op.DENSE]
    pool = m.layers[1]
    assert pool.kernel == (9, 7) and m.tensor(pool.output).shape == (1, 1, 6)
    x = rng.integers(-128, 128, m.tensor(m.input).shape, dtype=np.int8)
    vals = refmodel.run_layers(m, x)
    np.testing.assert_array_equal(vals[pool.output].reshape(-1),
                                  vals[m.layers[0].output].reshape(-1, 6).max(axis=0))
    held = [b for b in space.candidate_blocks(m) if b.first <= 1 <= b.last]
    assert any(b.first < 1 for b in held)  # it fuses with the conv before it
    for blk in held:
        st = block_structure(m, blk.first, blk.last)
        out, _ = host.run_block(m, blk, [vals[t] for t in st.inputs])
        np.testing.assert_array_equal(out, vals[st.output], err_msg=blk.key)


@pytest.mark.parametrize("op", ["RELU", "RELU6", "QUANTIZE"])
def test_tflite_relu_relu6_requantize_are_tflm_bit_exact(tmp_path, op):
    """A standalone RELU / RELU6 (one the converter could not fuse) and an int8 -> int8
    QUANTIZE, over 12 random quantisations each, on all 256 int8 inputs: msfsim's table
    against TFLM's kernel. RELU6 keeps the input's quantisation, as TFLM requires."""
    pytest.importorskip("tflite_micro")
    from tflite_micro.python.tflite_micro import runtime
    rng = np.random.default_rng({"RELU": 1, "RELU6": 2, "QUANTIZE": 3}[op])
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16, 1)
    for k in range(12):
        in_q = (float(rng.uniform(0.002, 0.3)), int(rng.integers(-128, 128)))
        out_q = in_q if op == "RELU6" else (float(rng.uniform(0.002, 0.3)),
                                            int(rng.integers(-128, 128)))
        p = tmp_path / f"{op}{k}.tflite"
        p.write_bytes(tm.one_op_model(op, [1, 16, 16, 1], in_q, out_q))
        m = import_tflite(p)
        assert [la.op for la in m.layers] == [Op.LUT]
        it = runtime.Interpreter.from_file(str(p))
        it.set_input(x, 0)
        it.invoke()
        want = np.array(it.get_output(0)).reshape(-1)
        np.testing.assert_array_equal(refmodel.run(m, x.reshape(16, 16, 1)).reshape(-1), want,
                                      err_msg=f"{op} {in_q} -> {out_q}")


def test_tflite_relu6_quantised_unlike_its_input_and_identity_quantize(tmp_path):
    """TFLM's RELU6 writes the clamped input bytes whatever the output's quantisation, so an
    output quantised otherwise is refused naming the operator; a QUANTIZE that keeps the
    quantisation is the same tensor (a model of only that computes nothing: refused)."""
    from msfsim import UnsupportedModel
    p = tmp_path / "r6.tflite"
    p.write_bytes(tm.one_op_model("RELU6", [1, 4, 4, 1], (0.1, 0), (0.2, 0)))
    with pytest.raises(UnsupportedModel, match=r"operator 0 \(RELU6, output 'y'\): output "
                                               r"quantised unlike the input"):
        import_tflite(p)
    p.write_bytes(tm.one_op_model("QUANTIZE", [1, 4, 4, 1], (0.1, 3), (0.1, 3)))
    with pytest.raises(UnsupportedModel, match="no layer msfsim computes"):
        import_tflite(p)


@pytest.mark.parametrize("op", ["RELU", "RELU6", "QUANTIZE"])
def test_tflite_relu_after_a_pool_runs_fused_bit_exact(tmp_path, op):
    """conv -> MAX_POOL_2D -> `op` -> conv, as a Keras model with ReLU after its pooling
    converts: TFLM against msfsim's generated C on the host, layer by layer and as the
    analytic min-RAM plan (the table inside a fused block). Written by msfsim's exporter with
    a HARD_SWISH in the op's place, then that operator's code patched."""
    from msfsim.exporters import tflite_bytes
    from msfsim.ops.lut import LutOp
    rng = np.random.default_rng(7)
    b = IRBuilder("pool_relu", (12, 12, 3), QParams(0.02, 0))
    w, s = quantize_weights(rng.normal(0, 0.3, (8, 3, 3, 3)), 0)
    y = b.conv(b.input, w, s, None, QParams(0.05, -10), pad=(1, 1, 1, 1))
    y = b.pool(y, "max", (2, 2), (2, 2))
    # RELU6 reads its input's quantisation: the pool's output, which is the conv's
    out_q = QParams(0.05, -10) if op == "RELU6" else QParams(0.03, -20)
    y = LutOp().build(b, y, np.zeros(256, np.int8), out_q, activation="hardswish")
    w, s = quantize_weights(rng.normal(0, 0.3, (4, 3, 3, 8)), 0)
    b.conv(y, w, s, rng.normal(0, 0.1, 4), QParams(0.04, 3), pad=(1, 1, 1, 1))
    data = bytearray(tflite_bytes(b.build()))
    tm.set_builtin_code(data, tm.op_index(data, "HARD_SWISH"), getattr(tm.tflite.BuiltinOperator, op))
    p = tmp_path / "pool_relu.tflite"
    p.write_bytes(bytes(data))
    m = import_tflite(p)
    assert [la.op for la in m.layers] == [Op.CONV, Op.MAXPOOL, Op.LUT, Op.CONV]
    assert m.layers[2].activation == op.lower()
    xs = tm.inputs(m, 3, seed=2)
    want = tm.tflm(m, p, xs)
    fused = plan.from_json(m, search_analytic(m, "stm32f746").to_plan_json())
    assert len(fused) < len(m.layers)
    for blocks in (plan.vanilla(m), fused):
        for x, w_ in zip(xs, want):
            yv, _ = host.run_plan(m, blocks, x)
            np.testing.assert_array_equal(yv.reshape(-1), w_)


def test_consecutive_tables_compose_into_one():
    """A table reading another table that nothing else reads becomes one table, the two
    composed (int8 to int8: exactly what the two compute); a table whose output is read twice
    stays. The reference and the generated C agree with the
    unmerged chain computed by hand."""
    from msfsim.ops.lut import LutOp
    rng = np.random.default_rng(2)
    t1, t2, t3 = (rng.integers(-128, 128, 256).astype(np.int8) for _ in range(3))
    b = IRBuilder("chain", (6, 6, 4), QParams(0.02, 0))
    w, s = quantize_weights(rng.normal(0, 0.3, (4, 1, 1, 4)), 0)
    c = b.conv(b.input, w, s, None, QParams(0.05, 3))
    a = LutOp().build(b, c, t1, QParams(0.04, 0), activation="erf")
    a = LutOp().build(b, a, t2, QParams(0.03, 1), activation="affine")   # merges into the first
    fork = LutOp().build(b, a, t3, QParams(0.03, 2), activation="tanh")  # read twice: stays
    y = b.add(LutOp().build(b, fork, t1, QParams(0.03, 2)), fork, QParams(0.05, 0))
    m = b.build(LutOp().build(b, y, t2, QParams(0.05, 0)))
    # the fork stays (read twice); lut(fork) + fork is a table of the fork, as is what follows
    assert [(la.op, la.activation) for la in m.layers] == [
        (Op.CONV, "none"), (Op.LUT, "erf+affine+tanh"), (Op.LUT, "x+lut+lut")]
    assert [t.id for t in m.tensors] == list(range(len(m.tensors))) and len(m.tensors) == 4
    x = rng.integers(-128, 128, (6, 6, 4), dtype=np.int8)
    values = refmodel.run_layers(m, x)
    lut = lambda v, t: t[v.astype(np.int16) + 128]  # noqa: E731
    conv = values[m.layers[0].output]
    np.testing.assert_array_equal(values[m.layers[1].output], lut(lut(lut(conv, t1), t2), t3))
    y, _ = host.run_plan(m, plan.vanilla(m), x)
    np.testing.assert_array_equal(y, refmodel.run(m, x))


@pytest.mark.parametrize("op", ["mul", "add"])
def test_x_times_a_table_of_x_is_one_table(op):
    """x * t(x) (SiLU's x * sigmoid(x), GELU's x * Phi(x)) and x + t(x): one table, the op's
    int8 arithmetic on every value of x and of its table, so the output is what the two layers
    computed (checked against the op's own reference on the two tensors); a product with a
    (1, 1, C) operand (squeeze-and-excite) stays a mul."""
    from msfsim.ops.add import add as add_ref
    from msfsim.ops.lut import LutOp
    from msfsim.ops.mul import mul as mul_ref
    rng = np.random.default_rng(4)
    t = rng.integers(-128, 128, 256).astype(np.int8)
    b = IRBuilder("xt", (6, 6, 4), QParams(0.02, 0))
    w, s = quantize_weights(rng.normal(0, 0.3, (4, 1, 1, 4)), 0)
    x = b.conv(b.input, w, s, None, QParams(0.05, 3))
    tx = LutOp().build(b, x, t, QParams(0.04, -5), activation="sigmoid")
    q = QParams(0.03, 7)
    y = b.mul(x, tx, q) if op == "mul" else b.add(tx, x, q)
    se = b.mul(y, b.gap(y, QParams(0.03, 7)), QParams(0.05, 1))
    m = b.build(se)
    assert [la.op for la in m.layers] == [Op.CONV, Op.LUT, Op.GAP, Op.MUL]
    assert m.layers[1].activation == ("x*sigmoid" if op == "mul" else "x+sigmoid")
    xin = rng.integers(-128, 128, (6, 6, 4), dtype=np.int8)
    values = refmodel.run_layers(m, xin)
    xv = values[m.layers[0].output]
    txv = t[xv.astype(np.int16) + 128]
    # the op layer as IRBuilder held it before `build` merged it
    unmerged = next(la for la in b.layers if la.op == (Op.MUL if op == "mul" else Op.ADD))
    if op == "mul":
        want = mul_ref(xv, txv, int(unmerged.multiplier[0]), int(unmerged.shift[0]), 3, -5, 7)
    else:  # the table's output first, as built
        want = add_ref(txv, xv, unmerged.multiplier, unmerged.shift, -5, 3, 7)
    np.testing.assert_array_equal(values[m.layers[1].output], want)
    yv, _ = host.run_plan(m, plan.vanilla(m), xin)
    np.testing.assert_array_equal(yv, refmodel.run(m, xin))
