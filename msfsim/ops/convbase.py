"""What conv and dwconv share: per-channel weights and requantisation, the executor's
`msf_conv_params` (with the `msf_channel_params` table and, on DSP builds, pre-widened
weights), and the ONNX lowerings of Conv (group 1 -> conv, group C -> dwconv, other groupings
-> conv with block-diagonal weights; a Pad before it folded into its padding) and of the
BatchNormalization folded into it."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from msfsim import UnsupportedModel
from msfsim.names import shown
from msfsim.ops.base import (BuilderLike, CArray, CDecl, CIf, CStruct, CTable, FloatLayer,
                             LayerLike, ModelLike, OpDef, QParamsLike, get, named,
                             quantize_channels, window_shape)
from msfsim.ops.fixedpoint import quantize_weights
from msfsim.ops import channels
from msfsim.ops.affine import lower_affine
from msfsim.ops.kinds import Op


class ConvLike(OpDef):
    """A windowed layer with per-output-channel int8 weights, bias and requantisation."""
    spatial = True
    windowed = True
    wide_keeps_int8: ClassVar[bool] = False  # DSP builds also keep the int8 weights

    def out_shape(self, layer, in_shapes):
        return window_shape(in_shapes[0], layer.kernel, layer.stride, layer.pad,
                            layer.weight.shape[self.weight_axis])

    def quantize(self, b, layer: FloatLayer, ins, out_q: QParamsLike) -> int:
        wq, ws = layer.weight_q or quantize_weights(layer.weight, self.weight_axis)
        return self.build(b, ins[0], wq, ws, layer.bias, out_q, stride=layer.stride,
                          pad=layer.pad, activation=layer.activation, clip=layer.clip,
                          name=layer.name, out_name=layer.output)

    def build(self, b, x: int, w_q, w_scale, bias, out_q: QParamsLike, stride=(1, 1),
              pad=(0, 0, 0, 0), activation="none", clip=None, name=None, out_name=None) -> int:
        """Add the layer to IRBuilder `b`: int8 weights (IR layout) with per-channel scales,
        float bias (quantised here) or None."""
        xt = b.tensors[x]
        self.check_weights(w_q, xt.shape[2], name)
        cout = w_q.shape[self.weight_axis]
        kernel = self.kernel_of(w_q)
        shape = window_shape(xt.shape, kernel, stride, pad, cout)
        qc = quantize_channels(xt.q.scale, w_scale, bias, out_q.scale, cout)
        y = b.new_tensor(out_name or f"t{len(b.tensors)}", shape, out_q)
        lo, hi = b.clamp_range(activation, out_q, clip)
        return b.new_layer(op=self.op, inputs=(x,), output=y, kernel=kernel, stride=tuple(stride),
                           pad=tuple(pad), weight=np.asarray(w_q, dtype=np.int8), **qc,
                           act_min=lo, act_max=hi, activation=activation, **named(name))

    def check_weights(self, w_q, cin: int, name) -> None:
        raise NotImplementedError

    def kernel_of(self, w_q) -> tuple[int, int]:
        raise NotImplementedError

    # -- pre-widened weights (msf_conv_params.weights_s16)
    def wide_shape_ok(self, layer: LayerLike) -> bool:
        raise NotImplementedError

    def wide_weights(self, layer: LayerLike) -> np.ndarray:
        raise NotImplementedError

    def c_params(self, model: ModelLike, layer: LayerLike) -> list[CDecl]:
        i = layer.index
        zp_in = model.tensor(layer.inputs[0]).q.zero_point
        zp_out = model.tensor(layer.output).q.zero_point
        c = model.out_shape(layer)[2]
        bias = layer.bias if layer.bias is not None else np.zeros(c, np.int32)
        ch = channel_params(model, layer)
        i32 = lambda v: "(-2147483647 - 1)" if v == -(1 << 31) else str(int(v))  # noqa: E731
        weights = CArray("int8_t", f"l{i}_weights", layer.weight)
        fields = {"kernel_h": layer.kernel[0], "kernel_w": layer.kernel[1],
                  "stride_h": layer.stride[0], "stride_w": layer.stride[1],
                  "pad_top": layer.pad[0], "pad_left": layer.pad[1],
                  "input_offset": -zp_in, "output_offset": zp_out,
                  "act_min": layer.act_min, "act_max": layer.act_max,
                  "weights": f"l{i}_weights", "bias": f"l{i}_bias",
                  "multiplier": f"l{i}_multiplier", "shift": f"l{i}_shift",
                  "channels": f"l{i}_channels", "fast_requant": int(ch.fast)}
        decls: list[CDecl] = [
            CArray("int32_t", f"l{i}_bias", bias),
            CArray("int32_t", f"l{i}_multiplier", layer.multiplier),
            CArray("int32_t", f"l{i}_shift", layer.shift),
            CTable("msf_channel_params", f"l{i}_channels",
                   [(i32(k), str(int(m)), str(int(r)), str(int(sh)))
                    for k, m, r, sh in zip(ch.kernel_sum, layer.multiplier, ch.rounding,
                                           ch.rshift)])]
        params = CStruct("msf_conv_params", f"l{i}_params", fields)
        if i not in model.wide_weights:
            return decls + [weights, params]
        if not _wide_ok(self, layer, ch.fast):
            raise ValueError(f"layer {i} ({layer.name}): its weights cannot be pre-widened")
        # DSP builds keep only the pre-widened copy (flash) unless the op's border loops still
        # read the int8 weights; builds without DSP use those alone
        keep = self.wide_keeps_int8
        wide = CArray("int16_t", f"l{i}_weights_s16", self.wide_weights(layer), align=4)
        dsp = CStruct("msf_conv_params", f"l{i}_params",
                      {**fields, "weights": f"l{i}_weights" if keep else "NULL",
                       "weights_s16": f"l{i}_weights_s16"})
        return decls + [CIf("MSF_DSP_ASM", "weights pre-widened for the DSP loops",
                            (wide, weights, dsp) if keep else (wide, dsp), (weights, params))]


# ------------------------------------------------------------------ requantisation constants

@dataclass(frozen=True)
class ChannelParams:
    """msf_channel_params of a conv layer: kernel sums fold the input offset into the bias; the
    constants of msf_requantize_fast are valid (`fast`) when every channel is in its range."""
    kernel_sum: np.ndarray
    rounding: np.ndarray
    rshift: np.ndarray
    fast: bool


def channel_params(model: ModelLike, layer: LayerLike) -> ChannelParams:
    zp_in = model.tensor(layer.inputs[0]).q.zero_point
    zp_out = model.tensor(layer.output).q.zero_point
    c = model.out_shape(layer)[2]
    bias = layer.bias if layer.bias is not None else np.zeros(c, np.int32)
    wt = layer.weight.astype(np.int64)
    axes = tuple(a for a in range(wt.ndim) if a != get(layer.op).weight_axis)
    ksum = bias.astype(np.int64) - zp_in * wt.sum(axis=axes)
    ksum = (ksum + (1 << 31)) % (1 << 32) - (1 << 31)  # int32 arithmetic wraps in C too
    mult = layer.multiplier.astype(np.int64)
    e = -layer.shift.astype(np.int64)
    acc_bound = np.abs(ksum) + 128 * np.abs(wt).sum(axis=axes)
    fast = bool(np.all(mult >= 0) and np.all((e >= 1) & (e <= 22))
                and np.all(acc_bound < (1 << 30)) and -128 <= zp_out <= 127)
    rnd = ((1 << (e - 1)) + zp_out * (1 << e)) if fast else np.zeros_like(e)
    return ChannelParams(ksum, rnd, e if fast else np.zeros_like(e), fast)


def wide_eligible(model: ModelLike, layer: LayerLike) -> bool:
    """Whether a layer's weights can be pre-widened (msf_conv_params.weights_s16): a conv whose
    every output takes the DSP loops (msf_conv_fast_output, k >= 4, Cout >= 4), or a
    depthwise conv with fast outputs and C >= 4."""
    opdef = get(layer.op)
    if not isinstance(opdef, ConvLike) or layer.weight is None:
        return False
    return _wide_ok(opdef, layer, channel_params(model, layer).fast)


def _wide_ok(opdef: ConvLike, layer: LayerLike, fast: bool) -> bool:
    """wide_eligible for a layer whose ChannelParams.fast is `fast`."""
    if not fast or layer.act_min != -128 or layer.act_max != 127:
        return False
    return opdef.wide_shape_ok(layer)


def wide_weights(layer: LayerLike) -> np.ndarray:
    """A layer's pre-widened int16 weights in the kernels' order (msf_conv_params.weights_s16)."""
    return get(layer.op).wide_weights(layer)  # type: ignore[attr-defined]


# ------------------------------------------------------------------ ONNX lowerings

# A grouped conv lowered as a dense conv holds Cout x Cin x kh x kw weights; above this (the
# importers' bound on a model's weights) it could not be deployed on any supported board.
MAX_DENSE_WEIGHTS = 16 << 20


def block_diagonal(w: np.ndarray, group: int) -> np.ndarray:
    """Grouped conv weights (Cout, Cin / group, kh, kw) as the dense (Cout, Cin, kh, kw) whose
    output channel o reads only the input channels of its group (o // (Cout / group)): zeros
    elsewhere. The dense conv computes the grouped conv's exact sums (a zero weight adds
    nothing, and quantises to 0 whatever its channel's scale)."""
    cout, cin_g = w.shape[:2]
    dense = np.zeros((cout, cin_g * group) + w.shape[2:], w.dtype)
    per = cout // group
    for g in range(group):
        dense[g * per:(g + 1) * per, g * cin_g:(g + 1) * cin_g] = w[g * per:(g + 1) * per]
    return dense


# A dilation becomes a larger kernel with zeros between the taps; beyond this factor the
# kernel would hold mostly zeros (no MCU model dilates further)
MAX_DILATION = 16


def dilate(w: np.ndarray, d: tuple[int, int], axes: tuple[int, int] = (-2, -1)) -> np.ndarray:
    """Conv weights whose kernel rows and columns lie along `axes`, dilated by d, as the dense
    kernel of (k - 1) * d + 1 taps each way with zeros between the taps: the same sums, as a
    zero weight adds nothing."""
    ah, aw = (a % w.ndim for a in axes)
    shape = list(w.shape)
    shape[ah], shape[aw] = (shape[ah] - 1) * d[0] + 1, (shape[aw] - 1) * d[1] + 1
    out = np.zeros(shape, w.dtype)
    index = [slice(None)] * w.ndim
    index[ah], index[aw] = slice(None, None, d[0]), slice(None, None, d[1])
    out[tuple(index)] = w
    return out


def lower_conv(ctx, node) -> None:
    """Conv: group 1 -> conv (weights (Cout, kh, kw, Cin)); group = C = Cout with one input
    channel per group -> dwconv (weights (kh, kw, C)). Any other grouping (1 < group < C, or a
    depthwise conv with channel multiplier > 1) -> conv with block-diagonal weights
    (`block_diagonal`): the same int8 arithmetic, `group` times the MACs. A Pad before it
    (zeros along H and W) adds to its padding: exact, as the kernels pad with the input zero
    point. A dilation d becomes the (k - 1) * d + 1 kernel with zeros between the taps
    (`dilate`): exact, (k - 1) * d + 1 squared over k squared the MACs."""
    a = ctx.attrs(node)
    wv = ctx.qconst(node.input[1])
    w = ctx.const(node, 1, "weights")
    if w.ndim != 4:
        raise UnsupportedModel(f"{ctx.where(node)}: only 2-D convolutions are supported "
                               f"(weights are {w.ndim - 2}-D)")
    # a channel selection only this conv reads folds into its weights (zeros on the channels
    # it leaves out), unless grouped, repeating a channel or with asymmetric int8 weights
    sel = ctx.selection(node)
    if sel is not None and (int(a.get("group", 1)) != 1 or w.shape[1] != sel.index.size
                            or np.unique(sel.index).size != sel.index.size
                            or (wv is not None and np.any(wv.zero_point != 0))):
        sel = None
    if sel is not None:
        x, folded = sel.src, (0, 0, 0, 0)
        w = channels.scatter_input_channels(w, sel.index, x.shape[2])
        if wv is not None:
            wv = replace(wv, q=channels.scatter_input_channels(wv.q, sel.index, x.shape[2]))
    else:
        x, folded = ctx.padded_input(node)
    if x.flat:
        raise UnsupportedModel(f"{ctx.where(node)}: input is flattened")
    dil = tuple(int(v) for v in a.get("dilations", [1, 1]))
    if len(dil) != 2 or not all(1 <= v <= MAX_DILATION for v in dil):
        raise UnsupportedModel(f"{ctx.where(node)}: dilation {ctx.short(list(dil))} is not 2 "
                               f"integers in [1, {MAX_DILATION}]")
    h, wd, c = x.shape
    cout, cin_g, kh, kw = w.shape
    group = int(a.get("group", 1))
    k, s = ctx.kernel_stride(node, a.get("kernel_shape", [kh, kw]), a.get("strides", [1, 1]))
    if k != (kh, kw):
        raise UnsupportedModel(f"{ctx.where(node)}: kernel_shape {list(k)} differs from the "
                               f"weights' {kh}x{kw}")
    if dil != (1, 1):  # the zero-inserted kernel: its extent is what pads and windows see
        kh, kw = (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1
        k = (kh, kw)
        if cout * cin_g * kh * kw > MAX_DENSE_WEIGHTS:
            raise UnsupportedModel(f"{ctx.where(node)}: dilation {list(dil)} is run as a "
                                   f"{kh}x{kw} kernel of {cout * cin_g * kh * kw:,} weights, "
                                   f"above msfsim's bound of {MAX_DENSE_WEIGHTS:,}")
    t, left, b, r = folded
    pad = ctx.pads(node, a, (h + t + b, wd + left + r), k, s)
    pad = (pad[0] + t, pad[1] + left, pad[2] + b, pad[3] + r)
    ctx.check_padded(node, x.shape, k, pad)
    if group == 1 and cin_g != c:
        raise UnsupportedModel(f"{ctx.where(node)}: weights expect {cin_g} input channels, "
                               f"input has {c}")
    if group < 1 or cin_g * group != c or cout % group:
        raise UnsupportedModel(f"{ctx.where(node)}: group={group} with {c} input and {cout} "
                               f"output channels and weights of {cin_g} input channels per "
                               f"group: the channels do not split into {group} groups")
    if group == 1:
        op, layout = Op.CONV, (lambda v: v.transpose(0, 2, 3, 1))
    elif group == c and cout == c:
        op, layout = Op.DWCONV, (lambda v: v[:, 0].transpose(1, 2, 0))
    else:
        if cout * c * kh * kw > MAX_DENSE_WEIGHTS:
            raise UnsupportedModel(f"{ctx.where(node)}: group={group} is run as a dense conv "
                                   f"of {cout * c * kh * kw:,} weights, above msfsim's bound of "
                                   f"{MAX_DENSE_WEIGHTS:,}")
        op, layout = Op.CONV, (lambda v: block_diagonal(v, group).transpose(0, 2, 3, 1))
    if dil != (1, 1):
        layout = (lambda f: (lambda v: f(dilate(v, dil))))(layout)  # type: ignore[misc]
    wq = None
    if wv is not None and not np.any(wv.zero_point != 0) and wv.q.dtype == np.int8:
        # (asymmetric or uint8 weights are requantised symmetrically by `quantize`)
        scale = np.broadcast_to(wv.scale.astype(np.float64).ravel(), (cout,)).copy()
        wq = (np.ascontiguousarray(layout(wv.q)), scale)
    bias = (ctx.const(node, 2, "bias").astype(np.float64)
            if len(node.input) > 2 and node.input[2] else None)
    if bias is not None and bias.size != cout:
        raise UnsupportedModel(f"{ctx.where(node)}: bias {shown(node.input[2])} has {bias.size} "
                               f"values for {cout} output channels")
    ctx.new_layer(node, FloatLayer(op, node.name or node.output[0], [ctx.canon(x.name)],
                                   node.output[0], window_shape(x.shape, k, s, pad, cout),
                                   kernel=k, stride=s, pad=pad,
                                   weight=layout(w).astype(np.float64), weight_q=wq, bias=bias))


def lower_batchnorm(ctx, node) -> None:
    """BatchNormalization: the per-channel affine map scale / sqrt(var + eps) * (x - mean) +
    bias (msfsim.ops.affine): folded into the conv / dwconv / dense before it, else a 1x1
    depthwise conv (DenseNet's and pre-activation ResNets' BN after a concat or an add)."""
    x = ctx.act(node, 0)
    cout = x.shape[2]
    params = []
    for i, n in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")):
        v = ctx.const(node, i, n).astype(np.float64).ravel()
        if v.size not in (1, cout):
            raise UnsupportedModel(f"{ctx.where(node)}: {n} {shown(node.input[i])} has {v.size} "
                                   f"values for {cout} channels")
        params.append(np.broadcast_to(v, (cout,)))
    scale, b, mean, var = params
    eps = float(ctx.attrs(node).get("epsilon", 1e-5))
    if not math.isfinite(eps) or np.any(var + eps <= 0) or \
            not np.all(np.isfinite(np.concatenate(params))):
        raise UnsupportedModel(f"{ctx.where(node)}: variance {shown(node.input[4])} + epsilon "
                               f"{eps:g} must be positive and every parameter finite")
    f = scale / np.sqrt(var + eps)
    lower_affine(ctx, node, 0, f, b - mean * f)
