"""msfsim IR -> int8 .tflite, written as TFLiteConverter writes a full-integer model: int8
input and output (no float edges), per-channel int8 convolution and FULLY_CONNECTED weights,
int32 biases in the scale s_in * s_w, fused RELU / RELU6 / RELU_N1_TO_1.

The IR holds each layer's requantisation as integer multipliers and shifts; a .tflite file holds
float32 scales, from which TFLM (and msfsim's .tflite importer) computes its own multipliers.
The weight scales written are s_w = M * 2^(shift - 31) * s_out / s_in (the IR's scales), so
the exported file is a model of its own, the IR's up to float32 rounding (TFLM's multipliers
are the IR's within a few hundred units of 2^31): msfsim's import of it has the IR's layers
and agrees with TFLM on it bit for bit.

Where TFLite's int8 kernels constrain the quantisation, the exported tensor's differs from the
IR's and the layers reading it requantise for it: MAX_POOL_2D and AVERAGE_POOL_2D keep their
input's; LOGISTIC writes 1/256 and -128, TANH 1/128 and 0; a hard sigmoid table (ONNX
HardSigmoid) after a conv or dense that nothing else reads becomes TFLiteConverter's idiom for
Keras' hard_sigmoid: the +3 and the slope folded into that layer, fused RELU6, then MUL by the
constant 1/6 (the importer's `lut`, so the layers stay the IR's); a table the .tflite importer
made of a MUL by a constant scalar is that MUL again. A padding that is neither SAME nor VALID
is an explicit PAD before a convolution. What TFLite cannot express is refused with one line
(`UnsupportedModel`): other tables, clamps that are no fused activation, a requantising
concat, pooling padded otherwise than SAME / VALID.
"""
from __future__ import annotations

import numpy as np
import tflite

from msfsim import UnsupportedModel
from msfsim.exporters.flatbuf import FbGraph, FbOp, FbTensor, serialise
from msfsim.importers.tflite import luts, quant
from msfsim.ir import Layer, Model, Op, QParams, activation_qparams
from msfsim.names import shown
from msfsim.ops.lut import float_table

OPS = tflite.BuiltinOperator
INT8, INT32 = tflite.TensorType.INT8, tflite.TensorType.INT32
SAME, VALID = tflite.Padding.SAME, tflite.Padding.VALID
NONE, RELU, RELU_N1_TO_1, RELU6 = (quant.ACT_NONE, quant.ACT_RELU, quant.ACT_RELU_N1_TO_1,
                                   quant.ACT_RELU6)
LOGISTIC_Q = QParams(1.0 / 256, -128)   # TFLM's LOGISTIC and SOFTMAX require them (int8)
TANH_Q = QParams(1.0 / 128, 0)          # and TANH these
HARD_SIGMOIDS = ((1.0 / 6.0, 0.5), (0.2, 0.5))  # (alpha, beta): PyTorch's and ONNX's default
ONE_SIXTH = (127, (1.0 / 6.0) / 255, -128)      # 1/6 as int8 (value, scale, zp), TFLiteConverter's
UNARY = {"hardswish": OPS.HARD_SWISH, "hard_swish": OPS.HARD_SWISH, "sigmoid": OPS.LOGISTIC,
         "logistic": OPS.LOGISTIC, "tanh": OPS.TANH}


