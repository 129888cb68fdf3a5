"""Numpy model of msfsim's int8 fixed-point arithmetic: the golden reference.

Every function computes exactly what the C kernels (`kernels_c/`) compute, bit for bit:
accumulators are int32 (`bias + sum((x - zp_in) * w)`), requantisation is CMSIS-NN's
`arm_nn_requantize` without single rounding (left shift, SaturatingRoundingDoublingHighMul,
RoundingDivideByPOT), padding behaves as a zero-point input (a zero contribution). Tensors are
NHWC without the batch axis. Matrix products run in float64, which is exact here: every product
and partial sum is an integer far below 2**53.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from msfsim.ir import ADD_LEFT_SHIFT, Layer, Model, Op

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def _wrap32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32 range (as int32 arithmetic in C)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values held in int64 arrays:
    a * b / 2**31 rounded to nearest, ties toward +infinity."""
    ab = a * b  # |a|, |b| <= 2**31: fits int64
    t = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = np.where(t >= 0, t >> 31, -((-t) >> 31))  # C division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2**exponent rounded, ties away from zero."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def requantize(acc, multiplier, shift) -> np.ndarray:
    """arm_nn_requantize (non single-rounding), vectorised, broadcasting; returns int64.

    acc is an int32 accumulator; shift in [-31, 31], positive = left shift (which wraps in
    int32 like the C code).
    """
    acc = _wrap32(np.asarray(acc, dtype=np.int64))
    m = np.asarray(multiplier, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    return divide_by_pot(doubling_high_mul(_wrap32(acc << left), m), right)


def _out(acc, multiplier, shift, zp_out: int, act_min: int, act_max: int) -> np.ndarray:
    v = requantize(acc, multiplier, shift) + zp_out
    return np.clip(v, act_min, act_max).astype(np.int8)


def _windows(x: np.ndarray, kernel, stride, pad, fill: int, out_hw) -> np.ndarray:
    """(Ho, Wo, C, kh, kw) view of the padded input's receptive fields."""
    kh, kw = kernel
    pt, pl, pb, pr = pad
    xp = np.pad(x, ((pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    v = sliding_window_view(xp, (kh, kw), axis=(0, 1))[::stride[0], ::stride[1]]
    return v[:out_hw[0], :out_hw[1]]


def _out_hw(x: np.ndarray, kernel, stride, pad) -> tuple[int, int]:
    h, w = x.shape[:2]
    return ((h + pad[0] + pad[2] - kernel[0]) // stride[0] + 1,
            (w + pad[1] + pad[3] - kernel[1]) // stride[1] + 1)


# ------------------------------------------------------------------ per-op functions

def conv(x: np.ndarray, weight: np.ndarray, bias, multiplier, shift, stride=(1, 1),
         pad=(0, 0, 0, 0), zp_in: int = 0, zp_out: int = 0, act_min: int = -128,
         act_max: int = 127) -> np.ndarray:
    """Standard conv; weight (Cout, kh, kw, Cin); pad (top, left, bottom, right)."""
    cout, kh, kw, cin = weight.shape
    ho, wo = _out_hw(x, (kh, kw), stride, pad)
    xo = x.astype(np.float64) - zp_in  # padding with 0 == a zero-point input
    win = _windows(xo, (kh, kw), stride, pad, 0, (ho, wo))          # (Ho, Wo, C, kh, kw)
    cols = win.transpose(0, 1, 3, 4, 2).reshape(ho * wo, kh * kw * cin)
    acc = cols @ weight.reshape(cout, -1).astype(np.float64).T
    acc = acc.astype(np.int64).reshape(ho, wo, cout)
    if bias is not None:
        acc += np.asarray(bias, np.int64)
    return _out(acc, multiplier, shift, zp_out, act_min, act_max)


def dwconv(x: np.ndarray, weight: np.ndarray, bias, multiplier, shift, stride=(1, 1),
           pad=(0, 0, 0, 0), zp_in: int = 0, zp_out: int = 0, act_min: int = -128,
           act_max: int = 127) -> np.ndarray:
    """Depthwise conv, channel multiplier 1; weight (kh, kw, C)."""
    kh, kw, c = weight.shape
    ho, wo = _out_hw(x, (kh, kw), stride, pad)
    xo = x.astype(np.int64) - zp_in
    win = _windows(xo, (kh, kw), stride, pad, 0, (ho, wo))
    acc = np.einsum("hwckl,klc->hwc", win, weight.astype(np.int64))
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    return _out(acc, multiplier, shift, zp_out, act_min, act_max)


def maxpool(x: np.ndarray, kernel, stride, pad=(0, 0, 0, 0), act_min: int = -128,
            act_max: int = 127) -> np.ndarray:
    """Max over the taps inside the tensor (padding never wins)."""
    ho, wo = _out_hw(x, kernel, stride, pad)
    win = _windows(x.astype(np.int16), kernel, stride, pad, -129, (ho, wo))
    return np.clip(win.max(axis=(3, 4)), act_min, act_max).astype(np.int8)


def avgpool(x: np.ndarray, kernel, stride, pad, multiplier: int, shift: int, zp_in: int = 0,
            zp_out: int = 0, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """Window sum of (x - zp_in), padding as zero, mapped by one multiplier (1/(kh*kw) folded)."""
    ho, wo = _out_hw(x, kernel, stride, pad)
    win = _windows(x.astype(np.int64) - zp_in, kernel, stride, pad, 0, (ho, wo))
    return _out(win.sum(axis=(3, 4)), multiplier, shift, zp_out, act_min, act_max)


def gap(x: np.ndarray, multiplier: int, shift: int, zp_in: int = 0, zp_out: int = 0,
        act_min: int = -128, act_max: int = 127) -> np.ndarray:
    acc = (x.astype(np.int64) - zp_in).sum(axis=(0, 1))
    return _out(acc, multiplier, shift, zp_out, act_min, act_max).reshape(1, 1, -1)


def dense(x: np.ndarray, weight: np.ndarray, bias, multiplier, shift, zp_in: int = 0,
          zp_out: int = 0, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """weight (Cout, H*W*C) over the NHWC-flattened input."""
    xo = x.reshape(-1).astype(np.float64) - zp_in
    acc = (weight.astype(np.float64) @ xo).astype(np.int64)
    if bias is not None:
        acc += np.asarray(bias, np.int64)
    return _out(acc, multiplier, shift, zp_out, act_min, act_max).reshape(1, 1, -1)


def add(a: np.ndarray, b: np.ndarray, multiplier, shift, zp_a: int = 0, zp_b: int = 0,
        zp_out: int = 0, act_min: int = -128, act_max: int = 127,
        left_shift: int = ADD_LEFT_SHIFT) -> np.ndarray:
    """TFLite int8 add; multiplier/shift = [input a, input b, output]."""
    sa = (a.astype(np.int64) - zp_a) << left_shift
    sb = (b.astype(np.int64) - zp_b) << left_shift
    raw = requantize(sa, multiplier[0], shift[0]) + requantize(sb, multiplier[1], shift[1])
    return _out(raw, multiplier[2], shift[2], zp_out, act_min, act_max)


# ------------------------------------------------------------------ whole models

def run_layer(model: Model, layer: Layer, values: dict[int, np.ndarray]) -> np.ndarray:
    """Output of one layer given the values of its input tensors."""
    zin = [model.tensor(t).q.zero_point for t in layer.inputs]
    zout = model.tensor(layer.output).q.zero_point
    x = values[layer.inputs[0]]
    clamp = dict(act_min=layer.act_min, act_max=layer.act_max)
    if layer.op in (Op.CONV, Op.DWCONV):
        fn = conv if layer.op == Op.CONV else dwconv
        return fn(x, layer.weight, layer.bias, layer.multiplier, layer.shift, layer.stride,
                  layer.pad, zin[0], zout, **clamp)
    if layer.op == Op.DENSE:
        return dense(x, layer.weight, layer.bias, layer.multiplier, layer.shift, zin[0], zout,
                     **clamp)
    if layer.op == Op.ADD:
        return add(x, values[layer.inputs[1]], layer.multiplier, layer.shift, zin[0], zin[1],
                   zout, **clamp)
    if layer.op == Op.MAXPOOL:
        return maxpool(x, layer.kernel, layer.stride, layer.pad, **clamp)
    if layer.op == Op.AVGPOOL:
        return avgpool(x, layer.kernel, layer.stride, layer.pad, int(layer.multiplier[0]),
                       int(layer.shift[0]), zin[0], zout, **clamp)
    if layer.op == Op.GAP:
        return gap(x, int(layer.multiplier[0]), int(layer.shift[0]), zin[0], zout, **clamp)
    raise ValueError(f"layer {layer.index} ({layer.name}): unsupported op {layer.op}")


def run_layers(model: Model, x: np.ndarray) -> dict[int, np.ndarray]:
    """Every tensor of the model (by id), computed layer by layer from the int8 HWC input."""
    x = np.asarray(x)
    shape = model.tensor(model.input).shape
    if x.dtype != np.int8 or x.shape != shape:
        raise ValueError(f"input must be int8 of shape {shape}, got {x.dtype} {x.shape}")
    values = {model.input: x}
    for layer in model.layers:
        y = run_layer(model, layer, values)
        expect = model.out_shape(layer)
        if y.shape != expect:
            raise ValueError(f"layer {layer.index} ({layer.name}): output {y.shape}, IR says {expect}")
        values[layer.output] = y
    return values


def run(model: Model, x: np.ndarray) -> np.ndarray:
    """The network output (int8, HWC) for an int8 HWC input."""
    return run_layers(model, x)[model.output]
