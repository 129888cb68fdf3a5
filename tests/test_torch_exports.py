"""PyTorch exports as users bring them: tests/data/onnx/*.onnx, written by
scripts/make_onnx_fixtures.py with torch.onnx's TorchScript (_ts) and dynamo (_dynamo) exporters
from torchvision's MobileNetV3-small, SqueezeNet 1.1 and DenseNet (shrunk; DenseNet behind an
input normalisation), a LeNet with nn.ZeroPad2d, PyTorch pooling (ceil_mode,
count_include_pad) and grouped convolutions.

Each fixture imports; its calibrated int8 reference tracks onnxruntime's float output within a
few LSB; the layer-by-layer and analytic min-RAM plans run through the generated C on the host
bit-exact with the reference. Then what the importer refuses, in one line naming the node:
QOperator models, Pads it cannot fold, average pools whose divisor it cannot express.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from msfsim import UnsupportedModel, host, plan, refmodel
from msfsim.importers.onnx import import_model
from msfsim.importers.onnx.handlers import HANDLERS
from msfsim.importers.onnx.walk import Importer
from msfsim.ir import Op
from msfsim.search.api import search_analytic

ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "onnx"
NAMES = ["mbv3_small", "squeezenet11", "lenet_pad", "pools", "grouped", "densenet",
         "shufflenet_v2", "conv1d_kws", "conv1d_flat", "conv1d_tcn", "mlp_autoencoder"]
FILES = [f"{n}_{e}" for n in NAMES for e in ("ts", "dynamo")]
# largest difference to onnxruntime's float output, in output LSB (calibrated on random inputs,
# deep nets accumulate rounding)
TOLERANCE = {"mbv3_small": 12, "squeezenet11": 12, "lenet_pad": 5, "pools": 5, "grouped": 5,
             "densenet": 5, "shufflenet_v2": 5, "conv1d_kws": 5, "conv1d_flat": 5,
             "conv1d_tcn": 5, "mlp_autoencoder": 5}
OPS = {
    "mbv3_small": {Op.CONV, Op.DWCONV, Op.LUT, Op.GAP, Op.MUL, Op.ADD, Op.DENSE},
    "squeezenet11": {Op.CONV, Op.MAXPOOL, Op.CONCAT, Op.GAP},
    "lenet_pad": {Op.CONV, Op.MAXPOOL, Op.DENSE},
    "pools": {Op.CONV, Op.AVGPOOL, Op.MAXPOOL},
    "grouped": {Op.CONV, Op.DWCONV, Op.GAP, Op.DENSE},
    # the input normalisation and the BatchNorms after concatenations: 1x1 depthwise convs
    "densenet": {Op.CONV, Op.DWCONV, Op.CONCAT, Op.MAXPOOL, Op.AVGPOOL, Op.GAP, Op.DENSE},
    # channel splits and shuffles: one-hot 1x1 convs
    "shufflenet_v2": {Op.CONV, Op.DWCONV, Op.CONCAT, Op.MAXPOOL, Op.GAP, Op.DENSE},
    # Conv1d nets: N x C x L read as N x C x 1 x L (the (C, 1) scale folds into the dw conv)
    "conv1d_kws": {Op.CONV, Op.DWCONV, Op.MAXPOOL, Op.ADD, Op.GAP, Op.DENSE},
    "conv1d_flat": {Op.CONV, Op.AVGPOOL, Op.DENSE},
    "conv1d_tcn": {Op.CONV, Op.ADD, Op.GAP, Op.LUT, Op.MUL, Op.MAXPOOL, Op.CONCAT, Op.DENSE},
    # an N x F input: a flat (1, F) vector through dense layers
    "mlp_autoencoder": {Op.DENSE},
}


def fixture(name: str) -> Path:
    return DATA / f"{name}.onnx"


def ort_float(path, x_nchw: np.ndarray) -> np.ndarray:
    """onnxruntime's float output; a Conv1d model (input N x C x L) gets the N x C x 1 x L
    image as its sequence."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rank = len(sess.get_inputs()[0].shape)
    if rank == 3:
        x_nchw = x_nchw[:, :, 0, :]
    elif rank == 2:  # N x F features: the 1x1 map's channels
        x_nchw = x_nchw.reshape(1, -1)
    return sess.run(None, {sess.get_inputs()[0].name: x_nchw.astype(np.float32)})[0]


