"""Model zoo: deterministic float32 ONNX models (opset 13) built with `onnx.helper`.

Every model has one NCHW input named `input` with a static [1, C, H, W] shape and one output named
`output`. Weights come from `numpy.random.default_rng` seeded by the model name, scaled He-like
(std = sqrt(gain / fan_in), gain 2 before a ReLU, 1 otherwise) so that activations stay within a
few units through the whole network. Two builds of a model serialise to identical bytes.

The models mix the idioms real exporters produce, so the importer meets them all: Conv followed by
an unfused BatchNormalization (PyTorch, Keras), Relu and Clip with min/max as inputs (ReLU6),
explicit asymmetric TF-"SAME" pads (tf2onnx), Flatten or Reshape, Gemm (transB=1) or MatMul + Add,
MaxPool, AveragePool and GlobalAveragePool.

`build_onnx(name, qdq=True)` gives the QDQ-int8 form of the same network, as static QDQ exporters
write it: BatchNorm folded into the conv, weights symmetric per-output-channel int8 + DequantizeLinear,
int32 biases in the accumulator scale (s_in * s_w) + DequantizeLinear, and a QuantizeLinear /
DequantizeLinear pair on the graph input and on every layer output (after its activation).
"""
from __future__ import annotations

import functools
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import MsfsimError, __version__
from .fileio import write_atomic
from .ir import Model, quantize_weights

OPSET = 13
IR_VERSION = 7          # the IR version of opset 13 (ONNX 1.8): loadable by older runtimes too
INPUT = "input"
OUTPUT = "output"
BN_EPS = 1e-5
BIAS_STD = 0.05         # biases are small next to unit-variance activations

# (scale, zero point) or any object with .scale and .zero_point (msfsim.ir.QParams)
QParamsMap = Mapping[str, object]


class ZooEntry(NamedTuple):
    name: str
    description: str
    input_shape: tuple[int, int, int, int]   # NCHW
    layers: int                              # msfsim IR layers (BN, activations, Flatten folded)


# ------------------------------------------------------------------------ graph builder

