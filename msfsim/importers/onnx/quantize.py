"""Quantisation: QuantizeLinear / DequantizeLinear (QDQ models carry their own int8 qparams and
weights), and the emission of the float graph as int8 IR, every layer quantised by its op."""
from __future__ import annotations

import numpy as np
import onnx

from msfsim import ops
from msfsim.importers.onnx.load import short
from msfsim.importers.onnx.nodes import (Act, Grouped, Padded, QConst, Selected, attrs,
                                         fail, node_label)
from msfsim.ir import IRBuilder, Model, QParams
from msfsim.names import shown


def _scale_zero_point(im, node: onnx.NodeProto, default_zp: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A QuantizeLinear/DequantizeLinear's scale (positive) and zero point (integer constant)."""
    scale = im.const(node, 1, "scale").astype(np.float64)
    if scale.size == 0 or np.any(scale <= 0):
        bad = float(scale.min()) if scale.size else "empty"
        raise fail(f"{node_label(node)}: scale {shown(node.input[1])} must be positive, got {bad}")
    if len(node.input) < 3 or not node.input[2]:
        return scale, default_zp
    zp = im.values.get(node.input[2])
    if not isinstance(zp, np.ndarray) or zp.dtype.kind not in "iu":
        kind = zp.dtype.name if isinstance(zp, np.ndarray) else "not a constant"
        raise fail(f"{node_label(node)}: zero point {shown(node.input[2])} must be an integer "
                   f"constant ({kind})")
    if zp.size not in (1, scale.size):
        raise fail(f"{node_label(node)}: zero point {shown(node.input[2])} has {zp.size} values "
                   f"for {scale.size} scales")
    return scale, zp


def quantize_linear(im, node: onnx.NodeProto) -> None:
    """Of an activation: its qparams (int8, or uint8 shifted to int8); of a constant: its
    integer values, kept exactly. A Pad's output keeps its input's qparams (the zeros it adds
    are folded into the padding of the layer reading it, which pads with that zero point)."""
    v = im.values.get(node.input[0])
    scale, zp = _scale_zero_point(im, node, np.array(0, np.uint8))
    if isinstance(v, (Selected, Grouped)) and _view_keeps_qparams(im, v, scale, zp):
        im.values[node.output[0]] = ("q", v)  # a view quantised as its source: still a view
        return
    if isinstance(v, Grouped):
        raise fail(f"{node_label(node)}: quantises the channel view of {v.where} with other "
                   f"parameters than its source's; a channel shuffle moves values, it cannot "
                   f"requantise them")
    if isinstance(v, Selected):  # quantised on its own: make it the layer it is
        v = im.act(node)
    x = v.src if isinstance(v, Padded) else v
    if not isinstance(x, Act):  # quantising a constant: keep it as integer values
        zpa = np.asarray(zp)
        q = np.clip(np.round(np.asarray(x, np.float64) / scale) + zpa, -128, 127)
        im.values[node.output[0]] = QConst(q.astype(np.int8), scale, zpa.astype(np.int64),
                                           attrs(node).get("axis", 1))
        return
    zpa = np.asarray(zp)
    if scale.size != 1:
        raise fail(f"{node_label(node)}: per-channel activation quantisation is "
                   f"not supported")
    z = int(zpa.ravel()[0])
    if zpa.dtype == np.uint8:
        z -= 128  # uint8 activations map onto int8 by shifting the zero point
    elif zpa.dtype != np.int8:
        raise fail(f"{node_label(node)}: {zpa.dtype} activations are not supported "
                   f"(int8 or uint8)")
    name = im.canon(x.name)
    q = QParams(float(scale.ravel()[0]), z)
    if im.qparams.setdefault(name, q) != q and isinstance(v, Padded):
        raise fail(f"{node_label(node)}: quantises a Pad's output with other parameters than "
                   f"its input's; msfsim folds the Pad into the layer reading it, so the two "
                   f"must agree")
    im.values[node.output[0]] = ("q", v)


def _view_keeps_qparams(im, v, scale, zp) -> bool:
    """Whether a channel view (Selected, Grouped) is quantised as the activation it views."""
    while isinstance(v, (Selected, Grouped)):
        v = v.src
    zpa = np.asarray(zp)
    if scale.size != 1 or zpa.dtype not in (np.int8, np.uint8):
        return False
    z = int(zpa.ravel()[0]) - (128 if zpa.dtype == np.uint8 else 0)
    return im.qparams.get(im.canon(v.name)) == QParams(float(scale.ravel()[0]), z)


def dequantize_linear(im, node: onnx.NodeProto) -> None:
    """After a QuantizeLinear: the float tensor itself; of a constant: a QConst."""
    v = im.values.get(node.input[0])
    if isinstance(v, tuple) and v and v[0] == "q":  # Q -> DQ pair: the float tensor itself
        x = v[1]
        im.values[node.output[0]] = x
        if isinstance(x, Act):
            im.alias[node.output[0]] = x.name
        return
    if isinstance(v, QConst):
        im.values[node.output[0]] = v
        return
    if isinstance(v, np.ndarray):
        scale, zp = _scale_zero_point(im, node, np.array(0))
        im.values[node.output[0]] = QConst(v, scale.ravel(), np.asarray(zp).astype(np.int64).ravel(),
                                           attrs(node).get("axis", 1))
        return
    raise fail(f"{node_label(node)}: input {shown(node.input[0])} must be a "
               f"QuantizeLinear output or a constant (integer graph inputs are not supported)")


HANDLERS = {"QuantizeLinear": quantize_linear, "DequantizeLinear": dequantize_linear}


def emit(im, out_name: str, q: dict[str, QParams]) -> Model:
    """The IR of the layers the output depends on, each quantised by its op with the qparams
    `q` of its output (QDQ, inherited through a folded activation, or calibrated)."""
    src = im.values[im.input_name]
    assert isinstance(src, Act)
    b = IRBuilder(im.name, src.shape, q[im.canon(im.input_name)], im.input_name)
    tid = {im.canon(im.input_name): b.input}
    live = im.live_layers(out_name)
    for layer in im.layers:
        if layer.output not in live:
            continue
        try:
            tid[layer.output] = ops.get(layer.op).quantize(
                b, layer, [tid[im.canon(i)] for i in layer.inputs], q[layer.output])
        except (ValueError, ArithmeticError) as exc:  # FloatingPointError, OverflowError too
            raise fail(f"{layer.where}: cannot be quantised ({type(exc).__name__}: "
                       f"{short(exc, 120)})") from None
    return b.build(tid[out_name])
