"""Test helpers for .tflite files: the fixtures (tests/data/tflite, written by TensorFlow's
TFLiteConverter through scripts/make_tflite_fixtures.py), TFLM as the oracle, and in-place
patches of a flatbuffer's fields to make broken or hostile variants of a real file."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import tflite

DATA = Path(__file__).resolve().parent / "data" / "tflite"
FIXTURES = ["lenet", "mbv2_block", "dscnn", "dscnn_float_io", "dscnn_uint8_io"]
# whole Keras architectures (keras.applications and hand-written Keras models), int8 in / out
KERAS_FIXTURES = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "resnet8", "inception"]


def fixture(name: str) -> Path:
    return DATA / f"{name}.tflite"


def tflm_outputs(path: Path, xs: list[np.ndarray], in_q, out_q) -> list[np.ndarray]:
    """TFLM's int8 outputs for int8 HWC inputs. A float-in / float-out model is fed
    the float values of the int8 inputs (TFLM's QUANTIZE gives them back exactly) and its float
    outputs are compared through msfsim's dequantisation (see `dequantize`)."""
    from tflite_micro.python.tflite_micro import runtime
    it = runtime.Interpreter.from_file(str(path))
    d, o = it.get_input_details(0), it.get_output_details(0)
    out = []
    for x in xs:
        if d["dtype"] == np.int8:
            it.set_input(x.reshape(d["shape"]), 0)
        elif d["dtype"] == np.uint8:  # the converter's uint8 edge: the same scale, zp + 128
            it.set_input(uint8_of(x, in_q, d).reshape(d["shape"]), 0)
        else:
            it.set_input(dequantize(x, in_q).reshape(d["shape"]), 0)
        it.invoke()
        y = np.array(it.get_output(0)).reshape(-1)
        if o["dtype"] == np.uint8:
            u_scale, u_zp = _qparams(o)
            assert np.float32(u_scale) == np.float32(out_q.scale)
            y = (y.astype(np.int32) - u_zp + out_q.zero_point).astype(np.int8)
        out.append(y)
    return out


def uint8_of(x: np.ndarray, q, detail) -> np.ndarray:
    """The uint8 input whose QUANTIZE (same scale) gives the int8 x back."""
    u_scale, u_zp = _qparams(detail)
    assert np.float32(u_scale) == np.float32(q.scale), (u_scale, q.scale)
    return (x.astype(np.int32) - q.zero_point + u_zp).astype(np.uint8)


def _qparams(detail) -> tuple[float, int]:
    p = detail["quantization_parameters"]
    return float(p["scales"][0]), int(p["zero_points"][0])


def inputs(model, n: int, seed: int = 0) -> list[np.ndarray]:
    """n seeded int8 inputs for `model`, the first holding every int8 value (so each table and
    activation is fed all 256 values)."""
    rng = np.random.default_rng(seed)
    shape = model.tensor(model.input).shape
    xs = [rng.integers(-128, 128, shape, dtype=np.int8) for _ in range(n)]
    xs[0] = np.resize(np.arange(-128, 128, dtype=np.int8), shape)
    return xs


def tflm(model, path: Path, xs) -> list[np.ndarray]:
    """TFLM's outputs for the int8 inputs `xs` of `model` (msfsim's import of `path`), flat."""
    import pytest
    pytest.importorskip("tflite_micro")
    return [w.reshape(-1) for w in
            tflm_outputs(path, xs, model.tensor(model.input).q, model.tensor(model.output).q)]


def check_reference_with_tflm(name: str, n: int = 25) -> None:
    """msfsim's numpy reference, layer by layer, equals TFLM on n inputs of fixture `name`."""
    from msfsim import refmodel
    from msfsim.importers.tflite import import_tflite
    path = fixture(name)
    m = import_tflite(path)
    xs = inputs(m, n)
    for i, (x, w) in enumerate(zip(xs, tflm(m, path, xs))):
        np.testing.assert_array_equal(refmodel.run(m, x).reshape(-1), w, err_msg=f"{name} {i}")


def check_plans_with_tflm(name: str, n: int = 3) -> None:
    """The generated C on the host, layer by layer and as the analytic min-RAM plan (which must
    fuse something), equals TFLM on n inputs of fixture `name`."""
    from msfsim import host, plan
    from msfsim.importers.tflite import import_tflite
    from msfsim.search.api import search_analytic
    path = fixture(name)
    m = import_tflite(path)
    xs = inputs(m, n, seed=5)
    want = tflm(m, path, xs)
    fused = plan.from_json(m, search_analytic(m, "stm32f746").to_plan_json())
    assert len(fused) < len(m.layers)
    for label, blocks in (("vanilla", plan.vanilla(m)), ("min-ram", fused)):
        for x, w in zip(xs, want):
            y, _ = host.run_plan(m, blocks, x)
            np.testing.assert_array_equal(y.reshape(-1), w, err_msg=f"{name} {label}")


def dequantize(q: np.ndarray, qp) -> np.ndarray:
    """TFLM's DEQUANTIZE: float(double(scale) * (q - zp))."""
    return (np.float64(qp.scale) * (q.astype(np.int64) - qp.zero_point)).astype(np.float32)


# ------------------------------------------------------------------ patching a flatbuffer

def _model(data: bytearray):
    return tflite.Model.GetRootAs(bytes(data), 0)


def _field(table, slot: int) -> int:
    """Absolute position of a table's field (vtable slot 4, 6, ...); AssertionError if absent."""
    o = table._tab.Offset(slot)
    assert o, f"field {slot} absent"
    return table._tab.Pos + o


def _vector(table, slot: int) -> int:
    """Absolute position of the first element of a table's vector field."""
    o = table._tab.Offset(slot)
    assert o, f"vector {slot} absent"
    return table._tab.Vector(o)


def tensor(data: bytearray, i: int):
    return _model(data).Subgraphs(0).Tensors(i)


def tensor_index(data: bytearray, name_part: str, rank: int | None = None) -> int:
    """The first tensor whose name holds `name_part` (and of rank `rank`)."""
    g = _model(data).Subgraphs(0)
    return next(i for i in range(g.TensorsLength())
                if name_part in g.Tensors(i).Name().decode()
                and rank in (None, g.Tensors(i).ShapeLength()))


def set_scale(data: bytearray, i: int, value: float) -> None:
    q = tensor(data, i).Quantization()
    struct.pack_into("<f", data, _vector(q, 8), value)  # QuantizationParameters.scale


def set_zero_point(data: bytearray, i: int, value: int) -> None:
    q = tensor(data, i).Quantization()
    struct.pack_into("<q", data, _vector(q, 10), value)  # QuantizationParameters.zero_point


def set_dim(data: bytearray, i: int, k: int, value: int) -> None:
    struct.pack_into("<i", data, _vector(tensor(data, i), 4) + 4 * k, value)  # Tensor.shape


def set_buffer(data: bytearray, i: int, value: int) -> None:
    struct.pack_into("<I", data, _field(tensor(data, i), 8), value)  # Tensor.buffer


def set_name(data: bytearray, i: int, text: bytes) -> None:
    """Overwrite the tensor's name in place (padded with '_' to its length)."""
    t = tensor(data, i)
    pos = _vector(t, 10)
    n = len(t.Name())
    assert len(text) <= n, (len(text), n)
    data[pos:pos + n] = text + b"_" * (n - len(text))


def set_op_input(data: bytearray, op: int, k: int, value: int) -> None:
    o = _model(data).Subgraphs(0).Operators(op)
    struct.pack_into("<i", data, _vector(o, 6) + 4 * k, value)  # Operator.inputs


def set_builtin_code(data: bytearray, op: int, code: int) -> None:
    """Make operator `op`'s operator code `code` (both the int8 and the int32 field)."""
    m = _model(data)
    oc = m.OperatorCodes(m.Subgraphs(0).Operators(op).OpcodeIndex())
    struct.pack_into("<b", data, _field(oc, 4), min(code, 127))  # deprecated_builtin_code
    if oc._tab.Offset(10):
        struct.pack_into("<i", data, _field(oc, 10), code)       # builtin_code


def op_index(data: bytearray, name: str) -> int:
    """Index of the first operator of builtin name `name`."""
    m = _model(data)
    g = m.Subgraphs(0)
    code = getattr(tflite.BuiltinOperator, name)
    for k in range(g.OperatorsLength()):
        oc = m.OperatorCodes(g.Operators(k).OpcodeIndex())
        if max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()) == code:
            return k
    raise KeyError(name)


