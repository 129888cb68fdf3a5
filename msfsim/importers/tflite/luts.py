"""The 256-entry int8 tables of TFLM's int8 unary kernels, computed by their exact integer
arithmetic on every input value, so that a `lut` layer reproduces the kernel bit for bit:

- HARD_SWISH: reference_ops::HardSwish<int8_t> (kernels/internal/reference/hard_swish.h) with
  the HardSwishParams of micro hard_swish_common.cc (scales divided in float32, int16
  multipliers from QuantizeMultiplier + DownScaleInt32ToInt16Multiplier);
- LOGISTIC / TANH: reference_integer_ops::Logistic / Tanh (kernels/internal/reference/
  integer_ops/logistic.h, tanh.h) with the input multiplier, left shift and range radius of
  micro logistic_common.cc / tanh_common.cc, and gemmlowp's fixed-point logistic / tanh
  (fixedpoint/fixedpoint.h) on a Q4.27 input;
- MUL by a constant scalar: reference_integer_ops::Mul with the constant's int8 value as the
  second operand (mul_common.cc);
- LEAKY_RELU: reference_ops::QuantizeLeakyRelu (kernels/internal/reference/leaky_relu.h) with
  leaky_relu_common.cc's two multipliers (input scale, times alpha for negative inputs, over
  the output scale, in double);
- ADD of a constant scalar: reference_integer_ops::AddFunc (integer_ops/add.h; TFLM runs it
  through BroadcastAdd6DSlow, the same function per element) with add_common.cc's parameters;
- RELU: ReluQuantized (micro activations_common.cc): requantised by input scale over output
  scale, clamped at the output's zero point;
- RELU6: Relu6Quantized: the input clamped to its own zero point and quantised 6, the output
  taking the input's quantisation (TFLM reads no output scale);
- QUANTIZE int8 -> int8: reference_ops::Requantize (quantize_common.cc's multiplier of the
  input scale over the output scale, in double).
Plain Python integers; C's truncating division and int16 / int32 wrap-around are spelled out.
"""
from __future__ import annotations

import math

import numpy as np

from msfsim.importers.tflite.quant import (add_requant, f32, quantize_multiplier,
                                          round_half_away)
from msfsim.ops.fixedpoint import ADD_LEFT_SHIFT

I16_MIN, I16_MAX = -(1 << 15), (1 << 15) - 1
I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1
INPUTS = range(-128, 128)


def _tdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _wrap(x: int, bits: int) -> int:
    m = 1 << bits
    return ((x + (m >> 1)) % m) - (m >> 1)


