"""The model zoo: valid, runnable, deterministic ONNX models with the documented shapes."""
from __future__ import annotations

import functools
import os
import re

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from msfsim import MsfsimError, zoo

ort = pytest.importorskip("onnxruntime")

# Output shapes, written out independently of the zoo's code.
OUTPUT_SHAPES = {
    "mbv2-w0.35-r144": (1, 448, 5, 5),
    "mcunetv2-vww5-r80": (1, 160, 3, 3),
    "mcunet-320kb-r176": (1, 160, 6, 6),
    "mobilenetv2-w0.35-r144": (1, zoo.MBV2_CLASSES),
    "mcunet-res-r96": (1, 2),
    "vww-mbv1-0.25-r96": (1, 2),
    "resnet8-r32": (1, 10),
    "dscnn-kws": (1, 12),
    "mbv3-small-r96": (1, 10),
    "squeezenet-r96": (1, 10),
    "lenet5-r28": (1, 10),
}

# DESIGN §2, in its own notation (with MB(40,48) at expansion 6, msf-CNN's published model): "c" = conv k s -> cout, "dw" = depthwise k s, MB(cin,cout,e,s,k).
DESIGN_PROXIES = {
    "mbv2-w0.35-r144": (144, "c3s2>11; MB(11,5,1,1,3); MB(5,8,6,2,3); MB(8,8,6,1,3); MB(8,11,6,2,3); "
                             "MB(11,11,6,1,3)x2; MB(11,22,6,2,3); MB(22,22,6,1,3)x3; MB(22,33,6,1,3); "
                             "MB(33,33,6,1,3)x2; MB(33,56,6,2,3); MB(56,56,6,1,3)x2; MB(56,112,6,1,3); "
                             "c1s1>448"),
    "mcunetv2-vww5-r80": (80, "c3s2>16; dw3s1; c1s1>8; MB(8,16,6,2,3); MB(16,16,3,1,3)x2; "
                              "MB(16,24,3,2,7); MB(24,24,6,1,3); MB(24,24,5,1,5); MB(24,40,6,2,7); "
                              "MB(40,40,6,1,7); MB(40,48,6,1,3); MB(48,48,4,1,3); MB(48,96,5,2,5); "
                              "MB(96,96,5,1,3); MB(96,96,4,1,3); MB(96,160,3,1,7)"),
    "mcunet-320kb-r176": (176, "c3s2>16; dw3s1; c1s1>8; MB(8,16,3,2,7); MB(16,16,5,1,3); "
                               "MB(16,16,5,1,7); MB(16,16,4,1,5); MB(16,24,5,2,5); MB(24,24,5,1,5)x2; "
                               "MB(24,40,5,2,3); MB(40,40,6,1,7); MB(40,40,4,1,5); MB(40,48,5,1,5); "
                               "MB(48,48,5,1,7); MB(48,48,5,1,3); MB(48,96,6,2,3); MB(96,96,5,1,7); "
                               "MB(96,96,4,1,3); MB(96,160,5,1,7)"),
}

WORK_OPS = {"Conv", "Gemm", "MatMul", "MaxPool", "AveragePool", "GlobalAveragePool", "HardSwish",
            "HardSigmoid", "Mul", "Concat"}


def design_layers(text: str) -> list[tuple[int, int, int, bool]]:
    """DESIGN notation -> [(cout, k, stride, depthwise)] in order."""
    out: list[tuple[int, int, int, bool]] = []
    c = 3
    for item in (s.strip() for s in text.split(";")):
        if m := re.fullmatch(r"c(\d)s(\d)>(\d+)", item):
            k, s, c = map(int, m.groups())
            out.append((c, k, s, False))
        elif m := re.fullmatch(r"dw(\d)s(\d)", item):
            out.append((c, int(m[1]), int(m[2]), True))
        else:
            m = re.fullmatch(r"MB\((\d+),(\d+),(\d+),(\d+),(\d+)\)(?:x(\d+))?", item)
            assert m, item
            cin, cout, e, s, k = map(int, m.groups()[:5])
            assert cin == c, f"{item}: chain breaks ({c} channels before it)"
            for _ in range(int(m[6] or 1)):
                out += [(cin * e, 1, 1, False), (cin * e, k, s, True), (cout, 1, 1, False)]
                s = 1  # a repeated MB is listed with its own stride, the same for each copy
            c = cout
    return out


