"""lut: any int8 -> int8 unary activation, as a 256-entry table: out = table[x + 128], or one
table per channel (C x 256: out = table[c][x + 128]) where the function differs per channel.

The table is computed when the model is imported, by the exact integer semantics of the
source framework: TFLM's int8 HARD_SWISH, LOGISTIC, TANH and MUL by a constant scalar
(msfsim.importers.tflite.luts); for ONNX models, the float function on every dequantised
input value, quantised to the output (`float_table`); per channel, TFLM's ADD / SUB / MUL of a
constant per channel and PRELU (a Keras BatchNormalization or Normalization the converter could
not fold, PReLU). Shape-preserving and read pixel by pixel (window 1x1, stride 1): it tiles and
fuses like any spatial layer. The table is the layer's `weight` (256 or C x 256 int8), in flash.
Kernels: `msf_lut_s8`, `msf_lut_channels_s8`.
ONNX: HardSwish, HardSigmoid, Sigmoid, Tanh, LeakyRelu, Elu, Selu, Softplus, Softsign, Mish,
Erf, Gelu (exact or tanh), Abs, Neg, PRelu with one slope;
Relu / Clip that cannot fold into the layer before them (msfsim.importers.onnx.handlers); Mul,
Add, Sub or Div of an activation and one constant number (msfsim.ops.add for Add / Sub).
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


def collapse(table: np.ndarray) -> np.ndarray:
    """A table per channel whose channels all hold the same table as that one table."""
    if table.ndim == 2 and table.shape[0] >= 1 and np.all(table == table[:1]):
        return table[0]
    return table


def lut(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """x (..., C) through one table (256,) or a table per channel (C, 256)."""
    table = np.asarray(table, np.int8)
    i = x.astype(np.int16) + 128
    if table.ndim == 1:
        return table[i]
    return table[np.arange(table.shape[0]), i]


def _hard_sigmoid(x: np.ndarray, alpha: float = 1.0 / 6.0, beta: float = 0.5) -> np.ndarray:
    return np.clip(alpha * x + beta, 0.0, 1.0)


def _elu(x: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _gelu(x: np.ndarray, tanh: bool) -> np.ndarray:
    """ONNX Gelu: x * Phi(x), or its tanh approximation."""
    if tanh:
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


# ONNX's Selu defaults (its operator schema)
SELU_ALPHA, SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875

# The float functions ONNX nodes lower to: name -> f(x, attributes), attributes as ONNX names
# them (defaults: ONNX's), plus msfsim's own: clip (min, max), affine (x * scale + shift) and
# div (x / divisor) for arithmetic with a constant number.
FUNCTIONS = {
    "hardswish": lambda x, a: x * _hard_sigmoid(x),
    "hardsigmoid": lambda x, a: _hard_sigmoid(x, a.get("alpha", 0.2), a.get("beta", 0.5)),
    "sigmoid": lambda x, a: 1.0 / (1.0 + np.exp(-x)),
    "tanh": lambda x, a: np.tanh(x),
    "leakyrelu": lambda x, a: np.where(x >= 0, x, a.get("alpha", 0.01) * x),
    "elu": lambda x, a: _elu(x, a.get("alpha", 1.0)),
    "selu": lambda x, a: a.get("gamma", SELU_GAMMA) * _elu(x, a.get("alpha", SELU_ALPHA)),
    "softplus": lambda x, a: np.logaddexp(0.0, x),
    "softsign": lambda x, a: x / (1.0 + np.abs(x)),
    "mish": lambda x, a: x * np.tanh(np.logaddexp(0.0, x)),
    "erf": lambda x, a: _erf(x),
    "gelu": lambda x, a: _gelu(x, a.get("approximate") == "tanh"),
    "abs": lambda x, a: np.abs(x),
    "negrelu": lambda x, a: np.maximum(-x, 0.0),  # relu(-x): per-channel PRelu's negative part
    "neg": lambda x, a: -x,
    "clip": lambda x, a: np.clip(x, a["min"], a["max"]),
    "affine": lambda x, a: x * a["scale"] + a["shift"],
    "div": lambda x, a: x / a["divisor"],
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


def table_layer(ctx, node, k: int, fn: str, attrs: dict[str, float]) -> None:
    """`node` as a lut layer computing FUNCTIONS[fn] on its input `k` (an activation)."""
    x = ctx.act(node, k)
    ctx.new_layer(node, FloatLayer(Op.LUT, node.name or node.output[0], [ctx.canon(x.name)],
                                   node.output[0], x.shape, attrs={"fn": fn, **attrs}))
    if x.flat:
        ctx.define(node.output[0], x.shape, flat=True)


def lower_unary(ctx, node) -> None:
    a = ctx.attrs(node)
    attrs: dict = {k: float(a[k]) for k in ("alpha", "beta", "gamma") if k in a}
    for k, v in attrs.items():
        if not math.isfinite(v):
            raise UnsupportedModel(f"{ctx.where(node)}: {k} {v} is not finite")
    if node.op_type == "Gelu":
        approx = a.get("approximate", b"none")
        approx = approx.decode("utf-8", "replace") if isinstance(approx, bytes) else str(approx)
        if approx not in ("none", "tanh"):
            raise UnsupportedModel(f"{ctx.where(node)}: approximate {shown(approx)} is neither "
                                   f"'none' nor 'tanh'")
        attrs["approximate"] = approx
    table_layer(ctx, node, 0, node.op_type.lower(), attrs)


def constant_operand(ctx, node) -> tuple[int, np.ndarray] | None:
    """(the activation's input index, the constant) of a binary node of an activation and a
    constant; None when both inputs are activations."""
    if len(node.input) != 2 or all(ctx.is_act(n) for n in node.input):
        return None
    k = 0 if ctx.is_act(node.input[0]) else 1
    if not ctx.is_act(node.input[k]):
        raise UnsupportedModel(f"{ctx.where(node)}: neither input is an activation tensor")
    return k, np.asarray(ctx.const(node, 1 - k, "constant operand"), dtype=np.float64)


def scalar_operand(ctx, node) -> tuple[int, float] | None:
    """(the activation's input index, the constant) of a binary node of an activation and one
    finite constant number; None when both inputs are activations. A constant of more values
    or a non-finite one is refused, naming the node."""
    found = constant_operand(ctx, node)
    if found is None:
        return None
    k, c = found
    if c.size != 1:
        raise UnsupportedModel(f"{ctx.where(node)}: a constant operand of {c.size} values is "
                               f"not supported here (one number only)")
    v = float(c.ravel()[0])
    if not math.isfinite(v):
        raise UnsupportedModel(f"{ctx.where(node)}: constant {v} is not finite")
    return k, v


def channel_operand(ctx, node) -> tuple[int, np.ndarray] | None:
    """(the activation's input index, one value per channel) of a binary node of an
    activation and a constant of more than one value broadcast along the channels
    (msfsim.ops.affine.channel_vector); None when the constant is one number or both inputs
    are activations."""
    from msfsim.ops.affine import channel_vector
    found = constant_operand(ctx, node)
    if found is None or found[1].size == 1:
        return None
    k = found[0]
    x = ctx.act(node, k)
    return k, channel_vector(ctx, node, 1 - k, x.shape[2], x.flat, "constant operand")


def lower_prelu(ctx, node) -> None:
    """PRelu with one slope (torch's nn.PReLU() default): LeakyRelu's table. With a slope a
    per channel (nn.PReLU(C)): x + (1 - a) * relu(-x), as a table of relu(-x), a per-channel
    scale (1x1 depthwise conv, msfsim.ops.affine) and the add of x."""
    per_channel = channel_operand(ctx, node)
    if per_channel is not None and per_channel[0] == 0 and np.ptp(per_channel[1]) > 0:
        import onnx
        from msfsim.ops.add import lower_add
        from msfsim.ops.affine import lower_affine
        x, out, name = node.input[0], node.output[0], node.name or node.output[0]
        neg, scaled = f"{out}_relu_of_negated", f"{out}_scaled"
        table_layer(ctx, onnx.helper.make_node("Relu", [x], [neg], name=f"{name}_relu_neg"),
                    0, "negrelu", {})
        a = per_channel[1]
        lower_affine(ctx, onnx.helper.make_node("Mul", [neg], [scaled], name=f"{name}_scale"),
                     0, 1.0 - a, np.zeros_like(a))
        lower_add(ctx, onnx.helper.make_node("Add", [x, scaled], [out], name=node.name))
        return
    if per_channel is not None and per_channel[0] == 0:  # one slope, repeated
        table_layer(ctx, node, 0, "leakyrelu", {"alpha": float(per_channel[1][0])})
        return
    found = scalar_operand(ctx, node)
    if found is None or found[0] != 0:
        raise UnsupportedModel(f"{ctx.where(node)}: only PRelu of an activation by constant "
                               f"slopes (one, or one per channel) is supported")
    table_layer(ctx, node, 0, "leakyrelu", {"alpha": found[1]})


def lower_div(ctx, node) -> None:
    """x / c for one constant number c: a table; for a constant per channel, a per-channel
    scale (msfsim.ops.affine)."""
    per_channel = channel_operand(ctx, node)
    if per_channel is not None and per_channel[0] == 0:
        if np.any(per_channel[1] == 0.0):
            raise UnsupportedModel(f"{ctx.where(node)}: division by zero")
        from msfsim.ops.affine import lower_affine
        lower_affine(ctx, node, 0, 1.0 / per_channel[1], np.zeros_like(per_channel[1]))
        return
    found = scalar_operand(ctx, node)
    if found is None or found[0] != 0:
        raise UnsupportedModel(f"{ctx.where(node)}: only Div of an activation by a constant "
                               f"(one number, or one per channel) is supported")
    if found[1] == 0.0:
        raise UnsupportedModel(f"{ctx.where(node)}: division by zero")
    table_layer(ctx, node, 0, "div", {"divisor": found[1]})


LUT = CKernel("MSF_OP_LUT", 9, "msf_lut_s8",
              spatial="msf_lut_s8(in, (const msf_lut_params *)l->params, out, oy, ox, oh, ow);")
LUT_CHANNELS = CKernel(
    "MSF_OP_LUT_CHANNELS", 13, "msf_lut_channels_s8 (a table per channel)",
    spatial="msf_lut_channels_s8(in, (const msf_lut_params *)l->params, out, oy, ox, oh, ow);")


class LutOp(OpDef):
    op = Op.LUT
    spatial = True
    elementwise = True
    c_kernels = (LUT, LUT_CHANNELS)
    c_header = "msf_lut_s8.h"
    onnx = {**{op: lower_unary for op in ("HardSwish", "HardSigmoid", "Sigmoid", "Tanh",
                                          "LeakyRelu", "Elu", "Selu", "Softplus", "Softsign",
                                          "Mish", "Erf", "Gelu", "Abs", "Neg")},
            "PRelu": lower_prelu, "Div": lower_div}

    def out_shape(self, layer, in_shapes):
        return in_shapes[0]

    def build(self, b, x: int, table: np.ndarray, out_q: QParamsLike, name: str | None = None,
              out_name: str | None = None, activation: str = "lut") -> int:
        table = collapse(np.asarray(table))
        channels = b.tensors[x].shape[2]
        if table.dtype != np.int8 or table.shape not in ((TABLE_SIZE,), (channels, TABLE_SIZE)):
            raise ValueError(f"lut {shown(name)}: table must be 256 int8 values, or 256 per "
                             f"channel ({channels} x 256)")
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

    def c_op(self, layer: LayerLike) -> str:
        assert layer.weight is not None
        return (LUT if layer.weight.ndim == 1 else LUT_CHANNELS).code

    def c_params(self, model: ModelLike, layer: LayerLike):
        i = layer.index
        assert layer.weight is not None
        return [CArray("int8_t", f"l{i}_table", layer.weight.ravel()),
                CStruct("msf_lut_params", f"l{i}_params", {"table": f"l{i}_table"})]


register(LutOp())
