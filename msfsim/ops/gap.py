"""gap: global average pooling -> (1, 1, C), a block tail.

The sum of (x - zp_in) over H x W, mapped by one multiplier with 1 / (H * W) folded in. As a
tail it keeps a running per-channel int32 sum that each output tile of the block's last spatial
layer feeds. Kernels: `msf_global_avg_pool_{init,accumulate,finish}_s8`.
ONNX: GlobalAveragePool, ReduceMean over H and W (and an AveragePool over the whole input).
"""
from __future__ import annotations

import numpy as np

from msfsim import UnsupportedModel
from msfsim.ops import fixedpoint as fx
from msfsim.ops.base import (BuilderLike, CKernel, CStruct, FloatLayer, LayerLike, ModelLike,
                             OpDef, QParamsLike, clamp, named, register, zero_points)
from msfsim.ops.fixedpoint import quantize_multiplier
from msfsim.ops.kinds import Op


def gap(x: np.ndarray, multiplier: int, shift: int, zp_in: int = 0, zp_out: int = 0,
        act_min: int = -128, act_max: int = 127) -> np.ndarray:
    acc = (x.astype(np.int64) - zp_in).sum(axis=(0, 1))
    return fx.to_int8(acc, multiplier, shift, zp_out, act_min, act_max).reshape(1, 1, -1)


def lower_hw_reduction(ctx, node, op: Op) -> None:
    """A reduction over H and W as a layer whose one window is the whole map: gap
    (GlobalAveragePool, ReduceMean) or maxpool (GlobalMaxPool, ReduceMax); a Reduce* without
    keepdims flattens its output."""
    x = ctx.act(node)
    keep = 1
    if node.op_type.startswith("Reduce"):
        a = ctx.attrs(node)
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = ctx.const(node, 1, "axes").ravel().tolist()
        if sorted(int(v) % 4 for v in (axes or [])) != [2, 3]:
            what = "mean" if op == Op.GAP else "max"
            raise UnsupportedModel(f"{ctx.where(node)}: only the {what} over H and W (axes 2, "
                                   f"3) is supported, got axes {ctx.short(axes)}")
        keep = a.get("keepdims", 1)
    h, w, c = x.shape
    ctx.new_layer(node, FloatLayer(op, node.name or node.output[0], [ctx.canon(x.name)],
                                   node.output[0], (1, 1, c), kernel=(h, w)))
    if not keep:
        ctx.define(node.output[0], (1, 1, c), flat=True)


def lower_gap(ctx, node) -> None:
    lower_hw_reduction(ctx, node, Op.GAP)


_PARAMS = "(const msf_gap_params *)l->params"
GAP = CKernel(
    "MSF_OP_GAP", 6, "tail, running per-channel sum",
    tail_init=f"msf_global_avg_pool_init_s8({_PARAMS}, acc);",
    tail_feed=f"msf_global_avg_pool_accumulate_s8(in, {_PARAMS}, y0, x0, h, w, acc);",
    tail_finish=f"msf_global_avg_pool_finish_s8({_PARAMS}, acc, out);")


class GapOp(OpDef):
    op = Op.GAP
    tail = True
    c_kernels = (GAP,)
    onnx = {"GlobalAveragePool": lower_gap, "ReduceMean": lower_gap}

    def out_shape(self, layer, in_shapes):
        return (1, 1, in_shapes[0][2])

    def build(self, b, x: int, out_q: QParamsLike | None = None, name: str | None = None,
              out_name: str | None = None) -> int:
        xt = b.tensors[x]
        h, w, c = xt.shape
        out_q = out_q or xt.q
        m, s = quantize_multiplier(xt.q.scale / (out_q.scale * h * w))
        y = b.new_tensor(out_name or f"t{len(b.tensors)}", (1, 1, c), out_q)
        return b.new_layer(op=Op.GAP, inputs=(x,), output=y, kernel=(h, w),
                           multiplier=np.array([m], np.int32), shift=np.array([s], np.int32),
                           **named(name))

    def quantize(self, b, layer: FloatLayer, ins, out_q):
        return self.build(b, ins[0], out_q=out_q, name=layer.name, out_name=layer.output)

    def reference(self, model, layer, xs):
        zin, zout = zero_points(model, layer)
        return gap(xs[0], int(layer.multiplier[0]), int(layer.shift[0]), zin[0], zout,
                   **clamp(layer))

    def float_eval(self, layer, xs):
        return xs[0].mean(axis=(1, 2), keepdims=True)

    def c_params(self, model: ModelLike, layer: LayerLike):
        zin, zout = zero_points(model, layer)
        fields = {"channels": model.out_shape(layer)[2], "input_offset": -zin[0],
                  "output_offset": zout, "act_min": layer.act_min, "act_max": layer.act_max,
                  "multiplier": int(layer.multiplier[0]), "shift": int(layer.shift[0])}
        return [CStruct("msf_gap_params", f"l{layer.index}_params", fields)]


register(GapOp())
