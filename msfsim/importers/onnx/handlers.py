"""The ONNX ops that produce no layer of their own: activations folded into the layer before
them (or, where they cannot fold, a table layer), flattening, pass-throughs, constants and the shape arithmetic exporters emit, folded at
import (each per the ONNX spec), and Pad, whose zeros the Conv or AveragePool reading it folds
into its own padding. (The ops that produce layers are lowered by their op modules,
msfsim.ops; Concat is both: of constants it folds here, of activations msfsim.ops.concat lowers
it.)"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from msfsim.ops import channels, concat
from msfsim.ops.lut import table_layer
from msfsim.importers.onnx.load import MAX_TENSOR_ELEMENTS, elements, short
from msfsim.importers.onnx.nodes import (Act, Grouped, Padded, Selected, attrs,
                                         check_act_size, fail, keeps_input_qparams,
                                         node_label)
from msfsim.names import shown


def activation(im, node: onnx.NodeProto) -> None:
    """Relu / Clip: the clamp of the layer before it (whose output only it reads), else a
    table of its own."""
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
    # a layer quantised as its input (max pool) can take a ReLU, not a clamp needing new
    # qparams; a clamp that cannot fold (its input read elsewhere too, the network input, a
    # layer without a clamp of its own) is a table of its own
    if layer is None or keeps_input_qparams(layer) and kind != "relu":
        lo, hi = clip if clip is not None else (0.0, math.inf)
        table_layer(im, node, 0, "clip", {"min": lo, "max": hi})
        return
    layer.activation, layer.clip = kind, clip
    im.rename_output(layer, node, carry_q=True)


def flatten(im, node: onnx.NodeProto) -> None:
    """Flatten / Reshape to [1, N] / Squeeze of a 1x1 map: the same tensor, marked flat.
    (A Reshape of a constant is shape arithmetic, folded.)"""
    if node.op_type == "Reshape" and isinstance(im.values.get(node.input[0]), Grouped):
        return _shuffled(im, node)
    if node.op_type == "Reshape" and not im.is_act(node.input[0]):
        return _const_fold(_reshape)(im, node)
    if node.op_type == "Reshape" and _shuffle_view(im, node):
        return
    x = im.act(node)
    if node.op_type == "Flatten" and attrs(node).get("axis", 1) != 1:
        raise fail(f"{node_label(node)}: only axis=1 is supported")
    if node.op_type == "Reshape":
        target = [int(v) for v in im.const(node, 1, "shape").ravel()]
        total = x.shape[0] * x.shape[1] * x.shape[2]
        ok = (len(target) == 2 and target[0] in (1, -1, 0) and target[1] in (-1, total)) or \
             (len(target) == 4 and target[0] in (1, 0) and target[1:] in ([x.shape[2], x.shape[0], x.shape[1]],))
        if len(target) == 4 and ok:  # no-op reshape (back to 4-D: no longer flat, e.g. an
            im.values[node.output[0]] = Act(x.name, x.shape)  # SE scale viewed as (N, C, 1, 1))
            return
        if not ok:
            raise fail(f"{node_label(node)}: only flattening to [1, {total}] (or a channel "
                       f"shuffle's [1, g, C / g, H, W]) is supported, got {short(target)}")
    if node.op_type == "Squeeze":
        axes = attrs(node).get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = im.const(node, 1, "axes").tolist()
        if x.shape[:2] != (1, 1) or sorted(int(a) % 4 for a in (axes or [2, 3])) != [2, 3]:
            raise fail(f"{node_label(node)}: only squeezing a 1x1 spatial map is supported")
    im.values[node.output[0]] = Act(x.name, x.shape, flat=True)


def _shuffle_view(im, node: onnx.NodeProto) -> bool:
    """Reshape of a 4-D activation (or channel selection) to [1, g, C / g, H, W], a channel
    shuffle's first step: its channels viewed as (g, C / g) (Grouped). False for any other
    target."""
    v = im.view(node)
    h, w, c = v.shape
    target = [int(t) for t in im.const(node, 1, "shape").ravel()]
    if len(target) != 5 or target[0] not in (0, 1) or target[3:] != [h, w] or \
            target[1] < 1 or c % target[1] or target[2] not in (-1, c // target[1]) or v.flat:
        return False
    g = target[1]
    im.values[node.output[0]] = Grouped(v, np.arange(c).reshape(g, c // g), node_label(node))
    return True


def identity(im, node: onnx.NodeProto) -> None:
    im.same_as(node)


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
        if node.op_type == "Transpose" and isinstance(im.values.get(node.input[0]), Grouped):
            return shuffle_transpose(im, node)
        acts = [n for n in node.input if n and im.is_act(n)]
        if acts and node.op_type == "Concat":  # of activations: a layer (msfsim.ops.concat)
            return concat.lower_concat(im, node)
        if acts and node.op_type == "Slice" and im.is_act(node.input[0]):
            return slice_activation(im, node)
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
    if isinstance(x, (Act, Selected)):
        if x.flat:
            return np.array([1, x.shape[0] * x.shape[1] * x.shape[2]], np.int64)
        return np.array([1, x.shape[2], x.shape[0], x.shape[1]], np.int64)
    return np.array(np.asarray(x).shape, np.int64)


def _axes(im, node, a, k=1):
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    return [int(v) for v in im.const(node, k, "axes").ravel()]


def _reshape(im, node, a):
    data = np.asarray(im.const(node, 0, "data"))
    shape = [int(v) for v in im.const(node, 1, "shape").ravel()]
    if not a.get("allowzero", 0):  # 0 copies the input's dimension
        shape = [data.shape[i] if v == 0 and i < data.ndim else v for i, v in enumerate(shape)]
    return data.reshape(shape)


def _constant_of_shape(im, node, a):
    shape = [int(v) for v in im.const(node, 0, "input").ravel()]
    elements(shape, f"{node_label(node)}: its output")
    value = numpy_helper.to_array(a["value"]).ravel() if "value" in a else np.zeros(1, np.float32)
    if value.size != 1:
        raise fail(f"{node_label(node)}: value must hold one element, it holds {value.size}")
    return np.full(shape, value[0], value.dtype)


def _slice(im, node, a):
    """Slice (opset 1-9: starts / ends / axes attributes; 10+: inputs, with steps)."""
    data = np.asarray(im.const(node, 0, "data"))
    return data[_slice_index(im, node, a, data.shape)]


def slice_activation(im, node: onnx.NodeProto) -> None:
    """Slice of an activation: along the channels only (H and W, and the batch, whole), as a
    channel selection (msfsim.ops.channels)."""
    x = im.view(node)
    shape = (1, x.shape[2]) if x.flat else (1, x.shape[2], x.shape[0], x.shape[1])
    index = _slice_index(im, node, attrs(node), shape)
    for axis, sl in enumerate(index):
        if axis != 1 and range(shape[axis])[sl] != range(shape[axis]):
            raise fail(f"{node_label(node)}: slices axis {axis} of an activation; only slices "
                       f"along the channels (axis 1) are supported")
    im.select(node, 0, np.arange(shape[1])[index[1]])


def _slice_index(im, node, a, shape) -> tuple[slice, ...]:
    """The Python slices of a Slice node on a tensor of `shape`."""
    ndim = len(shape)
    if "starts" in a:
        starts, ends = list(a["starts"]), list(a["ends"])
        axes = list(a.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts = [int(v) for v in im.const(node, 1, "starts").ravel()]
        ends = [int(v) for v in im.const(node, 2, "ends").ravel()]
        opt = lambda k, what: (im.const(node, k, what).ravel().tolist()  # noqa: E731
                               if len(node.input) > k and node.input[k] else None)
        axes = opt(3, "axes") or list(range(len(starts)))
        steps = opt(4, "steps") or [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise fail(f"{node_label(node)}: starts, ends, axes and steps differ in length")
    index = [slice(None)] * ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis, start, end, step = int(axis), int(start), int(end), int(step)
        if not -ndim <= axis < ndim or step == 0:
            raise fail(f"{node_label(node)}: axis {axis} or step {step} is out of range")
        axis %= ndim
        dim = shape[axis]
        start, end = start + dim if start < 0 else start, end + dim if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
        index[axis] = slice(start, None if end < 0 else end, step)
    return tuple(index)


def _arithmetic(im, node, a):
    """Add, Sub, Mul, Div of constants (TorchScript's shape arithmetic, e.g. torch.chunk's
    split sizes), with ONNX's broadcasting; integer Div truncates toward zero."""
    x, y = (np.asarray(im.const(node, k, f"input {k}")) for k in (0, 1))
    if node.op_type != "Div":
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[node.op_type](x, y)
    if x.dtype.kind in "iu" and y.dtype.kind in "iu":
        if np.any(y == 0):
            raise fail(f"{node_label(node)}: integer division by zero")
        q = np.abs(x) // np.abs(y)
        return np.where((x < 0) != (y < 0), -q, q).astype(np.result_type(x, y))
    return np.divide(x, y)


