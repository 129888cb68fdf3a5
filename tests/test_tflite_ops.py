"""The TFLite operators beside the MobileNet ones: SOFTMAX (a classifier's last layer),
ADD with a (1, 1, C) operand broadcast over H and W, DEPTHWISE_CONV_2D with a depth
multiplier above 1 (a dense conv with block-diagonal weights).

Real TFLiteConverter output (tests/data/tflite: softmax_net, broadcast_add, dw_multiplier;
scripts/make_tflite_fixtures.py) against TFLM's interpreter, bit for bit: the reference layer
by layer, the layer-by-layer and analytic min-RAM plans through the generated C on the host,
fused blocks holding the new layers; the broadcast add's kernel on partial windows and the
ONNX lowering of a broadcast Add; and what the importer refuses.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from msfsim import UnsupportedModel, host, plan, refmodel
from msfsim.fusion import space
from msfsim.fusion.block import Block, BlockConfig
from msfsim.fusion.exact import block_cost
from msfsim.fusion.geometry import block_structure
from msfsim.importers.tflite import import_tflite
from msfsim.ir import IRBuilder, Op, QParams, quantize_weights
from msfsim.search.api import search_analytic

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tflite_models as tm  # noqa: E402
from tflite_models import inputs, tflm  # noqa: E402,F401
from test_kernels import kl  # noqa: E402,F401  (a fixture)

FIXTURES = ["softmax_net", "broadcast_add", "dw_multiplier"]


def test_fixtures_have_the_ops():
    for name in FIXTURES:
        assert tm.fixture(name).stat().st_size < 10_000
    sm = import_tflite(tm.fixture("softmax_net"))
    assert [layer.op for layer in sm.layers][-3:] == [Op.DENSE, Op.DENSE, Op.SOFTMAX]
    assert (sm.tensor(sm.output).q.scale, sm.tensor(sm.output).q.zero_point) == (1 / 256, -128)
    ba = import_tflite(tm.fixture("broadcast_add"))
    adds = [layer for layer in ba.layers if layer.op == Op.ADD]
    assert len(adds) == 2  # x + dense(gap(x)) and gap(y) + y: the (1, 1, C) operand second
    for a in adds:
        assert ba.tensor(a.inputs[1]).shape == (1, 1, 8) != ba.tensor(a.inputs[0]).shape
    dw = import_tflite(tm.fixture("dw_multiplier"))
    assert [layer.op for layer in dw.layers] == [Op.CONV] * 3
    for layer, m in zip(dw.layers[:2], (4, 2)):  # 1 -> 4 channels, 4 -> 8
        w = layer.weight
        cout, cin = w.shape[0], w.shape[3]
        assert cout == cin * m
        mask = np.arange(cout)[:, None] // m == np.arange(cin)[None, :]
        assert not np.any(w.transpose(0, 3, 1, 2)[~mask])  # zeros off the diagonal blocks
        assert np.any(w.transpose(0, 3, 1, 2)[mask])


@pytest.mark.parametrize("name", FIXTURES)
def test_reference_bit_exact_with_tflm(name):
    tm.check_reference_with_tflm(name)


@pytest.mark.parametrize("name", FIXTURES)
def test_generated_c_plans_bit_exact_with_tflm(name):
    """Layer by layer and the analytic min-RAM plan through the generated C on the host."""
    tm.check_plans_with_tflm(name)


def test_fused_blocks_with_the_new_layers():
    """The whole classifier as one block (softmax the last of its tail: gap, dense, dense,
    softmax) from the input: its output is the reference's (= TFLM's), its arena the exact
    cost model's act_io. A broadcast add fuses with the layers after it (the min-RAM plan
    above runs such blocks), not with the layers producing its (1, 1, C) operand."""
    ba = import_tflite(tm.fixture("broadcast_add"))
    adds = [layer.index for layer in ba.layers if layer.op == Op.ADD]
    for add in adds:
        assert "broadcasts" in space.range_reason(ba, add - 1, add)
        assert space.range_reason(ba, add, add + 1) is None
    m = import_tflite(tm.fixture("softmax_net"))
    blk = Block(0, len(m.layers) - 1, BlockConfig((2, 2), "hcache"))
    assert space.why_not(m, blk) is None
    assert block_structure(m, blk.first, blk.last).tail == (3, 4, 5, 6)
    x = inputs(m, 1, seed=7)[0]
    out, hw = host.run_block(m, blk, [x])
    np.testing.assert_array_equal(out.reshape(-1), tflm(m, tm.fixture("softmax_net"), [x])[0])
    assert hw == block_cost(m, blk).act_io


def test_depth_multiplier_must_match_the_weights(tmp_path):
    data = bytearray(tm.fixture("dw_multiplier").read_bytes())
    tm.set_depth_multiplier(data, 1, 3)
    p = tmp_path / "dm.tflite"
    p.write_bytes(data)
    with pytest.raises(UnsupportedModel, match=r"operator 1 \(DEPTHWISE_CONV_2D.*depth "
                                               r"multiplier 3 for weights \[1, 3, 3, 8\]") as e:
        import_tflite(p)
    assert "\n" not in str(e.value)


def test_broadcast_add_kernel_regions(kl):
    """msf_elementwise_add_s8 with a (1, 1, C) second operand, on partial and ring windows."""
    from msfsim.ops.fixedpoint import quantize_multiplier
    from test_kernels import rand_clamp, rand_rect, window
    ffi, lib = kl
    rng = np.random.default_rng(11)
    for _ in range(20):
        shape = (int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 12)))
        sa, sb, so = rng.uniform(0.005, 0.1, 3)
        twice = 2 * max(sa, sb)
        (m1, s1), (m2, s2), (mo, so_) = (quantize_multiplier(v) for v in (
            sa / twice, sb / twice, twice / ((1 << 20) * so)))
        zpa, zpb, zpo = (int(v) for v in rng.integers(-128, 128, 3))
        lo, hi = rand_clamp(rng, zpo)
        a = rng.integers(-128, 128, size=shape, dtype=np.int8)
        b = rng.integers(-128, 128, size=(1, 1, shape[2]), dtype=np.int8)
        want = refmodel.add(a, b, [m1, m2, mo], [s1, s2, so_], zpa, zpb, zpo, lo, hi)
        p = ffi.new("msf_add_params *", dict(
            input1_offset=-zpa, input2_offset=-zpb, left_shift=20, input1_mult=m1,
            input1_shift=s1, input2_mult=m2, input2_shift=s2, output_mult=mo,
            output_shift=so_, output_offset=zpo, act_min=lo, act_max=hi, broadcast=1))
        oy0, ox0, oh, ow = rand_rect(rng, shape[0], shape[1])
        wa = window(ffi, rng, a, shape, oy0, ox0, oh, ow, extra=int(rng.integers(0, 4)))
        wb = window(ffi, rng, b, b.shape)
        wo = window(ffi, rng, None, shape, oy0, ox0, oh, ow, ring=oh)
        lib.msf_elementwise_add_s8(wa.ptr, wb.ptr, p, wo.ptr, oy0, ox0, oh, ow)
        np.testing.assert_array_equal(wo.read(oy0, ox0, oh, ow), want[oy0:oy0 + oh, ox0:ox0 + ow])


def test_onnx_broadcast_add():
    """ONNX Add of a map and its GlobalAveragePool (N x C x 1 x 1), either operand first: one
    add layer with the (1, 1, C) operand second; float evaluation = onnxruntime's."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    import onnx_models as om
    from msfsim.importers.onnx import import_model
    from msfsim.importers.onnx.calibrate import float_layer
    from msfsim.importers.onnx.walk import Importer
    rng = np.random.default_rng(12)
    for order in (("c", "g"), ("g", "c")):
        mk = helper.make_node
        g = helper.make_graph(
            [mk("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             mk("GlobalAveragePool", ["c"], ["g"], name="gap"),
             mk("Add", list(order), ["a"], name="add"),
             mk("Conv", ["a", "w2"], ["out"], name="conv2")], "bcast",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, 5, 4])],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 5, 4])],
            [om._init("w", rng.normal(0, .5, (4, 2, 3, 3))),
             om._init("w2", rng.normal(0, .5, (3, 4, 1, 1)))])
        proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
        m = import_model(proto, name="bcast")
        add = m.layers[2]
        assert add.op == Op.ADD and m.tensor(add.inputs[1]).shape == (1, 1, 4)
        refmodel.run(m, inputs(m, 1)[0])
        x = rng.uniform(-1, 1, (1, 2, 5, 4)).astype(np.float32)
        want = ort.InferenceSession(proto.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        im = Importer(proto, "bcast", None)
        im.run()
        env = {im.canon(im.input_name): x.transpose(0, 2, 3, 1).astype(np.float64)}
        for layer in im.layers:
            env[layer.output] = float_layer(layer, [env[im.canon(i)] for i in layer.inputs])
        np.testing.assert_allclose(env[im.layers[-1].output], want.transpose(0, 2, 3, 1),
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("depthwise,dil,stride", [(False, (2, 2), 1), (True, (2, 2), 1),
                                                  (False, (3, 1), 2), (True, (1, 2), 2)])
def test_dilated_convolutions_are_tflm_bit_exact(tmp_path, monkeypatch, depthwise, dil, stride):
    """CONV_2D / DEPTHWISE_CONV_2D with dilation factors (SAME padding, by the kernel's
    dilated extent in TFLM too): the zero-inserted kernel, bit-exact with TFLM's interpreter
    through the reference and the generated C of the analytic min-RAM plan. The file is
    msfsim's export of a 3x3 conv with the dilation fields written into its options."""
    from msfsim.exporters import flatbuf, tflite_bytes
    rng = np.random.default_rng(5)
    b = IRBuilder("dil", (12, 11, 8), QParams(0.02, 3))
    w, s = quantize_weights(rng.normal(0, 0.3, (8, 3, 3, 8)), 0)
    y = b.conv(b.input, w, s, rng.normal(0, 0.1, 8), QParams(0.05, -10), pad=(1, 1, 1, 1),
               activation="relu")
    same = (1, 1, 1, 1) if stride == 1 else (0, 1, 1, 1)  # TFLite's SAME on 12 x 11
    if depthwise:
        w, s = quantize_weights(rng.normal(0, 0.3, (3, 3, 8)), 2)
        b.conv(y, w, s, rng.normal(0, 0.1, 8), QParams(0.04, 2), stride=(stride, stride),
               pad=same, depthwise=True)
    else:
        w, s = quantize_weights(rng.normal(0, 0.3, (6, 3, 3, 8)), 0)
        b.conv(y, w, s, rng.normal(0, 0.1, 6), QParams(0.04, 2), stride=(stride, stride),
               pad=same)
    table = "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions"
    options = flatbuf._options
    count = {"n": 0}

    def dilated(fb, name, fields):  # the second conv's options only
        if name == table:
            count["n"] += 1
            if count["n"] == (1 if depthwise else 2):
                fields = {**fields, "DilationHFactor": dil[0], "DilationWFactor": dil[1]}
        return options(fb, name, fields)
    monkeypatch.setattr(flatbuf, "_options", dilated)
    p = tmp_path / "dil.tflite"
    p.write_bytes(tflite_bytes(b.build()))
    monkeypatch.setattr(flatbuf, "_options", options)
    m = import_tflite(p)
    la = m.layers[-1]
    assert la.kernel == (2 * dil[0] + 1, 2 * dil[1] + 1)
    assert la.op == (Op.DWCONV if depthwise else Op.CONV)
    xs = tm.inputs(m, 3, seed=4)
    want = tm.tflm(m, p, xs)
    fused = plan.from_json(m, search_analytic(m, "stm32f746").to_plan_json())
    for x, w_ in zip(xs, want):
        np.testing.assert_array_equal(refmodel.run(m, x).reshape(-1), w_)
        yv, _ = host.run_plan(m, fused, x)
        np.testing.assert_array_equal(yv.reshape(-1), w_)