@dataclass(frozen=True)
class _T:
    """An activation tensor: its name in the float model (the key of its qparams) and shape."""
    name: str
    c: int
    h: int = 1
    w: int = 1
    flat: bool = False


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one axis: the odd pixel goes to the end."""
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class _Graph:
    """Emits a float model, or its QDQ form when `qparams` is given.

    Network code calls the same methods in both modes and every random draw happens in the same
    order, so the QDQ model quantises exactly the float model's weights.
    """

    def __init__(self, name: str, qparams: QParamsMap | None):
        self.name = name
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.qparams = qparams
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._init_names: set[str] = set()
        self.read: dict[str, str] = {}          # float tensor name -> name consumers read (QDQ)
        self.scale: dict[str, float] = {}       # float tensor name -> activation scale (QDQ)
        self.zero_point: dict[str, int] = {}    # float tensor name -> activation zero point (QDQ)
        self.input: _T | None = None

    @property
    def qdq(self) -> bool:
        return self.qparams is not None

    # -- plumbing
    def _const(self, name: str, value: np.ndarray) -> str:
        if name not in self._init_names:
            self._init_names.add(name)
            self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def _node(self, op: str, inputs: list[str], output: str, name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def _src(self, t: _T) -> str:
        return self.read.get(t.name, t.name)

    def _dst(self, name: str) -> str:
        """Name the producing node writes: in QDQ form the graph output is the last DQ's output."""
        return f"{name}_float" if self.qdq and name == OUTPUT else name

    def _qparams(self, name: str) -> tuple[float, int]:
        assert self.qparams is not None
        if name not in self.qparams:
            raise MsfsimError(f"zoo {self.name}: no quantisation parameters for tensor {name!r}")
        q = self.qparams[name]
        if hasattr(q, "scale"):
            return float(q.scale), int(q.zero_point)  # type: ignore[attr-defined]
        scale, zp = q  # type: ignore[misc]
        return float(scale), int(zp)

    def _finish(self, t: _T, share: _T | None = None) -> _T:
        """QDQ form: wrap the layer output `t` in a Q/DQ pair (with `share`'s qparams if given,
        as exporters do for max-pool and reshapes, which cannot change the scale)."""
        if not self.qdq:
            return t
        if share is not None:
            scale, zp = self.scale[share.name], self.zero_point[share.name]
        else:
            scale, zp = self._qparams(t.name)
        self.scale[t.name], self.zero_point[t.name] = scale, zp
        s = self._const(f"{t.name}.scale", np.array(scale, np.float32))
        z = self._const(f"{t.name}.zero_point", np.array(zp, np.int8))
        q = self._node("QuantizeLinear", [self._dst(t.name), s, z], f"{t.name}_quantized",
                       f"{t.name}.quantize")
        dq = OUTPUT if t.name == OUTPUT else f"{t.name}_dequantized"
        self.read[t.name] = self._node("DequantizeLinear", [q, s, z], dq, f"{t.name}.dequantize")
        return t

    def _weight(self, name: str, w: np.ndarray, axis: int) -> tuple[str, np.ndarray | None]:
        """Float initializer, or int8 per-channel symmetric + DequantizeLinear (QDQ) and its
        scales (which set the bias scale)."""
        if not self.qdq:
            return self._const(f"{name}.weight", w.astype(np.float32)), None
        wq, ws = quantize_weights(w, axis)
        ins = [self._const(f"{name}.weight_quantized", wq),
               self._const(f"{name}.weight_scale", ws.astype(np.float32)),
               self._const(f"{name}.weight_zero_point", np.zeros(ws.shape, np.int8))]
        out = self._node("DequantizeLinear", ins, f"{name}.weight_dequantized",
                         f"{name}.weight_dequantize", axis=axis)
        return out, ws.astype(np.float32).astype(np.float64)

    def _bias(self, name: str, b: np.ndarray, x: _T, w_scale: np.ndarray | None) -> str:
        """Float initializer, or int32 in scale s_in * s_w + DequantizeLinear (QDQ)."""
        if w_scale is None:
            return self._const(f"{name}.bias", b.astype(np.float32))
        s = (np.float32(self.scale[x.name]) * w_scale.astype(np.float32)).astype(np.float32)
        bq = np.clip(np.round(b / s.astype(np.float64)), -2**31, 2**31 - 1).astype(np.int32)
        ins = [self._const(f"{name}.bias_quantized", bq), self._const(f"{name}.bias_scale", s),
               self._const(f"{name}.bias_zero_point", np.zeros(s.shape, np.int32))]
        return self._node("DequantizeLinear", ins, f"{name}.bias_dequantized",
                          f"{name}.bias_dequantize", axis=0)

    def _act(self, x: str, name: str, act: str, out: str) -> str:
        if act == "relu":
            return self._node("Relu", [x], out, f"{name}.relu")
        if act == "relu6":  # opset 13 Clip: bounds are inputs, shared like an exporter does
            lo = self._const("relu6.min", np.array(0.0, np.float32))
            hi = self._const("relu6.max", np.array(6.0, np.float32))
            return self._node("Clip", [x, lo, hi], out, f"{name}.relu6")
        raise ValueError(f"unknown activation {act!r}")

    # Parameters are drawn as float32 values (what the float model stores) held in float64, so
    # that folding and quantising them here matches msfsim's import of the float model.
    def _normal(self, shape: tuple[int, ...], std: float) -> np.ndarray:
        return (self.rng.standard_normal(shape) * std).astype(np.float32).astype(np.float64)

    def _uniform(self, lo: float, hi: float, n: int) -> np.ndarray:
        return self.rng.uniform(lo, hi, n).astype(np.float32).astype(np.float64)

    # -- layers
    def image(self, c: int, h: int, w: int) -> _T:
        self.input = _T(INPUT, c, h, w)
        return self._finish(self.input)

    def conv(self, x: _T, name: str, cout: int, k: int | tuple[int, int], stride: int = 1,
             pad: str | int = "sym", groups: int = 1, bias: bool = True, bn: bool = False,
             act: str | None = None, out: str | None = None) -> _T:
        """Conv [+ BatchNormalization] [+ activation]. pad: "sym" (k//2 each side), "same" (TF)
        or an int for every side."""
        kh, kw = _pair(k)
        cin_g = x.c // groups
        w = self._normal((cout, cin_g, kh, kw), math.sqrt((2.0 if act else 1.0) / (cin_g * kh * kw)))
        b = self._normal((cout,), BIAS_STD) if bias else None
        if bn:
            gamma = self._uniform(0.8, 1.2, cout)
            beta = self._normal((cout,), BIAS_STD)
            mean = self._normal((cout,), BIAS_STD)
            var = self._uniform(0.8, 1.2, cout)
        if pad == "same":
            (pt, pb), (pl, pr) = _same_pads(x.h, kh, stride), _same_pads(x.w, kw, stride)
        elif pad == "sym":
            pt, pb, pl, pr = kh // 2, kh // 2, kw // 2, kw // 2
        else:
            pt = pb = pl = pr = int(pad)
        y = _T(out or f"{name}.{act or ('bn' if bn else 'conv')}", cout,
               (x.h + pt + pb - kh) // stride + 1, (x.w + pl + pr - kw) // stride + 1)
        attrs = dict(kernel_shape=[kh, kw], strides=[stride, stride], pads=[pt, pl, pb, pr])
        if groups != 1:
            attrs["group"] = groups
        if self.qdq:  # BatchNorm folded into the conv, as QDQ exporters do
            if bn:
                f = gamma / np.sqrt(var + BN_EPS)
                w = w * f[:, None, None, None]
                b = ((b if b is not None else 0.0) - mean) * f + beta
            wname, ws = self._weight(name, w, 0)
            ins = [self._src(x), wname] + ([self._bias(name, b, x, ws)] if b is not None else [])
            t = self._node("Conv", ins, self._dst(y.name) if not act else f"{name}.conv",
                           f"{name}.conv", **attrs)
        else:
            wname, _ = self._weight(name, w, 0)
            ins = [x.name, wname] + ([self._bias(name, b, x, None)] if b is not None else [])
            t = self._node("Conv", ins, y.name if not (bn or act) else f"{name}.conv",
                           f"{name}.conv", **attrs)
            if bn:
                params = [self._const(f"{name}.bn.{p}", v.astype(np.float32)) for p, v in
                          (("scale", gamma), ("bias", beta), ("mean", mean), ("var", var))]
                t = self._node("BatchNormalization", [t, *params],
                               y.name if not act else f"{name}.bn", f"{name}.bn", epsilon=BN_EPS)
        if act:
            self._act(t, name, act, self._dst(y.name))
        return self._finish(y)

    def add(self, a: _T, b: _T, name: str, act: str | None = None) -> _T:
        """Residual Add `name`.add [+ activation `name`.act]."""
        y = _T(f"{name}.{act or 'add'}", a.c, a.h, a.w)
        t = self._node("Add", [self._src(a), self._src(b)], f"{name}.add", f"{name}.add")
        if act:
            self._act(t, name, act, y.name)
        return self._finish(y)

    def maxpool(self, x: _T, name: str, k: int, stride: int) -> _T:
        y = _T(name, x.c, (x.h - k) // stride + 1, (x.w - k) // stride + 1)
        self._node("MaxPool", [self._src(x)], y.name, name, kernel_shape=[k, k],
                   strides=[stride, stride])
        return self._finish(y, share=x)

    def avgpool(self, x: _T, name: str, k: tuple[int, int]) -> _T:
        y = _T(name, x.c, (x.h - k[0]) // k[0] + 1, (x.w - k[1]) // k[1] + 1)
        self._node("AveragePool", [self._src(x)], y.name, name, kernel_shape=list(k),
                   strides=list(k))
        return self._finish(y)

    def gap(self, x: _T, name: str) -> _T:
        y = _T(name, x.c)
        self._node("GlobalAveragePool", [self._src(x)], y.name, name)
        return self._finish(y)

    def flatten(self, x: _T, name: str, reshape: bool = False) -> _T:
        y = _T(name, x.c * x.h * x.w, flat=True)
        if reshape:
            shape = self._const(f"{name}.shape", np.array([1, -1], np.int64))
            self._node("Reshape", [self._src(x), shape], y.name, name)
        else:
            self._node("Flatten", [self._src(x)], y.name, name, axis=1)
        return self._finish(y, share=x)

    def dense(self, x: _T, name: str, cout: int, act: str | None = None, matmul: bool = False,
              out: str | None = None) -> _T:
        """Gemm (transB=1, weights (cout, in), PyTorch's Linear) or MatMul + Add (tf2onnx's Dense,
        weights (in, cout))."""
        w = self._normal((cout, x.c), math.sqrt((2.0 if act else 1.0) / x.c))
        b = self._normal((cout,), BIAS_STD)
        y = _T(out or f"{name}.{act or ('add' if matmul else 'gemm')}", cout, flat=True)
        pre = f"{name}.{'add' if matmul else 'gemm'}" if act else self._dst(y.name)
        wname, ws = self._weight(name, w.T if matmul else w, 1 if matmul else 0)
        bname = self._bias(name, b, x, ws)
        if matmul:
            t = self._node("MatMul", [self._src(x), wname], f"{name}.matmul", f"{name}.matmul")
            t = self._node("Add", [t, bname], pre, f"{name}.add")
        else:
            t = self._node("Gemm", [self._src(x), wname, bname], pre, f"{name}.gemm", transB=1)
        if act:
            self._act(t, name, act, self._dst(y.name))
        return self._finish(y)

    def model(self, y: _T, doc: str) -> onnx.ModelProto:
        assert self.input is not None and y.name == OUTPUT
        x = self.input
        out_shape = [1, y.c] if y.flat else [1, y.c, y.h, y.w]
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, x.c, x.h, x.w])],
            [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, out_shape)],
            initializer=self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="msfsim.zoo", producer_version=__version__,
                              doc_string=doc)
        m.ir_version = IR_VERSION
        return m


