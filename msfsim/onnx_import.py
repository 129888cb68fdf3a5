"""ONNX -> msfsim IR.

One handler per ONNX op (onnx2c style). The walk builds a small float graph (`_FLayer`s on NHWC
tensors) with activations, BatchNorm, bias-adds and QDQ pairs folded into the layer that produces
the tensor; then every tensor gets int8 qparams — from the model's QuantizeLinear nodes (QDQ
models) or by calibration (float models) — and the graph is emitted through `IRBuilder`.

Float models are quantised by msfsim: symmetric per-channel int8 weights, asymmetric int8
activations whose ranges are the min/max seen on CALIBRATION_BATCH deterministic inputs drawn
uniformly from [-1, 1]. That keeps results reproducible but is not a substitute for calibration on
real data: export QDQ models for accuracy.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from . import MsfsimError, UnsupportedModel
from .ir import IRBuilder, Model, Op, QParams, activation_qparams, out_size, quantize_weights

CALIBRATION_BATCH = 4
CALIBRATION_SEED = 0


@dataclass
class _Act:
    """A float activation tensor of the graph being imported, NHWC without batch."""
    name: str
    shape: tuple[int, int, int]
    flat: bool = False  # flattened (Flatten/Reshape) in ONNX's NCHW order


@dataclass
class _QConst:
    """A DequantizeLinear of a constant: keeps the integer values and scale exactly."""
    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int

    def value(self) -> np.ndarray:
        shape = [1] * self.q.ndim
        if self.scale.size > 1:
            shape[self.axis] = -1
        s = self.scale.reshape(shape) if self.scale.size > 1 else self.scale
        z = self.zero_point.reshape(shape) if self.zero_point.size > 1 else self.zero_point
        return (self.q.astype(np.float64) - z) * s


@dataclass
class _FLayer:
    op: Op
    name: str
    inputs: list[str]
    output: str
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    weight: np.ndarray | None = None        # float, IR layout
    weight_q: tuple[np.ndarray, np.ndarray] | None = None  # (int8, per-channel scale) from QDQ
    bias: np.ndarray | None = None
    activation: str = "none"
    clip: tuple[float, float] | None = None
    pool: str = ""                          # "max" | "avg" for pooling layers
    extra: dict = field(default_factory=dict)


SUPPORTED_OPS = sorted([
    "Conv", "BatchNormalization", "Relu", "Clip", "Add", "MaxPool", "AveragePool",
    "GlobalAveragePool", "ReduceMean", "Flatten", "Reshape", "Squeeze", "Gemm", "MatMul",
    "QuantizeLinear", "DequantizeLinear", "Identity", "Dropout", "Constant", "Shape", "Gather",
    "Unsqueeze", "Concat", "Cast",
])


def _fail(msg: str) -> UnsupportedModel:
    return UnsupportedModel(msg)


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """'1x3x144x144', '3x144x144' or '1,3,144,144' (NCHW) -> (H, W, C)."""
    parts = [p for p in text.replace(",", "x").lower().split("x") if p]
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise MsfsimError(f"--input-shape {text!r}: expected N x C x H x W, e.g. 1x3x144x144") from None
    if len(dims) == 4:
        if dims[0] != 1:
            raise MsfsimError(f"--input-shape {text!r}: batch must be 1")
        dims = dims[1:]
    if len(dims) != 3 or min(dims) <= 0:
        raise MsfsimError(f"--input-shape {text!r}: expected N x C x H x W, e.g. 1x3x144x144")
    c, h, w = dims
    return h, w, c


def load_onnx(src: str | os.PathLike | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    if isinstance(src, onnx.ModelProto):
        return src, src.graph.name or "model"
    path = Path(src)
    if not path.exists():
        raise MsfsimError(f"{path}: no such file")
    if not path.is_file():
        raise MsfsimError(f"{path}: not a file")
    data = path.read_bytes()
    if not data:
        raise MsfsimError(f"{path}: empty file, not an ONNX model")
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise MsfsimError(f"{path}: not an ONNX model or truncated ({type(exc).__name__})") from None
    if not proto.graph.node:
        raise MsfsimError(f"{path}: not an ONNX model or truncated (no graph nodes)")
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MsfsimError(f"{path}: invalid ONNX model: {first}") from None
    return proto, path.stem


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pads_2d(node: onnx.NodeProto, a: dict, hw: tuple[int, int], k: tuple[int, int],
             s: tuple[int, int]) -> tuple[int, int, int, int]:
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for n, kk, ss in zip(hw, k, s):
            o = -(-n // ss)
            total = max((o - 1) * ss + kk - n, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return pads[0][0], pads[1][0], pads[0][1], pads[1][1]
    if auto == "VALID":
        return 0, 0, 0, 0
    p = list(a.get("pads", [0, 0, 0, 0]))
    if len(p) != 4:
        raise _fail(f"node {node.name!r} ({node.op_type}): expected 2-D pads, got {p}")
    return p[0], p[1], p[2], p[3]


class _Importer:
    def __init__(self, proto: onnx.ModelProto, name: str, input_shape: tuple[int, int, int] | None):
        self.proto = proto
        self.name = name
        self.forced_shape = input_shape
        self.values: dict[str, object] = {}     # name -> np.ndarray | _QConst | _Act
        self.layers: list[_FLayer] = []
        self.producer: dict[str, _FLayer] = {}  # activation name -> layer writing it
        self.qparams: dict[str, QParams] = {}   # activation name -> qparams from QDQ
        self.fallback_q: dict[str, QParams] = {}  # qparams inherited through a folded activation
        self.alias: dict[str, str] = {}         # activation name -> canonical name
        self.uses: dict[str, int] = {}
        self.input_name = ""

    # ---------------------------------------------------------------- helpers
    def canon(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def const(self, node: onnx.NodeProto, k: int, what: str) -> np.ndarray:
        if k >= len(node.input) or not node.input[k]:
            raise _fail(f"node {node.name!r} ({node.op_type}): missing {what}")
        v = self.values.get(node.input[k])
        if isinstance(v, _QConst):
            return v.value()
        if not isinstance(v, np.ndarray):
            raise _fail(f"node {node.name!r} ({node.op_type}): {what} must be a constant")
        return v

    def act(self, node: onnx.NodeProto, k: int = 0) -> _Act:
        v = self.values.get(node.input[k])
        if not isinstance(v, _Act):
            raise _fail(f"node {node.name!r} ({node.op_type}): input {node.input[k]!r} must be an "
                        f"activation tensor, not a constant")
        return v

    def is_act(self, name: str) -> bool:
        return isinstance(self.values.get(name), _Act)

    def new_layer(self, node: onnx.NodeProto, layer: _FLayer) -> None:
        self.layers.append(layer)
        self.producer[layer.output] = layer
        h, w, c = layer.out_shape
        if min(layer.out_shape) <= 0:
            raise _fail(f"node {node.name!r} ({node.op_type}): empty output shape {h}x{w}x{c}")
        self.values[node.output[0]] = _Act(layer.output, layer.out_shape)

    def foldable(self, node: onnx.NodeProto) -> _FLayer | None:
        """The layer producing node's first input if node may be folded into it."""
        v = self.values.get(node.input[0])
        if not isinstance(v, _Act):
            return None
        layer = self.producer.get(v.name)
        if layer is None or self.uses.get(node.input[0], 0) != 1 or layer.activation != "none":
            return None
        return layer

    def rename_output(self, layer: _FLayer, node: onnx.NodeProto, carry_q: bool = False) -> None:
        """node (an activation, BatchNorm or bias add) now ends `layer`: its output is the layer's.

        carry_q: an activation clamps in the int8 domain of the tensor it reads, so that tensor's
        qparams stand for the result unless a QuantizeLinear later says otherwise."""
        old = layer.output
        flat = self.values[node.input[0]].flat  # type: ignore[union-attr]
        layer.output = node.output[0]
        del self.producer[old]
        self.producer[layer.output] = layer
        self.values[node.output[0]] = _Act(layer.output, layer.out_shape, flat=flat)
        if carry_q and (old in self.qparams or old in self.fallback_q):
            self.fallback_q[layer.output] = self.qparams.get(old) or self.fallback_q[old]

    # ---------------------------------------------------------------- driver
    def run(self) -> Model:
        g = self.proto.graph
        for init in g.initializer:
            self.values[init.name] = numpy_helper.to_array(init)
        inputs = [i for i in g.input if i.name not in self.values]
        if len(inputs) != 1:
            raise _fail(f"model has {len(inputs)} graph inputs ({', '.join(i.name for i in inputs)}); "
                        f"msfsim handles one image input")
        if len(g.output) != 1:
            raise _fail(f"model has {len(g.output)} graph outputs; msfsim handles a single output")
        self.input_name = inputs[0].name
        self.values[self.input_name] = _Act(self.input_name, self._input_shape(inputs[0]))
        for node in g.node:
            for name in node.input:
                if name:
                    self.uses[name] = self.uses.get(name, 0) + 1
        self.uses[g.output[0].name] = self.uses.get(g.output[0].name, 0) + 1
        for node in g.node:
            handler = _HANDLERS.get(node.op_type)
            if handler is None or node.domain not in ("", "ai.onnx"):
                raise _fail(f"node {node.name!r}: unsupported op {node.op_type!r}"
                            f"{' (domain ' + node.domain + ')' if node.domain not in ('', 'ai.onnx') else ''}; "
                            f"supported: {', '.join(SUPPORTED_OPS)}")
            handler(self, node)
        out = self.values.get(g.output[0].name)
        if not isinstance(out, _Act):
            raise _fail(f"graph output {g.output[0].name!r} is not computed from the input")
        if not self.layers:
            raise _fail("model has no layers msfsim can run (no Conv/Gemm/pooling)")
        return self._emit(self.canon(out.name))

    def _input_shape(self, vi: onnx.ValueInfoProto) -> tuple[int, int, int]:
        dims = vi.type.tensor_type.shape.dim
        if self.forced_shape is not None:
            if len(dims) not in (0, 4):
                raise _fail(f"input {vi.name!r} is {len(dims)}-D; msfsim needs a 4-D NCHW image input")
            return self.forced_shape
        if vi.type.tensor_type.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT8,
                                                 onnx.TensorProto.UINT8):
            raise _fail(f"input {vi.name!r} has element type "
                        f"{onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type)}; expected float or int8")
        if not vi.type.tensor_type.HasField("shape"):
            raise _fail(f"input {vi.name!r} has no shape; give one with --input-shape 1xCxHxW")
        if len(dims) != 4:
            raise _fail(f"input {vi.name!r} is {len(dims)}-D; msfsim needs a 4-D NCHW image input "
                        f"(N x C x H x W)")
        vals = []
        for i, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                vals.append(d.dim_value)
            elif i == 0:
                vals.append(1)  # dynamic batch: msfsim runs one image
            else:
                raise _fail(f"input {vi.name!r} has a dynamic or missing dimension "
                            f"{d.dim_param or '?'} (axis {i}); give the shape with --input-shape 1xCxHxW")
        if vals[0] != 1:
            raise _fail(f"input {vi.name!r} has batch {vals[0]}; msfsim runs batch 1 "
                        f"(use --input-shape 1x{vals[1]}x{vals[2]}x{vals[3]})")
        return vals[2], vals[3], vals[1]

    # ---------------------------------------------------------------- quantisation + emit
    def _emit(self, out_name: str) -> Model:
        needed = {self.canon(i) for layer in self.layers for i in layer.inputs}
        needed |= {self.canon(self.input_name)}
        for layer in self.layers:
            needed.add(layer.output)
        missing = [n for n in needed if n not in self.qparams and n not in self.fallback_q]
        calib = self._calibrate(missing) if missing else {}
        q = {**calib, **self.fallback_q, **self.qparams}

        src_shape = self.values[self.input_name]
        assert isinstance(src_shape, _Act)
        b = IRBuilder(self.name, src_shape.shape, q[self.canon(self.input_name)], self.input_name)
        tid = {self.canon(self.input_name): b.input}
        live = self._live_layers(out_name)
        for layer in self.layers:
            if layer.output not in live:
                continue
            ins = [tid[self.canon(i)] for i in layer.inputs]
            oq = q[layer.output]
            kw = dict(name=layer.name, out_name=layer.output)
            if layer.op in (Op.CONV, Op.DWCONV):
                wq, ws = layer.weight_q or quantize_weights(layer.weight, 0 if layer.op == Op.CONV else 2)
                t = b.conv(ins[0], wq, ws, layer.bias, oq, stride=layer.stride, pad=layer.pad,
                           depthwise=layer.op == Op.DWCONV, activation=layer.activation,
                           clip=layer.clip, **kw)
            elif layer.op == Op.DENSE:
                wq, ws = layer.weight_q or quantize_weights(layer.weight, 0)
                t = b.dense(ins[0], wq, ws, layer.bias, oq, activation=layer.activation,
                            clip=layer.clip, **kw)
            elif layer.op == Op.ADD:
                t = b.add(ins[0], ins[1], oq, activation=layer.activation, clip=layer.clip, **kw)
            elif layer.op in (Op.MAXPOOL, Op.AVGPOOL):
                t = b.pool(ins[0], layer.pool, layer.kernel, layer.stride, layer.pad, out_q=oq,
                           activation=layer.activation, clip=layer.clip, **kw)
            else:
                t = b.gap(ins[0], out_q=oq, **kw)
            tid[layer.output] = t
        return b.build(tid[out_name])

    def _live_layers(self, out_name: str) -> set[str]:
        """Outputs of the layers the graph output depends on (dead branches are dropped)."""
        live, todo = set(), [out_name]
        while todo:
            n = todo.pop()
            if n in live or n not in self.producer:
                continue
            live.add(n)
            todo.extend(self.canon(i) for i in self.producer[n].inputs)
        return live

    def _calibrate(self, names: list[str]) -> dict[str, QParams]:
        rng = np.random.default_rng(CALIBRATION_SEED)
        x0 = self.values[self.input_name]
        assert isinstance(x0, _Act)
        x = rng.uniform(-1.0, 1.0, size=(CALIBRATION_BATCH, *x0.shape))
        ranges = {self.canon(self.input_name): (float(x.min()), float(x.max()))}
        env = {self.canon(self.input_name): x}
        for layer in self.layers:
            y = _float_layer(layer, [env[self.canon(i)] for i in layer.inputs])
            env[layer.output] = y
            ranges[layer.output] = (float(y.min()), float(y.max()))
        out = {}
        for n in names:
            lo, hi = ranges[n]
            layer = self.producer.get(n)
            if layer is not None and layer.op == Op.MAXPOOL:
                continue  # a max-pool keeps its input's qparams
            out[n] = activation_qparams(lo, hi)
        for layer in self.layers:  # max-pool: same qparams in and out (in topological order)
            if layer.op == Op.MAXPOOL and layer.output not in self.qparams:
                out[layer.output] = self.qparams.get(self.canon(layer.inputs[0])) or out[self.canon(layer.inputs[0])]
        return out


