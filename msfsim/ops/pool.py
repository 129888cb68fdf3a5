"""maxpool and avgpool: 2-D pooling windows.

maxpool: the largest tap inside the tensor (padding never wins); output quantised as its input.
A max pool whose stride covers its window can fold into its producer (`folds_in_place`).
avgpool: window sum of (x - zp_in), padding counted as zeros, mapped to the output by one
multiplier with 1 / (kh * kw) folded in (ONNX, count_include_pad). An avgpool without multiplier
(`multiplier` None, built with `tflite=True` by the .tflite importer) follows TFLite (Micro)'s
int8 AveragePool instead: the raw sum of the taps inside the tensor divided by their count,
rounded half away from zero, same qparams in and out (reference_integer_ops::AveragePool).
Kernels: `msf_max_pool_s8`, `msf_avg_pool_s8` (its `tflite_div` flag selects the TFLite rule).
ONNX: MaxPool, AveragePool, ceil_mode included (as extra end padding); GlobalMaxPool and
ReduceMax over H and W, a max pool of one whole-map window. An AveragePool divides by
its whole window (padding counted) or, where that is ONNX's divisor at every position
(count_include_pad=0 with pads, ceil_mode windows cut at an unpadded border), by the taps inside
the input with TFLite's rule, its output quantised as its input; other divisors are refused.
One over the whole input is a gap. A Pad before an AveragePool folds into its padding.
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
from msfsim.ops.gap import lower_gap, lower_hw_reduction


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


def ceil_end_pad(n: int, k: int, s: int, p0: int, p1: int) -> int:
    """The end padding that gives, by msfsim's (floor) output size rule, the ceil_mode output
    size of ONNX and PyTorch on an axis of n with pads p0, p1: ceil((n + p0 + p1 - k) / s) + 1
    windows, less a last one that would start in the end padding. May be below p1 (a window
    reaching past the padding is never counted: see `lower_pool`)."""
    o = -(-(n + p0 + p1 - k) // s) + 1
    if (o - 1) * s >= n + p0:
        o -= 1
    return max((o - 1) * s + k - n - p0, 0)


def _divisor(avg_attrs: dict, own: tuple, folded: tuple, beyond: bool) -> tuple[str, str]:
    """How an AveragePool divides: "window" (kh * kw, the multiplier), "taps" (the taps inside
    the input, TFLite's rule) or "" (neither; then why). ONNX and PyTorch count a window's taps
    in the padding when count_include_pad=1 but never those past it (ceil_mode), and a folded
    Pad's zeros always."""
    include = bool(avg_attrs.get("count_include_pad", 0))
    if not beyond and (include or not any(own)):
        return "window", ""
    if not any(folded) and (not include or not any(own)):
        return "taps", ""
    if any(folded) and beyond:
        return "", "a Pad before it and ceil_mode=1 windows reaching past the padded input"
    if any(folded):
        return "", "a Pad before it and its own pads with count_include_pad=0"
    return "", "ceil_mode=1 windows reaching past its pads with count_include_pad=1"


def lower_pool(ctx, node) -> None:
    """MaxPool / AveragePool, ceil_mode included: the output size of ONNX and PyTorch, run as
    extra end padding (`ceil_end_pad`; a window always keeps a tap inside the input). An
    AveragePool reads through a Pad before it (its zeros join the padding) and divides by its
    whole window, or by the taps inside the input when that is its divisor at every position
    (count_include_pad=0, or ceil_mode windows cut at an unpadded border): then its output keeps
    its input's qparams (`attrs["same_qparams"]`). A divisor neither rule gives is refused."""
    avg = node.op_type == "AveragePool"
    x, folded = ctx.padded_input(node) if avg else (ctx.act(node), (0, 0, 0, 0))
    a = ctx.attrs(node)
    h, w, c = x.shape
    where = ctx.where(node)
    if len(a.get("kernel_shape", [])) != 2:
        raise UnsupportedModel(f"{where}: only 2-D pooling is supported")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise UnsupportedModel(f"{where}: dilations are not supported")
    k, s = ctx.kernel_stride(node, a["kernel_shape"], a.get("strides", [1, 1]))
    ft, fl, fb, fr = folded
    hw = (h + ft + fb, w + fl + fr)  # the input the node sees
    own = ctx.pads(node, a, hw, k, s)
    ends = (own[2], own[3])
    if a.get("ceil_mode", 0):
        ends = tuple(ceil_end_pad(n, kk, ss, p0, p1)
                     for n, kk, ss, p0, p1 in zip(hw, k, s, own[:2], own[2:]))
        auto = a.get("auto_pad", b"NOTSET")
        if auto not in (b"NOTSET", "NOTSET") and window_shape((*hw, 1), k, s, own) != \
                window_shape((*hw, 1), k, s, (own[0], own[1], *ends)):
            raise UnsupportedModel(f"{where}: ceil_mode=1 with auto_pad {ctx.short(auto)} is "
                                   f"not supported (give explicit pads)")
    beyond = ends[0] > own[2] or ends[1] > own[3]
    pad = (own[0] + ft, own[1] + fl, ends[0] + fb, ends[1] + fr)
    attrs: dict = {}
    if avg:
        divisor, why = _divisor(a, own, folded, beyond)
        if not divisor:
            raise UnsupportedModel(f"{where}: its divisor varies at the borders ({why}), which "
                                   f"msfsim's average pool cannot express: it divides by the "
                                   f"whole window or by the taps inside the input")
        if divisor == "taps":
            attrs = {"divisor": "taps", "same_qparams": True}
    # a window of padding only: no tap for a max (or a divisor by taps) to read
    ctx.check_padded(node, x.shape, k, pad, pool=not avg or bool(attrs))
    shape = window_shape(x.shape, k, s, pad)
    if avg and shape[:2] == (1, 1) and k == (h, w) and not any(pad):
        lower_gap(ctx, node)
        return
    ctx.new_layer(node, FloatLayer(Op.AVGPOOL if avg else Op.MAXPOOL, node.name or node.output[0],
                                   [ctx.canon(x.name)], node.output[0], shape, kernel=k,
                                   stride=s, pad=pad, attrs=attrs))


class PoolOp(OpDef):
    spatial = True
    windowed = True
    kind = ""

    def out_shape(self, layer, in_shapes):
        return window_shape(in_shapes[0], layer.kernel, layer.stride, layer.pad)

    def quantize(self, b, layer: FloatLayer, ins, out_q):
        taps = layer.attrs.get("divisor") == "taps"
        in_q = b.tensors[ins[0]].q
        if taps and (out_q.scale, out_q.zero_point) != (in_q.scale, in_q.zero_point):
            raise ValueError("an average pool dividing by the taps inside its input keeps its "
                             "input's quantisation, but the model gives its output other "
                             "parameters")
        return build(b, ins[0], self.kind, layer.kernel, layer.stride, layer.pad, out_q=out_q,
                     activation=layer.activation, clip=layer.clip, name=layer.name,
                     out_name=layer.output, tflite=taps)

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


def lower_global_max(ctx, node) -> None:
    """GlobalMaxPool, or ReduceMax over H and W: a max pool whose one window is the map."""
    lower_hw_reduction(ctx, node, Op.MAXPOOL)


class MaxPoolOp(PoolOp):
    op = Op.MAXPOOL
    kind = "max"
    same_qparams = True
    folds_in_place = True
    c_kernels = (CKernel("MSF_OP_MAXPOOL", 4, "msf_max_pool_s8",
                         spatial=("msf_max_pool_s8(in, (const msf_pool_params *)l->params, out, "
                                  "oy, ox, oh, ow);")),)
    onnx = {"MaxPool": lower_pool, "GlobalMaxPool": lower_global_max,
            "ReduceMax": lower_global_max}

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
        total = float_windows(xs[0], layer.kernel, layer.stride, layer.pad).sum(axis=(4, 5))
        if layer.attrs.get("divisor") != "taps":
            return total / (layer.kernel[0] * layer.kernel[1])
        ones = np.ones((1, *xs[0].shape[1:3], 1))
        return total / float_windows(ones, layer.kernel, layer.stride, layer.pad).sum(axis=(4, 5))

    def c_params(self, model: ModelLike, layer: LayerLike):
        [params] = super().c_params(model, layer)
        fields = {**params.fields, "tflite_div": int(layer.multiplier is None)}
        return [CStruct(params.ctype, params.name, fields)]


register(MaxPoolOp())
register(AvgPoolOp())