# ------------------------------------------------------------------------ networks

def _inverted_residual(g: _Graph, x: _T, name: str, cout: int, stride: int, expand: int, k: int,
                       act: str, bn: bool) -> _T:
    """MobileNetV2 block: [1x1 expand] -> dw kxk -> 1x1 project (linear), + input if shapes allow."""
    hidden = int(round(x.c * expand))
    y = x
    if expand != 1:
        y = g.conv(y, f"{name}.expand", hidden, 1, bias=not bn, bn=bn, act=act)
    y = g.conv(y, f"{name}.dw", hidden, k, stride=stride, groups=hidden, bias=not bn, bn=bn, act=act)
    y = g.conv(y, f"{name}.project", cout, 1, bias=not bn, bn=bn)
    if stride == 1 and x.c == cout:
        y = g.add(x, y, name)
    return y


# Published proxies (DESIGN §2). Entries: ("conv", cout, k, s) | ("dw", k, s) |
# ("mb", cin, cout, e, s, k) with MB = conv1x1 to cin*e -> dw kxk stride s -> conv1x1 to cout.
def _mb(cin: int, cout: int, e: int, s: int, k: int, n: int = 1) -> list[tuple]:
    return [("mb", cin, cout, e, s, k)] * n


PROXY_SPECS: dict[str, tuple[int, list[tuple]]] = {
    "mbv2-w0.35-r144": (144, [
        ("conv", 11, 3, 2), *_mb(11, 5, 1, 1, 3), *_mb(5, 8, 6, 2, 3), *_mb(8, 8, 6, 1, 3),
        *_mb(8, 11, 6, 2, 3), *_mb(11, 11, 6, 1, 3, 2), *_mb(11, 22, 6, 2, 3),
        *_mb(22, 22, 6, 1, 3, 3), *_mb(22, 33, 6, 1, 3), *_mb(33, 33, 6, 1, 3, 2),
        *_mb(33, 56, 6, 2, 3), *_mb(56, 56, 6, 1, 3, 2), *_mb(56, 112, 6, 1, 3),
        ("conv", 448, 1, 1)]),
    # MB(40,48) expands by 6, as in msf-CNN's own model definition: with e=1 the published RAM
    # figures still match but the published overhead (F = 1.96 at 12,000 B) does not.
    "mcunetv2-vww5-r80": (80, [
        ("conv", 16, 3, 2), ("dw", 3, 1), ("conv", 8, 1, 1), *_mb(8, 16, 6, 2, 3),
        *_mb(16, 16, 3, 1, 3, 2), *_mb(16, 24, 3, 2, 7), *_mb(24, 24, 6, 1, 3),
        *_mb(24, 24, 5, 1, 5), *_mb(24, 40, 6, 2, 7), *_mb(40, 40, 6, 1, 7), *_mb(40, 48, 6, 1, 3),
        *_mb(48, 48, 4, 1, 3), *_mb(48, 96, 5, 2, 5), *_mb(96, 96, 5, 1, 3), *_mb(96, 96, 4, 1, 3),
        *_mb(96, 160, 3, 1, 7)]),
    "mcunet-320kb-r176": (176, [
        ("conv", 16, 3, 2), ("dw", 3, 1), ("conv", 8, 1, 1), *_mb(8, 16, 3, 2, 7),
        *_mb(16, 16, 5, 1, 3), *_mb(16, 16, 5, 1, 7), *_mb(16, 16, 4, 1, 5), *_mb(16, 24, 5, 2, 5),
        *_mb(24, 24, 5, 1, 5, 2), *_mb(24, 40, 5, 2, 3), *_mb(40, 40, 6, 1, 7),
        *_mb(40, 40, 4, 1, 5), *_mb(40, 48, 5, 1, 5), *_mb(48, 48, 5, 1, 7), *_mb(48, 48, 5, 1, 3),
        *_mb(48, 96, 6, 2, 3), *_mb(96, 96, 5, 1, 7), *_mb(96, 96, 4, 1, 3),
        *_mb(96, 160, 5, 1, 7)]),
}


