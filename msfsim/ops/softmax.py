"""softmax: TensorFlow Lite Micro's int8 softmax over the C values of a (1, 1, C) tensor.

The arithmetic of reference_ops::Softmax<int8_t, int8_t> (kernels/internal/reference/
softmax.h) with the parameters of micro softmax_common.cc (`softmax_scaling`):
- d = x - max(x); values with d < diff_min output -128 (their exp rounds to nothing);
- the others: d * 2^left_shift * input_multiplier as a Q5.26 number (beta and the input scale
  folded in), gemmlowp's exp_on_negative_values -> Q0.31, summed in Q12.19;
- out = RoundingDivideByPOT(reciprocal(sum) * exp, 35 - clz(sum)) - 128, clamped: output scale
  1/256, zero point -128, the only int8 output quantisation TFLM accepts.
TFLM aborts (TFLITE_CHECK) when the sum reaches 2^28 (512 or more values at the maximum);
every probability is then below half an output step, and msfsim outputs -128 for all.

softmax_map: the same over the channels of every pixel of an H x W map (FOMO-style detectors
end in one): an elementwise spatial op (window 1x1), which tiles and fuses like any; kernel
`msf_softmax_map_s8`, msf_softmax_s8 at each pixel.

Layer fields: multiplier [input_multiplier], shift [input_left_shift]; diff_min follows from
the shift. softmax is a block tail: fed its input (a dense's or a gap's output, or a 1x1 map), it copies
the C values into its buffer (`tail_acc`: C bytes) and computes the softmax at the finish; it
may follow another tail layer. Kernel: `msf_softmax_s8` (and its tail hooks).
ONNX: Softmax over a flat (1, N) tensor (axis 1 or -1) or over the channels of a map (axis 1;
softmax_map where it is larger than 1x1); the output is quantised 1/256, -128 (a QDQ model must
say the same).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from msfsim import UnsupportedModel
from msfsim.names import shown
from msfsim.ops import fixedpoint as fx
from msfsim.ops.base import (CKernel, CStruct, FloatLayer, LayerLike, ModelLike, OpDef,
                             QParamsLike, named, register)
from msfsim.ops.kinds import Op

SCALED_DIFF_INTEGER_BITS = 5   # kScaledDiffIntegerBits: differences in Q5.26
ACCUMULATION_INTEGER_BITS = 12  # kAccumulationIntegerBits: the sum of exps in Q12.19
OUTPUT_SCALE, OUTPUT_ZERO_POINT = 1.0 / 256, -128
SUM_LIMIT = 1 << 28             # from here TFLM's output shift exceeds 31
MAX_REAL_MULTIPLIER = (1 << 31) - 1.0  # PreprocessSoftmaxScaling (not single-rounding builds)


@dataclass(frozen=True)
class OutputQ:
    """The output quantisation TFLM's int8 softmax requires."""
    scale: float = OUTPUT_SCALE
    zero_point: int = OUTPUT_ZERO_POINT


def softmax_scaling(beta: float, in_scale: float) -> tuple[int, int]:
    """(input_multiplier, input_left_shift): TFLM's PreprocessSoftmaxScaling(beta, in_scale,
    5): min(beta * scale * 2^26, 2^31 - 1) by QuantizeMultiplierGreaterThanOne (frexp, the
    mantissa rounded half away from zero). ValueError where TFLM's checks fail."""
    real = float(beta) * float(in_scale) * float(1 << (31 - SCALED_DIFF_INTEGER_BITS))
    if not math.isfinite(real) or real <= 1.0:
        raise ValueError(f"beta {beta:g} x input scale {in_scale:g} is not above 2^-26 (TFLM's "
                         f"int8 softmax needs a multiplier greater than one)")
    mant, shift = math.frexp(min(real, MAX_REAL_MULTIPLIER))
    q = int(math.floor(mant * (1 << 31) + 0.5))  # TfLiteRound, mant > 0
    if q == 1 << 31:
        q //= 2
        shift += 1
    return q, shift


def diff_min(left_shift: int) -> int:
    """-CalculateInputRadius(5, left_shift): the smallest x - max(x) whose exp is summed."""
    radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS))
    return -math.floor(radius / (1 << left_shift))