@functools.cache
def float_model(name: str) -> onnx.ModelProto:
    return zoo.build_onnx(name)


@functools.cache
def qdq_model(name: str) -> onnx.ModelProto:
    return zoo.build_onnx(name, qdq=True)


def entry(name: str) -> zoo.ZooEntry:
    return next(e for e in zoo.list_models() if e.name == name)


def sample(name: str) -> np.ndarray:
    return np.random.default_rng(7).uniform(-1, 1, entry(name).input_shape).astype(np.float32)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(["output"], {"input": x})[0]


def attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def inits(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def test_registry():
    names = [e.name for e in zoo.list_models()]
    assert names == list(zoo.NAMES) and set(names) == set(OUTPUT_SHAPES)
    assert [e.layers for e in zoo.list_models()][:3] == [53, 45, 54]  # DESIGN §2
    with pytest.raises(MsfsimError, match="unknown zoo model"):
        zoo.build_onnx("resnet50")


@pytest.mark.parametrize("name", zoo.NAMES)
def test_float_model_valid_and_runs(name):
    m = float_model(name)
    onnx.checker.check_model(m, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    dims = [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]
    assert tuple(dims) == OUTPUT_SHAPES[name]
    # opset 13, or 14 where HardSwish (an opset 14 op) is used
    hardswish = any(n.op_type == "HardSwish" for n in m.graph.node)
    assert m.opset_import[0].version == (14 if hardswish else 13)
    assert m.graph.input[0].name == "input"
    assert tuple(d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim) == entry(name).input_shape
    assert all(i.data_type == onnx.TensorProto.FLOAT for i in m.graph.initializer
               if i.name.endswith((".weight", ".bias")))
    y = run(m, sample(name))
    assert y.shape == OUTPUT_SHAPES[name]
    assert np.all(np.isfinite(y)) and 1e-2 < float(np.std(y)) < 50  # neither vanished nor exploded
    # every node has a distinct, meaningful name
    node_names = [n.name for n in m.graph.node]
    assert all(node_names) and len(set(node_names)) == len(node_names)


@pytest.mark.parametrize("name", zoo.NAMES)
def test_layer_count(name):
    """Work layers counted on the ONNX graph (BN, activations, reshapes and bias adds fold)."""
    m = float_model(name)
    consts = {i.name for i in m.graph.initializer}
    adds = [n for n in m.graph.node if n.op_type == "Add" and not set(n.input) & consts]
    work = [n for n in m.graph.node if n.op_type in WORK_OPS]
    assert len(work) + len(adds) == entry(name).layers


@pytest.mark.parametrize("name", zoo.NAMES)
def test_qdq_model_valid_runs_and_matches_float(name):
    m = qdq_model(name)
    onnx.checker.check_model(m, full_check=True)
    ops = {n.op_type for n in m.graph.node}
    assert "BatchNormalization" not in ops and {"QuantizeLinear", "DequantizeLinear"} <= ops
    values = inits(m)
    for n in m.graph.node:
        if n.op_type in ("Conv", "Gemm", "MatMul"):  # weights come from an int8 DequantizeLinear
            dq = next(d for d in m.graph.node if d.output[0] == n.input[1])
            q, scale, zp = (values[i] for i in dq.input)
            axis = attrs(dq)["axis"]
            assert dq.op_type == "DequantizeLinear" and q.dtype == np.int8 and not zp.any()
            assert scale.shape == (q.shape[axis],) and np.abs(q).max() == 127
        if n.op_type in ("Conv", "Gemm") and len(n.input) > 2:
            dq = next(d for d in m.graph.node if d.output[0] == n.input[2])
            assert values[dq.input[0]].dtype == np.int32
    x = sample(name)
    y, yq = run(float_model(name), x), run(m, x)
    assert yq.shape == OUTPUT_SHAPES[name]
    cos = float((y * yq).sum() / np.linalg.norm(y) / np.linalg.norm(yq))
    assert cos > 0.99, f"QDQ output drifts from the float model (cosine {cos:.4f})"


def test_qdq_bias_scale_is_input_times_weight_scale():
    m = qdq_model("resnet8-r32")
    values = inits(m)
    producer = {o: n for n in m.graph.node for o in n.output}
    conv = next(n for n in m.graph.node if n.name == "stack2.conv1.conv")
    in_dq = producer[conv.input[0]]
    s_in = values[in_dq.input[1]]
    s_w = values[producer[conv.input[1]].input[1]]
    s_b = values[producer[conv.input[2]].input[1]]
    np.testing.assert_allclose(s_b, s_in * s_w, rtol=1e-6)


def test_qdq_uses_given_qparams():
    """The qparams argument: scales measured with onnxruntime on the float model's tensors."""
    name = "lenet5-r28"
    m = onnx.ModelProto.FromString(float_model(name).SerializeToString())
    outs = [o for n in m.graph.node for o in n.output]
    del m.graph.output[:]
    m.graph.output.extend(onnx.helper.make_value_info(o, onnx.TypeProto()) for o in outs)
    x = sample(name)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    ranges = dict(zip(outs, sess.run(None, {"input": x})), input=x)
    qparams = {}
    for k, v in ranges.items():
        lo, hi = min(float(v.min()), 0.0), max(float(v.max()), 0.0)
        scale = (hi - lo) / 255
        qparams[k] = (scale, int(round(-128 - lo / scale)))
    q = zoo.build_onnx(name, qdq=True, qparams=qparams)
    values = inits(q)
    quant = {n.input[0]: n for n in q.graph.node if n.op_type == "QuantizeLinear"}
    for tensor in ("input", "conv1.relu", "fc1.relu"):
        node = quant[tensor]
        assert float(values[node.input[1]]) == pytest.approx(qparams[tensor][0], rel=1e-6)
        assert int(values[node.input[2]]) == qparams[tensor][1]
    # max-pool and flatten keep their input's qparams, as QDQ exporters do
    assert float(values[quant["pool1"].input[1]]) == float(values[quant["conv1.relu"].input[1]])
    assert run(q, x).shape == (1, 10)
    with pytest.raises(MsfsimError, match="no quantisation parameters"):
        zoo.build_onnx(name, qdq=True, qparams={"input": (0.01, 0)})


@pytest.mark.parametrize("name", ["mcunet-320kb-r176", "mobilenetv2-w0.35-r144", "dscnn-kws"])
def test_deterministic(name):
    assert zoo.build_onnx(name).SerializeToString() == float_model(name).SerializeToString()
    assert zoo.build_onnx(name, qdq=True).SerializeToString() == qdq_model(name).SerializeToString()


def test_models_differ():
    a = inits(float_model("mcunetv2-vww5-r80"))["layer0.weight"]
    b = inits(float_model("mcunet-320kb-r176"))["layer0.weight"]
    assert a.shape == b.shape and not np.array_equal(a, b)


@pytest.mark.parametrize("name", list(DESIGN_PROXIES))
def test_proxy_shapes_match_design(name):
    res, text = DESIGN_PROXIES[name]
    m = float_model(name)
    assert entry(name).input_shape == (1, 3, res, res)
    assert {n.op_type for n in m.graph.node} == {"Conv"}  # no activation, no skip
    values = inits(m)
    got = []
    for n in m.graph.node:
        a = attrs(n)
        w = values[n.input[1]]
        k, s = a["kernel_shape"][0], a["strides"][0]
        assert len(n.input) == 3 and a["pads"] == [k // 2] * 4 and a["kernel_shape"] == [k, k]
        got.append((w.shape[0], k, s, a.get("group", 1) > 1))
    assert got == design_layers(text)
    assert len(got) == entry(name).layers


def test_mobilenetv2_structure():
    m = float_model("mobilenetv2-w0.35-r144")
    values = inits(m)
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    couts = [values[n.input[1]].shape[0] for n in convs]
    assert all(c % 8 == 0 for c in couts)  # torchvision's _make_divisible
    assert couts[:3] == [16, 16, 8] and couts[-1] == 1280
    assert sorted({c for c in couts}) == [8, 16, 24, 32, 48, 56, 96, 112, 144, 192, 336, 1280]
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("BatchNormalization") == len(convs) and ops.count("Add") == 10
    clips = [n for n in m.graph.node if n.op_type == "Clip"]
    assert clips and all(len(n.input) == 3 and not n.attribute for n in clips)
    assert [float(values[i]) for i in clips[0].input[1:]] == [0.0, 6.0]
    # int8 weights fit 1 MB of flash
    q = inits(qdq_model("mobilenetv2-w0.35-r144"))
    assert sum(v.size for k, v in q.items() if k.endswith(".weight_quantized")) < 1 << 20


def test_mlperf_tiny_details():
    r8 = float_model("resnet8-r32")
    values = inits(r8)
    shortcuts = [n for n in r8.graph.node if n.name.endswith("shortcut.conv")]
    assert [(values[n.input[1]].shape, attrs(n)["strides"]) for n in shortcuts] == \
        [((32, 16, 1, 1), [2, 2]), ((64, 32, 1, 1), [2, 2])]
    ds = float_model("dscnn-kws")
    a = attrs(ds.graph.node[0])
    assert a["kernel_shape"] == [10, 4] and a["strides"] == [2, 2] and a["pads"] == [4, 1, 5, 1]
    vww = float_model("vww-mbv1-0.25-r96")
    assert attrs(vww.graph.node[0])["pads"] == [0, 0, 1, 1]  # TF "SAME" at stride 2
    assert {"MatMul", "Reshape", "AveragePool", "Relu"} <= {n.op_type for n in vww.graph.node}
    lenet = [n.op_type for n in float_model("lenet5-r28").graph.node]
    assert lenet == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten",
                     "Gemm", "Relu", "Gemm", "Relu", "Gemm"]


def test_export_atomic(tmp_path):
    path = zoo.export("lenet5-r28", tmp_path / "lenet.onnx")
    assert path.read_bytes() == float_model("lenet5-r28").SerializeToString()
    zoo.export("lenet5-r28", path, qdq=True)  # replaces the file
    assert onnx.load(str(path)).graph.node[0].op_type == "QuantizeLinear"
    assert os.listdir(tmp_path) == ["lenet.onnx"]  # no temporary file left behind
    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError):  # cannot replace a directory: the failure leaves nothing behind
        zoo.export("lenet5-r28", tmp_path / "taken")
    assert sorted(os.listdir(tmp_path)) == ["lenet.onnx", "taken"]
    zoo.export("lenet5-r28", tmp_path / "new" / "x.onnx")  # parent folders are created


onnx_import = pytest.importorskip("msfsim.importers.onnx")


@pytest.mark.parametrize("name", zoo.NAMES)
def test_import_layer_count_and_qdq_agreement(name):
    """Float and QDQ exports import to the same int8 network (scales up to float32 rounding)."""
    a = zoo.load(name)
    assert zoo.load(name) is a and len(a.layers) == entry(name).layers
    b = onnx_import.import_model(qdq_model(name))
    assert len(b.layers) == len(a.layers)
    for ta, tb in zip(a.tensors, b.tensors):
        assert ta.shape == tb.shape and ta.q.zero_point == tb.q.zero_point
        assert tb.q.scale == pytest.approx(ta.q.scale, rel=1e-6)
    for la, lb in zip(a.layers, b.layers):
        assert la.op == lb.op and la.pad == lb.pad and la.act_min == lb.act_min
        if la.bias is not None:
            np.testing.assert_array_equal(la.weight, lb.weight)
            assert np.abs(la.bias.astype(np.int64) - lb.bias).max() <= 1
        elif la.weight is not None:  # a lut's table: the function on scales up to float32
            assert np.abs(la.weight.astype(np.int64) - lb.weight).max() <= 1