# ------------------------------------------------------------------ a one-operator model

def softmax_model(n: int, in_scale: float, in_zp: int = 0, beta: float = 1.0,
                  out_scale: float = 1 / 256, out_zp: int = -128, map_1x1: bool = False,
                  hw: tuple[int, int] = (1, 1)) -> bytes:
    """A .tflite file of one int8 SOFTMAX over `n` values: input and output (1, n), or
    (1, H, W, n) maps with `map_1x1` (H x W = `hw`), quantised as given (TFLM's oracle for the
    kernel on any logits, beta and input scale)."""
    return one_op_model("SOFTMAX", [1, *hw, n] if map_1x1 else [1, n], (in_scale, in_zp),
                        (out_scale, out_zp), ("SoftmaxOptions", {"Beta": beta}), version=2,
                        names=("logits", "probs"))


def one_op_model(op: str, shape: list[int], in_q: tuple[float, int], out_q: tuple[float, int],
                 options: tuple[str, dict] | None = None, version: int = 1,
                 names: tuple[str, str] = ("x", "y"),
                 const: tuple[np.ndarray, float, int, bool] | None = None) -> bytes:
    """A .tflite file of one int8 builtin operator `op` from one input to one output of
    `shape`, quantised as given; `options`: (the options table's name, {field: value});
    `const`: (int8 values, scale, zero point, whether first) of a constant second operand
    (or first, before the input)."""
    import importlib

    import flatbuffers
    # the generated builder functions live in the modules (the package exports the classes)
    (Buffer, Model, Operator, OperatorCode, QuantizationParameters, SubGraph, Tensor) = (
        importlib.import_module(f"tflite.{m}") for m in (
            "Buffer", "Model", "Operator", "OperatorCode", "QuantizationParameters",
            "SubGraph", "Tensor"))
    b = flatbuffers.Builder(1024)

    def vec(start, items, add):
        start(b, len(items))
        for v in reversed(items):
            add(v)
        return b.EndVector()

    def tensor(name: str, buf: int, scale: float, zp: int, dims: list[int] = shape) -> int:
        nm = b.CreateString(name)
        sc = vec(QuantizationParameters.StartScaleVector, [scale], b.PrependFloat32)
        z = vec(QuantizationParameters.StartZeroPointVector, [zp], b.PrependInt64)
        QuantizationParameters.Start(b)
        QuantizationParameters.AddScale(b, sc)
        QuantizationParameters.AddZeroPoint(b, z)
        q = QuantizationParameters.End(b)
        sh = vec(Tensor.StartShapeVector, list(dims), b.PrependInt32)
        Tensor.Start(b)
        Tensor.AddShape(b, sh)
        Tensor.AddType(b, tflite.TensorType.INT8)
        Tensor.AddBuffer(b, buf)
        Tensor.AddName(b, nm)
        Tensor.AddQuantization(b, q)
        return Tensor.End(b)

    ts = [tensor(names[0], 1, *in_q), tensor(names[1], 2, *out_q)]
    op_ins = [0]
    if const is not None:
        values, c_scale, c_zp, first = const
        ts.append(tensor("c", 3, c_scale, c_zp, list(np.shape(values))))
        op_ins = [2, 0] if first else [0, 2]
    opts = None
    if options is not None:
        table = importlib.import_module(f"tflite.{options[0]}")
        table.Start(b)
        for field, value in options[1].items():
            getattr(table, f"Add{field}")(b, value)
        opts = table.End(b)
    ins = vec(Operator.StartInputsVector, op_ins, b.PrependInt32)
    outs = vec(Operator.StartOutputsVector, [1], b.PrependInt32)
    Operator.Start(b)
    Operator.AddOpcodeIndex(b, 0)
    Operator.AddInputs(b, ins)
    Operator.AddOutputs(b, outs)
    if opts is not None:
        Operator.AddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, options[0]))
        Operator.AddBuiltinOptions(b, opts)
    op_table = Operator.End(b)
    tv = vec(SubGraph.StartTensorsVector, ts, b.PrependUOffsetTRelative)
    gi = vec(SubGraph.StartInputsVector, [0], b.PrependInt32)
    go = vec(SubGraph.StartOutputsVector, [1], b.PrependInt32)
    ov = vec(SubGraph.StartOperatorsVector, [op_table], b.PrependUOffsetTRelative)
    SubGraph.Start(b)
    SubGraph.AddTensors(b, tv)
    SubGraph.AddInputs(b, gi)
    SubGraph.AddOutputs(b, go)
    SubGraph.AddOperators(b, ov)
    g = SubGraph.End(b)
    builtin = getattr(tflite.BuiltinOperator, op)
    OperatorCode.Start(b)
    OperatorCode.AddDeprecatedBuiltinCode(b, min(builtin, 127))
    OperatorCode.AddBuiltinCode(b, builtin)
    OperatorCode.AddVersion(b, version)
    code = OperatorCode.End(b)
    data = None
    if const is not None:
        raw = np.asarray(const[0], np.int8).tobytes()
        data = vec(Buffer.StartDataVector, list(raw), b.PrependUint8)
    bufs = []
    for k in range(4 if const is not None else 3):
        Buffer.Start(b)
        if k == 3:
            Buffer.AddData(b, data)
        bufs.append(Buffer.End(b))
    bv = vec(Model.StartBuffersVector, bufs, b.PrependUOffsetTRelative)
    cv = vec(Model.StartOperatorCodesVector, [code], b.PrependUOffsetTRelative)
    sv = vec(Model.StartSubgraphsVector, [g], b.PrependUOffsetTRelative)
    desc = b.CreateString(f"msfsim test: one {op}")
    Model.Start(b)
    Model.AddVersion(b, 3)
    Model.AddOperatorCodes(b, cv)
    Model.AddSubgraphs(b, sv)
    Model.AddDescription(b, desc)
    Model.AddBuffers(b, bv)
    b.Finish(Model.End(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def set_depth_multiplier(data: bytearray, op: int, value: int) -> None:
    """DepthwiseConv2DOptions.depth_multiplier of operator `op` (field 3, slot 10)."""
    o = _model(data).Subgraphs(0).Operators(op)
    table = o.BuiltinOptions()
    opts = tflite.DepthwiseConv2DOptions()
    opts.Init(table.Bytes, table.Pos)
    struct.pack_into("<i", data, _field(opts, 10), value)
