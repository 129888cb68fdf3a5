"""mul: elementwise product of two int8 tensors, TFLite's int8 MUL.

out = clamp(zp_out + requantize((a - zp_a) * (b - zp_b), multiplier, shift), act_min, act_max)
with one multiplier for s_a * s_b / s_out (reference_integer_ops::Mul). The second operand
has the first's shape or is (1, 1, C), broadcast over H and W: the squeeze-and-excitation
scale. Elementwise: an output rectangle reads the same rectangle of a same-shape operand and
the whole (1, 1, C) of a broadcast one, which must be computed before the block reading it
(fusion.geometry). Kernel: `msf_mul_s8`.
ONNX: Mul of two activations (x * HardSigmoid(...) in SE blocks, x * HardSigmoid(x)); Mul by
one constant number is a table (msfsim.ops.lut).
"""
from __future__ import annotations

import numpy as np

from msfsim import UnsupportedModel
from msfsim.names import shown
from msfsim.ops import fixedpoint as fx
from msfsim.ops.base import (CKernel, CStruct, FloatLayer, LayerLike, ModelLike, OpDef,
                             QParamsLike, clamp, named, register, zero_points)
from msfsim.ops.fixedpoint import quantize_multiplier
from msfsim.ops.kinds import Op
from msfsim.ops.affine import lower_affine
from msfsim.ops.lut import channel_operand, scalar_operand, table_layer


def mul(a: np.ndarray, b: np.ndarray, multiplier: int, shift: int, zp_a: int = 0,
        zp_b: int = 0, zp_out: int = 0, act_min: int = -128, act_max: int = 127
        ) -> np.ndarray:
    """TFLite int8 mul; b is a's shape or (1, 1, C) (numpy broadcasting)."""
    prod = (a.astype(np.int64) - zp_a) * (b.astype(np.int64) - zp_b)
    return fx.to_int8(prod, multiplier, shift, zp_out, act_min, act_max)


def broadcasts(a_shape, b_shape) -> bool:
    """True when b is a (1, 1, C) operand broadcast over a's H x W."""
    return tuple(b_shape) != tuple(a_shape) and tuple(b_shape) == (1, 1, a_shape[2])


def check_shapes(a_shape, b_shape) -> str | None:
    """Why msfsim cannot multiply these shapes (None when it can)."""
    if tuple(a_shape) == tuple(b_shape) or broadcasts(a_shape, b_shape):
        return None
    return (f"shapes {'x'.join(map(str, a_shape))} and {'x'.join(map(str, b_shape))}: only "
            f"equal shapes or a 1x1xC operand broadcast over H and W are supported")


def lower_mul(ctx, node) -> None:
    """Mul of two activations -> mul; of an activation and one constant number -> a table;
    by a constant per channel -> a per-channel scale (msfsim.ops.affine)."""
    per_channel = channel_operand(ctx, node)
    if per_channel is not None:
        k, f = per_channel
        lower_affine(ctx, node, k, f, np.zeros_like(f))
        return
    scalar = scalar_operand(ctx, node)
    if scalar is not None:
        table_layer(ctx, node, scalar[0], "affine", {"scale": scalar[1], "shift": 0.0})
        return
    ta, tb = ctx.act(node, 0), ctx.act(node, 1)
    if broadcasts(tb.shape, ta.shape):  # the (1, 1, C) operand goes second
        ta, tb = tb, ta
    why = check_shapes(ta.shape, tb.shape)
    if why:
        raise UnsupportedModel(f"{ctx.where(node)}: {why}")
    if ta.flat or tb.flat:  # ONNX would broadcast an (N, C) operand along W, not C
        raise UnsupportedModel(f"{ctx.where(node)}: products of flattened tensors are not "
                               f"supported (reshape the scale to (N, C, 1, 1))")
    ctx.new_layer(node, FloatLayer(Op.MUL, node.name or node.output[0],
                                   [ctx.canon(ta.name), ctx.canon(tb.name)], node.output[0],
                                   ta.shape))


MUL = CKernel("MSF_OP_MUL", 10, "msf_mul_s8",
              spatial=("msf_mul_s8(in, in1, (const msf_mul_params *)l->params, out, oy, ox, "
                       "oh, ow);"))


class MulOp(OpDef):
    op = Op.MUL
    spatial = True
    elementwise = True
    c_kernels = (MUL,)
    c_header = "msf_mul_s8.h"
    onnx = {"Mul": lower_mul}

    def out_shape(self, layer, in_shapes):
        return in_shapes[0]

    def build(self, b, a: int, c: int, out_q: QParamsLike, activation="none", clip=None,
              name=None, out_name=None, requant: tuple[int, int] | None = None,
              act_range: tuple[int, int] | None = None) -> int:
        """`requant`: the (multiplier, shift) the source framework computed (TFLite); by
        default quantize_multiplier(s_a * s_c / s_out)."""
        ta, tc = b.tensors[a], b.tensors[c]
        why = check_shapes(ta.shape, tc.shape)
        if why:
            raise ValueError(f"mul {shown(name)}: {why}")
        m, s = requant or quantize_multiplier(ta.q.scale * tc.q.scale / out_q.scale)
        y = b.new_tensor(out_name or f"t{len(b.tensors)}", ta.shape, out_q)
        lo, hi = act_range or b.clamp_range(activation, out_q, clip)
        return b.new_layer(op=Op.MUL, inputs=(a, c), output=y,
                           multiplier=np.array([m], np.int32), shift=np.array([s], np.int32),
                           act_min=lo, act_max=hi, activation=activation, **named(name))

    def quantize(self, b, layer: FloatLayer, ins, out_q):
        return self.build(b, ins[0], ins[1], out_q, activation=layer.activation,
                          clip=layer.clip, name=layer.name, out_name=layer.output)

    def reference(self, model, layer, xs):
        zin, zout = zero_points(model, layer)
        return mul(xs[0], xs[1], int(layer.multiplier[0]), int(layer.shift[0]), zin[0], zin[1],
                   zout, **clamp(layer))

    def float_eval(self, layer, xs):
        return xs[0] * xs[1]

    def c_params(self, model: ModelLike, layer: LayerLike):
        zin, zout = zero_points(model, layer)
        fields = {"input1_offset": -zin[0], "input2_offset": -zin[1], "output_offset": zout,
                  "output_mult": int(layer.multiplier[0]), "output_shift": int(layer.shift[0]),
                  "act_min": layer.act_min, "act_max": layer.act_max,
                  "broadcast": int(broadcasts(model.in_shape(layer, 0),
                                              model.in_shape(layer, 1)))}
        return [CStruct("msf_mul_params", f"l{layer.index}_params", fields)]


register(MulOp())
