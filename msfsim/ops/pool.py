"""maxpool and avgpool: 2-D pooling windows.

maxpool: the largest tap inside the tensor (padding never wins); output quantised as its input.
A max pool whose stride covers its window can fold into its producer (`folds_in_place`).
avgpool: window sum of (x - zp_in), padding counted as zeros, mapped to the output by one
multiplier with 1 / (kh * kw) folded in (ONNX, count_include_pad). An avgpool without multiplier
(`multiplier` None, built with `tflite=True` by the .tflite importer) follows TFLite (Micro)'s
int8 AveragePool instead: the raw sum of the taps inside the tensor divided by their count,
rounded half away from zero, same qparams in and out (reference_integer_ops::AveragePool).
Kernels: `msf_max_pool_s8`, `msf_avg_pool_s8` (its `tflite_div` flag selects the TFLite rule).
ONNX: MaxPool, AveragePool (count_include_pad=1 when padded; one over the whole input is a gap).
"""
from __future__ import annotations

import numpy as np

from msfsim import UnsupportedModel
from msfsim.ops import fixedpoint as fx
from msfsim.ops.base import (BuilderLike, CKernel, CStruct, FloatLayer, LayerLike, ModelLike,
                             OpDef, QParamsLike, clamp, float_windows, named, register,
                             window_shape, zero_points)
from msfsim.ops.fixedpoint import quantize_multiplier
from msfsim.ops.kinds import Op
from msfsim.ops.gap import lower_gap


def maxpool(x: np.ndarray, kernel, stride, pad=(0, 0, 0, 0), act_min: int = -128,
            act_max: int = 127) -> np.ndarray:
    """Max over the taps inside the tensor (padding never wins)."""
    ho, wo = fx.out_hw(x, kernel, stride, pad)
    win = fx.windows(x.astype(np.int16), kernel, stride, pad, -129, (ho, wo))
    return np.clip(win.max(axis=(3, 4)), act_min, act_max).astype(np.int8)