def _proxy(g: _Graph, res: int, spec: list[tuple]) -> _T:
    """A linear chain (bias, no activation, no skip) with the published shapes."""
    steps: list[tuple[str, int, int, int, int]] = []  # (name, cout, k, stride, groups)
    for i, item in enumerate(spec):
        kind = item[0]
        if kind == "conv":
            steps.append((f"layer{i}", item[1], item[2], item[3], 1))
        elif kind == "dw":
            steps.append((f"layer{i}.dw", -1, item[1], item[2], 0))
        else:
            _, cin, cout, e, s, k = item
            steps += [(f"mb{i}.expand", cin * e, 1, 1, 1), (f"mb{i}.dw", -1, k, s, 0),
                      (f"mb{i}.project", cout, 1, 1, 1)]
    x = g.image(3, res, res)
    for n, (name, cout, k, s, groups) in enumerate(steps):
        if groups == 0:  # depthwise: as many outputs as inputs
            cout, groups = x.c, x.c
        x = g.conv(x, name, cout, k, stride=s, groups=groups,
                   out=OUTPUT if n == len(steps) - 1 else None)
    return x


def _make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: nearest multiple of 8, never more than 10 % below v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


MBV2_CLASSES = 100  # 1000 would not fit 1 MB of flash in int8 with this backbone