def same_pads(hw, kernel, stride) -> tuple[int, int, int, int]:
    """TFLite's SAME padding (the odd pixel after), as (top, left, bottom, right)."""
    pads = []
    for n, k, s in zip(hw, kernel, stride):
        total = max(((n + s - 1) // s - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    (t, b), (l, r) = pads
    return (t, l, b, r)


def weight_scales(layer: Layer, in_scale: float, out_scale: float) -> np.ndarray:
    """Per-channel weight scales whose requantisation is the layer's:
    s_w = M * 2^(shift - 31) * s_out / s_in (a multiplier of 0: a scale TFLM flushes to 0)."""
    m = np.asarray(layer.multiplier, np.float64)
    s = np.asarray(layer.shift, np.float64)
    real = np.where(m > 0, m * np.exp2(s - 31), 2.0 ** -40)
    return real * out_scale / in_scale


class Export:
    """One export: `run()` returns the graph records `serialise` writes."""

    def __init__(self, model: Model):
        self.m = model
        self.g = FbGraph(model.name, description=f"msfsim export of {model.name}")
        self.tid: dict[int, int] = {}       # IR tensor -> exported tensor
        self.flat: set[int] = set()         # IR tensors exported as (1, C)
        self.q: dict[int, QParams] = {}     # IR tensor -> its exported quantisation
        self.views: dict[tuple[int, int], int] = {}  # (IR tensor, rank) -> RESHAPE output
        # producer layer -> (alpha, beta) of the hard sigmoid table folded into it
        self.folds: dict[int, tuple[float, float]] = {}

    # ------------------------------------------------------------------ records
    def fail(self, layer: Layer, msg: str) -> UnsupportedModel:
        return UnsupportedModel(f"layer {layer.index} ({layer.op.value} {shown(layer.name)}): "
                                f"{msg}")

    def tensor(self, name: str, shape, q: QParams | None = None, data: np.ndarray | None = None,
               dtype: int = INT8, scale=None, zero_point=None, qdim: int = 0) -> int:
        if q is not None:
            scale, zero_point = [float(np.float32(q.scale))], [int(q.zero_point)]
        raw = None
        if data is not None:
            raw = np.ascontiguousarray(data, data.dtype.newbyteorder("<")).tobytes()
        self.g.tensors.append(FbTensor(name, tuple(int(d) for d in shape), dtype,
                                       list(scale or ()), list(zero_point or ()), qdim, raw))
        return len(self.g.tensors) - 1

    def const_i32(self, name: str, values) -> int:
        v = np.asarray(values, np.int32)
        return self.tensor(name, v.shape, data=v, dtype=INT32)

    def op(self, code: int, inputs: list[int], outputs: list[int], options=None,
           version: int = 1) -> None:
        self.g.ops.append(FbOp(code, inputs, outputs, options, version))

    def output(self, layer: Layer, q: QParams, flat: bool = False) -> int:
        """The exported tensor of the layer's output: (1, H, W, C), or (1, C) when flat."""
        t = self.m.tensor(layer.output)
        h, w, c = t.shape
        self.q[layer.output] = q
        if flat:
            self.flat.add(layer.output)
        self.tid[layer.output] = self.tensor(t.name, (1, c) if flat else (1, h, w, c), q)
        return self.tid[layer.output]

    def view(self, src: int, rank: int) -> int:
        """IR tensor `src` as (1, H, W, C) (rank 4) or (1, N) (rank 2): itself, or a RESHAPE."""
        if (rank == 2) == (src in self.flat):
            return self.tid[src]
        key = (src, rank)
        if key not in self.views:
            t = self.m.tensor(src)
            h, w, c = t.shape
            shape = (1, h * w * c) if rank == 2 else (1, h, w, c)
            out = self.tensor(f"{t.name}_reshape", shape, self.q[src])
            self.op(OPS.RESHAPE, [self.tid[src], self.const_i32(f"{t.name}_shape", shape)],
                    [out])
            self.views[key] = out
        return self.views[key]

    def fused(self, layer: Layer, q: QParams) -> int:
        """The fused activation whose clamp on `q` is the layer's (by name if rounding
        differs: TFLM divides in float32)."""
        named = {"relu": RELU, "relu6": RELU6}.get(layer.activation)
        want = (layer.act_min, layer.act_max)
        for act in ([named] if named is not None else []) + [NONE, RELU, RELU6, RELU_N1_TO_1]:
            if quant.activation_range(act, q.scale, q.zero_point) == want:
                return act
        if named is not None:
            return named
        raise self.fail(layer, f"clamp [{layer.act_min}, {layer.act_max}] is no TFLite fused "
                               f"activation (NONE, RELU, RELU6, RELU_N1_TO_1 on the output "
                               f"scale {q.scale:.6g}, zero point {q.zero_point})")

    # ------------------------------------------------------------------ the walk
    def run(self) -> FbGraph:
        m = self.m
        x = m.tensor(m.input)
        self.q[x.id] = x.q
        self.tid[x.id] = self.tensor(x.name, (1, *x.shape), x.q)
        self.g.inputs = [self.tid[x.id]]
        self.plan_folds()
        for layer in m.layers:
            HANDLERS[layer.op](self, layer)
        self.g.outputs = [self.tid[m.output]]
        return self.g

    def plan_folds(self) -> None:
        """The hard sigmoid tables that fold into the conv / dense before them."""
        m = self.m
        for layer in m.layers:
            if layer.op != Op.LUT or layer.activation != "hardsigmoid":
                continue
            src = layer.inputs[0]
            p = m.producer(src)
            if (p is None or m.layers[p].op not in (Op.CONV, Op.DWCONV, Op.DENSE)
                    or m.consumers(src) != (layer.index,) or src == m.output
                    or (m.layers[p].act_min, m.layers[p].act_max) != (-128, 127)):
                continue
            qi, qo = m.tensor(src).q, m.tensor(layer.output).q
            for alpha, beta in HARD_SIGMOIDS:
                table = float_table("hardsigmoid", {"alpha": alpha, "beta": beta}, qi, qo)
                if np.array_equal(table, layer.weight):
                    self.folds[p] = (alpha, beta)
                    break

    # ------------------------------------------------------------------ layers with weights
    def weighted(self, layer: Layer) -> None:
        """CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED."""
        m = self.m
        src = layer.inputs[0]
        qi_ir, qo_ir, qi = m.tensor(src).q, m.tensor(layer.output).q, self.q[src]
        ws = weight_scales(layer, qi_ir.scale, qo_ir.scale)
        gain, offset, qo = 1.0, 0.0, qo_ir
        if layer.index in self.folds:  # relu6(6 alpha z + 6 beta), divided by 6 by the MUL after
            alpha, beta = self.folds[layer.index]
            gain, offset = 6 * alpha, 6 * beta
            lo, hi = (qo_ir.scale * (v - qo_ir.zero_point) * gain + offset for v in (-128, 127))
            qo = activation_qparams(max(lo, 0.0), max(min(hi, 6.0), 1e-3))
        ws_out = (ws * gain).astype(np.float32)
        bias = np.zeros(ws.size, np.int64) if layer.bias is None else layer.bias.astype(np.int64)
        bias_scale = (np.float32(qi.scale) * ws_out).astype(np.float32)
        if gain != 1.0 or offset != 0.0 or qi != qi_ir:
            real = bias * qi_ir.scale * ws * gain + offset
            bias = np.clip(np.round(real / bias_scale.astype(np.float64)), -2**31, 2**31 - 1)
        fused = RELU6 if layer.index in self.folds else self.fused(layer, qo)
        name = m.tensor(layer.output).name
        zeros = [0] * ws.size
        w = np.asarray(layer.weight, np.int8)
        if layer.op == Op.DWCONV:
            w, qdim = w.reshape(1, *w.shape), 3
        else:
            qdim = 0
        wt = self.tensor(f"{name}_weights", w.shape, data=w, scale=ws_out.tolist(),
                         zero_point=zeros, qdim=qdim)
        bt = self.tensor(f"{name}_bias", bias.shape, data=bias.astype(np.int32), dtype=INT32,
                         scale=bias_scale.tolist(), zero_point=zeros)
        if layer.op == Op.DENSE:
            t = m.tensor(src)
            x = self.view(src, 2) if t.shape[0] * t.shape[1] > 1 else self.tid[src]
            out = self.output(layer, qo, flat=True)
            self.op(OPS.FULLY_CONNECTED, [x, wt, bt], [out],
                    ("FullyConnectedOptions", {"FusedActivationFunction": fused}), version=5)
            return
        x = self.padded(layer, self.view(src, 4))
        padding = self.padding(layer, allow_pad=True)
        out = self.output(layer, qo)
        fields = {"Padding": padding, "StrideH": layer.stride[0], "StrideW": layer.stride[1],
                  "FusedActivationFunction": fused}
        if layer.op == Op.DWCONV:
            self.op(OPS.DEPTHWISE_CONV_2D, [x, wt, bt], [out],
                    ("DepthwiseConv2DOptions", {**fields, "DepthMultiplier": 1}), version=3)
        else:
            self.op(OPS.CONV_2D, [x, wt, bt], [out], ("Conv2DOptions", fields), version=3)

    def padding(self, layer: Layer, allow_pad: bool = False) -> int:
        """SAME or VALID for the layer's pad (VALID after an explicit PAD when allowed)."""
        hw = self.m.in_shape(layer)[:2]
        if layer.pad == (0, 0, 0, 0):
            return VALID
        if layer.pad == same_pads(hw, layer.kernel, layer.stride):
            return SAME
        if allow_pad:
            return VALID
        raise self.fail(layer, f"padding {list(layer.pad)} (top, left, bottom, right) is "
                               f"neither TFLite's SAME nor VALID, and TFLM's pools take no PAD")

    def padded(self, layer: Layer, x: int) -> int:
        """An explicit PAD before a convolution whose pad is neither SAME nor VALID."""
        hw = self.m.in_shape(layer)[:2]
        if layer.pad in ((0, 0, 0, 0), same_pads(hw, layer.kernel, layer.stride)):
            return x
        t, l, b, r = layer.pad
        src = self.m.tensor(layer.inputs[0])
        h, w, c = src.shape
        out = self.tensor(f"{src.name}_pad{layer.index}", (1, h + t + b, w + l + r, c),
                          self.q[src.id])
        pads = self.const_i32(f"{src.name}_paddings{layer.index}",
                              [[0, 0], [t, b], [l, r], [0, 0]])
        self.op(OPS.PAD, [x, pads], [out], ("PadOptions", {}), version=2)
        return out

    # ------------------------------------------------------------------ the other layers
    def elementwise(self, layer: Layer) -> None:
        """ADD, SUB, MUL (a (1, 1, C) second operand broadcast over H and W)."""
        a, b = layer.inputs
        rank = 2 if a in self.flat and b in self.flat else 4
        qa, qb, qo = self.q[a], self.q[b], self.m.tensor(layer.output).q
        if layer.op in (Op.ADD, Op.SUB):
            try:
                quant.add_requant(qa.scale, qb.scale, qo.scale)
            except ValueError as exc:
                raise self.fail(layer, str(exc)) from None
        fused = self.fused(layer, qo)
        ins = [self.view(a, rank), self.view(b, rank)]
        out = self.output(layer, qo, flat=rank == 2)
        if layer.op == Op.ADD:
            self.op(OPS.ADD, ins, [out], ("AddOptions", {"FusedActivationFunction": fused}),
                    version=2)
        elif layer.op == Op.SUB:
            self.op(OPS.SUB, ins, [out], ("SubOptions", {"FusedActivationFunction": fused}),
                    version=2)
        else:
            self.op(OPS.MUL, ins, [out], ("MulOptions", {"FusedActivationFunction": fused}),
                    version=2)

    def pool(self, layer: Layer) -> None:
        """MAX_POOL_2D, AVERAGE_POOL_2D (TFLite's: the output quantised as the input)."""
        src = layer.inputs[0]
        padding = self.padding(layer)
        qo = self.q[src]
        fused = self.fused(layer, qo)
        x = self.view(src, 4)
        out = self.output(layer, qo)
        code = OPS.MAX_POOL_2D if layer.op == Op.MAXPOOL else OPS.AVERAGE_POOL_2D
        self.op(code, [x], [out], ("Pool2DOptions", {
            "Padding": padding, "StrideH": layer.stride[0], "StrideW": layer.stride[1],
            "FilterHeight": layer.kernel[0], "FilterWidth": layer.kernel[1],
            "FusedActivationFunction": fused}), version=2)

    def gap(self, layer: Layer) -> None:
        """MEAN over H and W, dimensions kept (a FULLY_CONNECTED reads it as one row)."""
        if (layer.act_min, layer.act_max) != (-128, 127):
            raise self.fail(layer, "a clamp after global pooling has no TFLite form (MEAN "
                                   "takes no fused activation)")
        src = layer.inputs[0]
        x = self.view(src, 4)
        axes = self.const_i32(f"{self.m.tensor(layer.output).name}_axes", [1, 2])
        out = self.output(layer, self.m.tensor(layer.output).q)
        self.op(OPS.MEAN, [x, axes], [out], ("ReducerOptions", {"KeepDims": 1}), version=2)

    def concat(self, layer: Layer) -> None:
        """CONCATENATION along channels: TFLM's int8 kernel copies bytes, so each input must be
        quantised as the output."""
        qo = self.m.tensor(layer.output).q
        for k, src in enumerate(layer.inputs):
            if int(layer.multiplier[k]) != 0 or self.q[src] != qo:
                t = self.m.tensor(src)
                raise self.fail(layer, f"input {k} {shown(t.name)} is quantised as scale "
                                       f"{self.q[src].scale:.6g}, zero point "
                                       f"{self.q[src].zero_point} and the output as "
                                       f"{qo.scale:.6g}, {qo.zero_point}: TFLite's int8 "
                                       f"CONCATENATION requires the same on every input (this "
                                       f"concat requantises)")
        ins = [self.view(src, 4) for src in layer.inputs]
        out = self.output(layer, qo)
        self.op(OPS.CONCATENATION, ins, [out], ("ConcatenationOptions", {"Axis": 3}),
                version=3)

    def lut(self, layer: Layer) -> None:
        """HARD_SWISH, LOGISTIC, TANH; a folded hard sigmoid or a TFLite MUL by a constant
        scalar -> MUL by an int8 constant scalar."""
        assert layer.weight is not None
        if layer.weight.ndim != 1:
            raise self.fail(layer, "a table per channel has no TFLite operator")
        src = layer.inputs[0]
        flat = src in self.flat
        code = UNARY.get(layer.activation)
        if code is not None:
            qo = {OPS.LOGISTIC: LOGISTIC_Q, OPS.TANH: TANH_Q}.get(code,
                                                                  self.m.tensor(layer.output).q)
            self.op(code, [self.tid[src]], [self.output(layer, qo, flat=flat)])
            return
        p = self.m.producer(src)
        if layer.activation == "hardsigmoid" and p is not None and p in self.folds:
            value, scale, zp = ONE_SIXTH
            fused = NONE
        elif layer.activation == "mul":
            value, scale, zp, fused = self.mul_constant(layer)
        else:
            why = {"hardsigmoid": "a hard sigmoid table exports only after a conv or dense "
                                  "without clamp that nothing else reads (folded into it as "
                                  "relu6(x + 3) / 6), and only as PyTorch's or ONNX's"}
            raise self.fail(layer, why.get(layer.activation, (
                f"a {layer.activation!r} table has no TFLite operator (exported: HARD_SWISH, "
                f"LOGISTIC, TANH, a hard sigmoid after a conv or dense, MUL by a constant)")))
        name = self.m.tensor(layer.output).name
        c = self.tensor(f"{name}_constant", (), data=np.array(value, np.int8), scale=[scale],
                        zero_point=[zp])
        out = self.output(layer, self.m.tensor(layer.output).q, flat=flat)
        self.op(OPS.MUL, [self.tid[src], c], [out],
                ("MulOptions", {"FusedActivationFunction": fused}), version=2)

    def mul_constant(self, layer: Layer) -> tuple[int, float, int, int]:
        """The int8 constant of a TFLite MUL by a scalar that gives this table (the importer's
        `mul` lut): the slope fitted on the unclamped entries, checked by recomputing the table
        as TFLM would with each fused activation."""
        src = layer.inputs[0]
        qi, qi_ir, qo = self.q[src], self.m.tensor(src).q, self.m.tensor(layer.output).q
        t = np.asarray(layer.weight, np.int64)
        x = (np.arange(-128, 128) - qi_ir.zero_point) * qi_ir.scale
        y = (t - qo.zero_point) * qo.scale
        keep = (t > t.min()) & (t < t.max()) & (x != 0)
        if not keep.any() or not np.isfinite(k := float((x[keep] * y[keep]).sum()
                                                         / (x[keep] ** 2).sum())) or k == 0:
            raise self.fail(layer, "the 'mul' table is no product by a constant")
        value, scale = (127 if k > 0 else -127), abs(k) / 127
        for act in (NONE, RELU, RELU6, RELU_N1_TO_1):
            lo, hi = quant.activation_range(act, qo.scale, qo.zero_point)
            if np.array_equal(luts.mul_const_table(qi.scale, qi.zero_point, value,
                                                   float(np.float32(scale)), 0, qo.scale,
                                                   qo.zero_point, lo, hi), layer.weight):
                return value, scale, 0, act
        return value, scale, 0, NONE

    def softmax(self, layer: Layer) -> None:
        """SOFTMAX over the C values (output 1/256, -128 as TFLM requires); beta from the
        layer's input multiplier, which is beta * s_in * 2^26 (TFLM's softmax scaling)."""
        src = layer.inputs[0]
        real = int(layer.multiplier[0]) * 2.0 ** (int(layer.shift[0]) - 31)
        beta = real / (self.m.tensor(src).q.scale * 2.0 ** 26)
        out = self.output(layer, LOGISTIC_Q, flat=src in self.flat)
        self.op(OPS.SOFTMAX, [self.tid[src]], [out],
                ("SoftmaxOptions", {"Beta": float(np.float32(beta))}), version=2)


HANDLERS = {Op.CONV: Export.weighted, Op.DWCONV: Export.weighted, Op.DENSE: Export.weighted,
            Op.ADD: Export.elementwise, Op.SUB: Export.elementwise, Op.MUL: Export.elementwise,
            Op.MAXPOOL: Export.pool,
            Op.AVGPOOL: Export.pool, Op.GAP: Export.gap, Op.CONCAT: Export.concat,
            Op.LUT: Export.lut}
HANDLERS[Op.SOFTMAX] = HANDLERS[Op.SOFTMAX_MAP] = Export.softmax  # over the last axis


def tflite_bytes(model: Model) -> bytes:
    """The int8 .tflite flatbuffer of `model` (one-line UnsupportedModel when TFLite cannot
    express it)."""
    missing = {layer.op.value for layer in model.layers if layer.op not in HANDLERS}
    if missing:
        raise UnsupportedModel(f"{model.name}: cannot export to .tflite: msfsim does not export "
                               f"{', '.join(sorted(missing))} layers (it exports "
                               f"{', '.join(op.value for op in HANDLERS)})")
    try:
        return serialise(Export(model).run())
    except UnsupportedModel as exc:
        raise UnsupportedModel(f"{model.name}: cannot export to .tflite: {exc}") from None