def avgpool(x: np.ndarray, kernel, stride, pad, multiplier: int, shift: int, zp_in: int = 0,
            zp_out: int = 0, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """Window sum of (x - zp_in), padding as zero, mapped by one multiplier (1/(kh*kw) folded)."""
    ho, wo = fx.out_hw(x, kernel, stride, pad)
    win = fx.windows(x.astype(np.int64) - zp_in, kernel, stride, pad, 0, (ho, wo))
    return fx.to_int8(win.sum(axis=(3, 4)), multiplier, shift, zp_out, act_min, act_max)


def avgpool_tflite(x: np.ndarray, kernel, stride, pad, act_min: int = -128,
                   act_max: int = 127) -> np.ndarray:
    """TFLite's int8 AveragePool: the raw sum of the taps inside the tensor divided by their
    count, rounded half away from zero (C integer division truncates), clamped."""
    ho, wo = fx.out_hw(x, kernel, stride, pad)
    acc = fx.windows(x.astype(np.int64), kernel, stride, pad, 0, (ho, wo)).sum(axis=(3, 4))
    ones = np.ones(x.shape[:2] + (1,), np.int64)
    n = fx.windows(ones, kernel, stride, pad, 0, (ho, wo)).sum(axis=(3, 4))
    if np.any(n == 0):
        raise ValueError("average pool window with no tap inside the tensor")
    q = np.where(acc > 0, (acc + n // 2) // n, -((n // 2 - acc) // n))
    return np.clip(q, act_min, act_max).astype(np.int8)


def build(b, x: int, kind: str, kernel, stride, pad=(0, 0, 0, 0), out_q: QParamsLike | None = None,
          activation: str = "none", clip=None, name: str | None = None,
          out_name: str | None = None, tflite: bool = False,
          act_range: tuple[int, int] | None = None) -> int:
    """kind: "max" (the output keeps the input's qparams; `out_q` is ignored) or "avg".
    `tflite`: an avg pool with TFLite's rounded division (no multiplier; `out_q` must be the
    input's). `act_range` overrides the clamp computed from `activation`."""
    xt = b.tensors[x]
    shape = window_shape(xt.shape, kernel, stride, pad)
    extra: dict = {}
    if kind == "max":
        out_q = xt.q
        op = Op.MAXPOOL
    elif tflite:
        out_q = out_q or xt.q
        op = Op.AVGPOOL
    else:
        out_q = out_q or xt.q
        m, s = quantize_multiplier(xt.q.scale / (out_q.scale * kernel[0] * kernel[1]))
        extra = dict(multiplier=np.array([m], np.int32), shift=np.array([s], np.int32))
        op = Op.AVGPOOL
    y = b.new_tensor(out_name or f"t{len(b.tensors)}", shape, out_q)
    lo, hi = act_range or b.clamp_range(activation, out_q, clip)
    return b.new_layer(op=op, inputs=(x,), output=y, kernel=tuple(kernel), stride=tuple(stride),
                       pad=tuple(pad), act_min=lo, act_max=hi, activation=activation,
                       **extra, **named(name))


def lower_pool(ctx, node) -> None:
    x = ctx.act(node)
    a = ctx.attrs(node)
    h, w, c = x.shape
    where = ctx.where(node)
    if len(a.get("kernel_shape", [])) != 2:
        raise UnsupportedModel(f"{where}: only 2-D pooling is supported")
    if a.get("ceil_mode", 0):
        raise UnsupportedModel(f"{where}: ceil_mode=1 is not supported")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise UnsupportedModel(f"{where}: dilations are not supported")
    k, s = ctx.kernel_stride(node, a["kernel_shape"], a.get("strides", [1, 1]))
    pad = ctx.pads(node, a, (h, w), k, s)
    avg = node.op_type == "AveragePool"
    ctx.check_padded(node, x.shape, k, pad, pool=not avg)  # a max window of padding only is -inf
    if avg and any(pad) and not a.get("count_include_pad", 0):
        raise UnsupportedModel(f"{where}: padding with count_include_pad=0 is not supported "
                               f"(the divisor would vary at the borders)")
    shape = window_shape(x.shape, k, s, pad)
    if avg and shape[:2] == (1, 1) and k == (h, w) and not any(pad):
        lower_gap(ctx, node)
        return
    ctx.new_layer(node, FloatLayer(Op.AVGPOOL if avg else Op.MAXPOOL, node.name or node.output[0],
                                   [ctx.canon(x.name)], node.output[0], shape, kernel=k,
                                   stride=s, pad=pad))


class PoolOp(OpDef):
    spatial = True
    windowed = True
    kind = ""

    def out_shape(self, layer, in_shapes):
        return window_shape(in_shapes[0], layer.kernel, layer.stride, layer.pad)

    def quantize(self, b, layer: FloatLayer, ins, out_q):
        return build(b, ins[0], self.kind, layer.kernel, layer.stride, layer.pad, out_q=out_q,
                     activation=layer.activation, clip=layer.clip, name=layer.name,
                     out_name=layer.output)

    def c_params(self, model: ModelLike, layer: LayerLike):
        zin, zout = zero_points(model, layer)
        mult, shift = (0, 0) if layer.multiplier is None else (layer.multiplier[0], layer.shift[0])
        fields = {"kernel_h": layer.kernel[0], "kernel_w": layer.kernel[1],
                  "stride_h": layer.stride[0], "stride_w": layer.stride[1],
                  "pad_top": layer.pad[0], "pad_left": layer.pad[1],
                  "input_offset": -zin[0], "output_offset": zout,
                  "act_min": layer.act_min, "act_max": layer.act_max,
                  "multiplier": int(mult), "shift": int(shift)}
        return [CStruct("msf_pool_params", f"l{layer.index}_params", fields)]


class MaxPoolOp(PoolOp):
    op = Op.MAXPOOL
    kind = "max"
    same_qparams = True
    folds_in_place = True
    c_kernels = (CKernel("MSF_OP_MAXPOOL", 4, "msf_max_pool_s8",
                         spatial=("msf_max_pool_s8(in, (const msf_pool_params *)l->params, out, "
                                  "oy, ox, oh, ow);")),)
    onnx = {"MaxPool": lower_pool}

    def reference(self, model, layer, xs):
        return maxpool(xs[0], layer.kernel, layer.stride, layer.pad, **clamp(layer))

    def float_eval(self, layer, xs):
        return float_windows(xs[0], layer.kernel, layer.stride, layer.pad,
                             -np.inf).max(axis=(4, 5))


class AvgPoolOp(PoolOp):
    op = Op.AVGPOOL
    kind = "avg"
    c_kernels = (CKernel("MSF_OP_AVGPOOL", 5, "msf_avg_pool_s8",
                         spatial=("msf_avg_pool_s8(in, (const msf_pool_params *)l->params, out, "
                                  "oy, ox, oh, ow);")),)
    onnx = {"AveragePool": lower_pool}

    def reference(self, model, layer, xs):
        if layer.multiplier is None:  # TFLite's rounded division (see the module doc)
            return avgpool_tflite(xs[0], layer.kernel, layer.stride, layer.pad, **clamp(layer))
        zin, zout = zero_points(model, layer)
        return avgpool(xs[0], layer.kernel, layer.stride, layer.pad, int(layer.multiplier[0]),
                       int(layer.shift[0]), zin[0], zout, **clamp(layer))

    def float_eval(self, layer, xs):
        return float_windows(xs[0], layer.kernel, layer.stride, layer.pad).mean(axis=(4, 5))

    def c_params(self, model: ModelLike, layer: LayerLike):
        [params] = super().c_params(model, layer)
        fields = {**params.fields, "tflite_div": int(layer.multiplier is None)}
        return [CStruct(params.ctype, params.name, fields)]


register(MaxPoolOp())
register(AvgPoolOp())