def _srdhm(a: int, b: int, bits: int = 32) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16 or int32."""
    lo = -(1 << (bits - 1))
    if a == b == lo:
        return (1 << (bits - 1)) - 1
    ab = a * b
    nudge = (1 << (bits - 2)) if ab >= 0 else 1 - (1 << (bits - 2))
    return _wrap(_tdiv(ab + nudge, 1 << (bits - 1)), bits)


def _rdbpot(x: int, e: int) -> int:
    """gemmlowp RoundingDivideByPOT: ties away from zero."""
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


def _mbqm(x: int, m: int, shift: int) -> int:
    """TFLM MultiplyByQuantizedMultiplier (not single-rounding)."""
    left, right = max(shift, 0), max(-shift, 0)
    return _rdbpot(_srdhm(_wrap(x * (1 << left), 32), m), right)


def _clamp(v: int, lo: int = -128, hi: int = 127) -> int:
    return max(lo, min(hi, v))


def _table(fn) -> np.ndarray:
    return np.array([fn(x) for x in INPUTS], np.int8)


# ------------------------------------------------------------------ HARD_SWISH

def _downscale_int16(m32: int) -> int:
    """DownScaleInt32ToInt16Multiplier."""
    if m32 >= I32_MAX - (1 << 15):
        return I16_MAX
    return (m32 + (1 << 15)) >> 16


def _sat16(v: int) -> int:
    return _clamp(v, I16_MIN, I16_MAX)


def hard_swish_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    hires = f32(f32(1.0 / 128.0) * f32(in_scale))
    out_mult, out_exp = quantize_multiplier(f32(hires / f32(out_scale)))
    relu_mult, relu_exp = quantize_multiplier(f32(hires / f32(3.0 / 32768.0)))
    if out_exp > 0:
        raise ValueError("HARD_SWISH output scale too small for TFLM's int8 kernel")
    om16, rm16 = _downscale_int16(out_mult), _downscale_int16(relu_mult)

    def one(x: int) -> int:
        v = _wrap(x - in_zp, 16)
        hires_v = _wrap(v * (1 << 7), 16)
        preshift = _srdhm(hires_v, om16, 16)
        r = hires_v
        if relu_exp > 0:
            r = _sat16(r * (1 << (relu_exp - 1)))
        r = _srdhm(r, rm16, 16)
        if relu_exp > 0:
            r = _sat16(r * 2)
        if relu_exp < 0:
            r = _rdbpot(r, -relu_exp)
        r = _wrap((r + (1 << 15)) >> 1, 16)
        # SaturatingDoublingHighMul: no rounding nudge (it cancels the bias of the one above)
        pre = I16_MAX if r == preshift == I16_MIN else _wrap(_tdiv(r * preshift, 1 << 15), 16)
        out = _wrap(_rdbpot(pre, -out_exp) + out_zp, 16)
        return _clamp(out)
    return _table(one)


# ------------------------------------------------------------------ LOGISTIC (gemmlowp)

def _rmbpot(x: int, e: int) -> int:
    """SaturatingRoundingMultiplyByPOT<e> on int32."""
    if e > 0:
        if x > (I32_MAX >> e):
            return I32_MAX
        if x < (I32_MIN >> e):
            return I32_MIN
        return x << e
    return _rdbpot(x, -e) if e < 0 else x


def _fmul(a: int, b: int) -> int:
    return _srdhm(a, b)


def _exp_quarter(a: int) -> int:
    """exp(a) for a in [-1/4, 0), Q0.31."""
    const_term, third = 1895147668, 715827883
    x = _wrap(a + (1 << 28), 32)
    x2 = _fmul(x, x)
    x3 = _fmul(x2, x)
    x4 = _fmul(x2, x2)
    x4_4 = _rmbpot(x4, -2)
    poly = _rmbpot(_wrap(_fmul(_wrap(x4_4 + x3, 32), third) + x2, 32), -1)
    return _wrap(const_term + _fmul(const_term, _wrap(x + poly, 32)), 32)


_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
           (2, 39332535), (3, 720401), (4, 242))


def _exp_neg(a: int, int_bits: int) -> int:
    """exp(a) for a <= 0 given in Q(int_bits).(31 - int_bits), result Q0.31."""
    frac = 31 - int_bits
    quarter = 1 << (frac - 2)
    amq = _wrap((a & (quarter - 1)) - quarter, 32)
    result = _exp_quarter(_rmbpot(amq, int_bits))  # Rescale<0>
    rem = _wrap(amq - a, 32)
    for e, mult in _BARREL:
        if int_bits > e and rem & (1 << (frac + e)):
            result = _fmul(result, mult)
    if int_bits > 5 and a < -(1 << (36 - int_bits)):
        result = 0
    return I32_MAX if a == 0 else result


def _one_over_one_plus_x(a: int) -> int:
    """1 / (1 + a) for a in (0, 1), Q0.31 in and out (Newton-Raphson in Q2.29)."""
    s = a + I32_MAX
    half = _wrap(_tdiv(s + (1 if s >= 0 else -1), 2), 32)
    one_q2 = 1 << 29
    x = _wrap(1515870810 + _fmul(half, -1010580540), 32)
    for _ in range(3):
        hx = _fmul(half, x)
        x = _wrap(x + _rmbpot(_fmul(x, _wrap(one_q2 - hx, 32)), 2), 32)
    return _rmbpot(x, 2 - 1)  # Rescale<0>(ExactMulByPot<-1>(x)): Q1.30 -> Q0.31


def _logistic_q4(a: int) -> int:
    if a == 0:
        return 1 << 30
    pos = _one_over_one_plus_x(_exp_neg(_wrap(-abs(a), 32), 4))
    return pos if a > 0 else _wrap(I32_MAX - pos, 32)


def _one_minus_x_over_one_plus_x(a: int) -> int:
    """(1 - a) / (1 + a) for a in (0, 1), Q0.31 in and out."""
    s = a + I32_MAX
    half = _wrap(_tdiv(s + (1 if s >= 0 else -1), 2), 32)
    one_q2 = 1 << 29
    x = _wrap(1515870810 + _fmul(half, -1010580540), 32)
    for _ in range(3):
        hx = _fmul(half, x)
        x = _wrap(x + _rmbpot(_fmul(x, _wrap(one_q2 - hx, 32)), 2), 32)
    return _rmbpot(_wrap(x - one_q2, 32), 2)  # Rescale<0>: Q2.29 -> Q0.31


def _tanh_q4(a: int) -> int:
    if a == 0:
        return 0
    n = a if a < 0 else _wrap(-a, 32)
    t = _one_minus_x_over_one_plus_x(_exp_neg(n, 5))  # ExactMulByPot<1>: the same raw, Q5.26
    return _wrap(-t, 32) if a < 0 else t


def _q4_input(in_scale: float) -> tuple[int, int, int]:
    """(multiplier, left shift, range radius) of an input rescaled to Q4.27 (TFLM's
    logistic_common.cc / tanh_common.cc: frexp of in_scale * 2^27, CalculateInputRadius)."""
    q, left = math.frexp(float(in_scale) * float(1 << (31 - 4)))
    mult = int(math.copysign(math.floor(abs(q * (1 << 31)) + 0.5), q))
    if mult == 1 << 31 or left < 0:
        raise ValueError("input scale out of the range TFLM's int8 kernel handles")
    radius = math.floor(1.0 * ((1 << 4) - 1) * (1 << (31 - 4)) / (1 << left))
    return mult, left, radius


def _saturating_q4_table(in_scale: float, in_zp: int, of_q4) -> np.ndarray:
    """TFLM's int8 tanh / logistic: inputs beyond the input range radius saturate, the others
    go through the Q4.27 input rescaling into `of_q4`."""
    mult, left, radius = _q4_input(in_scale)

    def one(x: int) -> int:
        v = x - in_zp
        if v <= -radius:
            return -128
        if v >= radius:
            return 127
        return of_q4(_mbqm(v, mult, left))
    return _table(one)


def tanh_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """reference_integer_ops::Tanh (int8): output scale 1/128, zero point 0."""
    if out_zp != 0 or f32(out_scale) != f32(1.0 / 128):
        raise ValueError("TANH output must be quantised with scale 1/128 and zero point 0 "
                         "(TFLM's int8 kernel requires it)")
    return _saturating_q4_table(in_scale, in_zp,
                                lambda q4: _clamp(_rdbpot(_tanh_q4(q4), 31 - 7)))


def logistic_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    if out_zp != -128 or f32(out_scale) != f32(1.0 / 256):
        raise ValueError("LOGISTIC output must be quantised with scale 1/256 and zero point "
                         "-128 (TFLM's int8 kernel requires it)")
    return _saturating_q4_table(in_scale, in_zp,
                                lambda q4: _clamp(_rdbpot(_logistic_q4(q4), 31 - 8) - 128))


# ------------------------------------------------------------------ MUL by a constant

def mul_const_table(in_scale: float, in_zp: int, c: int, c_scale: float, c_zp: int,
                    out_scale: float, out_zp: int, act_min: int = -128, act_max: int = 127
                    ) -> np.ndarray:
    m, s = quantize_multiplier(float(in_scale) * float(c_scale) / float(out_scale))

    def one(x: int) -> int:
        return _clamp(out_zp + _mbqm((x - in_zp) * (c - c_zp), m, s), act_min, act_max)
    return _table(one)


# ------------------------------------------------------------------ ADD of a constant

def add_const_table(in_scale: float, in_zp: int, c: int, c_scale: float, c_zp: int,
                    out_scale: float, out_zp: int, act_min: int = -128, act_max: int = 127
                    ) -> np.ndarray:
    """AddFunc: each operand minus its zero point, shifted left 20, scaled by its multiplier
    (shift <= 0: MultiplyByQuantizedMultiplierSmallerThanOneExp), summed, requantised, plus
    the output zero point, clamped. Which operand comes first does not change the sum."""
    m, s = add_requant(in_scale, c_scale, out_scale)
    const = _mbqm((c - c_zp) * (1 << ADD_LEFT_SHIFT), int(m[1]), int(s[1]))

    def one(x: int) -> int:
        v = _mbqm((x - in_zp) * (1 << ADD_LEFT_SHIFT), int(m[0]), int(s[0]))
        return _clamp(_mbqm(_wrap(v + const, 32), int(m[2]), int(s[2])) + out_zp, act_min,
                      act_max)
    return _table(one)


# ------------------------------------------------------------------ SUB with a constant

def sub_const_table(in_scale: float, in_zp: int, c: int, c_scale: float, c_zp: int,
                    out_scale: float, out_zp: int, act_min: int = -128, act_max: int = 127,
                    const_first: bool = False) -> np.ndarray:
    """TFLM's int8 SUB (sub_common.cc, reference_ops::SubElementwise): ADD's arithmetic with
    the second operand's scaled value subtracted; x - c, or c - x when the constant is the
    first operand (its multiplier follows it: TFLM scales input1 and input2 by their own)."""
    m, s = add_requant(c_scale, in_scale, out_scale) if const_first else \
        add_requant(in_scale, c_scale, out_scale)
    ci, xi = (0, 1) if const_first else (1, 0)
    const = _mbqm((c - c_zp) * (1 << ADD_LEFT_SHIFT), int(m[ci]), int(s[ci]))

    def one(x: int) -> int:
        v = _mbqm((x - in_zp) * (1 << ADD_LEFT_SHIFT), int(m[xi]), int(s[xi]))
        raw = const - v if const_first else v - const
        return _clamp(_mbqm(_wrap(raw, 32), int(m[2]), int(s[2])) + out_zp, act_min, act_max)
    return _table(one)


# ------------------------------------------------------------------ PRELU

def prelu_table(in_scale: float, in_zp: int, alpha: int, alpha_scale: float, alpha_zp: int,
                out_scale: float, out_zp: int) -> np.ndarray:
    """TFLM's int8 PRELU (prelu_common.cc, BroadcastPrelu4DSlow): x - in_zp at or above 0
    scaled by in / out, below by (x - in_zp) * (alpha - alpha_zp) and in * alpha / out; plus
    the output zero point, clamped to int8."""
    m1, s1 = quantize_multiplier(float(in_scale) / float(out_scale))
    m2, s2 = quantize_multiplier(float(in_scale) * float(alpha_scale) / float(out_scale))

    def one(x: int) -> int:
        v = x - in_zp
        return _clamp(out_zp + (_mbqm(v, m1, s1) if v >= 0 else
                                _mbqm(v * (alpha - alpha_zp), m2, s2)))
    return _table(one)


# ------------------------------------------------------------------ MINIMUM, MAXIMUM

def min_max_table(c: int, maximum: bool) -> np.ndarray:
    """TFLM's MAXIMUM / MINIMUM compare the int8 values as they are (maximum_minimum.cc)."""
    return _table((lambda x: max(x, c)) if maximum else (lambda x: min(x, c)))


