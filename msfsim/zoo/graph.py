"""The ONNX graph builder of the zoo: one set of layer methods that emits a float model, or its
QDQ-int8 form, from the same random draws (seeded by the model name, He-like scales), so that
the QDQ model quantises exactly the float model's weights (msfsim.zoo says what both look like).
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from msfsim import MsfsimError, __version__
from msfsim.ir import quantize_weights

OPSET = 13
OPSET_HARDSWISH = 14    # HardSwish is an opset 14 op: the models using it declare 14
IR_VERSION = 7          # the IR version of opsets 13 and 14: loadable by older runtimes too
INPUT = "input"
OUTPUT = "output"
BN_EPS = 1e-5
BIAS_STD = 0.05         # biases are small next to unit-variance activations

# (scale, zero point) or any object with .scale and .zero_point (msfsim.ir.QParams)
QParamsMap = Mapping[str, object]


@dataclass(frozen=True)
class Activation:
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


class GraphBuilder:
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
        self.input: Activation | None = None
        self.opset = OPSET

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

    def _src(self, t: Activation) -> str:
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

    def _finish(self, t: Activation, share: Activation | None = None) -> Activation:
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

    def _bias(self, name: str, b: np.ndarray, x: Activation, w_scale: np.ndarray | None) -> str:
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
    def image(self, c: int, h: int, w: int) -> Activation:
        self.input = Activation(INPUT, c, h, w)
        return self._finish(self.input)

    def conv(self, x: Activation, name: str, cout: int, k: int | tuple[int, int], stride: int = 1,
             pad: str | int = "sym", groups: int = 1, bias: bool = True, bn: bool = False,
             act: str | None = None, out: str | None = None) -> Activation:
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
        y = Activation(out or f"{name}.{act or ('bn' if bn else 'conv')}", cout,
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

    def add(self, a: Activation, b: Activation, name: str, act: str | None = None) -> Activation:
        """Residual Add `name`.add [+ activation `name`.act]."""
        y = Activation(f"{name}.{act or 'add'}", a.c, a.h, a.w)
        t = self._node("Add", [self._src(a), self._src(b)], f"{name}.add", f"{name}.add")
        if act:
            self._act(t, name, act, y.name)
        return self._finish(y)

    def maxpool(self, x: Activation, name: str, k: int, stride: int) -> Activation:
        y = Activation(name, x.c, (x.h - k) // stride + 1, (x.w - k) // stride + 1)
        self._node("MaxPool", [self._src(x)], y.name, name, kernel_shape=[k, k],
                   strides=[stride, stride])
        return self._finish(y, share=x)

    def avgpool(self, x: Activation, name: str, k: tuple[int, int]) -> Activation:
        y = Activation(name, x.c, (x.h - k[0]) // k[0] + 1, (x.w - k[1]) // k[1] + 1)
        self._node("AveragePool", [self._src(x)], y.name, name, kernel_shape=list(k),
                   strides=list(k))
        return self._finish(y)

    def gap(self, x: Activation, name: str) -> Activation:
        y = Activation(name, x.c)
        self._node("GlobalAveragePool", [self._src(x)], y.name, name)
        return self._finish(y)

    def unary(self, x: Activation, op: str, name: str, out: str | None = None,
              **attrs: float) -> Activation:
        """An elementwise activation node (HardSwish, HardSigmoid, Sigmoid) of its own."""
        if op == "HardSwish":
            self.opset = max(self.opset, OPSET_HARDSWISH)
        y = Activation(out or name, x.c, x.h, x.w, x.flat)
        self._node(op, [self._src(x)], self._dst(y.name), name, **attrs)
        return self._finish(y)

    def mul(self, a: Activation, b: Activation, name: str) -> Activation:
        """Mul of two activations; b of a's shape or (C, 1, 1) broadcast over H and W."""
        y = Activation(name, a.c, a.h, a.w)
        self._node("Mul", [self._src(a), self._src(b)], self._dst(y.name), name)
        return self._finish(y)

    def concat(self, xs: list[Activation], name: str) -> Activation:
        """Concat along channels (the calibration quantises its private inputs as its output,
        as TFLiteConverter does and TFLite's int8 CONCATENATION requires)."""
        y = Activation(name, sum(x.c for x in xs), xs[0].h, xs[0].w)
        self._node("Concat", [self._src(x) for x in xs], self._dst(y.name), name, axis=1)
        return self._finish(y)

    def flatten(self, x: Activation, name: str, reshape: bool = False) -> Activation:
        y = Activation(name, x.c * x.h * x.w, flat=True)
        if reshape:
            shape = self._const(f"{name}.shape", np.array([1, -1], np.int64))
            self._node("Reshape", [self._src(x), shape], self._dst(y.name), name)
        else:
            self._node("Flatten", [self._src(x)], self._dst(y.name), name, axis=1)
        return self._finish(y, share=x)

    def dense(self, x: Activation, name: str, cout: int, act: str | None = None,
              matmul: bool = False, out: str | None = None) -> Activation:
        """Gemm (transB=1, weights (cout, in), PyTorch's Linear) or MatMul + Add (tf2onnx's Dense,
        weights (in, cout))."""
        w = self._normal((cout, x.c), math.sqrt((2.0 if act else 1.0) / x.c))
        b = self._normal((cout,), BIAS_STD)
        y = Activation(out or f"{name}.{act or ('add' if matmul else 'gemm')}", cout, flat=True)
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

    def model(self, y: Activation, doc: str) -> onnx.ModelProto:
        assert self.input is not None and y.name == OUTPUT
        x = self.input
        out_shape = [1, y.c] if y.flat else [1, y.c, y.h, y.w]
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, x.c, x.h, x.w])],
            [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, out_shape)],
            initializer=self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                              producer_name="msfsim.zoo", producer_version=__version__,
                              doc_string=doc)
        m.ir_version = IR_VERSION
        return m