def _mobilenetv2(g: _Graph) -> _T:
    """torchvision MobileNetV2(width_mult=0.35) at 144x144, PyTorch export idioms."""
    wm = 0.35
    x = g.image(3, 144, 144)
    x = g.conv(x, "features.0", _make_divisible(32 * wm), 3, stride=2, bias=False, bn=True,
               act="relu6")
    i = 1
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]:
        for r in range(n):
            x = _inverted_residual(g, x, f"features.{i}", _make_divisible(c * wm),
                                   s if r == 0 else 1, t, 3, "relu6", bn=True)
            i += 1
    x = g.conv(x, f"features.{i}", _make_divisible(1280 * max(1.0, wm)), 1, bias=False, bn=True,
               act="relu6")
    x = g.gap(x, "avgpool")
    x = g.flatten(x, "flatten")
    return g.dense(x, "classifier", MBV2_CLASSES, out=OUTPUT)


def _mcunet_res(g: _Graph) -> _T:
    """MCUNet-style searched net: kernels 3/5/7, mixed expansions, residuals, ReLU6; BN already
    folded into conv biases (a deploy-time export)."""
    x = g.image(3, 96, 96)
    x = g.conv(x, "stem", 16, 3, stride=2, act="relu6")
    blocks = [(8, 1, 1, 3), (16, 3, 2, 7), (16, 3, 1, 3), (24, 4, 2, 5), (24, 4, 1, 3),
              (24, 3, 1, 5), (40, 4, 2, 7), (40, 4, 1, 5), (48, 4, 1, 3), (48, 3, 1, 5),
              (96, 5, 2, 7), (96, 4, 1, 3), (160, 4, 1, 5)]  # (cout, expand, stride, kernel)
    for i, (cout, e, s, k) in enumerate(blocks):
        x = _inverted_residual(g, x, f"blocks.{i}", cout, s, e, k, "relu6", bn=False)
    x = g.gap(x, "pool")
    x = g.flatten(x, "reshape", reshape=True)
    return g.dense(x, "classifier", 2, out=OUTPUT)


