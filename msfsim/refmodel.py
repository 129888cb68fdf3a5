"""Numpy model of msfsim's int8 fixed-point arithmetic: the golden reference.

Every function computes exactly what the C kernels (`kernels_c/`) compute, bit for bit:
accumulators are int32 (`bias + sum((x - zp_in) * w)`), requantisation is CMSIS-NN's
`arm_nn_requantize` without single rounding (left shift, SaturatingRoundingDoublingHighMul,
RoundingDivideByPOT), padding behaves as a zero-point input (a zero contribution). Tensors are
NHWC without the batch axis. Matrix products run in float64, which is exact here: every product
and partial sum is an integer far below 2**53.

The arithmetic is msfsim.ops.fixedpoint's and each op's int8 semantics its module's `reference`
(msfsim.ops); this module names them (`refmodel.requantize`, `refmodel.conv` =
`msfsim.ops.conv.conv`, ...) and runs whole models.
"""
from __future__ import annotations

import numpy as np

from msfsim import ops
from msfsim.ir import Layer, Model
# The arithmetic and each op's semantics live in the op registry; these names stay here.
from msfsim.ops.add import add  # noqa: F401
from msfsim.ops.concat import concat  # noqa: F401
from msfsim.ops.conv import conv  # noqa: F401
from msfsim.ops.dense import dense  # noqa: F401
from msfsim.ops.dwconv import dwconv  # noqa: F401
from msfsim.ops.fixedpoint import (INT32_MAX, INT32_MIN, divide_by_pot,  # noqa: F401
                                   doubling_high_mul, out_hw, requantize, to_int8, windows)
from msfsim.ops.gap import gap  # noqa: F401
from msfsim.ops.lut import lut  # noqa: F401
from msfsim.ops.mul import mul  # noqa: F401
from msfsim.ops.pool import avgpool, maxpool  # noqa: F401


# ------------------------------------------------------------------ whole models

def run_layer(model: Model, layer: Layer, values: dict[int, np.ndarray]) -> np.ndarray:
    """Output of one layer given the values of its input tensors (its op's `reference`)."""
    try:
        opdef = ops.get(layer.op)
    except KeyError:
        raise ValueError(f"layer {layer.index} ({layer.name}): unsupported op {layer.op}") from None
    return opdef.reference(model, layer, [values[t] for t in layer.inputs])


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

