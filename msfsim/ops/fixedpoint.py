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


# ------------------------------------------------------------------ gemmlowp fixed-point functions
# Vectorised over int32 values held in int64 arrays, as gemmlowp's fixedpoint.h computes them
# (TFLM's int8 softmax: exp of a Q5.26 difference, 1 / (1 + x) for the reciprocal of the sum).

# exp(-2^e) in Q0.31 for the barrel shifter of exp_on_negative_values, e = -2 .. 4
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def rounding_mul_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent>: a saturating left shift, or
    RoundingDivideByPOT for a negative exponent."""
    x = np.asarray(x, dtype=np.int64)
    if exponent > 0:
        thr = (1 << (31 - exponent)) - 1
        return np.where(x > thr, INT32_MAX, np.where(x < -thr, INT32_MIN, x << exponent))
    if exponent < 0:
        return divide_by_pot(x, np.int64(-exponent))
    return x


def _exp_quarter(a: np.ndarray) -> np.ndarray:
    """exp_on_interval_between_negative_one_quarter_and_0_excl: exp(a), a in [-1/4, 0), Q0.31
    (a Taylor expansion around -1/8)."""
    const_term, one_third = 1895147668, 715827883
    x = _wrap32(a + (1 << 28))
    x2 = doubling_high_mul(x, x)
    x3 = doubling_high_mul(x2, x)
    x4 = doubling_high_mul(x2, x2)
    x4_over_4 = rounding_mul_by_pot(x4, -2)
    poly = rounding_mul_by_pot(
        _wrap32(doubling_high_mul(_wrap32(x4_over_4 + x3), one_third) + x2), -1)
    return _wrap32(const_term + doubling_high_mul(const_term, _wrap32(x + poly)))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: exp(a) for a <= 0 in Q(integer_bits).(31 -
    integer_bits), the result in Q0.31 (exp(0) = INT32_MAX)."""
    a = np.asarray(a, dtype=np.int64)
    frac = 31 - integer_bits
    quarter = 1 << (frac - 2)
    a_mod = _wrap32((a & (quarter - 1)) - quarter)
    result = _exp_quarter(rounding_mul_by_pot(a_mod, integer_bits))
    remainder = _wrap32(a_mod - a)
    for e, mult in _EXP_BARREL:
        if integer_bits > e:
            hit = (remainder & (1 << (frac + e))) != 0
            result = np.where(hit, doubling_high_mul(result, np.int64(mult)), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (frac + 5)), 0, result)  # exp(-32) rounds to 0
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a), Q0.31 in and out (three
    Newton-Raphson steps in Q2.29)."""
    s = np.asarray(a, dtype=np.int64) + INT32_MAX
    half = np.where(s >= 0, (s + 1) // 2, -((-s + 1) // 2))  # (s + sign) / 2, truncated
    x = _wrap32(1515870810 + doubling_high_mul(half, np.int64(-1010580540)))
    for _ in range(3):
        hx = doubling_high_mul(half, x)
        x = _wrap32(x + rounding_mul_by_pot(doubling_high_mul(x, _wrap32((1 << 29) - hx)), 2))
    return rounding_mul_by_pot(x, 1)