def _vww_mbv1(g: _Graph) -> _T:
    """MLPerf Tiny visual wake words: MobileNetV1 alpha 0.25, Keras/tf2onnx idioms."""
    x = g.image(3, 96, 96)
    x = g.conv(x, "conv1", 8, 3, stride=2, pad="same", bn=True, act="relu")
    spec = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)] + [(128, 1)] * 5 \
        + [(256, 2), (256, 1)]
    for i, (c, s) in enumerate(spec, 1):
        x = g.conv(x, f"dw{i}", x.c, 3, stride=s, pad="same", groups=x.c, bn=True, act="relu")
        x = g.conv(x, f"pw{i}", c, 1, bn=True, act="relu")
    x = g.avgpool(x, "pool", (x.h, x.w))
    x = g.flatten(x, "reshape", reshape=True)
    return g.dense(x, "dense", 2, matmul=True, out=OUTPUT)


def _resnet8(g: _Graph) -> _T:
    """MLPerf Tiny image classification: ResNet-8 on CIFAR-10, Keras/tf2onnx idioms."""
    x = g.image(3, 32, 32)
    x = g.conv(x, "conv1", 16, 3, pad="same", bn=True, act="relu")
    for stack, (c, s) in enumerate([(16, 1), (32, 2), (64, 2)], 1):
        y = g.conv(x, f"stack{stack}.conv1", c, 3, stride=s, pad="same", bn=True, act="relu")
        y = g.conv(y, f"stack{stack}.conv2", c, 3, pad="same", bn=True)
        if s != 1:  # projection shortcut, no BatchNorm in the reference model
            x = g.conv(x, f"stack{stack}.shortcut", c, 1, stride=s, pad="same")
        x = g.add(x, y, f"stack{stack}", act="relu")
    x = g.avgpool(x, "pool", (x.h, x.w))
    x = g.flatten(x, "flatten")
    return g.dense(x, "dense", 10, matmul=True, out=OUTPUT)


def _dscnn(g: _Graph) -> _T:
    """MLPerf Tiny keyword spotting: DS-CNN on 49x10 MFCC features, Keras/tf2onnx idioms."""
    x = g.image(1, 49, 10)
    x = g.conv(x, "conv1", 64, (10, 4), stride=2, pad="same", bn=True, act="relu")
    for i in range(1, 5):
        x = g.conv(x, f"dw{i}", 64, 3, pad="same", groups=64, bn=True, act="relu")
        x = g.conv(x, f"pw{i}", 64, 1, bn=True, act="relu")
    x = g.avgpool(x, "pool", (x.h, x.w))
    x = g.flatten(x, "flatten")
    return g.dense(x, "dense", 12, out=OUTPUT)


def _lenet5(g: _Graph) -> _T:
    """LeNet-5 on 28x28 digits (first conv padded to keep 28x28, as for MNIST)."""
    x = g.image(1, 28, 28)
    x = g.conv(x, "conv1", 6, 5, pad=2, act="relu")
    x = g.maxpool(x, "pool1", 2, 2)
    x = g.conv(x, "conv2", 16, 5, pad=0, act="relu")
    x = g.maxpool(x, "pool2", 2, 2)
    x = g.flatten(x, "flatten")
    x = g.dense(x, "fc1", 120, act="relu")
    x = g.dense(x, "fc2", 84, act="relu")
    return g.dense(x, "fc3", 10, out=OUTPUT)


def _proxy_builder(name: str) -> Callable[[_Graph], _T]:
    res, spec = PROXY_SPECS[name]
    return lambda g: _proxy(g, res, spec)