def _exps(x: np.ndarray, multiplier: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """(d >= diff_min, exp(d * beta * scale) in Q0.31) of every value, d = x - max(x)."""
    v = np.asarray(x).astype(np.int64).ravel()
    d = v - v.max()
    ok = d >= diff_min(shift)
    scaled = fx.doubling_high_mul(np.where(ok, d, 0) << shift, np.int64(multiplier))
    return ok, fx.exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS)


def sum_of_exps(x: np.ndarray, multiplier: int, shift: int) -> int:
    """TFLM's sum of exps in Q12.19 (exact; from SUM_LIMIT on TFLM aborts)."""
    ok, e = _exps(x, multiplier, shift)
    return int(np.where(ok, fx.rounding_mul_by_pot(e, -ACCUMULATION_INTEGER_BITS), 0).sum())


def softmax(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """TFLM's int8 softmax over all the values of x (output scale 1/256, zero point -128)."""
    ok, e = _exps(x, multiplier, shift)
    total = int(np.where(ok, fx.rounding_mul_by_pot(e, -ACCUMULATION_INTEGER_BITS), 0).sum())
    if total >= SUM_LIMIT:
        return np.full(np.shape(x), OUTPUT_ZERO_POINT, np.int8)
    headroom = 32 - total.bit_length()   # CountLeadingZeros; total >= 2^19 (the maximum's)
    recip = fx.one_over_one_plus_x_for_x_in_0_1(np.int64((total << headroom) - (1 << 31)))
    out_shift = ACCUMULATION_INTEGER_BITS - headroom + 31 - 8
    y = fx.divide_by_pot(fx.doubling_high_mul(recip, e), np.int64(out_shift)) - 128
    y = np.where(ok, np.clip(y, -128, 127), -128)
    return y.astype(np.int8).reshape(np.shape(x))


def softmax_map(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """`softmax` over the last axis (the channels) of every pixel of x."""
    flat = np.asarray(x).reshape(-1, np.shape(x)[-1])
    return np.stack([softmax(v, multiplier, shift) for v in flat]).reshape(np.shape(x))


def lower_softmax(ctx, node) -> None:
    """Softmax over the N values of a flat (1, N) tensor (axis 1 or -1) or over the channels
    of an NCHW map (axis 1; opset 13's default -1 would be W): of a 1x1 map, the block tail;
    of a larger one, softmax_map."""
    x = ctx.act(node)
    axis = ctx.attrs(node).get("axis")
    h, w, c = x.shape
    ok = axis in (None, 1, -1) if x.flat else axis in (1, -3)
    if not ok:
        raise UnsupportedModel(f"{ctx.where(node)}: Softmax axis {ctx.short(axis)} on "
                               f"{'(1, N)' if x.flat else f'a {c}x{h}x{w} map'}: only the "
                               f"softmax over the channels is supported (axis 1)")
    op = Op.SOFTMAX if x.flat or (h, w) == (1, 1) else Op.SOFTMAX_MAP
    ctx.new_layer(node, FloatLayer(op, node.name or node.output[0], [ctx.canon(x.name)],
                                   node.output[0], x.shape, attrs={"beta": 1.0}))
    if x.flat:
        ctx.define(node.output[0], x.shape, flat=True)
    # TFLM's output quantisation instead of a calibrated one (QDQ nodes still override it,
    # and `quantize` checks what they say)
    ctx.default_qparams(node.output[0], OutputQ())


_PARAMS = "(const msf_softmax_params *)l->params"
SOFTMAX = CKernel(
    "MSF_OP_SOFTMAX", 12, "tail, int8 softmax of the (1, 1, C) input",
    tail_init="/* the feed writes every value of the input copy */",
    tail_feed=f"msf_softmax_accumulate_s8(in, {_PARAMS}, y0, x0, h, w, (int8_t *)acc);",
    tail_finish=f"msf_softmax_finish_s8({_PARAMS}, (const int8_t *)acc, out);")


SOFTMAX_MAP = CKernel(
    "MSF_OP_SOFTMAX_MAP", 15, "msf_softmax_map_s8 (every pixel of a map)",
    spatial=f"msf_softmax_map_s8(in, {_PARAMS}, out, oy, ox, oh, ow);")


class SoftmaxOp(OpDef):
    op = Op.SOFTMAX
    tail = True
    follows_tail = True
    c_kernels = (SOFTMAX,)
    c_header = "msf_softmax_s8.h"
    onnx = {"Softmax": lower_softmax}

    def out_shape(self, layer, in_shapes):
        return in_shapes[0]

    def build(self, b, x: int, beta: float = 1.0, out_q: QParamsLike | None = None,
              name: str | None = None, out_name: str | None = None) -> int:
        """Softmax of the (1, 1, C) tensor x; the parameters TFLM derives from beta and the
        input scale; out_q (default 1/256, -128) must be that quantisation."""
        xt = b.tensors[x]
        if xt.shape[:2] != (1, 1) and not self.spatial:  # softmax_map: any map
            raise ValueError(f"softmax {shown(name)}: input {'x'.join(map(str, xt.shape))}, "
                             f"expected 1x1xC")
        if out_q is None or isinstance(out_q, OutputQ):
            out_q = type(xt.q)(OUTPUT_SCALE, OUTPUT_ZERO_POINT)
        if (out_q.scale, out_q.zero_point) != (OUTPUT_SCALE, OUTPUT_ZERO_POINT):
            raise ValueError(f"softmax {shown(name)}: output scale {out_q.scale:g}, zero point "
                             f"{out_q.zero_point}; TFLM's int8 softmax needs 1/256 and -128")
        m, s = softmax_scaling(beta, xt.q.scale)
        y = b.new_tensor(out_name or f"t{len(b.tensors)}", xt.shape, out_q)
        return b.new_layer(op=self.op, inputs=(x,), output=y, multiplier=np.array([m], np.int32),
                           shift=np.array([s], np.int32), activation="none", **named(name))

    def quantize(self, b, layer: FloatLayer, ins, out_q):
        if (not isinstance(out_q, OutputQ)
                and (out_q.scale, out_q.zero_point) != (OUTPUT_SCALE, OUTPUT_ZERO_POINT)):
            raise UnsupportedModel(f"{layer.where}: output quantised with scale {out_q.scale:g} "
                                   f"and zero point {out_q.zero_point}; msfsim's int8 softmax "
                                   f"(TFLM's) needs 1/256 and -128")
        if layer.activation not in ("none", "relu"):  # a relu changes nothing of [0, 1)
            raise UnsupportedModel(f"{layer.where}: a {layer.activation} after Softmax is not "
                                   f"supported")
        return self.build(b, ins[0], beta=layer.attrs.get("beta", 1.0), out_q=out_q,
                          name=layer.name, out_name=layer.output)

    def reference(self, model, layer, xs):
        return softmax(xs[0], int(layer.multiplier[0]), int(layer.shift[0]))

    def float_eval(self, layer, xs):
        x = xs[0] * layer.attrs.get("beta", 1.0)
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def tail_acc(self, model: ModelLike, layer: LayerLike) -> int:
        """The copy of the input (C bytes) the finish computes from."""
        return model.tensor(layer.inputs[0]).size

    def c_params(self, model: ModelLike, layer: LayerLike):
        s = int(layer.shift[0])
        x = model.tensor(layer.inputs[0])
        fields = {"channels": x.shape[2] if self.spatial else x.size,
                  "input_mult": int(layer.multiplier[0]), "input_left_shift": s,
                  "diff_min": diff_min(s)}
        return [CStruct("msf_softmax_params", f"l{layer.index}_params", fields)]


class SoftmaxMapOp(SoftmaxOp):
    """TFLM's int8 softmax over the channels of every pixel of a map: spatial, elementwise."""
    op = Op.SOFTMAX_MAP
    tail = False
    follows_tail = False
    spatial = True
    elementwise = True
    c_kernels = (SOFTMAX_MAP,)
    onnx = {}

    def reference(self, model, layer, xs):
        return softmax_map(xs[0], int(layer.multiplier[0]), int(layer.shift[0]))


register(SoftmaxOp())
register(SoftmaxMapOp())