# -------------------------------------------------------------------- float evaluation

def _windows(x: np.ndarray, k, s, pad, value: float = 0.0) -> np.ndarray:
    """x (B,H,W,C) -> (B,Ho,Wo,C,kh,kw) sliding windows with padding."""
    t, l, b, r = pad
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)
    v = np.lib.stride_tricks.sliding_window_view(xp, k, axis=(1, 2))
    return v[:, ::s[0], ::s[1]]


def _float_layer(layer: _FLayer, xs: list[np.ndarray]) -> np.ndarray:
    x = xs[0]
    if layer.op == Op.CONV:
        w = layer.weight if layer.weight_q is None else layer.weight_q[0] * layer.weight_q[1][:, None, None, None]
        win = _windows(x, layer.kernel, layer.stride, layer.pad)  # B,Ho,Wo,Cin,kh,kw
        y = np.einsum("bhwcij,oijc->bhwo", win, w, optimize=True)
    elif layer.op == Op.DWCONV:
        w = layer.weight if layer.weight_q is None else layer.weight_q[0] * layer.weight_q[1][None, None, :]
        win = _windows(x, layer.kernel, layer.stride, layer.pad)
        y = np.einsum("bhwcij,ijc->bhwc", win, w, optimize=True)
    elif layer.op == Op.DENSE:
        w = layer.weight if layer.weight_q is None else layer.weight_q[0] * layer.weight_q[1][:, None]
        y = (x.reshape(x.shape[0], -1) @ w.T).reshape(x.shape[0], 1, 1, -1)
    elif layer.op == Op.ADD:
        y = xs[0] + xs[1]
    elif layer.op == Op.MAXPOOL:
        y = _windows(x, layer.kernel, layer.stride, layer.pad, -np.inf).max(axis=(4, 5))
    elif layer.op == Op.AVGPOOL:
        y = _windows(x, layer.kernel, layer.stride, layer.pad).mean(axis=(4, 5))
    else:  # GAP
        y = x.mean(axis=(1, 2), keepdims=True)
    if layer.bias is not None:
        y = y + layer.bias
    if layer.activation in ("relu", "relu6", "clip"):
        lo, hi = layer.clip if layer.clip else (0.0, 6.0 if layer.activation == "relu6" else math.inf)
        y = np.clip(y, lo, hi)
    return y


