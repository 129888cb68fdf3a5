"""add: elementwise add of two int8 tensors (TFLite's int8 add).

Both inputs are pre-shifted left by ADD_LEFT_SHIFT and requantised to a common scale, summed
and requantised to the output; `multiplier` / `shift` are [input a, input b, output]. The
second operand has the first's shape (a residual add) or is (1, 1, C), broadcast over H and W
(TFLM's BroadcastAdd, the same arithmetic per element; mul's broadcast rule). Elementwise: an
output rectangle reads the same rectangle of a same-shape operand and the whole (1, 1, C) of a
broadcast one, which must be computed before the block reading it (fusion.geometry). Kernel:
`msf_elementwise_add_s8`.
ONNX: Add of two activations (one may be an N x C x 1 x 1 map broadcast), Sub of two as an
Add of a negating table; Add or Sub of a constant folds into the Conv / Gemm before it as bias,
or, for one number, becomes a table (msfsim.ops.lut).
"""
from __future__ import annotations

import numpy as np

from msfsim import UnsupportedModel
from msfsim.names import shown
from msfsim.ops import fixedpoint as fx
from msfsim.ops.base import (BuilderLike, CKernel, CStruct, FloatLayer, LayerLike, ModelLike,
                             OpDef, QParamsLike, clamp, named, register, zero_points)
from msfsim.ops.fixedpoint import ADD_LEFT_SHIFT, quantize_multiplier
from msfsim.ops.kinds import Op
from msfsim.ops.affine import channel_vector, foldable_weights, lower_affine
from msfsim.ops.lut import constant_operand, table_layer
from msfsim.ops.mul import broadcasts, check_shapes


def add(a: np.ndarray, b: np.ndarray, multiplier, shift, zp_a: int = 0, zp_b: int = 0,
        zp_out: int = 0, act_min: int = -128, act_max: int = 127,
        left_shift: int = ADD_LEFT_SHIFT, sub: bool = False) -> np.ndarray:
    """TFLite int8 add (sub: TFLite's int8 sub, the second scaled value subtracted);
    multiplier/shift = [input a, input b, output]; b is a's shape or (1, 1, C) (numpy
    broadcasting)."""
    sa = (a.astype(np.int64) - zp_a) << left_shift
    sb = (b.astype(np.int64) - zp_b) << left_shift
    ra, rb = fx.requantize(sa, multiplier[0], shift[0]), fx.requantize(sb, multiplier[1], shift[1])
    return fx.to_int8(ra - rb if sub else ra + rb, multiplier[2], shift[2], zp_out, act_min,
                      act_max)


def lower_add(ctx, node) -> None:
    """Add of two activations of one shape, or with an N x C x 1 x 1 one broadcast -> add;
    of an activation and a constant -> add_constant."""
    a, b = node.input[0], node.input[1]
    if ctx.is_act(a) and ctx.is_act(b):
        ta, tb = ctx.act(node, 0), ctx.act(node, 1)
        if broadcasts(tb.shape, ta.shape):  # the (1, 1, C) operand goes second
            ta, tb = tb, ta
        why = check_shapes(ta.shape, tb.shape)
        if why or ta.flat != tb.flat:
            raise UnsupportedModel(f"{ctx.where(node)}: {why or 'a flat and a 4-D operand'}")
        if ta.flat or tb.flat:  # ONNX would broadcast an (N, C) operand along W, not C
            raise UnsupportedModel(f"{ctx.where(node)}: adds of flattened tensors are not "
                                   f"supported")
        ctx.new_layer(node, FloatLayer(Op.ADD, node.name or node.output[0],
                                       [ctx.canon(ta.name), ctx.canon(tb.name)], node.output[0],
                                       ta.shape))
        return
    add_constant(ctx, node, 1.0)


def add_constant(ctx, node, sign: float) -> None:
    """x + sign * c, or c + sign * x, for an activation x and a constant c (one number, or one
    per channel): folded into the bias (and, for c - x, the weights' sign) of the layer
    producing x when it can take it (msfsim.ops.affine); else, for one number, a table; else a
    per-channel 1x1 depthwise conv."""
    found = constant_operand(ctx, node)
    if found is None:
        raise UnsupportedModel(f"{ctx.where(node)}: neither input is an activation tensor")
    k = found[0]
    x = ctx.act(node, k)
    # x's sign when the constant comes first
    x_sign = 1.0 if k == 0 else sign
    c_sign = sign if k == 0 else 1.0
    c = channel_vector(ctx, node, 1 - k, x.shape[2], x.flat, "addend")
    f = np.full_like(c, x_sign)
    if found[1].size == 1 and foldable_weights(ctx, node, k) is None:
        table_layer(ctx, node, k, "affine", {"scale": x_sign, "shift": c_sign * float(c[0])})
        return
    lower_affine(ctx, node, k, f, c_sign * c)


