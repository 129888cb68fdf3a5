"""TFLite operators that become msfsim layers, with TFLM's integer parameters (quant.py).

CONV_2D and DEPTHWISE_CONV_2D -> conv / dwconv (a PAD before them folds into their padding
when it pads with the input zero point; a depth multiplier above 1 makes a conv with
block-diagonal weights), FULLY_CONNECTED -> dense, ADD -> add (same shapes or a (1, 1, C)
operand broadcast), or a lut when one operand is a constant scalar, MAX_POOL_2D -> maxpool,
AVERAGE_POOL_2D -> avgpool in TFLite's rounding mode, MEAN over H and W -> gap with the
multiplier TFLM's MEAN uses, HARD_SWISH, LOGISTIC, TANH, LEAKY_RELU, RELU, RELU6 and an int8
QUANTIZE -> lut (the table by TFLM's integer arithmetic, luts.py), MUL -> mul (same shapes or a
(1, 1, C) operand broadcast), or a lut when one operand is a constant scalar, CONCATENATION along channels -> concat (a chain for more than
two inputs), SOFTMAX -> softmax. Each checks what msfsim's op cannot express and says so.
"""
from __future__ import annotations

import functools

import numpy as np
import tflite

from msfsim.importers.onnx.load import MAX_WEIGHT_ELEMENTS
from msfsim.importers.tflite import luts, quant
from msfsim.importers.tflite.read import TflOp, type_name
from msfsim.importers.tflite.walk import INT8, Walk
from msfsim.ir import Op, op_def
from msfsim.names import shown
from msfsim.ops import convbase
from msfsim.ops.convbase import MAX_DILATION, dilate

SAME = tflite.Padding.SAME


