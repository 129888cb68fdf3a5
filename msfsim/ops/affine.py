"""Per-channel affine maps of an activation, y = f * x + g with f and g one value per channel:
ONNX's BatchNormalization, and Mul, Div, Add or Sub by a constant broadcast along the channels
(a (1, C, 1, 1) scale, torch's input normalisation `(x - mean) / std`).

Where the layer before can take it (a conv, dwconv or dense with no activation yet, whose
output only this node reads) it is folded into that layer's weights and bias: exact in float,
and QDQ int8 weights stay exact (|f| goes into their scales, its sign into the int8 values).
Elsewhere (after a pool, an add, a concat, an activation, or on the network input) it is a 1x1
depthwise conv whose one weight per channel is exact under per-channel int8 quantisation.
"""
from __future__ import annotations

import numpy as np

from msfsim import UnsupportedModel
from msfsim.names import shown
from msfsim.ops.base import FloatLayer, get
from msfsim.ops.kinds import Op


def channel_vector(ctx, node, k: int, c: int, flat: bool, what: str) -> np.ndarray:
    """Constant input k of `node` as C finite values, one per channel: one number, or a tensor
    that ONNX broadcasting spreads along the channel axis only ((C, 1, 1), (1, C, 1, 1); on a
    flattened (N, C) activation (C,) or (1, C)). Anything that would vary along H or W (a
    (C,) on a 4-D activation broadcasts along W) is refused, naming the node."""
    v = np.asarray(ctx.const(node, k, what), dtype=np.float64)
    rank = 2 if flat else 4
    axis = 1  # C in NCHW, and in (N, C)
    shape = (1,) * (rank - v.ndim) + v.shape if v.ndim <= rank else None
    if shape is None or any(d != 1 for i, d in enumerate(shape) if i != axis) or \
            shape[axis] not in (1, c):
        raise UnsupportedModel(f"{ctx.where(node)}: {what} {shown(node.input[k])} of shape "
                               f"{list(v.shape)} does not broadcast along the channels only "
                               f"(one value, or {'(1, C)' if flat else '(1, C, 1, 1) / (C, 1, 1)'}"
                               f" with C = {c})")
    out = np.broadcast_to(v.reshape(-1), (c,)).copy()
    if not np.all(np.isfinite(out)):
        raise UnsupportedModel(f"{ctx.where(node)}: {what} {shown(node.input[k])} is not finite")
    return out


def fold_into(layer: FloatLayer, f: np.ndarray, g: np.ndarray) -> None:
    """f * layer(x) + g for a layer with weights (conv, dwconv, dense) and no activation."""
    axis = get(layer.op).weight_axis
    shape = [1] * layer.weight.ndim
    shape[axis] = -1
    layer.weight = layer.weight * f.reshape(shape)
    if layer.weight_q is not None:
        q, s = layer.weight_q
        sign = np.where(f < 0, -1, np.where(f > 0, 1, 0))  # f = 0: the channel is zero
        layer.weight_q = ((q * sign.reshape(shape)).astype(np.int8),
                          np.where(f == 0, 1.0, s * np.abs(f)))
    layer.bias = (layer.bias if layer.bias is not None else 0.0) * f + g


def _activation_first(node, k: int):
    """`node` with its activation input k as input 0, where `foldable` looks."""
    if k == 0:
        return node
    import onnx
    return onnx.helper.make_node(node.op_type, [node.input[k], node.input[1 - k]],
                                 list(node.output), name=node.name)


def foldable_weights(ctx, node, k: int = 0) -> FloatLayer | None:
    """The layer writing `node`'s activation input k if an affine map can fold into it."""
    layer = ctx.foldable(_activation_first(node, k))
    if layer is None or get(layer.op).weight_axis is None:
        return None
    return layer


def lower_affine(ctx, node, k: int, f: np.ndarray, g: np.ndarray) -> None:
    """`node` (its activation input k) as f * x + g per channel: folded into the layer
    before, or a 1x1 depthwise conv."""
    node, k = _activation_first(node, k), 0
    layer = foldable_weights(ctx, node)
    if layer is not None:
        fold_into(layer, f, g)
        ctx.rename_output(layer, node)
        return
    x = ctx.act(node, k)
    ctx.new_layer(node, FloatLayer(Op.DWCONV, node.name or node.output[0], [ctx.canon(x.name)],
                                   node.output[0], x.shape,
                                   weight=f.reshape(1, 1, -1).astype(np.float64),
                                   bias=np.asarray(g, np.float64)))
    if x.flat:
        ctx.define(node.output[0], x.shape, flat=True)
