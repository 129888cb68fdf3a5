"""Float evaluation and calibration: the activation ranges of a float model on
CALIBRATION_BATCH deterministic inputs drawn uniformly from [-1, 1], and the int8 qparams that
cover them. Reproducible, not accurate: export QDQ models calibrated on real data for accuracy."""
from __future__ import annotations

import math

import numpy as np

from msfsim import ops
from msfsim.importers.onnx.load import MAX_CALIBRATION_BYTES
from msfsim.importers.onnx.nodes import Act, fail
from msfsim.ir import QParams, activation_qparams
from msfsim.ops.base import FloatLayer

CALIBRATION_BATCH = 4
CALIBRATION_SEED = 0


def float_layer(layer: FloatLayer, xs: list[np.ndarray]) -> np.ndarray:
    """The layer in float over a batch: its op, then the bias and the activation."""
    y = ops.get(layer.op).float_eval(layer, xs)
    if layer.bias is not None:
        y = y + layer.bias
    if layer.activation in ("relu", "relu6", "clip"):
        lo, hi = layer.clip if layer.clip else (0.0, 6.0 if layer.activation == "relu6" else math.inf)
        y = np.clip(y, lo, hi)
    return y


def calibration_bytes(im, layer: FloatLayer) -> int:
    """A bound on the host memory `float_layer` takes for `layer` over the calibration
    batch: its padded input, the im2col copy einsum makes, the output twice (bias add)."""
    h, w, c = im.shape_of(im.canon(layer.inputs[0]))
    ho, wo, co = layer.out_shape
    t, l, b, r = layer.pad
    kh, kw = layer.kernel
    n = 2 * ho * wo * co + sum(math.prod(im.shape_of(im.canon(i))) for i in layer.inputs)
    if ops.get(layer.op).windowed:
        n += (h + t + b) * (w + l + r) * c + ho * wo * c * kh * kw
    return CALIBRATION_BATCH * 8 * n


def calibrate(im, names: list[str]) -> dict[str, QParams]:
    """qparams of the activations `names` from their ranges on the calibration batch; an op
    with `same_qparams` (max pool) gets its input's."""
    for layer in im.layers:  # before allocating anything
        need = calibration_bytes(im, layer)
        if need > MAX_CALIBRATION_BYTES:
            raise fail(f"{layer.where}: calibrating it would take about {need / 2**30:.1f} GiB "
                       f"of host memory (msfsim's bound: {MAX_CALIBRATION_BYTES / 2**30:.0f} GiB); "
                       f"give a QDQ model with its own quantisation parameters")
    last_use: dict[str, int] = {}
    for k, layer in enumerate(im.layers):
        for i in layer.inputs:
            last_use[im.canon(i)] = k
    rng = np.random.default_rng(CALIBRATION_SEED)
    x0 = im.values[im.input_name]
    assert isinstance(x0, Act)
    x = rng.uniform(-1.0, 1.0, size=(CALIBRATION_BATCH, *x0.shape))
    ranges = {im.canon(im.input_name): (float(x.min()), float(x.max()))}
    env = {im.canon(im.input_name): x}
    del x
    for k, layer in enumerate(im.layers):
        try:
            y = float_layer(layer, [env[im.canon(i)] for i in layer.inputs])
            lo, hi = float(y.min()), float(y.max())
        except MemoryError:
            raise fail(f"{layer.where}: out of host memory calibrating it; give a QDQ model "
                       f"with its own quantisation parameters") from None
        except ArithmeticError:  # FloatingPointError: overflow in the float evaluation
            lo, hi = math.nan, math.nan
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise fail(f"{layer.where}: its output overflows in float on calibration inputs in "
                       f"[-1, 1]; are its weights and biases in range?")
        ranges[layer.output] = (lo, hi)
        env[layer.output] = y
        for i in {im.canon(i) for i in layer.inputs}:  # free what no later layer reads
            if last_use.get(i) == k:
                del env[i]
        del y
    out = {}
    for n in names:
        lo, hi = ranges[n]
        layer = im.producer.get(n)
        if layer is not None and ops.get(layer.op).same_qparams:
            continue  # keeps its input's qparams
        out[n] = activation_qparams(lo, hi)
    for layer in im.layers:  # same qparams in and out (in topological order)
        if ops.get(layer.op).same_qparams and layer.output not in im.qparams:
            src = im.canon(layer.inputs[0])
            out[layer.output] = im.qparams.get(src) or out[src]
    return out
