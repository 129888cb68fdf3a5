"""The integer parameters TensorFlow Lite Micro derives from a .tflite file's quantisation,
computed the way its kernels' Prepare functions do, so msfsim's layers requantise bit for bit
as TFLM's reference kernels (tensorflow/lite/kernels/internal/quantization_util.cc,
kernels/kernel_util.cc, micro/kernels/{conv,depthwise_conv,fully_connected,add,reduce}_common.cc).

The scales are the file's float32 values; where TFLM multiplies two of them in float32 before
widening (per-tensor FULLY_CONNECTED) so do we.
"""
from __future__ import annotations

import math

import numpy as np

from msfsim.ops.fixedpoint import ADD_LEFT_SHIFT

# tflite ActivationFunctionType values msfsim folds into a layer's clamp
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3
ACTIVATION_NAMES = {0: "none", 1: "relu", 2: "clip", 3: "relu6", 4: "tanh", 5: "sign_bit"}


def round_half_away(x: float) -> int:
    """C's std::round (TfLiteRound): halves away from zero (Python's round() goes to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplier: (Q31 multiplier, shift); round half away from zero, shifts
    below -31 flush to 0, above 30 saturate."""
    if real == 0.0:
        return 0, 0
    mant, exp = math.frexp(real)
    q = round_half_away(mant * (1 << 31))
    if q == (1 << 31):
        q //= 2
        exp += 1
    if exp < -31:
        return 0, 0
    if exp > 30:
        return (1 << 31) - 1, 30
    return q, exp


def f32(v: float) -> float:
    return float(np.float32(v))


def channel_requant(in_scale: float, w_scales: np.ndarray, out_scale: float, cout: int,
                    per_tensor_f32: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (multiplier, shift): double(in) * double(w) / double(out) as TFLM's
    PopulateConvolutionQuantizationParams and per-channel FULLY_CONNECTED; `per_tensor_f32`:
    per-tensor FULLY_CONNECTED, whose GetQuantizedConvolutionMultipler multiplies in float32."""
    ws = np.broadcast_to(np.asarray(w_scales, np.float32), (cout,))
    pairs = []
    for w in ws:
        if per_tensor_f32:
            real = float(np.float32(in_scale) * np.float32(w)) / out_scale
        else:
            real = in_scale * float(w) / out_scale
        pairs.append(quantize_multiplier(real))
    m, s = zip(*pairs)
    return np.array(m, np.int32), np.array(s, np.int32)


def activation_range(act: int, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLM CalculateActivationRangeQuantized for int8: zp + round(f / scale), the division in
    float32 (QuantizeHelper). Raises ValueError for activations msfsim cannot fold."""
    def q(f: float) -> int:
        return zero_point + round_half_away(float(np.float32(f) / np.float32(scale)))
    lo, hi = -128, 127
    if act == ACT_RELU:
        lo = max(lo, q(0.0))
    elif act == ACT_RELU6:
        lo, hi = max(lo, q(0.0)), min(hi, q(6.0))
    elif act == ACT_RELU_N1_TO_1:
        lo, hi = max(lo, q(-1.0)), min(hi, q(1.0))
    elif act != ACT_NONE:
        raise ValueError(f"fused activation {ACTIVATION_NAMES.get(act, act)} is not supported")
    return lo, hi


def add_requant(s1: float, s2: float, out: float) -> tuple[np.ndarray, np.ndarray]:
    """[input1, input2, output] (multiplier, shift) of TFLM's int8 ADD (left shift 20)."""
    twice_max = 2.0 * max(s1, s2)
    pairs = [quantize_multiplier(s1 / twice_max), quantize_multiplier(s2 / twice_max),
             quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * out))]
    if any(sh > 0 for _, sh in pairs):  # TFLM's SmallerThanOneExp path needs shift <= 0
        raise ValueError("ADD output scale is too small for TFLite's int8 add")
    m, s = zip(*pairs)
    return np.array(m, np.int32), np.array(s, np.int32)


def mean_requant(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """(multiplier, shift) TFLM's int8 MEAN applies to the sum of (x - zp_in) over `count`
    elements: QuantizeMultiplier(in / out), then 1 / count folded into the multiplier by
    integer division (reference_ops::QuantizedMeanOrSum)."""
    m, s = quantize_multiplier(in_scale / out_scale)
    sh = min(count.bit_length() - 1, 32, 31 + s)
    return int((m << sh) // count), s - sh
