"""lut: any int8 -> int8 unary activation, as a 256-entry table: out = table[x + 128].

The table is computed when the model is imported, by the exact integer semantics of the
source framework: TFLM's int8 HARD_SWISH, LOGISTIC, TANH and MUL by a constant scalar
(msfsim.importers.tflite.luts); for ONNX models, the float function on every dequantised
input value, quantised to the output (`float_table`). Shape-preserving and read pixel by pixel
(window 1x1, stride 1): it tiles and fuses like any spatial layer. The table is the layer's
`weight` (256 int8), in flash. Kernel: `msf_lut_s8`.
ONNX: HardSwish, HardSigmoid, Sigmoid, Tanh.
"""
from __future__ import annotations

import math

import numpy as np

from msfsim import UnsupportedModel
from msfsim.names import shown
from msfsim.ops.base import (CArray, CKernel, CStruct, FloatLayer, LayerLike, ModelLike,
                             OpDef, QParamsLike, named, register)
from msfsim.ops.kinds import Op

TABLE_SIZE = 256


def lut(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    return np.asarray(table, np.int8)[x.astype(np.int16) + 128]


def _hard_sigmoid(x: np.ndarray, alpha: float = 1.0 / 6.0, beta: float = 0.5) -> np.ndarray:
    return np.clip(alpha * x + beta, 0.0, 1.0)


# The float functions ONNX activations lower to: name -> f(x, attributes).
FUNCTIONS = {
    "hardswish": lambda x, a: x * _hard_sigmoid(x),
    "hardsigmoid": lambda x, a: _hard_sigmoid(x, a.get("alpha", 0.2), a.get("beta", 0.5)),
    "sigmoid": lambda x, a: 1.0 / (1.0 + np.exp(-x)),
    "tanh": lambda x, a: np.tanh(x),
}


def float_table(fn: str, attrs: dict, in_q: QParamsLike, out_q: QParamsLike,
                clip: tuple[float, float] | None = None) -> np.ndarray:
    """round(q_out(f(dq_in(x)))) for every int8 x, in float64, halves to even (as
    onnxruntime's QuantizeLinear); `clip` bounds f (a folded Relu / Clip)."""
    x = (np.arange(-128, 128, dtype=np.float64) - in_q.zero_point) * in_q.scale
    with np.errstate(over="ignore"):
        y = FUNCTIONS[fn](x, attrs)
    if clip is not None:
        y = np.clip(y, clip[0], clip[1])
    q = np.rint(y / out_q.scale) + out_q.zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def lower_unary(ctx, node) -> None:
    x = ctx.act(node)
    a = ctx.attrs(node)
    fn = node.op_type.lower()
    attrs = {k: float(a[k]) for k in ("alpha", "beta") if k in a}
    for k, v in attrs.items():
        if not math.isfinite(v):
            raise UnsupportedModel(f"{ctx.where(node)}: {k} {v} is not finite")
    ctx.new_layer(node, FloatLayer(Op.LUT, node.name or node.output[0], [ctx.canon(x.name)],
                                   node.output[0], x.shape, attrs={"fn": fn, **attrs}))
    if x.flat:
        ctx.define(node.output[0], x.shape, flat=True)


LUT = CKernel("MSF_OP_LUT", 9, "msf_lut_s8",
              spatial="msf_lut_s8(in, (const msf_lut_params *)l->params, out, oy, ox, oh, ow);")


class LutOp(OpDef):
    op = Op.LUT
    spatial = True
    elementwise = True
    c_kernels = (LUT,)
    c_header = "msf_lut_s8.h"
    onnx = {"HardSwish": lower_unary, "HardSigmoid": lower_unary, "Sigmoid": lower_unary,
            "Tanh": lower_unary}

    def out_shape(self, layer, in_shapes):
        return in_shapes[0]

    def build(self, b, x: int, table: np.ndarray, out_q: QParamsLike, name: str | None = None,
              out_name: str | None = None, activation: str = "lut") -> int:
        table = np.asarray(table)
        if table.shape != (TABLE_SIZE,) or table.dtype != np.int8:
            raise ValueError(f"lut {shown(name)}: table must be 256 int8 values")
        y = b.new_tensor(out_name or f"t{len(b.tensors)}", b.tensors[x].shape, out_q)
        return b.new_layer(op=Op.LUT, inputs=(x,), output=y, weight=table,
                           activation=activation, **named(name))

    def quantize(self, b, layer: FloatLayer, ins, out_q):
        fn = layer.attrs["fn"]
        clip = None
        if layer.activation in ("relu", "relu6", "clip"):
            clip = layer.clip or (0.0, 6.0 if layer.activation == "relu6" else math.inf)
        table = float_table(fn, layer.attrs, b.tensors[ins[0]].q, out_q, clip)
        return self.build(b, ins[0], table, out_q, name=layer.name, out_name=layer.output,
                          activation=fn)

    def reference(self, model, layer, xs):
        return lut(xs[0], layer.weight)

    def float_eval(self, layer, xs):
        return FUNCTIONS[layer.attrs["fn"]](xs[0], layer.attrs)

    def c_params(self, model: ModelLike, layer: LayerLike):
        i = layer.index
        return [CArray("int8_t", f"l{i}_table", layer.weight),
                CStruct("msf_lut_params", f"l{i}_params", {"table": f"l{i}_table"})]


register(LutOp())