_PROXY_DOC = "msf-CNN proxy (conv1x1-dw-conv1x1 chain, bias, no activation or skip)"
_MODELS: dict[str, tuple[ZooEntry, Callable[[_Graph], _T]]] = {e.name: (e, f) for e, f in [
    (ZooEntry("mbv2-w0.35-r144", f"MobileNetV2-w0.35 shapes, {_PROXY_DOC}", (1, 3, 144, 144), 53),
     _proxy_builder("mbv2-w0.35-r144")),
    (ZooEntry("mcunetv2-vww5-r80", f"MCUNetV2 VWW 5 fps shapes, {_PROXY_DOC}", (1, 3, 80, 80), 45),
     _proxy_builder("mcunetv2-vww5-r80")),
    (ZooEntry("mcunet-320kb-r176", f"MCUNet 320 KB ImageNet shapes, {_PROXY_DOC}",
              (1, 3, 176, 176), 54), _proxy_builder("mcunet-320kb-r176")),
    (ZooEntry("mobilenetv2-w0.35-r144", "MobileNetV2 width 0.35: Conv+BN+ReLU6, residual adds, "
              f"GAP, Gemm {MBV2_CLASSES} classes", (1, 3, 144, 144), 64), _mobilenetv2),
    (ZooEntry("mcunet-res-r96", "MCUNet-style net: kernels 3/5/7, residual adds, ReLU6, GAP, "
              "Gemm 2 classes", (1, 3, 96, 96), 47), _mcunet_res),
    (ZooEntry("vww-mbv1-0.25-r96", "MLPerf Tiny VWW MobileNetV1 0.25: Conv+BN+ReLU, SAME pads, "
              "AveragePool, MatMul+Add 2 classes", (1, 3, 96, 96), 29), _vww_mbv1),
    (ZooEntry("resnet8-r32", "MLPerf Tiny ResNet-8 (CIFAR-10): residual adds, 1x1 stride-2 "
              "shortcuts, AveragePool, MatMul+Add 10 classes", (1, 3, 32, 32), 14), _resnet8),
    (ZooEntry("dscnn-kws", "MLPerf Tiny DS-CNN keyword spotting: 49x10 MFCC, conv 10x4 s2, "
              "4 depthwise-separable blocks, AveragePool, Gemm 12 classes", (1, 1, 49, 10), 11),
     _dscnn),
    (ZooEntry("lenet5-r28", "LeNet-5: conv5x5, MaxPool, Flatten, Gemm 120/84/10 with Relu",
              (1, 1, 28, 28), 7), _lenet5),
]}

NAMES: tuple[str, ...] = tuple(_MODELS)
PROXIES: tuple[str, ...] = tuple(PROXY_SPECS)


def list_models() -> list[ZooEntry]:
    return [entry for entry, _ in _MODELS.values()]


def _lookup(name: str) -> tuple[ZooEntry, Callable[[_Graph], _T]]:
    if name not in _MODELS:
        raise MsfsimError(f"unknown zoo model {name!r}; available: {', '.join(NAMES)}")
    return _MODELS[name]


def build_onnx(name: str, qdq: bool = False, qparams: QParamsMap | None = None) -> onnx.ModelProto:
    """The zoo model `name` as float32 ONNX, or in QDQ-int8 form when `qdq`.

    The QDQ form's activation scales and zero points are `qparams` (float tensor name ->
    (scale, zero point) or QParams), by default what `msfsim.onnx_import.calibrate` gives the
    float model, so that the QDQ export and msfsim's own quantisation of the float model agree.
    """
    entry, net = _lookup(name)
    if not qdq:
        g = _Graph(name, None)
        return g.model(net(g), entry.description)
    if qparams is None:
        from .onnx_import import calibrate
        qparams = calibrate(build_onnx(name))
    g = _Graph(name, qparams)
    return g.model(net(g), entry.description + " (QDQ int8)")


def export(name: str, path: str | os.PathLike, qdq: bool = False) -> Path:
    """Write the model to `path` atomically (a temporary file in the same directory, renamed)."""
    return write_atomic(path, build_onnx(name, qdq).SerializeToString())


@functools.lru_cache(maxsize=None)
def load(name: str) -> Model:
    """The zoo model imported into msfsim's IR (float export, quantised by the importer)."""
    from .onnx_import import import_model
    _lookup(name)
    return import_model(build_onnx(name))
