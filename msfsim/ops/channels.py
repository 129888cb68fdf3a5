"""Channel selections of ONNX graphs: Slice and Split of an activation along its channels
(GhostNet's `x[:, :oup]`, CSP and ShuffleNet splits). All of the input's channels in order are
the input itself; any other selection is a 1x1 conv whose output channel k has one weight, 1,
on input channel index[k], at Cout x Cin MACs a pixel. One weight per channel quantises
exactly, so its sums are the selected values; the output is requantised to its own scale (a
byte copy where it equals the input's).
"""
from __future__ import annotations

import numpy as np

from msfsim import UnsupportedModel
from msfsim.ops.base import FloatLayer
from msfsim.ops.kinds import Op


def select_channels(ctx, node, k: int, x, index: np.ndarray) -> None:
    """Output k of `node` is channels `index` (in that order) of activation input x."""
    import onnx
    c = x.shape[2]
    index = np.asarray(index, np.int64).ravel()
    if index.size == 0:
        raise UnsupportedModel(f"{ctx.where(node)}: output {k} selects no channel")
    one = onnx.helper.make_node(node.op_type, [node.input[0]], [node.output[k]], name=node.name)
    if np.array_equal(index, np.arange(c)):
        ctx.same_as(one)
        return
    w = np.zeros((index.size, 1, 1, c))
    w[np.arange(index.size), 0, 0, index] = 1.0
    ctx.new_layer(one, FloatLayer(Op.CONV, node.name or node.output[k], [ctx.canon(x.name)],
                                  node.output[k], (x.shape[0], x.shape[1], index.size),
                                  weight=w))
    if x.flat:
        ctx.define(node.output[k], (x.shape[0], x.shape[1], index.size), flat=True)


def lower_split(ctx, node) -> None:
    """Split of an activation along the channels (axis 1) into parts: the `split` sizes
    (input from opset 13, attribute before), else `num_outputs` (opset 18) or one part per
    output, equal but for a smaller last one."""
    x = ctx.act(node, 0)
    a = ctx.attrs(node)
    axis = int(a.get("axis", 0))
    if axis not in (1, -3 if not x.flat else -1):
        raise UnsupportedModel(f"{ctx.where(node)}: only a split along the channels (axis 1) is "
                               f"supported, got axis {axis}")
    c, n = x.shape[2], len(node.output)
    if len(node.input) > 1 and node.input[1]:
        sizes = [int(v) for v in np.asarray(ctx.const(node, 1, "split")).ravel()]
    elif "split" in a:
        sizes = [int(v) for v in a["split"]]
    else:
        per = -(-c // n)
        sizes = [min(per, c - per * i) for i in range(n)]
    if len(sizes) != n or any(s < 1 for s in sizes) or sum(sizes) != c:
        raise UnsupportedModel(f"{ctx.where(node)}: split sizes {sizes[:8]} do not cut {c} "
                               f"channels into {n} parts")
    start = 0
    for k, s in enumerate(sizes):
        select_channels(ctx, node, k, x, np.arange(start, start + s))
        start += s