def lower_sub(ctx, node) -> None:
    """x - c or c - x for a constant c (as Add of -c, or a table); a - b of two activations:
    a table negating b (quantised to its own calibrated range, as every layer's output), then
    the add of a and -b."""
    if not all(ctx.is_act(n) for n in node.input[:2]):
        add_constant(ctx, node, -1.0)
        return
    import onnx
    neg = f"{node.output[0]}_negated"
    table_layer(ctx, onnx.helper.make_node("Neg", [node.input[1]], [neg],
                                           name=f"{node.name or node.output[0]}_negated"),
                0, "neg", {})
    lower_add(ctx, onnx.helper.make_node("Add", [node.input[0], neg], list(node.output),
                                         name=node.name))


ADD = CKernel(
    "MSF_OP_ADD", 3, "msf_elementwise_add_s8",
    spatial=("msf_elementwise_add_s8(in, in1, (const msf_add_params *)l->params, out, oy, ox, "
             "oh, ow);"))


class AddOp(OpDef):
    op = Op.ADD
    spatial = True
    elementwise = True
    c_kernels = (ADD,)
    onnx = {"Add": lower_add, "Sub": lower_sub}

    def out_shape(self, layer, in_shapes):
        return in_shapes[0]

    def build(self, b, a: int, c: int, out_q: QParamsLike, activation="none", clip=None,
              name=None, out_name=None) -> int:
        """c: a's shape or (1, 1, C), broadcast over H and W."""
        ta, tb = b.tensors[a], b.tensors[c]
        why = check_shapes(ta.shape, tb.shape)
        if why:
            raise ValueError(f"{self.op.value} {shown(name)}: {why}")
        twice_max = 2.0 * max(ta.q.scale, tb.q.scale)
        m1, s1 = quantize_multiplier(ta.q.scale / twice_max)
        m2, s2 = quantize_multiplier(tb.q.scale / twice_max)
        mo, so = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * out_q.scale))
        y = b.new_tensor(out_name or f"t{len(b.tensors)}", ta.shape, out_q)
        lo, hi = b.clamp_range(activation, out_q, clip)
        return b.new_layer(op=self.op, inputs=(a, c), output=y,
                           multiplier=np.array([m1, m2, mo], np.int32),
                           shift=np.array([s1, s2, so], np.int32), act_min=lo, act_max=hi,
                           activation=activation, **named(name))

    def quantize(self, b, layer: FloatLayer, ins, out_q):
        return self.build(b, ins[0], ins[1], out_q, activation=layer.activation,
                          clip=layer.clip, name=layer.name, out_name=layer.output)

    def reference(self, model, layer, xs):
        zin, zout = zero_points(model, layer)
        return add(xs[0], xs[1], layer.multiplier, layer.shift, zin[0], zin[1], zout,
                   **clamp(layer), sub=self.op == Op.SUB)

    def float_eval(self, layer, xs):
        return xs[0] + xs[1]

    def c_params(self, model: ModelLike, layer: LayerLike):
        m, s = layer.multiplier, layer.shift
        zin, zout = zero_points(model, layer)
        fields = {"input1_offset": -zin[0], "input2_offset": -zin[1],
                  "left_shift": "MSF_ADD_LEFT_SHIFT",
                  "input1_mult": int(m[0]), "input1_shift": int(s[0]),
                  "input2_mult": int(m[1]), "input2_shift": int(s[1]),
                  "output_mult": int(m[2]), "output_shift": int(s[2]),
                  "output_offset": zout, "act_min": layer.act_min, "act_max": layer.act_max,
                  "broadcast": int(broadcasts(model.in_shape(layer, 0),
                                              model.in_shape(layer, 1)))}
        return [CStruct("msf_add_params", f"l{layer.index}_params", fields)]


register(AddOp())