def _padding(w: Walk, op: TflOp, hw, k, s, mode: int) -> tuple[int, int, int, int]:
    """TFLM ComputePaddingHeightWidth: SAME puts the odd pixel after (bottom / right)."""
    if mode != SAME:
        return (0, 0, 0, 0)
    pads = []
    for n, kk, ss in zip(hw, k, s):
        out = (n + ss - 1) // ss
        total = max((out - 1) * ss + kk - n, 0)
        pads.append((total // 2, total - total // 2))
    (t, b), (l, r) = pads
    return (t, l, b, r)


def _act_range(w: Walk, op: TflOp, act: int) -> tuple[int, int]:
    q = w.qparams(op.outputs[0], op)
    try:
        return quant.activation_range(act, q.scale, q.zero_point)
    except ValueError as exc:
        raise w.fail(op, str(exc)) from None


def _weights(w: Walk, op: TflOp, cout_axis: int):
    """(int8 weights, per-channel scales, int32 bias) of a conv / FC, checked."""
    wt = w.t(op.inputs[1]) if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
    if wt is None or wt.data is None:
        raise w.fail(op, "weights must be a constant")
    if wt.dtype != INT8 or wt.scale.size == 0:
        raise w.fail(op, f"weights {shown(wt.name)} are {type_name(wt.dtype)}"
                         f"{'' if wt.scale.size else ' without quantisation'}; msfsim takes int8 "
                         f"per-channel weights (TFLiteConverter full-integer)")
    if len(wt.shape) != (2 if op.name == "FULLY_CONNECTED" else 4):
        raise w.fail(op, f"weights {shown(wt.name)} of shape {list(wt.shape)}")
    cout = wt.shape[cout_axis]
    if wt.scale.size not in (1, cout) or (wt.scale.size > 1 and wt.qdim != cout_axis):
        raise w.fail(op, f"weights {shown(wt.name)}: {wt.scale.size} scales along dimension "
                         f"{wt.qdim}, expected per-tensor or per-channel along {cout_axis}")
    if np.any(wt.zero_point != 0):
        raise w.fail(op, f"weights {shown(wt.name)} have nonzero zero points (int8 weights "
                         f"are symmetric)")
    bias = np.zeros(cout, np.int32)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bt = w.t(op.inputs[2])
        if bt.data is None or bt.dtype != tflite.TensorType.INT32 or bt.data.size != cout:
            raise w.fail(op, f"bias {shown(bt.name)} must be a constant int32 vector of {cout}")
        bias = bt.data.reshape(-1).astype(np.int32)
    return wt, bias


def conv(w: Walk, op: TflOp) -> None:
    """CONV_2D -> conv; DEPTHWISE_CONV_2D -> dwconv, or with a depth multiplier m > 1 (also a
    1-channel input making m channels) -> a dense conv whose weights are block-diagonal
    (`block_diagonal`): identical int8 arithmetic (zero weights add nothing to the int32
    accumulator), Cin times the MACs of the depthwise layer. A grouped CONV_2D (weights of
    Cin / g input channels) likewise becomes the dense conv with block-diagonal weights."""
    depthwise = op.name == "DEPTHWISE_CONV_2D"
    o = op.options
    if o is None:
        raise w.fail(op, "options missing")
    dil = (int(o.dilation_h), int(o.dilation_w))
    if not all(1 <= d <= MAX_DILATION for d in dil):
        raise w.fail(op, f"dilation {dil[0]}x{dil[1]} is not in [1, {MAX_DILATION}]")
    i = op.inputs[0]
    pre = (0, 0, 0, 0)
    if i in w.pads:  # PAD folded: its padding adds to the convolution's own
        src, pre = w.pads[i]
    else:
        src = w.act(op, 0)
    assert w.b is not None
    x = w.b.tensors[src]
    in_q = w.qparams(i, op)
    wt, bias = _weights(w, op, 3 if depthwise else 0)
    wq = wt.data
    if depthwise:
        if (wq.ndim != 4 or wq.shape[0] != 1 or wq.shape[3] < x.shape[2]
                or wq.shape[3] % x.shape[2]):
            raise w.fail(op, f"depthwise weights {list(wq.shape)} for {x.shape[2]} channels")
        dm = wq.shape[3] // x.shape[2]
        if o.depth_multiplier != dm:  # TFLM indexes the weights by the option's multiplier
            raise w.fail(op, f"depth multiplier {o.depth_multiplier} for weights "
                             f"{list(wq.shape)} on {x.shape[2]} channels")
        wir, k = wq[0], (wq.shape[1], wq.shape[2])
        if dm > 1:  # the same int8 arithmetic as a dense CONV_2D (more MACs)
            if wq.size * x.shape[2] > MAX_WEIGHT_ELEMENTS:
                raise w.fail(op, f"depth multiplier {dm} on {x.shape[2]} channels: as a dense "
                                 f"convolution its weights would exceed msfsim's bound of "
                                 f"{MAX_WEIGHT_ELEMENTS:,} values")
            depthwise, wir = False, block_diagonal(wir, dm)
    else:
        groups = x.shape[2] // wq.shape[3] if wq.ndim == 4 and wq.shape[3] else 0
        if (wq.ndim != 4 or groups < 1 or groups * wq.shape[3] != x.shape[2]
                or wq.shape[0] % groups):
            raise w.fail(op, f"weights {list(wq.shape)} for {x.shape[2]} input channels")
        wir, k = wq, (wq.shape[1], wq.shape[2])
        if groups > 1:  # Conv2D(groups=g): TFLM's grouped sums as a dense conv (more MACs)
            if wq.size * groups > MAX_WEIGHT_ELEMENTS:
                raise w.fail(op, f"{groups} groups: as a dense convolution its weights would "
                                 f"exceed msfsim's bound of {MAX_WEIGHT_ELEMENTS:,} values")
            wir = convbase.block_diagonal(wq.transpose(0, 3, 1, 2), groups).transpose(0, 2, 3, 1)
    if dil != (1, 1):  # the zero-inserted kernel (TFLM pads SAME by its extent too)
        axes = (0, 1) if depthwise else (1, 2)
        if wir.size * dil[0] * dil[1] > MAX_WEIGHT_ELEMENTS:
            raise w.fail(op, f"dilation {dil[0]}x{dil[1]}: as a dense kernel its weights would "
                             f"exceed msfsim's bound of {MAX_WEIGHT_ELEMENTS:,} values")
        wir = dilate(wir, dil, axes)
        k = (wir.shape[axes[0]], wir.shape[axes[1]])
    s = (int(o.stride_h), int(o.stride_w))
    if min(s) < 1:
        raise w.fail(op, f"stride {list(s)}")
    # SAME padding is computed on the input the convolution sees: the PAD's output
    inner = _padding(w, op, (x.shape[0] + pre[0] + pre[2], x.shape[1] + pre[1] + pre[3]), k, s,
                     o.padding)
    pad = tuple(a + b for a, b in zip(pre, inner))
    cout = wir.shape[-1] if depthwise else wir.shape[0]
    out_q = w.qparams(op.outputs[0], op)
    mult, shift = quant.channel_requant(in_q.scale, wt.scale, out_q.scale, cout)
    lo, hi = _act_range(w, op, o.activation)
    shape = op_def(Op.DWCONV if depthwise else Op.CONV).out_shape(
        _Probe(k, s, pad, wir), [x.shape])
    y = w.new_tensor(op, shape)
    w.b.new_layer(op=Op.DWCONV if depthwise else Op.CONV, inputs=(src,), output=y, kernel=k,
                  stride=s, pad=pad, weight=np.ascontiguousarray(wir, np.int8), bias=bias,
                  multiplier=mult, shift=shift, act_min=lo, act_max=hi,
                  activation=quant.ACTIVATION_NAMES[o.activation],
                  name=w.t(op.outputs[0]).name)
    w.define(op, y)


def block_diagonal(dw: np.ndarray, mult: int) -> np.ndarray:
    """DEPTHWISE_CONV_2D weights (kh, kw, C * mult) with depth multiplier `mult` as dense
    CONV_2D weights (C * mult, kh, kw, C): output channel o = c * mult + j reads input channel
    c alone (reference_integer_ops::DepthwiseConvPerChannel), zeros elsewhere. TFLM's sum over
    the taps of that one channel is the conv's sum, the zeros adding nothing: the same bias,
    per-channel requantisation and output, bit for bit, for C times the MACs."""
    kh, kw, cout = dw.shape
    cin = cout // mult
    out = np.zeros((cout, kh, kw, cin), np.int8)
    o = np.arange(cout)
    out[o, :, :, o // mult] = np.moveaxis(dw, 2, 0)
    return out


class _Probe:
    """The fields an op's out_shape reads, before the layer exists."""
    def __init__(self, kernel, stride, pad, weight):
        self.kernel, self.stride, self.pad, self.weight = kernel, stride, pad, weight


def fully_connected(w: Walk, op: TflOp) -> None:
    """FULLY_CONNECTED -> dense over the whole input read as one row; with weights of the
    input's channel count on a map or sequence (Keras' Dense on a (1, T, C) input, keep_num_dims:
    the same product at every position) -> a 1x1 conv, the same int8 arithmetic."""
    o = op.options
    src = w.act(op, 0)
    assert w.b is not None
    x = w.b.tensors[src]
    wt, bias = _weights(w, op, 0)
    per_position = (wt.data.ndim == 2 and x.size != x.shape[2] and wt.data.shape[1] == x.shape[2]
                    and len(w.t(op.outputs[0]).shape) >= 3)
    if wt.data.ndim != 2 or (wt.data.shape[1] != x.size and not per_position):
        raise w.fail(op, f"weights {list(wt.data.shape)} for an input of {x.size} values "
                         f"(msfsim's dense reads the whole input as one row, or each "
                         f"position's {x.shape[2]} channels)")
    if o is not None and o.weights_format != 0:
        raise w.fail(op, "shuffled weights are not supported")
    in_q, out_q = w.qparams(op.inputs[0], op), w.qparams(op.outputs[0], op)
    cout = wt.data.shape[0]
    mult, shift = quant.channel_requant(in_q.scale, wt.scale, out_q.scale, cout,
                                        per_tensor_f32=wt.scale.size == 1)
    act = o.activation if o is not None else 0
    lo, hi = _act_range(w, op, act)
    if per_position:
        y = w.new_tensor(op, (x.shape[0], x.shape[1], cout))
        w.b.new_layer(op=Op.CONV, inputs=(src,), output=y, kernel=(1, 1),
                      weight=np.ascontiguousarray(wt.data.reshape(cout, 1, 1, -1)), bias=bias,
                      multiplier=mult, shift=shift, act_min=lo, act_max=hi,
                      activation=quant.ACTIVATION_NAMES[act], name=w.t(op.outputs[0]).name)
        w.define(op, y)
        return
    y = w.new_tensor(op, (1, 1, cout))
    w.b.new_layer(op=Op.DENSE, inputs=(src,), output=y, weight=np.ascontiguousarray(wt.data),
                  bias=bias, multiplier=mult, shift=shift, act_min=lo, act_max=hi,
                  activation=quant.ACTIVATION_NAMES[act], name=w.t(op.outputs[0]).name)
    w.define(op, y)


def add(w: Walk, op: TflOp) -> None:
    """ADD of two activations of one shape, or with a (1, 1, C) operand broadcast over H and W
    (TFLM's BroadcastAdd: the same arithmetic per element); the broadcast operand goes second,
    with its multiplier (the sum is symmetric)."""
    act = op.options.activation if op.options is not None else 0
    lo, hi = _act_range(w, op, act)
    if _by_const(w, op, luts.add_const_table, lo, hi):
        return
    _add_layer(w, op, w.act(op, 0), w.act(op, 1), lo, hi, act)


def _add_layer(w: Walk, op: TflOp, a: int, c: int, lo: int, hi: int, act: int,
               kind: Op = Op.ADD) -> None:
    """The add (or sub) layer of IR tensors a and c, the multipliers from their scales by
    TFLM's ADD / SUB rule (the same); an add's broadcast operand goes second with its
    multiplier (the sum is symmetric), a sub's must be second."""
    from msfsim.ops import mul as mul_op  # the broadcast rule mul and add share
    assert w.b is not None
    if mul_op.broadcasts(w.b.tensors[c].shape, w.b.tensors[a].shape):
        if kind == Op.SUB:
            raise w.fail(op, "a (1, 1, C) tensor minus a map is not supported (only the "
                             "second operand may be broadcast)")
        a, c = c, a
    why = mul_op.check_shapes(w.b.tensors[a].shape, w.b.tensors[c].shape)
    if why:
        raise w.fail(op, why)
    qa, qc, qo = w.b.tensors[a].q, w.b.tensors[c].q, w.qparams(op.outputs[0], op)
    try:
        mult, shift = quant.add_requant(qa.scale, qc.scale, qo.scale)
    except ValueError as exc:
        raise w.fail(op, str(exc)) from None
    y = w.new_tensor(op, w.b.tensors[a].shape)
    w.b.new_layer(op=kind, inputs=(a, c), output=y, multiplier=mult, shift=shift,
                  act_min=lo, act_max=hi, activation=quant.ACTIVATION_NAMES[act],
                  name=w.t(op.outputs[0]).name)
    w.define(op, y)


def _at_least_zero_point(w: Walk, t: int) -> bool:
    """Whether every value of IR tensor t is at or above its zero point (the real 0): the
    layer writing it clamps there (a ReLU), or it is a max pool / table of such values."""
    assert w.b is not None
    zp = w.b.tensors[t].q.zero_point
    for la in w.b.layers:
        if la.output != t:
            continue
        if la.op == Op.MAXPOOL:
            return _at_least_zero_point(w, la.inputs[0])
        if la.op == Op.LUT and la.weight is not None:
            return int(la.weight.min()) >= zp
        return la.act_min >= zp
    return False  # the network input: any value


def pool(w: Walk, op: TflOp) -> None:
    o = op.options
    if o is None:
        raise w.fail(op, "options missing")
    k, s = (int(o.filter_h), int(o.filter_w)), (int(o.stride_h), int(o.stride_w))
    if min(k) < 1 or min(s) < 1:
        raise w.fail(op, f"filter {list(k)}, stride {list(s)}")
    pre = (0, 0, 0, 0)
    if op.inputs and op.inputs[0] in w.pads:
        # ZeroPadding2D before MaxPooling2D (DenseNet's stem): the padded taps are the real 0,
        # which changes no max of values at or above it when every window keeps a tap inside
        # the tensor, so the PAD is the pool's own padding (ignored taps)
        src, pre = w.pads[op.inputs[0]]
        if op.name != "MAX_POOL_2D" or not _at_least_zero_point(w, src) or \
                max(pre[0], pre[2]) >= k[0] or max(pre[1], pre[3]) >= k[1]:
            raise w.fail(op, "a PAD before a pool is supported only before a MAX_POOL_2D of "
                             "values at or above the zero point (after a ReLU), padding less "
                             "than the filter (padded taps would count in the max / the "
                             "divisor)")
    else:
        src = w.act(op, 0)
    assert w.b is not None
    x = w.b.tensors[src]
    inner = _padding(w, op, (x.shape[0] + pre[0] + pre[2], x.shape[1] + pre[1] + pre[3]), k, s,
                     o.padding)
    pad = tuple(a + b for a, b in zip(pre, inner))
    if any(pre) and (max(pad[0], pad[2]) >= k[0] or max(pad[1], pad[3]) >= k[1]):
        raise w.fail(op, f"padding {list(pad)} leaves a window without a tap in the tensor")
    lo, hi = _act_range(w, op, o.activation)
    in_q, out_q = w.qparams(op.inputs[0], op), w.qparams(op.outputs[0], op)
    avg = op.name == "AVERAGE_POOL_2D"
    if not avg and in_q != out_q:
        raise w.fail(op, "input and output quantisation differ (TFLite's max pool copies int8 "
                         "values)")
    from msfsim.ops import pool as pool_op
    shape = op_def(Op.AVGPOOL).out_shape(_Probe(k, s, pad, None), [x.shape])
    if any(d <= 0 for d in shape):
        raise w.fail(op, f"filter {list(k)} larger than the input")
    w.check_shape(op, shape)  # pool_op.build makes the tensor
    y = pool_op.build(w.b, src, "avg" if avg else "max", k, s, pad, out_q=out_q,
                      name=w.t(op.outputs[0]).name, out_name=w.t(op.outputs[0]).name,
                      tflite=avg, act_range=(lo, hi))
    w.define(op, y)


def _spatial_reduction(w: Walk, op: TflOp) -> tuple[int, int, int, int]:
    """(IR source, H, W, C) of a reduction over H and W: axes 1 and 2 of a (1, H, W, C)
    tensor, or axis 1 of a (1, W, C) one (Conv1D models: msfsim's (1, W, C))."""
    src = w.act(op, 0)
    rank = len(w.t(op.inputs[0]).shape)
    axes = sorted(int(a) % max(rank, 1) for a in np.asarray(w.const(op, 1, "axes")).ravel())
    if (rank, axes) not in ((4, [1, 2]), (3, [1])):
        raise w.fail(op, f"only a reduction over H and W of a (1, H, W, C) tensor, or over W "
                         f"of a (1, W, C) one, is supported (axes {axes} of a {rank}-D tensor)")
    assert w.b is not None
    h, wd, c = w.b.tensors[src].shape
    return src, h, wd, c


def mean(w: Walk, op: TflOp) -> None:
    """MEAN over H and W (GlobalAveragePooling2D / 1D) -> gap."""
    src, h, wd, c = _spatial_reduction(w, op)
    assert w.b is not None
    in_q, out_q = w.qparams(op.inputs[0], op), w.qparams(op.outputs[0], op)
    # TFLM's reference MEAN takes this multiplier path whatever the qparams (older TFLM
    # releases divided the raw sum when they were equal; tests/test_tflite_import.py checks
    # the installed tflite_micro on both cases)
    m, s = quant.mean_requant(in_q.scale, out_q.scale, h * wd)
    y = w.new_tensor(op, (1, 1, c))
    w.b.new_layer(op=Op.GAP, inputs=(src,), output=y, kernel=(h, wd),
                  multiplier=np.array([m], np.int32), shift=np.array([s], np.int32),
                  name=w.t(op.outputs[0]).name)
    w.define(op, y)


def reduce_max(w: Walk, op: TflOp) -> None:
    """REDUCE_MAX over H and W (GlobalMaxPooling2D / 1D) -> a max pool of the whole map."""
    src, h, wd, c = _spatial_reduction(w, op)
    assert w.b is not None
    if w.qparams(op.inputs[0], op) != w.qparams(op.outputs[0], op):
        raise w.fail(op, "input and output quantisation differ (TFLM's REDUCE_MAX copies "
                         "int8 values)")
    from msfsim.ops import pool as pool_op
    w.check_shape(op, (1, 1, c))
    out = w.t(op.outputs[0]).name
    w.define(op, pool_op.build(w.b, src, "max", (h, wd), (h, wd), name=out, out_name=out))


def pad(w: Walk, op: TflOp) -> None:
    """PAD / PADV2 of H and W (of W in a (1, W, C) sequence: Conv1D's causal padding) with the
    input zero point: held for the convolution after it (through a RESHAPE that keeps msfsim's
    shape: the converter reshapes a sequence to (1, 1, W, C) for the CONV_2D)."""
    src = w.act(op, 0)
    p = np.asarray(w.const(op, 1, "paddings")).astype(np.int64)
    in_q, out_q = w.qparams(op.inputs[0], op), w.qparams(op.outputs[0], op)
    if p.shape == (3, 2):  # (1, W, C): W is msfsim's W, H is 1
        p = np.concatenate([p[:1], np.zeros((1, 2), np.int64), p[1:]])
    if p.shape != (4, 2) or np.any(p[0] != 0) or np.any(p[3] != 0) or np.any(p < 0):
        raise w.fail(op, f"paddings {p.tolist()}: only non-negative padding of H and W is "
                         f"supported")
    if in_q != out_q:
        raise w.fail(op, "input and output quantisation differ")
    if op.name == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        v = np.asarray(w.const(op, 2, "constant value")).ravel()
        if v.size != 1 or int(v[0]) != in_q.zero_point:
            raise w.fail(op, f"pads with {v.tolist()}, not the zero point {in_q.zero_point}: "
                             f"only zero padding folds into the next convolution")
    assert w.b is not None
    h, wd, c = w.b.tensors[src].shape
    w.check_shape(op, (h + int(p[1].sum()), wd + int(p[2].sum()), c))
    if not _padded_readers(w, op.outputs[0]):
        raise w.fail(op, "msfsim folds PAD only into the CONV_2D / DEPTHWISE_CONV_2D (or "
                         "MAX_POOL_2D of a ReLU's output) reading it")
    w.pads[op.outputs[0]] = (src, (int(p[1, 0]), int(p[2, 0]), int(p[1, 1]), int(p[2, 1])))


def _padded_readers(w: Walk, t: int, depth: int = 0) -> bool:
    """Whether every operator reading TFLite tensor t (through RESHAPEs) can fold a PAD."""
    readers = [o for o in w.g.ops if t in o.inputs]
    if not readers or depth > 4:
        return False
    return all(o.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D") or
               (o.name == "RESHAPE" and o.inputs[0] == t and o.outputs and
                _padded_readers(w, o.outputs[0], depth + 1)) for o in readers)


HANDLERS = {"CONV_2D": conv, "DEPTHWISE_CONV_2D": conv, "FULLY_CONNECTED": fully_connected,
            "ADD": add, "AVERAGE_POOL_2D": pool, "MAX_POOL_2D": pool, "MEAN": mean,
            "REDUCE_MAX": reduce_max, "PAD": pad, "PADV2": pad}


# ------------------------------------------------------------------ unary activations, MUL

def _lut(w: Walk, op: TflOp, src: int, table: np.ndarray) -> None:
    from msfsim.ops import lut as lut_op
    assert w.b is not None
    shape = w.b.tensors[src].shape
    w.check_shape(op, shape)
    out = w.t(op.outputs[0])
    y = lut_op.LutOp().build(w.b, src, table, w.qparams(op.outputs[0], op), name=out.name,
                             out_name=out.name, activation=op.name.lower())
    w.define(op, y)


def _lut_per_value(w: Walk, op: TflOp, src: int, vals: np.ndarray, make) -> None:
    """_lut of the tables make(v) of the constant's values: one, or one per channel."""
    try:
        tables = [make(int(v)) for v in vals]
    except ValueError as exc:
        raise w.fail(op, str(exc)) from None
    _lut(w, op, src, np.stack(tables))


def unary(w: Walk, op: TflOp) -> None:
    """HARD_SWISH, LOGISTIC, TANH, LEAKY_RELU, and RELU / RELU6 the converter could not fuse
    into the layer before (after a pool, a concatenation, the input) -> lut, the table by
    TFLM's int8 arithmetic (luts.py)."""
    src = w.act(op, 0)
    qi, qo = w.qparams(op.inputs[0], op), w.qparams(op.outputs[0], op)
    make = {"HARD_SWISH": luts.hard_swish_table, "LOGISTIC": luts.logistic_table,
            "TANH": luts.tanh_table, "LEAKY_RELU": luts.leaky_relu_table,
            "RELU": luts.relu_table, "RELU6": luts.relu6_table}[op.name]
    if op.name == "LEAKY_RELU":  # alpha 0 is the schema's default
        make = functools.partial(make, alpha=op.options.alpha if op.options is not None else 0.0)
    try:
        table = make(qi.scale, qi.zero_point, qo.scale, qo.zero_point)
    except ValueError as exc:
        raise w.fail(op, str(exc)) from None
    _lut(w, op, src, table)


def requantize(w: Walk, op: TflOp) -> None:
    """QUANTIZE inside the graph, int8 -> int8: the same tensor when the quantisation stays,
    else a lut of TFLM's Requantize (the converter inserts one where a tensor must change
    scale, e.g. before a CONCATENATION whose inputs must share the output's)."""
    src = w.act(op, 0)
    qi, qo = w.qparams(op.inputs[0], op), w.qparams(op.outputs[0], op)
    if qi == qo:
        w.define(op, src)
        return
    _lut(w, op, src, luts.requantize_table(qi.scale, qi.zero_point, qo.scale, qo.zero_point))


def _is_const(w: Walk, op: TflOp, k: int) -> bool:
    """Whether input k of `op` is a constant tensor."""
    i = op.inputs[k] if k < len(op.inputs) else -1
    return i >= 0 and i in w.consts and i not in w.ir


def _const_operand(w: Walk, op: TflOp, k: int, channels: int) -> tuple[np.ndarray, float, int]:
    """Constant input k as int8 values, one or one per channel (equal along every axis but the
    last, which TFLite broadcasts along the channels): (the values, (1,) or (C,), scale, zero
    point)."""
    i = op.inputs[k]
    t = w.t(i)
    v = np.asarray(w.consts[i])
    what = f"constant operand {shown(t.name)}"
    if t.dtype != INT8 or t.scale.size != 1:
        raise w.fail(op, f"{what}: only int8 with one scale is supported (got "
                         f"{type_name(t.dtype)}, {t.scale.size} scales)")
    rows = v.reshape(-1, v.shape[-1] if v.ndim else 1)
    if v.size != 1 and (rows.shape[1] not in (1, channels) or np.any(rows != rows[:1])):
        raise w.fail(op, f"{what} of shape {list(v.shape)}: only one value, or one per channel "
                         f"({channels}) broadcast over H and W, is supported")
    vals = rows[0].astype(np.int64)
    return (vals[:1] if np.all(vals == vals[0]) else vals), float(t.scale[0]), int(t.zero_point[0])


def _by_const(w: Walk, op: TflOp, make, lo: int, hi: int, ordered: bool = False) -> bool:
    """ADD / SUB / MUL with an int8 constant operand (one value, or one per channel): a lut of
    TFLM's arithmetic on every value of the other operand, a table per channel where the
    constant differs per channel (False when neither operand is a constant). `ordered`: the
    op is not symmetric, so `make` is told whether the constant comes first."""
    assert w.b is not None
    for k in (0, 1):
        if not _is_const(w, op, 1 - k):
            continue
        src = w.act(op, k)
        vals, c_scale, c_zp = _const_operand(w, op, 1 - k, w.b.tensors[src].shape[2])
        qi, qo = w.qparams(op.inputs[k], op), w.qparams(op.outputs[0], op)
        extra = {"const_first": k == 1} if ordered else {}
        _lut_per_value(w, op, src, vals, lambda v: make(qi.scale, qi.zero_point, v, c_scale,
                                                         c_zp, qo.scale, qo.zero_point, lo, hi,
                                                         **extra))
        return True
    return False


def sub(w: Walk, op: TflOp) -> None:
    """SUB of two activations (the second of one shape or (1, 1, C)) -> sub; of an activation
    and an int8 constant (one value or one per channel; either order: Keras' Normalization
    writes x - mean) -> lut, TFLM's arithmetic on every input value."""
    act = op.options.activation if op.options is not None else 0
    lo, hi = _act_range(w, op, act)
    if _by_const(w, op, luts.sub_const_table, lo, hi, ordered=True):
        return
    _add_layer(w, op, w.act(op, 0), w.act(op, 1), lo, hi, act, Op.SUB)


def _select_channels(w: Walk, op: TflOp, src: int, index: np.ndarray, k: int = 0) -> None:
    """Output k of `op` as channels `index` of IR tensor src: a 1x1 conv whose output channel
    j has one weight, 1, on input channel index[j], requantised by exactly 1 (multiplier 2^30,
    shift 1): the same bytes TFLM copies, the input and output sharing one quantisation."""
    assert w.b is not None
    if index.size == 0:
        raise w.fail(op, "selects no channel")
    qi, qo = w.b.tensors[src].q, w.qparams(op.outputs[k], op)
    if (quant.f32(qi.scale), qi.zero_point) != (quant.f32(qo.scale), qo.zero_point):
        raise w.fail(op, "input and output quantised differently (TFLM copies the int8 "
                         "values)")
    h, wd, c = w.b.tensors[src].shape
    n = index.size
    if np.array_equal(index, np.arange(c)):
        w.define(op, src, k)
        return
    weight = np.zeros((n, 1, 1, c), np.int8)
    weight[np.arange(n), 0, 0, index] = 1
    y = w.new_tensor(op, (h, wd, n), k)
    w.b.new_layer(op=Op.CONV, inputs=(src,), output=y, kernel=(1, 1), weight=weight,
                  bias=np.zeros(n, np.int32), multiplier=np.full(n, 1 << 30, np.int32),
                  shift=np.ones(n, np.int32), name=w.t(op.outputs[k]).name)
    w.define(op, y, k)


def channel_slice(w: Walk, op: TflOp) -> None:
    """STRIDED_SLICE of an activation along its channels (x[..., a:b]: GhostNet's ghost
    module), every other axis whole -> the selected channels (_select_channels)."""
    src = w.act(op, 0)
    shape = w.t(op.inputs[0]).shape
    begin, end, stride = (np.asarray(w.const(op, k, n)).astype(np.int64).ravel()
                          for k, n in ((1, "begin"), (2, "end"), (3, "strides")))
    o = op.options
    rank = len(shape)
    if not (begin.size == end.size == stride.size == rank) or rank < 2:
        raise w.fail(op, f"begin / end / strides of {begin.size} / {end.size} / {stride.size} "
                         f"values for a {rank}-D tensor")
    if o is not None and (o.ellipsis_mask or o.new_axis_mask or o.shrink_axis_mask):
        raise w.fail(op, "ellipsis, new-axis and shrink masks are not supported on an activation")
    bm, em = (o.begin_mask, o.end_mask) if o is not None else (0, 0)
    for a in range(rank - 1):
        b0 = 0 if bm >> a & 1 else int(begin[a])
        e0 = shape[a] if em >> a & 1 else int(end[a])
        if stride[a] != 1 or slice(b0, e0).indices(shape[a]) != (0, shape[a], 1):
            raise w.fail(op, f"slices axis {a} of {list(shape)}: msfsim slices activations "
                             f"along the channels only (Cropping2D is not supported)")
    last = rank - 1
    if stride[last] == 0:
        raise w.fail(op, "stride 0")
    b = None if bm >> last & 1 else int(begin[last])
    e = None if em >> last & 1 else int(end[last])
    _select_channels(w, op, src, np.arange(shape[last])[b:e:int(stride[last])])


def split(w: Walk, op: TflOp) -> None:
    """SPLIT (equal parts; inputs: axis, tensor) / SPLIT_V (inputs: tensor, sizes, axis) of an
    activation along its channels -> each part its channels (_select_channels)."""
    if op.name == "SPLIT":
        axis, k_in, sizes = int(np.asarray(w.const(op, 0, "axis")).ravel()[0]), 1, None
    else:
        axis, k_in = int(np.asarray(w.const(op, 2, "axis")).ravel()[0]), 0
        sizes = np.asarray(w.const(op, 1, "size_splits")).astype(np.int64).ravel()
    src = w.act(op, k_in)
    rank = len(w.t(op.inputs[k_in]).shape)
    if rank not in (2, 3, 4) or axis % rank != rank - 1:
        raise w.fail(op, f"only along the channels (the last axis) is supported (axis {axis} "
                         f"of a {rank}-D tensor)")
    assert w.b is not None
    c, n = w.b.tensors[src].shape[2], len(op.outputs)
    if sizes is None:
        if n < 1 or c % n:
            raise w.fail(op, f"{c} channels do not split into {n} equal parts")
        sizes = np.full(n, c // n)
    elif sizes.size == n and np.sum(sizes == -1) == 1:  # -1: the channels left
        sizes = np.where(sizes == -1, c - (sizes.sum() + 1), sizes)
    if sizes.size != n or np.any(sizes < 1) or sizes.sum() != c:
        raise w.fail(op, f"splits {c} channels into {sizes.tolist()} for {n} outputs")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for k, (a, m) in enumerate(zip(starts, sizes)):
        _select_channels(w, op, src, np.arange(a, a + m), k)


def prelu(w: Walk, op: TflOp) -> None:
    """PRELU with a constant alpha, one or one per channel (Keras' PReLU with
    shared_axes=[1, 2], or a single alpha) -> lut, TFLM's arithmetic on every input value."""
    src = w.act(op, 0)
    assert w.b is not None
    if not _is_const(w, op, 1):
        raise w.fail(op, "alpha (input 1) must be a constant")
    vals, a_scale, a_zp = _const_operand(w, op, 1, w.b.tensors[src].shape[2])
    qi, qo = w.qparams(op.inputs[0], op), w.qparams(op.outputs[0], op)
    _lut_per_value(w, op, src, vals, lambda v: luts.prelu_table(
        qi.scale, qi.zero_point, v, a_scale, a_zp, qo.scale, qo.zero_point))


def min_max(w: Walk, op: TflOp) -> None:
    """MINIMUM / MAXIMUM of an activation and an int8 constant (Keras' ReLU(max_value=...))
    -> lut. TFLM compares the int8 values as they are, so the operands and the output must
    share one quantisation for the result to mean what the float op does."""
    assert w.b is not None
    k = 1 if _is_const(w, op, 0) else 0
    if len(op.inputs) != 2 or not _is_const(w, op, 1 - k):
        raise w.fail(op, f"a {op.name} of two activations is not supported (only of an "
                         f"activation and a constant)")
    src = w.act(op, k)
    vals, c_scale, c_zp = _const_operand(w, op, 1 - k, w.b.tensors[src].shape[2])
    qi, qo = w.qparams(op.inputs[k], op), w.qparams(op.outputs[0], op)
    if qi != qo or (quant.f32(c_scale), c_zp) != (quant.f32(qi.scale), qi.zero_point):
        raise w.fail(op, "operands and output quantised differently (TFLM compares and copies "
                         "the int8 values as they are)")
    _lut_per_value(w, op, src, vals, lambda v: luts.min_max_table(v, op.name == "MAXIMUM"))


def mul(w: Walk, op: TflOp) -> None:
    """MUL of two activations (same shape, or a (1, 1, C) one broadcast over H and W) -> mul;
    by a constant scalar -> lut (TFLM's Mul on every input value)."""
    act = op.options.activation if op.options is not None else 0
    lo, hi = _act_range(w, op, act)
    if _by_const(w, op, luts.mul_const_table, lo, hi):
        return
    qo = w.qparams(op.outputs[0], op)
    a, c = w.act(op, 0), w.act(op, 1)
    assert w.b is not None
    ia, ic = op.inputs[0], op.inputs[1]
    from msfsim.ops import mul as mul_op
    if mul_op.broadcasts(w.b.tensors[c].shape, w.b.tensors[a].shape):
        a, c, ia, ic = c, a, ic, ia  # the (1, 1, C) operand second (the product commutes)
    why = mul_op.check_shapes(w.b.tensors[a].shape, w.b.tensors[c].shape)
    if why:
        raise w.fail(op, why)
    qa, qc = w.qparams(ia, op), w.qparams(ic, op)
    # mul_common.cc: the scales multiplied and divided in double
    m, s = quant.quantize_multiplier(float(qa.scale) * float(qc.scale) / float(qo.scale))
    w.check_shape(op, w.b.tensors[a].shape)
    out = w.t(op.outputs[0])
    y = mul_op.MulOp().build(w.b, a, c, qo, name=out.name, out_name=out.name, requant=(m, s),
                             act_range=(lo, hi), activation=quant.ACTIVATION_NAMES[act])
    w.define(op, y)


def concatenation(w: Walk, op: TflOp) -> None:
    """CONCATENATION along channels of activations with the output's quantisation (TFLM's
    int8 kernel copies bytes and requires it) -> a chain of two-input concat layers."""
    from msfsim.ops import concat as concat_op
    o = op.options
    if o is not None and o.activation != 0:
        raise w.fail(op, "a fused activation on CONCATENATION is not supported")
    ins = [w.act(op, k) for k in range(len(op.inputs))]
    axis = int(o.axis) if o is not None else 0
    rank = len(w.t(op.outputs[0]).shape)
    if rank not in (2, 3, 4) or axis % rank != rank - 1 or len(ins) < 2:
        raise w.fail(op, f"only concatenation along channels (the last axis) is supported "
                         f"(axis {axis} of a {rank}-D tensor, {len(ins)} inputs)")
    qo = w.qparams(op.outputs[0], op)
    if any(w.qparams(i, op) != qo for i in op.inputs):
        raise w.fail(op, "inputs quantised differently from the output (TFLM's int8 "
                         "CONCATENATION requires the same scale and zero point)")
    assert w.b is not None
    if len({w.b.tensors[i].shape[:2] for i in ins}) != 1:
        raise w.fail(op, "inputs differ in H or W")
    out = w.t(op.outputs[0])
    y = ins[0]
    for k, i in enumerate(ins[1:], start=1):
        last = k == len(ins) - 1
        if last:
            h, wd = w.b.tensors[y].shape[:2]
            w.check_shape(op, (h, wd, w.b.tensors[y].shape[2] + w.b.tensors[i].shape[2]))
        y = concat_op.ConcatOp().build(w.b, y, i, qo, name=out.name if last else f"{out.name}_{k}",
                                       out_name=out.name if last else f"{out.name}_{k}")
    w.define(op, y)


def softmax(w: Walk, op: TflOp) -> None:
    """SOFTMAX of a (1, N) vector or a 1x1xC map -> softmax; over the channels of every pixel
    of a larger map (a FOMO-style detector's head) -> softmax_map; beta from its options
    (TFLM's int8 arithmetic; output scale 1/256, zero point -128 as TFLM requires)."""
    from msfsim.ops import softmax as softmax_op
    src = w.act(op, 0)
    assert w.b is not None
    shape = w.b.tensors[src].shape
    qo = w.qparams(op.outputs[0], op)
    if qo.zero_point != softmax_op.OUTPUT_ZERO_POINT or quant.f32(qo.scale) != quant.f32(1 / 256):
        raise w.fail(op, f"output scale {qo.scale:g}, zero point {qo.zero_point}: TFLM's int8 "
                         f"softmax requires scale 1/256 and zero point -128")
    beta = op.options.beta if op.options is not None else 1.0
    w.check_shape(op, shape)
    out = w.t(op.outputs[0])
    try:
        opdef = op_def(Op.SOFTMAX if shape[:2] == (1, 1) else Op.SOFTMAX_MAP)
        y = opdef.build(w.b, src, beta=beta, out_q=qo, name=out.name, out_name=out.name)
    except ValueError as exc:
        raise w.fail(op, str(exc)) from None
    w.define(op, y)


HANDLERS.update({"HARD_SWISH": unary, "LOGISTIC": unary, "TANH": unary,
                 "LEAKY_RELU": unary, "RELU": unary, "RELU6": unary, "QUANTIZE": requantize,
                 "MUL": mul, "SUB": sub, "PRELU": prelu, "MINIMUM": min_max, "MAXIMUM": min_max,
                 "SPLIT": split, "SPLIT_V": split,
                 "CONCATENATION": concatenation, "SOFTMAX": softmax})