def quantized_input(m, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A float NCHW input drawn uniformly from [-1, 1] on the input's int8 grid, and its int8
    NHWC bytes. Seed 0 draws the first image msfsim calibrated on (CALIBRATION_SEED), whose
    outputs its qparams cover."""
    tin = m.tensor(m.input)
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, tin.shape)
    xq = np.clip(np.round(x / tin.q.scale) + tin.q.zero_point, -128, 127).astype(np.int8)
    xf = (xq.astype(np.float64) - tin.q.zero_point) * tin.q.scale
    return xf.transpose(2, 0, 1)[None], xq


def lsb_error(m, path, seed: int = 0) -> float:
    xf, xq = quantized_input(m, seed)
    want = ort_float(path, xf)
    want = want[0].transpose(1, 2, 0) if want.ndim == 4 else want.reshape(m.tensor(m.output).shape)
    q = m.tensor(m.output).q
    got = (refmodel.run(m, xq).astype(np.float64) - q.zero_point) * q.scale
    return float(np.abs(got - want).max() / q.scale)


# ------------------------------------------------------------------ the fixtures

def test_fixtures_are_small_pytorch_exports():
    for f in FILES:
        p = onnx.load(fixture(f))
        assert p.producer_name == "pytorch" and fixture(f).stat().st_size < 1_000_000, f
    ops = lambda f: {n.op_type for n in onnx.load(fixture(f)).graph.node}  # noqa: E731
    # what the exporters really wrote: the TorchScript pad arithmetic, ceil_mode pools, SE
    # blocks, grouped convs; dynamo folds the LeNet pad into the conv and names nodes node_*
    assert {"ConstantOfShape", "Slice", "Transpose", "Reshape", "Cast", "Pad"} <= ops("lenet_pad_ts")
    assert "Pad" not in ops("lenet_pad_dynamo") and "Pad" in ops("pools_dynamo")
    assert {"HardSwish", "HardSigmoid", "Mul", "GlobalAveragePool"} <= ops("mbv3_small_ts")
    assert {"HardSwish", "HardSigmoid", "Mul", "ReduceMean"} <= ops("mbv3_small_dynamo")
    sq = onnx.load(fixture("squeezenet11_dynamo")).graph.node
    assert [a.i for n in sq if n.op_type == "MaxPool" for a in n.attribute
            if a.name == "ceil_mode"] == [1, 1, 1]
    assert all(n.name.startswith("node_") for n in sq)
    groups = {a.i for n in onnx.load(fixture("grouped_ts")).graph.node for a in n.attribute
              if a.name == "group"}
    assert {4, 16, 32} <= groups
    dn = onnx.load(fixture("densenet_ts")).graph
    assert [len(n.input) for n in dn.node if n.op_type == "Concat"].count(1) == 2
    assert {"Sub", "Div", "BatchNormalization"} <= ops("densenet_ts") & ops("densenet_dynamo")
    # torch.chunk: Split (dynamo), Slice with Shape / Gather / Add / Div arithmetic
    # (TorchScript); the shuffle's view, transpose, view
    assert {"Split", "Transpose", "Reshape"} <= ops("shufflenet_v2_dynamo")
    assert {"Slice", "Shape", "Gather", "Div", "Transpose", "Reshape"} <= ops("shufflenet_v2_ts")


@pytest.mark.parametrize("name", NAMES)
def test_fixture_imports_and_tracks_onnxruntime(name):
    ts, dyn = (import_model(fixture(f"{name}_{e}")) for e in ("ts", "dynamo"))
    assert [la.op for la in ts.layers] == [la.op for la in dyn.layers]
    assert {la.op for la in ts.layers} == OPS[name]
    for m, e in ((ts, "ts"), (dyn, "dynamo")):
        err = lsb_error(m, fixture(f"{name}_{e}"))
        assert err <= TOLERANCE[name], f"{name}_{e}: {err:.1f} LSB from onnxruntime"


def test_squeezenet_ceil_pools_and_concat_copies():
    """Three MaxPool ceil_mode=1 as extra end padding (34 -> 16 -> 8 -> 4 -> 2, floor would
    give 7, 3, 1); each Fire Concat copies bytes: its inputs, read by it alone, carry its
    qparams (TensorFlow's convention, as TFLite's CONCATENATION requires)."""
    m = import_model(fixture("squeezenet11_ts"))
    pools = [la for la in m.layers if la.op == Op.MAXPOOL]
    assert [m.tensor(la.output).shape[0] for la in pools] == [8, 4, 2]
    assert [la.pad for la in pools] == [(0, 0, 1, 1)] * 3
    concats = [la for la in m.layers if la.op == Op.CONCAT]
    assert len(concats) == 4
    for la in concats:
        assert list(la.multiplier) == [0, 0]
        assert all(m.tensor(i).q == m.tensor(la.output).q for i in la.inputs)


def test_pad_and_pool_geometry():
    m = import_model(fixture("lenet_pad_ts"))
    assert m.layers[0].pad == (2, 1, 1, 2)  # ZeroPad2d((1, 2, 2, 1)): left, right, top, bottom
    assert m.layers[0].op == Op.CONV
    p = import_model(fixture("pools_ts"))
    avg1, mx, avg2, avg3 = [la for la in p.layers if la.op in (Op.AVGPOOL, Op.MAXPOOL)]
    assert avg1.pad == (1, 0, 0, 1) and avg1.multiplier is not None  # Pad folded, kh*kw
    assert mx.pad == (1, 1, 1, 2)                                     # ceil on W (12)
    assert avg2.pad == (0, 0, 1, 1) and avg2.multiplier is None      # ceil: taps inside
    assert avg3.multiplier is None                                    # count_include_pad=0
    for la in (avg2, avg3):
        assert p.tensor(la.output).q == p.tensor(la.inputs[0]).q


def test_grouped_convs_are_block_diagonal():
    m = import_model(fixture("grouped_ts"))
    convs = [la for la in m.layers if la.op == Op.CONV]
    g4, mult2 = convs[1], convs[2]
    assert g4.weight.shape == (16, 3, 3, 8)
    assert not np.any(g4.weight[:4, :, :, 2:]) and not np.any(g4.weight[12:, :, :, :6])
    assert mult2.weight.shape == (32, 3, 3, 16)
    for o in range(32):  # channel multiplier 2: output o reads input o // 2 only
        others = np.delete(mult2.weight[o], o // 2, axis=2)
        assert not np.any(others)
    assert [la.op for la in m.layers].count(Op.DWCONV) == 1


# ------------------------------------------------------------------ generated C

@pytest.mark.parametrize("name,vanilla", [("squeezenet11_ts", True), ("pools_dynamo", True),
                                          ("grouped_ts", False), ("lenet_pad_ts", False),
                                          ("mbv3_small_dynamo", False), ("densenet_ts", False),
                                          ("shufflenet_v2_dynamo", False),
                                          ("conv1d_kws_dynamo", True), ("conv1d_flat_ts", False),
                                          ("conv1d_tcn_ts", False)])
def test_plans_bit_exact_with_reference(name, vanilla):
    """The analytic min-RAM plan through the generated C on the host, and layer by layer for
    the new pooling geometries and the Concat copies (each build compiles every kernel: the
    others' ops are run layer by layer by tests/test_zoo_plans.py and test_new_ops.py)."""
    m = import_model(fixture(name))
    x = quantized_input(m, 7)[1]
    want = refmodel.run(m, x)
    fused = plan.from_json(m, search_analytic(m, "stm32f746").to_plan_json())
    runs = [("min-ram", fused)] + ([("vanilla", plan.vanilla(m))] if vanilla else [])
    assert any(b.first < b.last for b in fused), "nothing fused"
    for label, blocks in runs:
        y, _ = host.run_plan(m, blocks, x)
        np.testing.assert_array_equal(y, want, err_msg=f"{name} {label}")


def test_conv1d_sequences_are_maps_of_height_one():
    """torch's Conv1d nets: the N x C x L input is msfsim's 1 x L x C map, each Conv1d, pool
    and pad has height 1 (the dilated kernel 3 spans 5), the dynamo export's
    Unsqueeze / ReduceMean / Squeeze of adaptive_avg_pool1d is the mean over the map, and the
    Flatten before a Linear keeps torch's channels-first order."""
    for e in ("ts", "dynamo"):
        m = import_model(fixture(f"conv1d_kws_{e}"))
        assert m.tensor(m.input).shape == (1, 49, 10)
        convs = [la for la in m.layers if la.op in (Op.CONV, Op.DWCONV)]
        assert [(la.kernel, la.pad) for la in convs] == [
            ((1, 3), (0, 1, 0, 1)), ((1, 5), (0, 2, 0, 2)), ((1, 3), (0, 1, 0, 1))]
        pool = next(la for la in m.layers if la.op == Op.MAXPOOL)
        assert pool.kernel == (1, 2) and pool.stride == (1, 2)
        f = import_model(fixture(f"conv1d_flat_{e}"))
        assert f.tensor(f.input).shape == (1, 64, 6)
        assert [la.op for la in f.layers] == [Op.CONV, Op.AVGPOOL, Op.DENSE]
    ops = {n.op_type for n in onnx.load(fixture("conv1d_kws_dynamo")).graph.node}
    assert {"Unsqueeze", "ReduceMean", "Squeeze"} <= ops
    # causal padding: TorchScript computes F.pad's pads from constants (Concat, Reshape,
    # Transpose, Cast), evaluated; dynamo folds them into the conv
    assert "Pad" in {n.op_type for n in onnx.load(fixture("conv1d_tcn_ts")).graph.node}
    for e in ("ts", "dynamo"):
        t = import_model(fixture(f"conv1d_tcn_{e}"))
        convs = [la for la in t.layers if la.op == Op.CONV][:3]
        assert [(la.kernel, la.pad) for la in convs] == [
            ((1, 3), (0, 2, 0, 0)), ((1, 5), (0, 4, 0, 0)), ((1, 9), (0, 8, 0, 0))], e


def test_feature_vector_input_runs_through_dense_layers():
    """An N x F input (the MLP autoencoder) is a flat (1, F) vector: its Linear / BatchNorm1d
    / ReLU layers are dense layers, the plan's generated C bit-exact with the reference."""
    for e in ("ts", "dynamo"):
        m = import_model(fixture(f"mlp_autoencoder_{e}"))
        assert m.tensor(m.input).shape == (1, 1, 64)
        assert [la.op for la in m.layers] == [Op.DENSE] * 6
        x = quantized_input(m, 3)[1]
        y, _ = host.run_plan(m, plan.vanilla(m), x)
        np.testing.assert_array_equal(y, refmodel.run(m, x), err_msg=e)


@pytest.mark.parametrize("axis,lifted", [(0, 0), (1, 1), (2, 2), (3, 4), (-1, 2), (-2, 1),
                                         (-3, 0)])
def test_flatten_of_a_sequence_keeps_its_split(axis, lifted):
    """Flatten(axis) of N x C x L splits it as Flatten(lifted) splits N x C x 1 x L (a negative
    axis counts from rank 3)."""
    from msfsim.importers.onnx import sequence
    mk = helper.make_node
    g = helper.make_graph(
        [mk("Conv", ["x", "w"], ["c"], kernel_shape=[3], name="conv"),
         mk("Flatten", ["c"], ["y"], axis=axis, name="flat")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones((4, 3, 3), np.float32), "w")])
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    out = sequence.lift(proto)
    flat = next(n for n in out.graph.node if n.op_type == "Flatten")
    assert helper.get_attribute_value(flat.attribute[0]) == lifted
    want = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = ort.InferenceSession(out.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(1, 3, 16)).astype(np.float32)
    np.testing.assert_allclose(got.run(None, {"x": x[:, :, None]})[0],
                               want.run(None, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_what_a_conv1d_model_may_not_do():
    """A sequence transposed (N x L x C) or unsqueezed elsewhere than its height: one line
    naming the node."""
    from msfsim import UnsupportedModel
    mk = helper.make_node
    w = numpy_helper.from_array(np.ones((4, 3, 3), np.float32), "w")
    for node, msg in ((mk("Transpose", ["c"], ["y"], perm=[0, 2, 1], name="t"),
                       r"node 't' \(Transpose.*Transpose of a sequence is not supported"),
                      (mk("Unsqueeze", ["c", "ax"], ["y"], name="u"),
                       r"node 'u' \(Unsqueeze.*only of its height")):
        g = helper.make_graph(
            [mk("Conv", ["x", "w"], ["c"], kernel_shape=[3], name="conv"), node], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [w, numpy_helper.from_array(np.array([-1], np.int64), "ax")])
        proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        with pytest.raises(UnsupportedModel, match=msg) as e:
            import_model(proto)
        assert "\n" not in str(e.value)
    # pads computed from a ConstantOfShape of 10^9 values: not evaluated (bounded), refused
    g = helper.make_graph(
        [mk("ConstantOfShape", ["big"], ["z"],
            value=helper.make_tensor("v", TensorProto.INT64, [1], [0])),
         mk("Slice", ["z", "s", "e"], ["pads"]), mk("Pad", ["x", "pads"], ["p"], name="pad"),
         mk("Conv", ["p", "w"], ["y"], kernel_shape=[3], name="conv")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w, numpy_helper.from_array(np.array([10 ** 9], np.int64), "big"),
         numpy_helper.from_array(np.array([0], np.int64), "s"),
         numpy_helper.from_array(np.array([6], np.int64), "e")])
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(UnsupportedModel, match=r"node 'pad' \(Pad.*needs 6 constant pads"):
        import_model(proto)


def test_shufflenet_selections_compose_and_fold():
    """ShuffleNetV2's shuffle then split compose into one selection each, and a part read by a
    1x1 conv alone folds into its weights: of the 12 shuffles and split parts that are no
    conv of the network, 5 remain one-hot 1x1 convs (the parts going straight into a concat,
    and the shuffles read by both branches of a downsampling unit)."""
    for e in ("ts", "dynamo"):
        m = import_model(fixture(f"shufflenet_v2_{e}"))
        one_hot = [la for la in m.layers if la.op == Op.CONV and la.kernel == (1, 1) and
                   np.all(np.abs(la.weight).astype(int).sum(axis=(1, 2, 3)) ==
                          np.abs(la.weight).max(axis=(1, 2, 3)))
                   and np.count_nonzero(la.weight) == la.weight.shape[0]]
        assert len(m.layers) == 40 and len(one_hot) == 5, e


def test_densenet_batchnorms_and_normalisation_are_depthwise_1x1():
    """The input normalisation (Sub, then Div folded into it) and each BatchNorm reading a
    concatenation become one 1x1 depthwise conv each; the stem's BatchNorm folds into its conv;
    a one-input Concat is its input."""
    for e in ("ts", "dynamo"):
        m = import_model(fixture(f"densenet_{e}"))
        dw = [la for la in m.layers if la.op == Op.DWCONV]
        assert len(dw) == 7 and all(la.kernel == (1, 1) for la in dw)
        assert m.layers[0].op == Op.DWCONV and m.layers[0].inputs == (m.input,)
        assert sum(la.op == Op.CONCAT for la in m.layers) == 6
        # a BN -> ReLU pair is one layer (the ReLU is its clamp: no table)
        assert len(m.layers) == 27 and not any(la.op == Op.LUT for la in m.layers)


# ------------------------------------------------------------------ small graphs

def _model(nodes, inits, shape=(1, 3, 8, 8), opset=17, out_dims=None):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_dims)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _w(name, shape, seed=0):
    return numpy_helper.from_array(np.random.default_rng(seed).normal(0, .3, shape).astype(np.float32), name)


def _pad_model(pads, then, mode="constant", value=0.0, out_name="out"):
    inits = [numpy_helper.from_array(np.array(pads, np.int64), "pads"),
             numpy_helper.from_array(np.array(value, np.float32), "v"), _w("w", (4, 3, 3, 3))]
    nodes = [helper.make_node("Pad", ["input", "pads", "v"], ["p" if then else out_name],
                              mode=mode, name="pad")]
    if then == "Conv":
        nodes.append(helper.make_node("Conv", ["p", "w"], ["out"], name="conv"))
    elif then:
        extra = dict(kernel_shape=[2, 2]) if "Pool" in then else {}
        nodes.append(helper.make_node(then, ["p"], ["out"], name="reader", **extra))
    return _model(nodes, inits)


@pytest.mark.parametrize("then,mode,value,pads,expect", [
    ("MaxPool", "constant", 0.0, [0, 0, 1, 1, 0, 0, 1, 1],
     ["node 'pad' (Pad, output 'p')", "node 'reader' (MaxPool, output 'out')",
      "a padded zero can be the maximum"]),
    ("Relu", "constant", 0.0, [0, 0, 1, 1, 0, 0, 1, 1], ["node 'pad' (Pad, output 'p')", "Relu"]),
    ("Conv", "reflect", 0.0, [0, 0, 1, 1, 0, 0, 1, 1], ["node 'pad' (Pad, output 'p')", "'reflect'"]),
    ("Conv", "constant", 0.5, [0, 0, 1, 1, 0, 0, 1, 1], ["node 'pad'", "padding with 0.5"]),
    ("Conv", "constant", 0.0, [0, 1, 0, 0, 0, 0, 0, 0], ["node 'pad'", "batch or channel axis"]),
    ("Conv", "constant", 0.0, [0, 0, -1, 0, 0, 0, 0, 0], ["node 'pad'", "negative pads"]),
    (None, "constant", 0.0, [0, 0, 1, 1, 0, 0, 1, 1], ["node 'pad' (Pad, output 'out')", "graph output"]),
])
def test_unfoldable_pad_is_refused(then, mode, value, pads, expect):
    with pytest.raises(UnsupportedModel) as e:
        import_model(_pad_model(pads, then, mode, value), name="g")
    msg = str(e.value)
    assert "\n" not in msg and all(s in msg for s in expect), msg


def test_zero_pad_folds_into_conv_exactly():
    m = import_model(_pad_model([0, 0, 1, 2, 0, 0, 3, 0], "Conv"), name="g")
    [conv] = m.layers
    assert conv.pad == (1, 2, 3, 0) and m.tensor(conv.output).shape == (10, 8, 4)


def _pool(op, n, k, s, pads, ceil, cip=1, pad_first=None):
    attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=pads, ceil_mode=ceil)
    if op == "AveragePool":
        attrs["count_include_pad"] = cip
    nodes, inits, src = [], [], "input"
    if pad_first:
        inits.append(numpy_helper.from_array(np.array(pad_first, np.int64), "pp"))
        nodes.append(helper.make_node("Pad", ["input", "pp"], ["p"], name="pad"))
        src = "p"
    nodes.append(helper.make_node(op, [src], ["out"], name="pool", **attrs))
    return _model(nodes, inits, shape=(1, 2, n, n))


@pytest.mark.parametrize("op,n,k,s,pads,cip", [
    ("MaxPool", 6, 3, 2, [0, 0, 0, 0], 1),    # a cut window at the end
    ("MaxPool", 7, 3, 2, [1, 1, 1, 1], 1),    # ceil no different from floor
    ("MaxPool", 5, 2, 2, [1, 1, 1, 1], 1),    # a last window that would start in the padding
    ("MaxPool", 10, 1, 4, [0, 0, 0, 0], 1),   # ... (drop rule with kernel < stride)
    ("AveragePool", 6, 3, 2, [0, 0, 0, 0], 1),  # cut windows: divisor = taps inside
    ("AveragePool", 8, 3, 2, [1, 1, 1, 1], 0),  # count_include_pad=0: taps inside
    ("AveragePool", 7, 3, 2, [1, 1, 1, 1], 1),  # no cut window: whole window
])
def test_ceil_mode_pools_match_onnxruntime(tmp_path, op, n, k, s, pads, cip):
    """Output size and values against onnxruntime: a max pool is exact (int8 max of the
    quantised input), an average pool within 1 LSB (rounding of the division)."""
    proto = _pool(op, n, k, s, pads, 1, cip)
    m = import_model(proto, name="g")
    path = tmp_path / "p.onnx"
    onnx.save(proto, path)
    xf, xq = quantized_input(m, 0)
    want = ort_float(path, xf)[0].transpose(1, 2, 0)
    q = m.tensor(m.output).q
    got = (refmodel.run(m, xq).astype(np.float64) - q.zero_point) * q.scale
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= (1e-4 if op == "MaxPool" else 1.01) * q.scale


@pytest.mark.parametrize("n,pads,cip,pad_first,why", [
    (6, [1, 1, 1, 1], 1, None, "ceil_mode=1 windows reaching past its pads with count_include_pad=1"),
    (6, [0, 0, 0, 0], 1, [0, 0, 1, 1, 0, 0, 1, 1], "a Pad before it and ceil_mode=1 windows"),
])
def test_inexpressible_average_divisor_is_refused(n, pads, cip, pad_first, why):
    with pytest.raises(UnsupportedModel) as e:
        import_model(_pool("AveragePool", n, 3, 2, pads, 1, cip, pad_first), name="g")
    msg = str(e.value)
    assert "node 'pool' (AveragePool, output 'out')" in msg and why in msg, msg
    assert "divides by the whole window or by the taps inside the input" in msg


def test_pad_with_count_include_pad_0_is_refused():
    proto = _pool("AveragePool", 8, 3, 1, [1, 1, 1, 1], 0, 0, [0, 0, 1, 1, 0, 0, 1, 1])
    with pytest.raises(UnsupportedModel, match="a Pad before it and its own pads with "
                                               "count_include_pad=0"):
        import_model(proto, name="g")


# ------------------------------------------------------------------ constant folding, per spec

@pytest.mark.parametrize("op,inputs,attrs", [
    ("Slice", [np.arange(8).reshape(4, 2), [-1], [-2**63 + 1], [0], [-1]], {}),  # torch's reversal
    ("Slice", [np.arange(24).reshape(2, 3, 4), [1, -3, 10], [-1, 100, 0], [2, 1, 2], [1, 1, -2]], {}),
    ("Slice", [np.arange(10), [2], [7]], {}),
    ("Transpose", [np.arange(6).reshape(1, 2, 3)], {"perm": [2, 0, 1]}),
    ("Transpose", [np.arange(6).reshape(2, 3)], {}),
    ("Reshape", [np.arange(8), [0, -1]], {}),  # 0 copies the dimension (allowzero=0)
    ("Reshape", [np.arange(8).reshape(2, 4), [-1, 2]], {}),
    ("ConstantOfShape", [[2, 3]], {"value": numpy_helper.from_array(np.array([7], np.int64))}),
    ("ConstantOfShape", [[4]], {}),
])
def test_constant_folds_follow_the_onnx_reference(op, inputs, attrs):
    from onnx.reference import ReferenceEvaluator
    arrays = [np.asarray(v, np.int64) for v in inputs]
    names = [f"i{k}" for k in range(len(arrays))]
    node = helper.make_node(op, names, ["y"], name="n", **attrs)
    g = helper.make_graph([node], "c", [], [helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)],
                          [numpy_helper.from_array(a, n) for a, n in zip(arrays, names)])
    want = ReferenceEvaluator(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])).run(None, {})[0]
    im = Importer(onnx.ModelProto(), "c", None)
    im.values.update(zip(names, arrays))
    HANDLERS[op](im, node)
    got = im.values["y"]
    assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)


