"""concat: two tensors of the same H x W joined along channels, (H, W, Ca + Cb).

Each input is copied into its channel slice of the output; an input quantised as the output is
copied byte for byte (TFLite Micro's int8 CONCATENATION requires that of every input), another
is requantised: zp_out + requantize(x - zp_in, multiplier, shift) with s_in / s_out (ONNX
models calibrated per tensor). `multiplier` / `shift` are [input a, input b], multiplier 0 for a
copy. Elementwise: an output rectangle reads the same rectangle of both inputs. More inputs are
chained by the importers. Kernel: `msf_concat_s8`.
ONNX: Concat of activations along channels (handled by the importer's Concat, which folds
constant shape arithmetic and hands activations to `lower_concat`).
"""
from __future__ import annotations

import numpy as np

from msfsim import UnsupportedModel
from msfsim.names import shown
from msfsim.ops import fixedpoint as fx
from msfsim.ops.base import (CKernel, CStruct, FloatLayer, LayerLike, ModelLike, OpDef,
                             QParamsLike, named, register, zero_points)
from msfsim.ops.fixedpoint import quantize_multiplier
from msfsim.ops.kinds import Op


def _part(x: np.ndarray, multiplier: int, shift: int, zp_in: int, zp_out: int) -> np.ndarray:
    if multiplier == 0:  # same quantisation: the bytes themselves
        return x.astype(np.int8)
    return fx.to_int8(x.astype(np.int64) - zp_in, multiplier, shift, zp_out, -128, 127)


def concat(a: np.ndarray, b: np.ndarray, multiplier, shift, zp_a: int = 0, zp_b: int = 0,
           zp_out: int = 0) -> np.ndarray:
    return np.concatenate([_part(a, int(multiplier[0]), int(shift[0]), zp_a, zp_out),
                           _part(b, int(multiplier[1]), int(shift[1]), zp_b, zp_out)], axis=2)


def requant(in_q: QParamsLike, out_q: QParamsLike) -> tuple[int, int]:
    """(0, 0): copy; else the multiplier of s_in / s_out."""
    if in_q.scale == out_q.scale and in_q.zero_point == out_q.zero_point:
        return 0, 0
    return quantize_multiplier(in_q.scale / out_q.scale)


def lower_concat(ctx, node) -> None:
    """Concat of activations along channels (axis 1 of NCHW); N inputs become a chain."""
    axis = int(ctx.attrs(node).get("axis", 0))
    acts = [ctx.act(node, k) for k in range(len(node.input))]
    # flat (N, C) vectors of 1x1 maps (pooled features, torch.cat([mean, max], 1)) join along
    # their channels as the maps would
    flat = all(a.flat and a.shape[:2] == (1, 1) for a in acts)
    if axis % (2 if flat else 4) != 1:
        raise UnsupportedModel(f"{ctx.where(node)}: only concatenation along channels (axis 1) "
                               f"is supported, got axis {axis}")
    if (any(a.flat for a in acts) and not flat) or len({a.shape[:2] for a in acts}) != 1:
        raise UnsupportedModel(f"{ctx.where(node)}: inputs must share H and W "
                               f"({', '.join('x'.join(map(str, a.shape)) for a in acts)})")
    if len(acts) == 1:  # torch.cat([x]) (DenseNet's first layer): x itself
        ctx.same_as(node)
        return
    prev = acts[0]
    h, w, c = prev.shape
    for k, nxt in enumerate(acts[1:], start=1):
        c += nxt.shape[2]
        out = node.output[0] if k == len(acts) - 1 else f"{node.output[0]}_part{k}"
        ctx.new_layer(node, FloatLayer(Op.CONCAT, (node.name or node.output[0]) + (
            "" if out == node.output[0] else f"_{k}"), [ctx.canon(prev.name), ctx.canon(nxt.name)],
            out, (h, w, c)))
        if out != node.output[0] or flat:
            ctx.define(out, (h, w, c), flat=flat)
        prev = type(prev)(out, (h, w, c), flat=flat)


CONCAT = CKernel("MSF_OP_CONCAT", 11, "msf_concat_s8",
                 spatial=("msf_concat_s8(in, in1, (const msf_concat_params *)l->params, out, oy, "
                          "ox, oh, ow);"))


class ConcatOp(OpDef):
    op = Op.CONCAT
    spatial = True
    elementwise = True
    c_kernels = (CONCAT,)
    c_header = "msf_concat_s8.h"

    def out_shape(self, layer, in_shapes):
        (h, w, ca), (_, _, cb) = in_shapes
        return (h, w, ca + cb)

    def build(self, b, a: int, c: int, out_q: QParamsLike, name=None, out_name=None) -> int:
        ta, tc = b.tensors[a], b.tensors[c]
        if ta.shape[:2] != tc.shape[:2]:
            raise ValueError(f"concat {shown(name)}: shapes {ta.shape} and {tc.shape} differ "
                             f"in H, W")
        (ma, sa), (mc, sc) = requant(ta.q, out_q), requant(tc.q, out_q)
        y = b.new_tensor(out_name or f"t{len(b.tensors)}",
                         (ta.shape[0], ta.shape[1], ta.shape[2] + tc.shape[2]), out_q)
        return b.new_layer(op=Op.CONCAT, inputs=(a, c), output=y,
                           multiplier=np.array([ma, mc], np.int32),
                           shift=np.array([sa, sc], np.int32), **named(name))

    def quantize(self, b, layer: FloatLayer, ins, out_q):
        return self.build(b, ins[0], ins[1], out_q, name=layer.name, out_name=layer.output)

    def reference(self, model, layer, xs):
        zin, zout = zero_points(model, layer)
        return concat(xs[0], xs[1], layer.multiplier, layer.shift, zin[0], zin[1], zout)

    def float_eval(self, layer, xs):
        return np.concatenate(xs, axis=3)

    def c_params(self, model: ModelLike, layer: LayerLike):
        zin, zout = zero_points(model, layer)
        m, s = layer.multiplier, layer.shift
        fields = {"input1_offset": -zin[0], "input2_offset": -zin[1], "output_offset": zout,
                  "input1_mult": int(m[0]), "input1_shift": int(s[0]),
                  "input2_mult": int(m[1]), "input2_shift": int(s[1])}
        return [CStruct("msf_concat_params", f"l{layer.index}_params", fields)]


register(ConcatOp())
