"""Float evaluation and calibration: the activation ranges of a float model on
CALIBRATION_BATCH deterministic inputs drawn uniformly from [-1, 1], and the int8 qparams that
cover them. Reproducible, not accurate: export QDQ models calibrated on real data for accuracy.

Conventions: a layer quantised as its input (max pool) gets its input's qparams; as TensorFlow's
converter does, a Concat's input that only the Concat reads gets the Concat output's qparams
(whose range covers it), so the Concat copies bytes and the model stays expressible in TFLite,
whose CONCATENATION requires equal qparams; another input is requantised by the Concat."""
from __future__ import annotations

import math

import numpy as np

from msfsim import ops
from msfsim.importers.onnx.load import MAX_CALIBRATION_BYTES
from msfsim.importers.onnx.nodes import Act, fail, keeps_input_qparams
from msfsim.ir import Op, QParams, activation_qparams
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
    """qparams of the activations `names` from their ranges on the calibration batch, with the
    conventions of the module doc."""
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
        if layer is not None and keeps_input_qparams(layer):
            continue  # keeps its input's qparams
        out[n] = activation_qparams(lo, hi)
    concat_inputs_share(im, out)
    for layer in im.layers:  # same qparams in and out (in topological order)
        if keeps_input_qparams(layer) and layer.output not in im.qparams:
            src = im.canon(layer.inputs[0])
            out[layer.output] = im.qparams.get(src) or out[src]
    return out


def concat_inputs_share(im, out: dict[str, QParams]) -> None:
    """Give the calibrated input of a Concat that only the Concat reads the Concat output's
    qparams (outermost Concat first, so that a chain of Concats shares one). Not the graph
    input, nor an input quantised as its own input (max pool), nor one the model quantises."""
    readers: dict[str, int] = {}
    for layer in im.layers:
        for i in layer.inputs:
            readers[im.canon(i)] = readers.get(im.canon(i), 0) + 1
    for layer in reversed(im.layers):
        if layer.op != Op.CONCAT:
            continue
        q = out.get(layer.output) or im.qparams.get(layer.output) or im.fallback_q.get(layer.output)
        for i in {im.canon(i) for i in layer.inputs}:
            src = im.producer.get(i)
            if q is not None and i in out and readers[i] == 1 and i not in im.fallback_q \
                    and src is not None and not keeps_input_qparams(src):
                out[i] = q
