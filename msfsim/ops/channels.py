"""Channel selections of ONNX graphs: Slice and Split of an activation along its channels
(GhostNet's `x[:, :oup]`, CSP and ShuffleNet splits). All of the input's channels in order are
the input itself. The importer keeps any other selection as a view (`Selected`): a selection
of it composes (ShuffleNet's shuffle, then split), and a conv (group 1) that alone reads it
takes it into its weights (zeros on the channels it leaves out). Where something else reads
it, it is a 1x1 conv whose output channel k has one weight, 1, on input channel index[k], at
Cout x Cin MACs a pixel: one weight per channel quantises exactly, so its sums are the
selected values; the output is requantised to its own scale (a byte copy where it equals the
input's).
"""
from __future__ import annotations

import numpy as np

from msfsim import UnsupportedModel
from msfsim.ops.base import FloatLayer
from msfsim.ops.kinds import Op


def one_hot_layer(x, index: np.ndarray, name: str, output: str) -> FloatLayer:
    """The 1x1 conv whose output channel j is channel index[j] of activation x."""
    w = np.zeros((index.size, 1, 1, x.shape[2]))
    w[np.arange(index.size), 0, 0, index] = 1.0
    return FloatLayer(Op.CONV, name, [x.name], output, (x.shape[0], x.shape[1], index.size),
                      weight=w)


def scatter_input_channels(w: np.ndarray, index: np.ndarray, channels: int) -> np.ndarray:
    """Conv weights (Cout, len(index), kh, kw) reading a selection as the weights reading all
    `channels` of its source: input channel index[j] takes column j, the others zeros (the
    same sums; `index` holds no channel twice)."""
    out = np.zeros((w.shape[0], channels) + w.shape[2:], w.dtype)
    out[:, index] = w
    return out


def lower_split(ctx, node) -> None:
    """Split of an activation along the channels (axis 1) into parts: the `split` sizes
    (input from opset 13, attribute before), else `num_outputs` (opset 18) or one part per
    output, equal but for a smaller last one."""
    x = ctx.view(node, 0)
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
        ctx.select(node, k, np.arange(start, start + s))
        start += s