# -------------------------------------------------------------------- op handlers

def _conv(im: _Importer, node: onnx.NodeProto) -> None:
    x = im.act(node)
    if x.flat:
        raise _fail(f"node {node.name!r} (Conv): input is flattened")
    a = _attrs(node)
    wv = im.values.get(node.input[1])
    w = wv.value() if isinstance(wv, _QConst) else im.const(node, 1, "weights")
    if w.ndim != 4:
        raise _fail(f"node {node.name!r} (Conv): only 2-D convolutions are supported "
                    f"(weights are {w.ndim - 2}-D)")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise _fail(f"node {node.name!r} (Conv): dilation {list(a['dilations'])} is not supported")
    h, wd, c = x.shape
    cout, cin_g, kh, kw = w.shape
    group = a.get("group", 1)
    k = tuple(a.get("kernel_shape", [kh, kw]))
    s = tuple(a.get("strides", [1, 1]))
    pad = _pads_2d(node, a, (h, wd), k, s)
    if group == 1:
        if cin_g != c:
            raise _fail(f"node {node.name!r} (Conv): weights expect {cin_g} input channels, input has {c}")
        op, wir, axis_perm = Op.CONV, w.transpose(0, 2, 3, 1), (0, 2, 3, 1)
    elif group == c and cout == c and cin_g == 1:
        op, wir, axis_perm = Op.DWCONV, w[:, 0].transpose(1, 2, 0), None
    else:
        raise _fail(f"node {node.name!r} (Conv): group={group} with {c} input and {cout} output "
                    f"channels is not supported (standard or depthwise with multiplier 1 only)")
    wq = None
    if isinstance(wv, _QConst):
        if np.any(wv.zero_point != 0) or wv.q.dtype != np.int8:
            wq = None  # asymmetric or uint8 weights: requantised symmetrically below
        else:
            scale = np.broadcast_to(wv.scale.astype(np.float64).ravel(), (cout,)).copy()
            qi = wv.q.transpose(*axis_perm) if axis_perm else wv.q[:, 0].transpose(1, 2, 0)
            wq = (np.ascontiguousarray(qi), scale)
    bias = im.const(node, 2, "bias").astype(np.float64) if len(node.input) > 2 and node.input[2] else None
    ho = out_size(h, k[0], s[0], pad[0], pad[2])
    wo = out_size(wd, k[1], s[1], pad[1], pad[3])
    im.new_layer(node, _FLayer(op, node.name or node.output[0], [im.canon(x.name)], node.output[0],
                               (ho, wo, cout), kernel=k, stride=s, pad=pad,
                               weight=wir.astype(np.float64), weight_q=wq, bias=bias))