# ------------------------------------------------------------------ QOperator, node names

def _qoperator_model(tmp_path) -> Path:
    q = pytest.importorskip("onnxruntime.quantization")
    inits = [_w("w1", (8, 3, 3, 3)), _w("w2", (8, 8, 1, 1), 1), _w("fc", (8, 4), 2)]
    nodes = [helper.make_node("Conv", ["input", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
             helper.make_node("Add", ["c2", "r1"], ["a"], name="add"),
             helper.make_node("GlobalAveragePool", ["a"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "fc"], ["out"], name="fc")]
    src, dst = tmp_path / "f.onnx", tmp_path / "qop.onnx"
    onnx.save(_model(nodes, inits, out_dims=[1, 4], opset=13), src)

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.it = iter([{"input": rng.uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)}
                            for _ in range(3)])

        def get_next(self):
            return next(self.it, None)

    q.quantize_static(str(src), str(dst), Reader(), quant_format=q.QuantFormat.QOperator,
                      activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8)
    return dst


def test_qoperator_model_is_refused_with_the_qdq_hint(tmp_path):
    path = _qoperator_model(tmp_path)
    assert "QLinearConv" in {n.op_type for n in onnx.load(path).graph.node}
    with pytest.raises(UnsupportedModel) as e:
        import_model(path)
    msg = str(e.value)
    assert "(QLinearConv, output " in msg and "QOperator" in msg and "\n" not in msg
    assert "quant_format=QuantFormat.QDQ" in msg and "float model" in msg
    r = subprocess.run([sys.executable, "-m", "msfsim", "info", str(path)], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and "QLinearConv" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_errors_name_dynamo_node_and_output():
    """Dynamo names nodes node_*; an unnamed node is named by its output tensor."""
    p = onnx.load(fixture("grouped_dynamo"))
    conv = next(n for n in p.graph.node if n.op_type == "Conv" and n.input[0] != "input")
    conv.attribute.append(helper.make_attribute("dilations", [0, 2]))  # not a dilation
    with pytest.raises(UnsupportedModel, match=rf"node '{conv.name}' \(Conv, output "
                                               rf"'{conv.output[0]}'\): dilation"):
        import_model(p, name="g")
    conv.name = ""
    with pytest.raises(UnsupportedModel, match=rf"node <unnamed> \(Conv, output "
                                               rf"'{conv.output[0]}'\): dilation"):
        import_model(p, name="g")


def test_qdq_quantised_pad_export_matches_onnxruntime(tmp_path):
    """The TorchScript LeNet quantised to QDQ by onnxruntime (a QDQ pair on the Pad's output,
    with its input's qparams): the Pad still folds into the conv, and every layer agrees with
    onnxruntime's int8 intermediates within 1 LSB (as tests/test_ort_reference.py)."""
    q = pytest.importorskip("onnxruntime.quantization")
    from test_ort_reference import ort_intermediates
    dst = tmp_path / "qdq.onnx"

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.it = iter([{"input": rng.uniform(-1, 1, (1, 1, 28, 28)).astype(np.float32)}
                            for _ in range(3)])

        def get_next(self):
            return next(self.it, None)

    q.quantize_static(str(fixture("lenet_pad_ts")), str(dst), Reader(),
                      quant_format=q.QuantFormat.QDQ, per_channel=True,
                      activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8)
    proto = onnx.load(dst)
    assert "Pad" in {n.op_type for n in proto.graph.node}
    safe = lambda n: n.replace("/", "_").replace(".", "_") if n else n  # noqa: E731
    for n in proto.graph.node:  # the IR's names, so that ort_intermediates finds each tensor
        n.input[:] = [safe(i) for i in n.input]
        n.output[:] = [safe(o) for o in n.output]
    for t in [*proto.graph.initializer, *proto.graph.input, *proto.graph.output]:
        t.name = safe(t.name)
    m = import_model(proto, name="lenet_qdq")
    assert m.layers[0].pad == (2, 1, 1, 2)
    vals = ort_intermediates(proto, m, quantized_input(m, 0)[1])
    for layer in m.layers:
        d = np.abs(refmodel.run_layer(m, layer, vals).astype(int) - vals[layer.output].astype(int))
        assert d.max() <= 1, layer.name


def test_concat_input_read_elsewhere_keeps_its_qparams():
    """a feeds both the Concat and conv b: it keeps its own range and is requantised by the
    Concat; b, read by the Concat alone, takes the Concat's qparams (a byte copy)."""
    nodes = [helper.make_node("Conv", ["input", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv_a"),
             helper.make_node("Relu", ["c1"], ["a"], name="relu_a"),
             helper.make_node("Conv", ["a", "w2"], ["c2"], pads=[1, 1, 1, 1], name="conv_b"),
             helper.make_node("Relu", ["c2"], ["b"], name="relu_b"),
             helper.make_node("Concat", ["a", "b"], ["out"], axis=1, name="cat")]
    w2 = numpy_helper.from_array(3 * numpy_helper.to_array(_w("w2", (4, 4, 3, 3), 1)), "w2")
    m = import_model(_model(nodes, [_w("w1", (4, 3, 3, 3)), w2]), name="g")  # b's range is wider
    cat = m.layers[-1]
    assert cat.op == Op.CONCAT and cat.multiplier[0] != 0 and cat.multiplier[1] == 0
    assert m.tensor(cat.inputs[1]).q == m.tensor(cat.output).q != m.tensor(cat.inputs[0]).q


# ------------------------------------------------------------------ per-channel affine maps

def _affine_net(op, const_shape, first=False, after="pool", hw=8, seed=3):
    """conv -> [relu -> maxpool] -> `op` with a constant of `const_shape` -> conv, on a
    3 x hw x hw input."""
    rng = np.random.default_rng(seed)
    v = (rng.uniform(0.5, 2.0, const_shape) * np.where(rng.random(const_shape) < 0.3, -1, 1))
    inits = [_w("w1", (6, 3, 3, 3)), _w("w2", (4, 6, 1, 1), 1),
             numpy_helper.from_array(v.astype(np.float32), "k")]
    nodes = [helper.make_node("Conv", ["input", "w1"], ["c1"], pads=[1, 1, 1, 1], name="c1")]
    x, out_hw = "c1", hw
    if after == "pool":
        nodes += [helper.make_node("Relu", ["c1"], ["r"], name="relu"),
                  helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2],
                                   name="pool")]
        x, out_hw = "p", hw // 2
    nodes += [helper.make_node(op, ["k", x] if first else [x, "k"], ["a"], name="affine"),
              helper.make_node("Conv", ["a", "w2"], ["out"], name="c2")]
    return _model(nodes, inits, shape=(1, 3, hw, hw), out_dims=[1, 4, out_hw, out_hw])


@pytest.mark.parametrize("op,shape,first,after,dw", [
    ("Mul", (1, 6, 1, 1), False, "pool", True),     # after a pool: a 1x1 depthwise conv
    ("Mul", (6, 1, 1), True, "conv", False),        # right after the conv: folded into it
    ("Div", (1, 6, 1, 1), False, "pool", True),
    ("Div", (6, 1, 1), False, "conv", False),
    ("Add", (1, 6, 1, 1), False, "pool", True),
    ("Sub", (1, 6, 1, 1), True, "pool", True),      # c - x: weight -1
    ("Sub", (1, 6, 1, 1), True, "conv", False),     # c - conv(x): the conv's weights negated
    ("Mul", (1, 1, 1, 1), False, "conv", False),    # one number: a table, as before
])
def test_per_channel_affine_tracks_onnxruntime(tmp_path, op, shape, first, after, dw):
    """Mul / Div / Add / Sub by a (1, C, 1, 1) constant: folded into the conv before it, or a
    1x1 depthwise conv; the calibrated int8 reference within 3 LSB of onnxruntime's float
    output (a per-channel scale is exact in int8: one weight per channel), and the generated C of the analytic min-RAM plan bit-exact with it."""
    proto = _affine_net(op, shape, first, after)
    path = tmp_path / "affine.onnx"
    onnx.save(proto, path)
    m = import_model(path)
    ops = [la.op for la in m.layers]
    assert (Op.DWCONV in ops) == dw
    if shape == (1, 1, 1, 1):
        assert Op.LUT in ops
    elif not dw:
        assert ops == [Op.CONV, Op.CONV]
    assert lsb_error(m, path) <= 3  # on the calibration image, whose ranges the qparams cover
    x = quantized_input(m, 7)[1]
    y, _ = host.run_plan(m, plan.from_json(m, search_analytic(m, "stm32f746").to_plan_json()), x)
    np.testing.assert_array_equal(y, refmodel.run(m, x))


@pytest.mark.parametrize("shape,msg", [
    ((6,), r"constant operand 'k' of shape \[6\] does not broadcast along the channels only"),
    ((1, 6, 2, 1), "does not broadcast along the channels only"),
    ((1, 5, 1, 1), r"C = 6"),
])
def test_constant_varying_along_h_or_w_is_refused(shape, msg):
    """ONNX broadcasts a (C,) constant along W, not C: refused, as any constant that would vary
    along H or W, naming the node."""
    with pytest.raises(UnsupportedModel, match=r"node 'affine' \(Mul, output 'a'\): .*" + msg):
        import_model(_affine_net("Mul", shape), name="g")


def test_add_of_a_w_shaped_constant_is_not_a_bias():
    """An Add of a (6,) constant after a conv of 6 channels on a 6-wide map broadcasts along W
    (onnxruntime runs it so): refused, never folded into the bias as if per channel."""
    proto = _affine_net("Add", (6,), after="conv", hw=6)
    ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    with pytest.raises(UnsupportedModel, match="does not broadcast along the channels only"):
        import_model(proto, name="g")


def test_batchnorm_after_relu_and_per_channel_zero_division():
    """conv -> relu -> BatchNormalization: the BN cannot fold (the ReLU is between), so it is a
    1x1 depthwise conv tracking onnxruntime; a Div by a per-channel constant holding 0 is
    refused."""
    rng = np.random.default_rng(0)
    bn = [numpy_helper.from_array(v.astype(np.float32), n) for n, v in (
        ("s", rng.uniform(0.5, 1.5, 6)), ("b", rng.normal(0, .2, 6)),
        ("mu", rng.normal(0, .2, 6)), ("var", rng.uniform(0.5, 1.5, 6)))]
    nodes = [helper.make_node("Conv", ["input", "w1"], ["c1"], pads=[1, 1, 1, 1], name="c1"),
             helper.make_node("Relu", ["c1"], ["r"], name="relu"),
             helper.make_node("BatchNormalization", ["r", "s", "b", "mu", "var"], ["out"],
                              name="bn")]
    m = import_model(_model(nodes, [_w("w1", (6, 3, 3, 3))] + bn), name="g")
    assert [la.op for la in m.layers] == [Op.CONV, Op.DWCONV]
    zero = _affine_net("Div", (1, 6, 1, 1))
    k = numpy_helper.to_array(zero.graph.initializer[2]).copy()
    k[0, 2] = 0.0
    zero.graph.initializer[2].CopyFrom(numpy_helper.from_array(k, "k"))
    with pytest.raises(UnsupportedModel, match=r"node 'affine' \(Div, output 'a'\): division by "
                                               r"zero"):
        import_model(zero, name="g")


@pytest.mark.parametrize("group,dil,pads", [(1, [2, 2], [2, 2, 2, 2]), (6, [2, 2], [2, 2, 2, 2]),
                                            (1, [3, 1], [3, 1, 3, 1]), (6, [2, 3], [0, 0, 0, 0])])
def test_dilated_conv_is_a_zero_inserted_kernel(tmp_path, group, dil, pads):
    """A dilated conv (torch's dilation=...; depthwise too) becomes the larger kernel with zeros
    between the taps: onnxruntime's float output within 3 LSB, the generated C of the analytic
    min-RAM plan bit-exact with the reference."""
    w1 = _w("w1", (6, 3, 3, 3))
    w2 = _w("w2", (6, 6 // group, 3, 3), 1)
    nodes = [helper.make_node("Conv", ["input", "w1"], ["c1"], pads=[1, 1, 1, 1], name="c1"),
             helper.make_node("Relu", ["c1"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["out"], dilations=dil, pads=pads,
                              group=group, name="dil")]
    oh = 12 + pads[0] + pads[2] - ((3 - 1) * dil[0] + 1) + 1
    ow = 12 + pads[1] + pads[3] - ((3 - 1) * dil[1] + 1) + 1
    path = tmp_path / "dil.onnx"
    onnx.save(_model(nodes, [w1, w2], shape=(1, 3, 12, 12), out_dims=[1, 6, oh, ow]), path)
    m = import_model(path)
    la = m.layers[-1]
    assert la.op == (Op.DWCONV if group == 6 else Op.CONV)
    assert la.kernel == (2 * dil[0] + 1, 2 * dil[1] + 1) and m.out_shape(la)[:2] == (oh, ow)
    assert lsb_error(m, path) <= 3
    x = quantized_input(m, 7)[1]
    y, _ = host.run_plan(m, plan.from_json(m, search_analytic(m, "stm32f746").to_plan_json()), x)
    np.testing.assert_array_equal(y, refmodel.run(m, x))


# ------------------------------------------------------------------ channel slices, splits, shuffles

def _channels_net(nodes, c_out, inits=(), opset=18):
    """conv (3 -> 8 channels) -> `nodes` reading 'c1' -> out (1 x c_out x 6 x 6)."""
    head = [helper.make_node("Conv", ["input", "w1"], ["c1"], pads=[1, 1, 1, 1], name="c1")]
    return _model(head + nodes, [_w("w1", (8, 3, 3, 3))] + list(inits), shape=(1, 3, 6, 6),
                  opset=opset, out_dims=[1, c_out, 6, 6])


def _i64(name, v):
    return numpy_helper.from_array(np.array(v, np.int64), name)


@pytest.mark.parametrize("case,c_out", [
    ("slice", 3), ("slice_step", 3), ("slice_all", 8), ("split_input", 6), ("split_equal", 3),
    ("split_attr", 6), ("shuffle", 8)])
def test_channel_selections_track_onnxruntime(tmp_path, case, c_out):
    """Slice (start, end, step; all channels: the tensor itself), Split (sizes as input, as
    attribute (opset 11), equal parts) and a channel shuffle, each then concatenated or
    convolved: within 2 LSB of onnxruntime, the analytic plan's C bit-exact."""
    mk = helper.make_node
    opset = 11 if case == "split_attr" else 18
    inits = [_w("w2", (3, 3, 1, 1), 2)]
    if case.startswith("slice"):
        start, end, step = {"slice": (1, 4, 1), "slice_step": (7, -9, -3),
                            "slice_all": (0, 100, 1)}[case]
        inits += [_i64("s", [start]), _i64("e", [end]), _i64("a", [1]), _i64("st", [step])]
        nodes = [mk("Slice", ["c1", "s", "e", "a", "st"], ["out"], name="sl")]
    elif case.startswith("split"):
        outs = ["p0", "p1", "p2"] if case == "split_equal" else ["p0", "p1"]
        extra = {}
        if case == "split_input":
            inits.append(_i64("sizes", [2, 6]))
        elif case == "split_attr":
            extra = {"split": [2, 6]}
        else:
            extra = {"num_outputs": 3}
        nodes = [mk("Split", ["c1", "sizes"] if case == "split_input" else ["c1"], outs,
                    axis=1, name="split", **extra)]
        if case == "split_equal":  # 8 channels in 3: 3, 3, 2
            nodes.append(mk("Conv", ["p1", "w2"], ["out"], name="c2"))
        else:
            nodes.append(mk("Concat", ["p1", "p0"], ["out"], axis=1, name="cat"))
            c_out = 8
    else:
        inits += [_i64("v5", [1, 2, 4, 6, 6]), _i64("v4", [1, 8, 6, 6])]
        nodes = [mk("Reshape", ["c1", "v5"], ["g"], name="view"),
                 mk("Transpose", ["g"], ["t"], perm=[0, 2, 1, 3, 4], name="tr"),
                 mk("Reshape", ["t", "v4"], ["out"], name="back")]
    proto = _channels_net(nodes, c_out, inits, opset)
    path = tmp_path / "ch.onnx"
    onnx.save(proto, path)
    m = import_model(path)
    if case == "slice_all":
        assert [la.op for la in m.layers] == [Op.CONV]
    if case == "split_equal":  # the part read by the conv alone folds into its weights
        assert [la.op for la in m.layers] == [Op.CONV, Op.CONV]
        assert m.layers[1].weight.shape == (3, 1, 1, 8)
        assert not m.layers[1].weight[..., [0, 1, 2, 6, 7]].any()
    assert lsb_error(m, path) <= 2  # the selection requantises to its own calibrated range
    x = quantized_input(m, 7)[1]
    y, _ = host.run_plan(m, plan.from_json(m, search_analytic(m, "stm32f746").to_plan_json()), x)
    np.testing.assert_array_equal(y, refmodel.run(m, x))


@pytest.mark.parametrize("case,msg", [
    ("slice_h", "slices axis 2 of an activation; only slices along the channels"),
    ("split_h", "only a split along the channels"),
    ("split_sizes", r"split sizes \[2, 5\] do not cut 8 channels into 2 parts"),
    ("perm", r"transposes the channel view of node 'view' \(Reshape, output 'g'\) by "
             r"\[0, 1, 2, 4, 3\]"),
    ("read", r"node 'c2' \(Conv, output 'out'\): reads the channel view of node 'view'"),
])
def test_other_channel_views_are_refused(case, msg):
    mk = helper.make_node
    inits = [_w("w2", (3, 8, 1, 1), 2)]
    if case == "slice_h":
        inits += [_i64("s", [1]), _i64("e", [3]), _i64("a", [2])]
        nodes = [mk("Slice", ["c1", "s", "e", "a"], ["out"], name="sl")]
    elif case.startswith("split"):
        inits.append(_i64("sizes", [2, 5] if case == "split_sizes" else [2, 4]))
        nodes = [mk("Split", ["c1", "sizes"], ["out", "o2"], axis=1 if case == "split_sizes"
                    else 2, name="split")]
    else:
        inits.append(_i64("v5", [1, 2, 4, 6, 6]))
        nodes = [mk("Reshape", ["c1", "v5"], ["g"], name="view")]
        nodes.append(mk("Transpose", ["g"], ["out"], perm=[0, 1, 2, 4, 3], name="tr")
                     if case == "perm" else mk("Conv", ["g", "w2"], ["out"], name="c2"))
    with pytest.raises(UnsupportedModel, match=msg):
        import_model(_channels_net(nodes, 3, inits), name="g")


@pytest.mark.parametrize("op,a,b", [
    ("Add", [3, -4], [2]), ("Sub", [[1, 2]], [5, 7]), ("Mul", [2, 3], [-4, 5]),
    ("Div", [-7, 7, -8, 9], [2, -2, 3, 3]), ("Div", [1.5, -3.0], [2.0, 4.0])])
def test_constant_arithmetic_folds_as_onnx_defines_it(op, a, b):
    """Add / Sub / Mul / Div of constants (TorchScript's split-size arithmetic) fold as the
    ONNX reference computes them (integer Div truncates toward zero)."""
    from onnx.reference import ReferenceEvaluator
    from msfsim.importers.onnx import handlers
    dt = np.float32 if isinstance(a[0], float) else np.int64
    x, y = np.array(a, dt), np.array(b, dt)
    node = helper.make_node(op, ["x", "y"], ["z"], name="n")
    g = helper.make_graph([node], "c", [], [helper.make_tensor_value_info("z", TensorProto.UNDEFINED, None)],
                          [numpy_helper.from_array(x, "x"), numpy_helper.from_array(y, "y")])
    want = ReferenceEvaluator(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])).run(None, {})[0]
    im = Importer(onnx.ModelProto(), "c", None)
    im.values.update({"x": x, "y": y})
    handlers.fold_arithmetic(im, node)
    got = im.values["z"]
    assert got.dtype == want.dtype and np.array_equal(got, want)


def quantize_qdq(src: Path, dst: Path, shape: tuple[int, ...], batches: int,
                 per_channel: bool = False) -> None:
    """onnxruntime's static QDQ quantisation (int8), calibrated on uniform [-1, 1) inputs."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            self.i += 1
            return None if self.i > batches else {"input": np.random.default_rng(self.i).uniform(
                -1, 1, shape).astype(np.float32)}

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    per_channel=per_channel)


def qdq_error(m, path: Path, sequence: bool = False) -> float:
    """The largest difference to onnxruntime's own evaluation of the QDQ model, in output LSB,
    over 3 random int8 inputs (a sequence model gets the N x C x L form of each)."""
    tin, tout = m.tensor(m.input), m.tensor(m.output)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for seed in range(3):
        xq = np.random.default_rng(seed).integers(-128, 128, tin.shape, dtype=np.int8)
        xf = ((xq.astype(np.float32) - tin.q.zero_point) * tin.q.scale).transpose(2, 0, 1)[None]
        want = sess.run(None, {"input": xf[:, :, 0] if sequence else xf})[0].ravel()
        got = (refmodel.run(m, xq).astype(np.float64).ravel() - tout.q.zero_point) * tout.q.scale
        worst = max(worst, float(np.abs(got - want).max() / tout.q.scale))
    return worst


def test_qdq_shufflenet_keeps_its_channel_views(tmp_path):
    """ShuffleNetV2 quantised by onnxruntime (QDQ): its QuantizeLinear / DequantizeLinear pairs
    after the shuffle's views and the split's parts carry their source's parameters, so the
    views still compose and fold (40 layers, as the float model); within 1 LSB of
    onnxruntime's own QDQ evaluation."""
    qdq = tmp_path / "shufflenet_qdq.onnx"
    quantize_qdq(fixture("shufflenet_v2_dynamo"), qdq, (1, 3, 32, 32), 4)
    m = import_model(qdq)
    assert len(m.layers) == 40
    assert qdq_error(m, qdq) <= 1.0 + 1e-3  # float32 rounding of onnxruntime's output


def test_qdq_conv1d_net(tmp_path):
    """The Conv1d net quantised by onnxruntime (QDQ, weights per channel): its int8 weights and
    its (C, 1) scale sit behind DequantizeLinear nodes, which the sequence rewrite follows;
    within 3 LSB of onnxruntime's own QDQ evaluation (the scale folds into the depthwise
    conv's weights, where onnxruntime multiplies in float)."""
    qdq = tmp_path / "conv1d_qdq.onnx"
    quantize_qdq(fixture("conv1d_kws_ts"), qdq, (1, 10, 49), 6, per_channel=True)
    m = import_model(qdq)
    assert [la.op for la in m.layers] == [Op.CONV, Op.MAXPOOL, Op.CONV, Op.DWCONV, Op.ADD,
                                          Op.GAP, Op.DENSE]
    assert qdq_error(m, qdq, sequence=True) <= 3.0 + 1e-3


@pytest.mark.parametrize("broadcast,first", [(False, True), (True, True), (True, False)])
def test_sub_of_two_activations(tmp_path, broadcast, first):
    """a - b of two activations (b may be a (1, C, 1, 1) global pool, on either side): a
    table negating b, then the add; within 3 LSB of onnxruntime, the plan's C bit-exact."""
    mk = helper.make_node
    nodes = [mk("Conv", ["input", "w1"], ["a"], pads=[1, 1, 1, 1], name="ca"),
             mk("Conv", ["input", "w2"], ["b0"], name="cb")]
    if broadcast:
        nodes.append(mk("GlobalAveragePool", ["b0"], ["b"], name="gap"))
    else:
        nodes.append(mk("Identity", ["b0"], ["b"], name="id"))
    nodes.append(mk("Sub", ["a", "b"] if first else ["b", "a"], ["out"], name="sub"))
    proto = _model(nodes, [_w("w1", (6, 3, 3, 3)), _w("w2", (6, 3, 1, 1), 1)],
                   out_dims=[1, 6, 8, 8])
    path = tmp_path / "sub.onnx"
    onnx.save(proto, path)
    m = import_model(path)
    assert Op.ADD in [la.op for la in m.layers] and any(la.activation == "neg" for la in m.layers)
    assert lsb_error(m, path) <= 3
    x = quantized_input(m, 7)[1]
    y, _ = host.run_plan(m, plan.from_json(m, search_analytic(m, "stm32f746").to_plan_json()), x)
    np.testing.assert_array_equal(y, refmodel.run(m, x))


@pytest.mark.parametrize("slopes", [[0.25] * 6, [0.1, -0.3, 0.0, 1.5, 0.25, 2.0]])
def test_prelu_with_a_slope_per_channel(tmp_path, slopes):
    """nn.PReLU(C): one slope repeated is LeakyRelu's table; different slopes are
    x + (1 - a) * relu(-x) (a table, a 1x1 depthwise conv, an add), within 3 LSB of
    onnxruntime and bit-exact through the plan's C."""
    slope = numpy_helper.from_array(np.array(slopes, np.float32).reshape(6, 1, 1), "slope")
    nodes = [helper.make_node("Conv", ["input", "w1"], ["c"], pads=[1, 1, 1, 1], name="c1"),
             helper.make_node("PRelu", ["c", "slope"], ["p"], name="prelu"),
             helper.make_node("Conv", ["p", "w2"], ["out"], name="c2")]
    path = tmp_path / "prelu.onnx"
    onnx.save(_model(nodes, [_w("w1", (6, 3, 3, 3)), _w("w2", (4, 6, 1, 1), 1), slope],
                     out_dims=[1, 4, 8, 8]), path)
    m = import_model(path)
    ops_ = [la.op for la in m.layers]
    assert ops_ == ([Op.CONV, Op.LUT, Op.CONV] if len(set(slopes)) == 1 else
                    [Op.CONV, Op.LUT, Op.DWCONV, Op.ADD, Op.CONV])
    assert lsb_error(m, path) <= 3
    x = quantized_input(m, 7)[1]
    y, _ = host.run_plan(m, plan.from_json(m, search_analytic(m, "stm32f746").to_plan_json()), x)
    np.testing.assert_array_equal(y, refmodel.run(m, x))