# Arithmetic ops fold here when every input is a constant (walk.Importer._visit); on an
# activation they are layers (msfsim.ops)
ARITHMETIC = frozenset({"Add", "Sub", "Mul", "Div"})
fold_arithmetic = _const_fold(_arithmetic)


def shuffle_transpose(im, node: onnx.NodeProto) -> None:
    """Transpose of a channel view (Grouped) swapping its two channel axes."""
    v = im.values[node.input[0]]
    perm = [int(p) for p in attrs(node).get("perm", [])]
    if perm != [0, 2, 1, 3, 4]:
        raise fail(f"{node_label(node)}: transposes the channel view of {v.where} by "
                   f"{short(perm)}; only a channel shuffle's [0, 2, 1, 3, 4] is supported")
    im.values[node.output[0]] = Grouped(v.src, v.index.T, v.where)


def _shuffled(im, node: onnx.NodeProto) -> None:
    """Reshape of a channel view back to [1, C, H, W]: its channels in the view's order."""
    v = im.values[node.input[0]]
    h, w, c = v.src.shape
    target = [int(t) for t in im.const(node, 1, "shape").ravel()]
    if len(target) != 4 or target[0] not in (0, 1) or target[1] not in (-1, c) or \
            target[2:] != [h, w]:
        raise fail(f"{node_label(node)}: reshapes the channel view of {v.where} to "
                   f"{short(target)}; only back to [1, {c}, {h}, {w}] is supported")
    im.select(node, 0, v.index.ravel(), src=v.src)