def _batchnorm(im: _Importer, node: onnx.NodeProto) -> None:
    layer = im.foldable(node)
    if layer is None or layer.op not in (Op.CONV, Op.DWCONV):
        raise _fail(f"node {node.name!r} (BatchNormalization): can only be folded into the Conv "
                    f"right before it, whose output it alone reads")
    scale, b, mean, var = (im.const(node, i, n).astype(np.float64).ravel()
                           for i, n in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")))
    eps = _attrs(node).get("epsilon", 1e-5)
    f = scale / np.sqrt(var + eps)
    layer.weight = layer.weight * (f[:, None, None, None] if layer.op == Op.CONV else f)
    if layer.weight_q is not None:  # int8 weights stay exact: fold |f| into the scale, sign into q
        q, s = layer.weight_q
        sign = np.where(f < 0, -1, 1)
        q = q * (sign[:, None, None, None] if layer.op == Op.CONV else sign)
        layer.weight_q = (q.astype(np.int8), s * np.abs(f))
    layer.bias = (layer.bias if layer.bias is not None else 0.0) * f + b - mean * f
    im.rename_output(layer, node)


def _activation(im: _Importer, node: onnx.NodeProto) -> None:
    if node.op_type == "Relu":
        kind, clip = "relu", None
    else:
        a = _attrs(node)
        lo = a.get("min", -math.inf)
        hi = a.get("max", math.inf)
        if len(node.input) > 1 and node.input[1]:
            lo = float(im.const(node, 1, "min"))
        if len(node.input) > 2 and node.input[2]:
            hi = float(im.const(node, 2, "max"))
        kind = "relu6" if (lo, hi) == (0.0, 6.0) else "relu" if (lo, hi) == (0.0, math.inf) else "clip"
        clip = (float(lo), float(hi))
    layer = im.foldable(node)
    if layer is None or layer.op == Op.MAXPOOL and kind != "relu":
        raise _fail(f"node {node.name!r} ({node.op_type}): an activation must directly follow the "
                    f"layer it belongs to (Conv, Gemm, Add, pooling) and be its only reader")
    layer.activation, layer.clip = kind, clip
    im.rename_output(layer, node, carry_q=True)


def _add(im: _Importer, node: onnx.NodeProto) -> None:
    a, b = node.input[0], node.input[1]
    if im.is_act(a) and im.is_act(b):
        ta, tb = im.values[a], im.values[b]
        assert isinstance(ta, _Act) and isinstance(tb, _Act)
        if ta.shape != tb.shape or ta.flat != tb.flat:
            raise _fail(f"node {node.name!r} (Add): shapes {ta.shape} and {tb.shape} differ "
                        f"(broadcasting adds are not supported)")
        if ta.flat:
            raise _fail(f"node {node.name!r} (Add): adds of flattened tensors are not supported")
        im.new_layer(node, _FLayer(Op.ADD, node.name or node.output[0], [im.canon(a), im.canon(b)],
                                   node.output[0], ta.shape))
        return
    if im.is_act(b) and not im.is_act(a):
        node = onnx.helper.make_node("Add", [b, a], list(node.output), name=node.name)
    layer = im.foldable(node) if im.is_act(node.input[0]) else None
    if layer is None or layer.op not in (Op.CONV, Op.DWCONV, Op.DENSE) or layer.activation != "none":
        raise _fail(f"node {node.name!r} (Add): adding a constant is supported only as the bias of "
                    f"the Conv/Gemm/MatMul right before it")
    c = np.asarray(im.const(node, 1, "addend"), dtype=np.float64).ravel()
    cout = layer.out_shape[2]
    if c.size not in (1, cout):
        raise _fail(f"node {node.name!r} (Add): constant of {c.size} values for {cout} channels")
    layer.bias = (layer.bias if layer.bias is not None else 0.0) + np.broadcast_to(c, (cout,))
    im.rename_output(layer, node)


def _pool(im: _Importer, node: onnx.NodeProto) -> None:
    x = im.act(node)
    a = _attrs(node)
    h, w, c = x.shape
    k = tuple(a["kernel_shape"])
    s = tuple(a.get("strides", [1, 1]))
    if len(k) != 2:
        raise _fail(f"node {node.name!r} ({node.op_type}): only 2-D pooling is supported")
    if a.get("ceil_mode", 0):
        raise _fail(f"node {node.name!r} ({node.op_type}): ceil_mode=1 is not supported")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise _fail(f"node {node.name!r} ({node.op_type}): dilations are not supported")
    pad = _pads_2d(node, a, (h, w), k, s)
    avg = node.op_type == "AveragePool"
    if avg and any(pad) and not a.get("count_include_pad", 0):
        raise _fail(f"node {node.name!r} (AveragePool): padding with count_include_pad=0 is not "
                    f"supported (the divisor would vary at the borders)")
    ho, wo = out_size(h, k[0], s[0], pad[0], pad[2]), out_size(w, k[1], s[1], pad[1], pad[3])
    if avg and (ho, wo) == (1, 1) and k == (h, w) and not any(pad):
        _gap(im, node)
        return
    im.new_layer(node, _FLayer(Op.AVGPOOL if avg else Op.MAXPOOL, node.name or node.output[0],
                               [im.canon(x.name)], node.output[0], (ho, wo, c), kernel=k, stride=s,
                               pad=pad, pool="avg" if avg else "max"))


def _gap(im: _Importer, node: onnx.NodeProto) -> None:
    x = im.act(node)
    if node.op_type == "ReduceMean":
        a = _attrs(node)
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = im.const(node, 1, "axes").tolist()
        if sorted(int(v) % 4 for v in (axes or [])) != [2, 3]:
            raise _fail(f"node {node.name!r} (ReduceMean): only the mean over H and W (axes 2, 3) "
                        f"is supported, got axes {axes}")
        keep = a.get("keepdims", 1)
    else:
        keep = 1
    h, w, c = x.shape
    im.new_layer(node, _FLayer(Op.GAP, node.name or node.output[0], [im.canon(x.name)],
                               node.output[0], (1, 1, c), kernel=(h, w)))
    if not keep:
        im.values[node.output[0]] = _Act(node.output[0], (1, 1, c), flat=True)


def _flatten(im: _Importer, node: onnx.NodeProto) -> None:
    x = im.act(node)
    if node.op_type == "Flatten" and _attrs(node).get("axis", 1) != 1:
        raise _fail(f"node {node.name!r} (Flatten): only axis=1 is supported")
    if node.op_type == "Reshape":
        target = [int(v) for v in im.const(node, 1, "shape")]
        total = x.shape[0] * x.shape[1] * x.shape[2]
        ok = (len(target) == 2 and target[0] in (1, -1, 0) and target[1] in (-1, total)) or \
             (len(target) == 4 and target[0] in (1, 0) and target[1:] in ([x.shape[2], x.shape[0], x.shape[1]],))
        if len(target) == 4 and ok:
            im.values[node.output[0]] = x  # no-op reshape
            return
        if not ok:
            raise _fail(f"node {node.name!r} (Reshape): only flattening to [1, {total}] is supported, "
                        f"got {target}")
    if node.op_type == "Squeeze":
        axes = _attrs(node).get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = im.const(node, 1, "axes").tolist()
        if x.shape[:2] != (1, 1) or sorted(int(a) % 4 for a in (axes or [2, 3])) != [2, 3]:
            raise _fail(f"node {node.name!r} (Squeeze): only squeezing a 1x1 spatial map is supported")
    im.values[node.output[0]] = _Act(x.name, x.shape, flat=True)


def _gemm(im: _Importer, node: onnx.NodeProto) -> None:
    x = im.act(node)
    a = _attrs(node) if node.op_type == "Gemm" else {}
    if a.get("transA", 0):
        raise _fail(f"node {node.name!r} (Gemm): transA=1 is not supported")
    if not x.flat and x.shape[:2] != (1, 1):
        raise _fail(f"node {node.name!r} ({node.op_type}): input must be flattened (Flatten/Reshape) "
                    f"before a dense layer, got an {x.shape[0]}x{x.shape[1]}x{x.shape[2]} map")
    wv = im.values.get(node.input[1])
    w = im.const(node, 1, "weights").astype(np.float64)
    if w.ndim != 2:
        raise _fail(f"node {node.name!r} ({node.op_type}): weights must be 2-D, got {w.shape}")
    trans = bool(a.get("transB", 0))
    wmat = w if trans else w.T  # (Cout, K), K in ONNX's NCHW flatten order
    h, wd, c = x.shape
    k = h * wd * c
    if wmat.shape[1] != k:
        raise _fail(f"node {node.name!r} ({node.op_type}): weights expect {wmat.shape[1]} inputs, "
                    f"the input has {k}")
    cout = wmat.shape[0]
    # ONNX flattens NCHW: column index c*H*W + y*W + x; msfsim's tensors are NHWC.
    perm = np.arange(k).reshape(c, h, wd).transpose(1, 2, 0).ravel()
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
    wq = None
    if isinstance(wv, _QConst) and np.all(wv.zero_point == 0) and wv.q.dtype == np.int8 and alpha == 1.0:
        qm = wv.q if trans else wv.q.T
        sc = np.broadcast_to(wv.scale.astype(np.float64).ravel(), (cout,)).copy()
        wq = (np.ascontiguousarray(qm[:, perm]), sc)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = np.broadcast_to(im.const(node, 2, "bias").astype(np.float64).ravel() * beta, (cout,)).copy()
    im.new_layer(node, _FLayer(Op.DENSE, node.name or node.output[0], [im.canon(x.name)],
                               node.output[0], (1, 1, cout), weight=alpha * wmat[:, perm],
                               weight_q=wq, bias=bias))
    im.values[node.output[0]] = _Act(node.output[0], (1, 1, cout), flat=True)


def _quantize(im: _Importer, node: onnx.NodeProto) -> None:
    x = im.values.get(node.input[0])
    scale = im.const(node, 1, "scale").astype(np.float64)
    zp = im.values.get(node.input[2]) if len(node.input) > 2 and node.input[2] else np.array(0, np.uint8)
    if not isinstance(x, _Act):  # quantising a constant: keep it as integer values
        zpa = np.asarray(zp)
        q = np.clip(np.round(np.asarray(x, np.float64) / scale) + zpa, -128, 127)
        im.values[node.output[0]] = _QConst(q.astype(np.int8), scale, zpa.astype(np.int64),
                                            _attrs(node).get("axis", 1))
        return
    zpa = np.asarray(zp)
    if scale.size != 1:
        raise _fail(f"node {node.name!r} (QuantizeLinear): per-channel activation quantisation is "
                    f"not supported")
    z = int(zpa.ravel()[0])
    if zpa.dtype == np.uint8:
        z -= 128  # uint8 activations map onto int8 by shifting the zero point
    elif zpa.dtype != np.int8:
        raise _fail(f"node {node.name!r} (QuantizeLinear): {zpa.dtype} activations are not supported "
                    f"(int8 or uint8)")
    name = im.canon(x.name)
    im.qparams.setdefault(name, QParams(float(scale.ravel()[0]), z))
    im.values[node.output[0]] = ("q", x)


def _dequantize(im: _Importer, node: onnx.NodeProto) -> None:
    v = im.values.get(node.input[0])
    if isinstance(v, tuple) and v and v[0] == "q":  # Q -> DQ pair: the float tensor itself
        x = v[1]
        im.values[node.output[0]] = x
        im.alias[node.output[0]] = x.name
        return
    if isinstance(v, _QConst):
        im.values[node.output[0]] = v
        return
    if isinstance(v, np.ndarray):
        scale = im.const(node, 1, "scale").astype(np.float64)
        zp = im.values.get(node.input[2]) if len(node.input) > 2 and node.input[2] else np.array(0)
        im.values[node.output[0]] = _QConst(v, scale.ravel(), np.asarray(zp).astype(np.int64).ravel(),
                                            _attrs(node).get("axis", 1))
        return
    raise _fail(f"node {node.name!r} (DequantizeLinear): input {node.input[0]!r} must be a "
                f"QuantizeLinear output or a constant (integer graph inputs are not supported)")


def _identity(im: _Importer, node: onnx.NodeProto) -> None:
    v = im.values.get(node.input[0])
    im.values[node.output[0]] = v
    if isinstance(v, _Act):
        im.alias[node.output[0]] = v.name


def _constant(im: _Importer, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    if "value" in a:
        im.values[node.output[0]] = numpy_helper.to_array(a["value"])
    elif "value_float" in a or "value_int" in a:
        im.values[node.output[0]] = np.array(a.get("value_float", a.get("value_int")))
    elif "value_floats" in a or "value_ints" in a:
        im.values[node.output[0]] = np.array(a.get("value_floats", a.get("value_ints")))
    else:
        raise _fail(f"node {node.name!r} (Constant): unsupported constant attribute {list(a)}")


def _const_fold(fn: Callable[[_Importer, onnx.NodeProto, dict], np.ndarray]):
    """Shape arithmetic on constants (e.g. PyTorch's `x.view(x.size(0), -1)`), folded at import."""
    def handler(im: _Importer, node: onnx.NodeProto) -> None:
        if node.op_type == "Squeeze" and im.is_act(node.input[0]):
            return _flatten(im, node)
        acts = [n for n in node.input if n and im.is_act(n)]
        if acts and node.op_type != "Shape":
            raise _fail(f"node {node.name!r}: unsupported op {node.op_type!r} on activation tensor "
                        f"{acts[0]!r}; supported: {', '.join(SUPPORTED_OPS)}")
        im.values[node.output[0]] = fn(im, node, _attrs(node))
    return handler


def _shape(im, node, a):
    x = im.values[node.input[0]]
    if isinstance(x, _Act):
        if x.flat:
            return np.array([1, x.shape[0] * x.shape[1] * x.shape[2]], np.int64)
        return np.array([1, x.shape[2], x.shape[0], x.shape[1]], np.int64)
    return np.array(np.asarray(x).shape, np.int64)


def _axes(im, node, a, k=1):
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    return [int(v) for v in im.const(node, k, "axes").ravel()]


_CONST_OPS = {
    "Shape": _shape,
    "Gather": lambda im, n, a: np.take(im.const(n, 0, "data"), im.const(n, 1, "indices"), axis=a.get("axis", 0)),
    "Unsqueeze": lambda im, n, a: np.expand_dims(im.const(n, 0, "data"), tuple(_axes(im, n, a))),
    "Squeeze": lambda im, n, a: np.squeeze(im.const(n, 0, "data"), tuple(_axes(im, n, a))),
    "Concat": lambda im, n, a: np.concatenate([np.atleast_1d(im.const(n, i, "input"))
                                               for i in range(len(n.input))], axis=a.get("axis", 0)),
    "Cast": lambda im, n, a: np.asarray(im.const(n, 0, "input")).astype(
        onnx.helper.tensor_dtype_to_np_dtype(a["to"])),
}

_HANDLERS: dict[str, Callable[[_Importer, onnx.NodeProto], None]] = {
    "Conv": _conv, "BatchNormalization": _batchnorm, "Relu": _activation, "Clip": _activation,
    "Add": _add, "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _gap,
    "ReduceMean": _gap, "Flatten": _flatten, "Reshape": _flatten, "Gemm": _gemm, "MatMul": _gemm,
    "QuantizeLinear": _quantize, "DequantizeLinear": _dequantize, "Identity": _identity,
    "Dropout": _identity, "Constant": _constant,
    **{k: _const_fold(v) for k, v in _CONST_OPS.items()},
}


def import_model(src: str | os.PathLike | onnx.ModelProto,
                 input_shape: tuple[int, int, int] | str | None = None,
                 name: str | None = None) -> Model:
    """Import an ONNX model (float or QDQ int8) into msfsim's IR.

    Raises `MsfsimError` with a one-line message naming the file, node, op or shape at fault.
    """
    proto, stem = load_onnx(src)
    if isinstance(input_shape, str):
        input_shape = parse_input_shape(input_shape)
    label = str(src) if not isinstance(src, onnx.ModelProto) else (name or stem)
    try:
        return _Importer(proto, name or stem, input_shape).run()
    except MsfsimError as exc:
        if isinstance(src, onnx.ModelProto):
            raise
        raise type(exc)(f"{label}: {exc}") from None
    except ValueError as exc:  # shape mismatches found while building the IR
        raise UnsupportedModel(f"{label}: {exc}") from None


def calibrate(src: str | os.PathLike | onnx.ModelProto,
              input_shape: tuple[int, int, int] | None = None) -> dict[str, QParams]:
    """Activation qparams msfsim would give a float model, by ONNX tensor name.

    Keys are the names of the tensors after folding (the output of the last node folded into each
    layer, e.g. the Relu's output), plus the graph input. Used by the zoo's QDQ export.
    """
    proto, stem = load_onnx(src)
    im = _Importer(proto, stem, input_shape)
    model = im.run()
    return {t.name: t.q for t in model.tensors}
