"""msfsim's int8 fixed-point arithmetic, shared by every op (TFLite / CMSIS-NN conventions).

Quantisation: a real multiplier as a Q31 multiplier and a power-of-two shift, symmetric
per-channel int8 weights. Requantisation, bit-exact with the C kernels: accumulators are int32,
`arm_nn_requantize` without single rounding (left shift, SaturatingRoundingDoublingHighMul,
RoundingDivideByPOT), padding behaves as a zero-point input. msfsim.refmodel re-exports the
requantisation functions, msfsim.ir the quantisation ones.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# int8 add (TFLite): both inputs are shifted left by this before their requantisation.
ADD_LEFT_SHIFT = 20


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Real multiplier -> (Q31 multiplier, shift) as TFLite's QuantizeMultiplier."""
    if real == 0.0:
        return 0, 0
    mant, exp = math.frexp(real)  # real = mant * 2**exp, 0.5 <= mant < 1
    q = int(round(mant * (1 << 31)))
    if q == (1 << 31):
        q //= 2
        exp += 1
    if exp < -31:  # too small to represent: the product rounds to zero
        return 0, 0
    return q, exp


def quantize_weights(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8 quantisation along `axis` -> (int8 weights, scales)."""
    w = np.asarray(w, dtype=np.float64)
    red = tuple(a for a in range(w.ndim) if a != axis)
    amax = np.max(np.abs(w), axis=red) if red else np.abs(w)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


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


def to_int8(acc, multiplier, shift, zp_out: int, act_min: int, act_max: int) -> np.ndarray:
    """Requantised accumulators plus the output zero point, clamped to [act_min, act_max]."""
    v = requantize(acc, multiplier, shift) + zp_out
    return np.clip(v, act_min, act_max).astype(np.int8)


def windows(x: np.ndarray, kernel, stride, pad, fill: int, out_hw) -> np.ndarray:
    """(Ho, Wo, C, kh, kw) view of the padded input's receptive fields (padding = fill)."""
    kh, kw = kernel
    pt, pl, pb, pr = pad
    xp = np.pad(x, ((pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    v = sliding_window_view(xp, (kh, kw), axis=(0, 1))[::stride[0], ::stride[1]]
    return v[:out_hw[0], :out_hw[1]]


def out_hw(x: np.ndarray, kernel, stride, pad) -> tuple[int, int]:
    h, w = x.shape[:2]
    return ((h + pad[0] + pad[2] - kernel[0]) // stride[0] + 1,
            (w + pad[1] + pad[3] - kernel[1]) // stride[1] + 1)