def _transpose(im, node, a):
    data = np.asarray(im.const(node, 0, "data"))
    perm = a.get("perm")
    return np.transpose(data, None if perm is None else [int(p) for p in perm])


_CONST_OPS = {
    "Shape": _shape,
    "Gather": lambda im, n, a: np.take(im.const(n, 0, "data"), im.const(n, 1, "indices"), axis=a.get("axis", 0)),
    "Unsqueeze": lambda im, n, a: np.expand_dims(im.const(n, 0, "data"), tuple(_axes(im, n, a))),
    "Squeeze": lambda im, n, a: np.squeeze(im.const(n, 0, "data"), tuple(_axes(im, n, a))),
    "Concat": lambda im, n, a: np.concatenate([np.atleast_1d(im.const(n, i, "input"))
                                               for i in range(len(n.input))], axis=a.get("axis", 0)),
    "Cast": lambda im, n, a: np.asarray(im.const(n, 0, "input")).astype(
        onnx.helper.tensor_dtype_to_np_dtype(a["to"])),
    "ConstantOfShape": _constant_of_shape,
    "Slice": _slice,
    "Transpose": _transpose,
}


def pad(im, node: onnx.NodeProto) -> None:
    """Pad of an activation with zeros, along H and W only (mode constant, value 0): kept as
    `Padded` for the Conv or AveragePool reading it, which adds it to its own padding
    (exact: a conv pads with the input zero point, the quantised 0.0). Anything else is refused
    here, and so is a reader that cannot fold it (walk.Importer._visit)."""
    where = node_label(node)
    x = im.values.get(node.input[0])
    if isinstance(x, Selected):
        x = im.act(node)
    if not isinstance(x, (Act, Padded)):
        raise fail(f"{where}: only padding an activation tensor is supported")
    a = attrs(node)
    mode = a.get("mode", b"constant")
    mode = mode.decode("utf-8", "replace") if isinstance(mode, bytes) else str(mode)
    if mode != "constant":
        raise fail(f"{where}: mode {shown(mode, 20)} padding is not supported; msfsim folds only "
                   f"zero padding (mode constant, value 0) into the Conv or AveragePool reading it")
    if "pads" in a:  # opset 1-10: attributes
        pads, value, axes = [int(v) for v in a["pads"]], float(a.get("value", 0.0)), None
    else:
        pads = [int(v) for v in im.const(node, 1, "pads").ravel()]
        value = (float(np.asarray(im.const(node, 2, "constant_value")).ravel()[0])
                 if len(node.input) > 2 and node.input[2] else 0.0)
        axes = (im.const(node, 3, "axes").ravel().tolist()
                if len(node.input) > 3 and node.input[3] else None)
    axes = [int(v) for v in (axes if axes is not None else range(4))]
    if any(not -4 <= v < 4 for v in axes):
        raise fail(f"{where}: axes {short(axes)} are not axes of a 4-D NCHW tensor")
    axes = [v % 4 for v in axes]
    if len(pads) != 2 * len(axes) or len(set(axes)) != len(axes):
        raise fail(f"{where}: pads {short(pads)} do not match a 4-D NCHW tensor")
    begin = dict(zip(axes, pads[:len(axes)]))
    end = dict(zip(axes, pads[len(axes):]))
    if value != 0.0:
        raise fail(f"{where}: padding with {value:g} is not supported; msfsim folds only zero "
                   f"padding into the Conv or AveragePool reading it")
    if any(begin.get(i, 0) or end.get(i, 0) for i in (0, 1)):
        raise fail(f"{where}: pads {short(pads)} pad the batch or channel axis; only H and W "
                   f"padding is supported")
    p = (begin.get(2, 0), begin.get(3, 0), end.get(2, 0), end.get(3, 0))
    if min(p) < 0:
        raise fail(f"{where}: negative pads {short(pads)} (cropping) are not supported")
    src = x.src if isinstance(x, Padded) else x
    if src.flat:
        raise fail(f"{where}: input is flattened")
    if isinstance(x, Padded):
        p = tuple(u + v for u, v in zip(x.pad, p))
    v = Padded(src, p, where)  # type: ignore[arg-type]
    check_act_size(f"{where}: its output", v.shape)
    im.values[node.output[0]] = v


HANDLERS: dict[str, Callable] = {
    "Relu": activation, "Clip": activation, "Flatten": flatten, "Reshape": flatten,
    "Identity": identity, "Dropout": identity, "Constant": constant, "Pad": pad,
    "Split": channels.lower_split,
    **{k: _const_fold(v) for k, v in _CONST_OPS.items()},
}
