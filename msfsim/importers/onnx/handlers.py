"""The ONNX ops that produce no layer of their own: activations folded into the layer before
them, flattening, pass-throughs, constants and the shape arithmetic exporters emit, folded at
import. (The ops that produce layers are lowered by their op modules, msfsim.ops; Concat is
both: of constants it folds here, of activations msfsim.ops.concat lowers it.)"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from msfsim import ops
from msfsim.ops import concat
from msfsim.importers.onnx.load import MAX_TENSOR_ELEMENTS, elements, short
from msfsim.importers.onnx.nodes import Act, attrs, fail, node_label
from msfsim.names import shown


def activation(im, node: onnx.NodeProto) -> None:
    """Relu / Clip: the clamp of the layer before it (whose output only it reads)."""
    if node.op_type == "Relu":
        kind, clip = "relu", None
    else:
        a = attrs(node)
        lo = a.get("min", -math.inf)
        hi = a.get("max", math.inf)
        if len(node.input) > 1 and node.input[1]:
            lo = float(im.const(node, 1, "min"))
        if len(node.input) > 2 and node.input[2]:
            hi = float(im.const(node, 2, "max"))
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            raise fail(f"{node_label(node)}: bounds [{lo}, {hi}] are not a range")
        kind = "relu6" if (lo, hi) == (0.0, 6.0) else "relu" if (lo, hi) == (0.0, math.inf) else "clip"
        clip = (float(lo), float(hi))
    layer = im.foldable(node)
    # a layer quantised as its input (max pool) can take a ReLU, not a clamp needing new qparams
    if layer is None or ops.get(layer.op).same_qparams and kind != "relu":
        raise fail(f"{node_label(node)}: an activation must directly follow the "
                   f"layer it belongs to (Conv, Gemm, Add, pooling) and be its only reader")
    layer.activation, layer.clip = kind, clip
    im.rename_output(layer, node, carry_q=True)


def flatten(im, node: onnx.NodeProto) -> None:
    """Flatten / Reshape to [1, N] / Squeeze of a 1x1 map: the same tensor, marked flat."""
    x = im.act(node)
    if node.op_type == "Flatten" and attrs(node).get("axis", 1) != 1:
        raise fail(f"{node_label(node)}: only axis=1 is supported")
    if node.op_type == "Reshape":
        target = [int(v) for v in im.const(node, 1, "shape")]
        total = x.shape[0] * x.shape[1] * x.shape[2]
        ok = (len(target) == 2 and target[0] in (1, -1, 0) and target[1] in (-1, total)) or \
             (len(target) == 4 and target[0] in (1, 0) and target[1:] in ([x.shape[2], x.shape[0], x.shape[1]],))
        if len(target) == 4 and ok:  # no-op reshape (back to 4-D: no longer flat, e.g. an
            im.values[node.output[0]] = Act(x.name, x.shape)  # SE scale viewed as (N, C, 1, 1))
            return
        if not ok:
            raise fail(f"{node_label(node)}: only flattening to [1, {total}] is supported, "
                       f"got {short(target)}")
    if node.op_type == "Squeeze":
        axes = attrs(node).get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = im.const(node, 1, "axes").tolist()
        if x.shape[:2] != (1, 1) or sorted(int(a) % 4 for a in (axes or [2, 3])) != [2, 3]:
            raise fail(f"{node_label(node)}: only squeezing a 1x1 spatial map is supported")
    im.values[node.output[0]] = Act(x.name, x.shape, flat=True)


def identity(im, node: onnx.NodeProto) -> None:
    v = im.values.get(node.input[0])
    im.values[node.output[0]] = v
    if isinstance(v, Act):
        im.alias[node.output[0]] = v.name


def constant(im, node: onnx.NodeProto) -> None:
    a = attrs(node)
    if "value" in a:
        elements(a["value"].dims, f"{node_label(node)}: its value")
        v = numpy_helper.to_array(a["value"])
    elif "value_float" in a or "value_int" in a:
        v = np.array(a.get("value_float", a.get("value_int")))
    elif "value_floats" in a or "value_ints" in a:
        v = np.array(a.get("value_floats", a.get("value_ints")))
    else:
        raise fail(f"{node_label(node)}: unsupported constant attribute "
                   f"{', '.join(shown(k, 30) for k in list(a)[:3])}")
    im.values[node.output[0]] = v
    im.note_finite(node.output[0], v, "constant")


def _const_fold(fn: Callable[..., np.ndarray]):
    """Shape arithmetic on constants (e.g. PyTorch's `x.view(x.size(0), -1)`), folded at import."""
    def handler(im, node: onnx.NodeProto) -> None:
        if node.op_type == "Squeeze" and im.is_act(node.input[0]):
            return flatten(im, node)
        acts = [n for n in node.input if n and im.is_act(n)]
        if acts and node.op_type == "Concat":  # of activations: a layer (msfsim.ops.concat)
            return concat.lower_concat(im, node)
        if acts and node.op_type != "Shape":
            raise fail(f"{node_label(node)}: unsupported op {shown(node.op_type, 40)} on "
                       f"activation tensor {shown(acts[0])}; supported: "
                       f"{', '.join(im.supported_ops())}")
        im.values[node.output[0]] = v = fn(im, node, attrs(node))
        if isinstance(v, np.ndarray) and v.size > MAX_TENSOR_ELEMENTS:
            raise fail(f"{node_label(node)}: folds to {v.size:,} elements, above msfsim's bound "
                       f"of {MAX_TENSOR_ELEMENTS:,}")
    return handler


def _shape(im, node, a):
    x = im.values[node.input[0]]
    if isinstance(x, Act):
        if x.flat:
            return np.array([1, x.shape[0] * x.shape[1] * x.shape[2]], np.int64)
        return np.array([1, x.shape[2], x.shape[0], x.shape[1]], np.int64)
    return np.array(np.asarray(x).shape, np.int64)


def _axes(im, node, a, k=1):
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    return [int(v) for v in im.const(node, k, "axes").ravel()]


_CONST_OPS = {
    "Shape": _shape,
    "Gather": lambda im, n, a: np.take(im.const(n, 0, "data"), im.const(n, 1, "indices"), axis=a.get("axis", 0)),
    "Unsqueeze": lambda im, n, a: np.expand_dims(im.const(n, 0, "data"), tuple(_axes(im, n, a))),
    "Squeeze": lambda im, n, a: np.squeeze(im.const(n, 0, "data"), tuple(_axes(im, n, a))),
    "Concat": lambda im, n, a: np.concatenate([np.atleast_1d(im.const(n, i, "input"))
                                               for i in range(len(n.input))], axis=a.get("axis", 0)),
    "Cast": lambda im, n, a: np.asarray(im.const(n, 0, "input")).astype(
        onnx.helper.tensor_dtype_to_np_dtype(a["to"])),
}

HANDLERS: dict[str, Callable] = {
    "Relu": activation, "Clip": activation, "Flatten": flatten, "Reshape": flatten,
    "Identity": identity, "Dropout": identity, "Constant": constant,
    **{k: _const_fold(v) for k, v in _CONST_OPS.items()},
}