# ------------------------------------------------------------------ LEAKY_RELU

def leaky_relu_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int, alpha: float
                     ) -> np.ndarray:
    """Inputs at or above the zero point scaled by the identity multiplier, those below by
    the alpha one; plus the output zero point, clamped to int8."""
    if not math.isfinite(alpha):
        raise ValueError(f"alpha {alpha} is not finite")
    if alpha < 0:  # TFLM rounds some products of a negative alpha otherwise (tested)
        raise ValueError(f"a negative alpha ({alpha:g}) is not supported")
    m_id, s_id = quantize_multiplier(float(in_scale) / float(out_scale))
    m_a, s_a = quantize_multiplier(float(in_scale) * float(alpha) / float(out_scale))

    def one(x: int) -> int:
        v = x - in_zp
        return _clamp(out_zp + (_mbqm(v, m_id, s_id) if v >= 0 else _mbqm(v, m_a, s_a)))
    return _table(one)


# ------------------------------------------------------------------ RELU, RELU6, QUANTIZE

def requantize_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                     act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """x - in_zp scaled by in_scale / out_scale (double of the float32 scales), plus out_zp,
    clamped: QUANTIZE int8 -> int8, and RELU with act_min at the output zero point."""
    m, s = quantize_multiplier(float(in_scale) / float(out_scale))

    def one(x: int) -> int:
        return _clamp(out_zp + _mbqm(x - in_zp, m, s), act_min, act_max)
    return _table(one)


def relu_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    return requantize_table(in_scale, in_zp, out_scale, out_zp, act_min=max(-128, out_zp))


def relu6_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """The input clamped to [zero point, 6 quantised] (FloatToQuantizedType: 6 / scale in
    float32, rounded half away from zero, plus the zero point, saturated to int8). TFLM
    writes those bytes as the output whatever its quantisation, so an output quantised unlike
    the input is refused: TFLM's result would not mean ReLU6 there."""
    if f32(in_scale) != f32(out_scale) or in_zp != out_zp:
        raise ValueError("output quantised unlike the input (TFLM's RELU6 copies the clamped "
                         "input bytes and ignores the output's scale and zero point)")
    six = _clamp(in_zp + round_half_away(float(np.float32(6.0) / np.float32(in_scale))))
    return _table(lambda x: _clamp(x, max(-128, in_zp), six))
