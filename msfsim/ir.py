"""The one intermediate representation every stage of msfsim works on.

A `Model` is a graph of int8 layers in topological order. Tensors are NHWC with an implicit
batch of 1, so a tensor's shape is (H, W, C). Activations are asymmetric int8 (scale,
zero point); weights are symmetric per-output-channel int8; biases are int32 in the
accumulator's scale. Requantisation follows the TFLite / CMSIS-NN fixed-point convention:

    acc  = bias[c] + sum((x - zp_in) * w)                  (int32)
    out  = clamp(zp_out + requantize(acc, multiplier[c], shift[c]), act_min, act_max)

with `multiplier` a Q31 value in [2^30, 2^31) (or 0) and `shift` the power-of-two exponent
(positive = left shift), exactly as `arm_nn_requantize` computes it. Activations (ReLU,
ReLU6/Clip), BatchNorm and QDQ pairs are folded into the layer that produces the tensor, so
layer indices count only the layers that do work.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from typing import Iterable

import numpy as np

from msfsim import ops
# The op kinds and the quantisation arithmetic are the op registry's (msfsim.ops), the bottom
# of the stack; the IR re-exports them.
from msfsim.ops.fixedpoint import (ADD_LEFT_SHIFT, quantize_multiplier,  # noqa: F401
                                   quantize_weights)
from msfsim.ops.kinds import Op, Shape, out_size  # noqa: F401
from msfsim.ops.lut import collapse

from .names import safe_name, shown


@dataclass(frozen=True)
class QParams:
    scale: float
    zero_point: int


@dataclass(frozen=True)
class Tensor:
    id: int
    name: str
    shape: Shape
    q: QParams

    def __post_init__(self) -> None:
        # Names come from model files: the IR only ever holds sanitised ones (msfsim.names).
        object.__setattr__(self, "name", safe_name(self.name, f"t{self.id}"))

    @property
    def size(self) -> int:
        """Bytes (int8 elements)."""
        h, w, c = self.shape
        return h * w * c


@dataclass(frozen=True, eq=False)
class Layer:
    """One int8 layer. Array fields are read-only numpy arrays.

    weight layouts: CONV (Cout, kh, kw, Cin); DWCONV (kh, kw, C); DENSE (Cout, H*W*Cin) with the
    input flattened in NHWC order. `multiplier`/`shift` have one entry per output channel for
    CONV/DWCONV/DENSE; for ADD (and SUB) they are [input1, input2, output] of the TFLite add
    (sub) (inputs pre-shifted left by ADD_LEFT_SHIFT); for AVGPOOL/GAP a single entry that maps the window sum
    to the output scale (the window size is folded in), except an AVGPOOL with `multiplier`
    None, which follows TFLite's int8 AveragePool (raw sum of the taps inside the tensor divided
    by their count, rounded; same qparams in and out); MAXPOOL has none (same qparams in/out).
    MUL: one [multiplier], [shift] for s_a * s_b / s_out; its second input has the first's
    shape or is (1, 1, C), broadcast over H and W. LUT: `weight` is the 256-entry int8 table,
    out = table[x + 128] (any unary activation, computed at import), or C x 256, a table per
    channel. CONCAT: two inputs of one
    H x W joined along channels; [multiplier], [shift] per input, 0 for a byte copy (same
    qparams as the output), else s_in / s_out.
    """
    index: int
    name: str
    op: Op
    inputs: tuple[int, ...]
    output: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    multiplier: np.ndarray | None = None
    shift: np.ndarray | None = None
    act_min: int = -128
    act_max: int = 127
    activation: str = "none"  # "none" | "relu" | "relu6" | "clip": for reports only

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", safe_name(self.name, f"{self.op.value}_{self.index}"))

    @property
    def is_spatial(self) -> bool:
        """True when an output pixel depends on a bounded input window (tileable)."""
        return op_def(self.op).spatial


def op_def(op: Op) -> ops.OpDef:
    """The definition of `op` in the op registry (`msfsim.ops`)."""
    return ops.get(op)


@dataclass(frozen=True, eq=False)
class Model:
    name: str
    tensors: tuple[Tensor, ...]
    layers: tuple[Layer, ...]
    input: int
    output: int
    # Deployment choice: the network input is read where it lies (flash, or a sensor buffer
    # outside the arena) instead of being copied into the arena (`with_input_in_place`).
    input_in_place: bool = False
    # Deployment choice: conv layers whose weights DSP builds store pre-widened to int16 (flash
    # for fewer instructions; `msfsim.deploy`). Changes no output and no RAM.
    wide_weights: frozenset[int] = frozenset()
    _consumers: dict[int, tuple[int, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", safe_name(self.name, "model"))
        cons: dict[int, list[int]] = {t.id: [] for t in self.tensors}
        for layer in self.layers:
            for t in layer.inputs:
                cons[t].append(layer.index)
        object.__setattr__(self, "_consumers", {k: tuple(v) for k, v in cons.items()})

    def tensor(self, tid: int) -> Tensor:
        return self.tensors[tid]

    def fingerprint(self) -> str:
        """Content hash of the computation: tensors' shapes and qparams, every layer's op,
        geometry, connections and integer parameters. Names and deployment choices (input in
        place, widened weights) are left out: they change neither the plan's meaning nor the
        output. Plan files record it, so a plan is never applied to another model."""
        h = hashlib.sha256(b"msfsim-ir-1")
        for t in self.tensors:
            h.update(repr((t.id, t.shape, float(t.q.scale).hex(), t.q.zero_point)).encode())
        for layer in self.layers:
            h.update(repr((layer.index, layer.op.value, layer.inputs, layer.output, layer.kernel,
                           layer.stride, layer.pad, layer.act_min, layer.act_max)).encode())
            for a in (layer.weight, layer.bias, layer.multiplier, layer.shift):
                h.update(b"-" if a is None else repr((a.dtype.str, a.shape)).encode() + a.tobytes())
        h.update(repr((self.input, self.output)).encode())
        return h.hexdigest()[:16]

    def with_input_in_place(self, in_place: bool = True) -> "Model":
        """The same model deployed with its input read in place (or copied into the arena)."""
        if in_place == self.input_in_place:
            return self
        return replace(self, input_in_place=in_place)

    def with_wide_weights(self, layers: frozenset[int]) -> "Model":
        """The same model deployed with these layers' weights pre-widened on DSP cores."""
        layers = frozenset(layers)
        return self if layers == self.wide_weights else replace(self, wide_weights=layers)

    def arena_size(self, tid: int) -> int:
        """Bytes tensor `tid` takes in the arena when held whole (0 for an in-place input)."""
        return 0 if tid == self.input and self.input_in_place else self.tensors[tid].size

    def consumers(self, tid: int) -> tuple[int, ...]:
        """Indices of the layers that read tensor `tid`."""
        return self._consumers[tid]

    def producer(self, tid: int) -> int | None:
        """Index of the layer that writes tensor `tid` (None for the network input)."""
        for layer in self.layers:
            if layer.output == tid:
                return layer.index
        return None

    def in_shape(self, layer: Layer, k: int = 0) -> Shape:
        return self.tensors[layer.inputs[k]].shape

    def out_shape(self, layer: Layer) -> Shape:
        return self.tensors[layer.output].shape

    def live_before(self, i: int) -> tuple[int, ...]:
        """Tensors alive at the cut just before layer i: produced before it, read at or after it.

        The network input counts as produced before layer 0; the network output is alive at
        the end (cut N).
        """
        n = len(self.layers)
        live = []
        for t in self.tensors:
            prod = self.producer(t.id)
            p = -1 if prod is None else prod
            if p >= i:
                continue
            last = max(self.consumers(t.id), default=-1)
            if t.id == self.output:
                last = n
            if last >= i:
                live.append(t.id)
        return tuple(live)

    def macs(self, layer: Layer) -> int:
        """Multiply-accumulates of one layer (adds and pooling count as 0 MACs)."""
        return op_def(layer.op).macs(self, layer)

    @property
    def total_macs(self) -> int:
        return sum(self.macs(layer) for layer in self.layers)

    def summary(self) -> str:
        lines = [f"model {self.name}: {len(self.layers)} layers, input "
                 f"{'x'.join(map(str, self.tensors[self.input].shape))}, "
                 f"{self.total_macs:,} MACs"]
        for layer in self.layers:
            ins = ",".join("x".join(map(str, self.tensors[t].shape)) for t in layer.inputs)
            extra = ""
            if op_def(layer.op).windowed:
                extra = f" k{layer.kernel[0]}x{layer.kernel[1]} s{layer.stride[0]}"
            act = f" {layer.activation}" if layer.activation != "none" else ""
            lines.append(f"  {layer.index:3d} {layer.op.value:8s}{extra:8s} {ins} -> "
                         f"{'x'.join(map(str, self.out_shape(layer)))}{act}")
        return "\n".join(lines)


# ---------------------------------------------------------------- fixed-point helpers

def conv_pad(n: int, k: int, s: int) -> tuple[int, int]:
    """SAME-style padding (k//2 on the leading side, the rest trailing) used by the zoo."""
    p0 = k // 2
    o = (n + s - 1) // s
    total = max((o - 1) * s + k - n, 0)
    return p0, max(total - p0, 0)


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


class IRBuilder:
    """Builds a `Model` layer by layer. Used by the ONNX importer and by tests.

    Each method takes float parameters or already-quantised ones and returns the new output
    tensor id. `QParams` for every new tensor must be given (the importer knows them from QDQ
    nodes or calibration).
    """

    def __init__(self, name: str, input_shape: Shape, input_q: QParams, input_name: str = "input"):
        self.name = name
        self.tensors: list[Tensor] = []
        self.layers: list[Layer] = []
        self.input = self.new_tensor(input_name, input_shape, input_q)

    def new_tensor(self, name: str, shape: Shape, q: QParams) -> int:
        if any(d <= 0 for d in shape):
            raise ValueError(f"tensor {shown(name)} has a non-positive dimension {shape}")
        tid = len(self.tensors)
        self.tensors.append(Tensor(tid, name, tuple(int(d) for d in shape), q))  # type: ignore[arg-type]
        return tid

    def new_layer(self, **kw) -> int:
        """Append a `Layer` (fields as keywords; arrays made read-only); returns its output."""
        kw.setdefault("name", f"{kw['op'].value}_{len(self.layers)}")
        for key in ("weight", "bias", "multiplier", "shift"):
            if kw.get(key) is not None:
                kw[key] = _ro(kw[key])
        self.layers.append(Layer(index=len(self.layers), **kw))
        return kw["output"]

    @staticmethod
    def clamp_range(activation: str, q: QParams, clip: tuple[float, float] | None = None) -> tuple[int, int]:
        lo, hi = -128, 127
        if activation in ("relu", "relu6", "clip"):
            fmin, fmax = (0.0, 6.0 if activation == "relu6" else math.inf) if clip is None else clip
            if fmin > -math.inf:
                lo = max(lo, q.zero_point + int(round(fmin / q.scale)))
            if fmax < math.inf:
                hi = min(hi, q.zero_point + int(round(fmax / q.scale)))
        return max(-128, min(lo, 127)), max(-128, min(hi, 127))

    # Builders of each op's layers (the op modules of msfsim.ops quantise the parameters).
    def conv(self, x: int, w_q: np.ndarray, w_scale: np.ndarray, bias: np.ndarray | None,
             out_q: QParams, stride=(1, 1), pad=(0, 0, 0, 0), depthwise: bool = False,
             activation: str = "none", clip: tuple[float, float] | None = None,
             name: str | None = None, out_name: str | None = None) -> int:
        """w_q: int8 weights, (Cout,kh,kw,Cin) or (kh,kw,C) for depthwise; w_scale per channel;
        bias: float bias (quantised here) or None."""
        return op_def(Op.DWCONV if depthwise else Op.CONV).build(
            self, x, w_q, w_scale, bias, out_q, stride=stride, pad=pad, activation=activation,
            clip=clip, name=name, out_name=out_name)

    def dense(self, x: int, w_q: np.ndarray, w_scale: np.ndarray, bias: np.ndarray | None,
              out_q: QParams, activation: str = "none", clip=None,
              name: str | None = None, out_name: str | None = None) -> int:
        """w_q: (Cout, H*W*C) int8 in NHWC flatten order."""
        return op_def(Op.DENSE).build(self, x, w_q, w_scale, bias, out_q, activation=activation,
                                      clip=clip, name=name, out_name=out_name)

    def add(self, a: int, b: int, out_q: QParams, activation: str = "none", clip=None,
            name: str | None = None, out_name: str | None = None) -> int:
        return op_def(Op.ADD).build(self, a, b, out_q, activation=activation, clip=clip,
                                    name=name, out_name=out_name)

    def mul(self, a: int, b: int, out_q: QParams, activation: str = "none", clip=None,
            name: str | None = None, out_name: str | None = None) -> int:
        """b: a's shape or (1, 1, C) (broadcast over H and W)."""
        return op_def(Op.MUL).build(self, a, b, out_q, activation=activation, clip=clip,
                                    name=name, out_name=out_name)

    def lut(self, x: int, table: np.ndarray, out_q: QParams, name: str | None = None,
            out_name: str | None = None) -> int:
        """table: 256 int8 values, out = table[x + 128]; or (C, 256), a table per channel."""
        return op_def(Op.LUT).build(self, x, table, out_q, name=name, out_name=out_name)

    def concat(self, a: int, b: int, out_q: QParams, name: str | None = None,
               out_name: str | None = None) -> int:
        """a and b of one H x W joined along channels (a's first)."""
        return op_def(Op.CONCAT).build(self, a, b, out_q, name=name, out_name=out_name)

    def pool(self, x: int, kind: str, kernel, stride, pad=(0, 0, 0, 0), out_q: QParams | None = None,
             activation: str = "none", clip=None, name: str | None = None,
             out_name: str | None = None) -> int:
        """kind: "max" or "avg". Average pooling divides by kh*kw (padding counts as zeros)."""
        return ops.pool.build(self, x, kind, kernel, stride, pad, out_q=out_q, activation=activation,
                          clip=clip, name=name, out_name=out_name)

    def gap(self, x: int, out_q: QParams | None = None, name: str | None = None,
            out_name: str | None = None) -> int:
        return op_def(Op.GAP).build(self, x, out_q=out_q, name=name, out_name=out_name)

    def build(self, output: int | None = None, merge: bool = True) -> Model:
        """The model (its output: the last layer's unless given); `merge`: elementwise chains
        of one tensor as one table (`merge_tables`), off only to keep layers as built."""
        out = self.layers[-1].output if output is None else output
        tensors, layers = tuple(self.tensors), tuple(self.layers)
        if merge:
            tensors, layers, out = merge_tables(tensors, layers, out)
        return Model(self.name, tensors, layers, self.input, out)


class _TensorTable:
    """The tensors as an op's reference reads them (`model.tensor(tid)`)."""

    def __init__(self, tensors: tuple[Tensor, ...]):
        self.tensors = tensors

    def tensor(self, tid: int) -> Tensor:
        return self.tensors[tid]


def merge_tables(tensors: tuple[Tensor, ...], layers: tuple[Layer, ...], output: int
                 ) -> tuple[tuple[Tensor, ...], tuple[Layer, ...], int]:
    """Elementwise chains of one tensor as one table, each exact because every int8 value of
    the tensor goes through the same integer arithmetic:
    - a lut reading another lut's output takes its place with the composed table (torch's GELU:
      Div, Erf, Add tables in a row);
    - a mul or add of a tensor x and a lut of x (SiLU's x * sigmoid(x), GELU's x * Phi(x)) is
      the table of that op on every value of x and its table's.
    Only where the inner lut's output is read by nothing else and is not the network's output;
    tensors are renumbered without the dropped ones."""
    uses: dict[int, int] = {}
    for la in layers:
        for t in la.inputs:
            uses[t] = uses.get(t, 0) + 1
    keep: list[Layer] = []
    at: dict[int, int] = {}  # tensor -> index in keep of the layer writing it
    dropped: set[int] = set()

    def inner_lut(t: int, reads: int | None) -> int | None:
        """keep's index of the lut writing t (reading tensor `reads`, if given) if it can go."""
        k = at.get(t)
        if k is None or keep[k].op != Op.LUT or uses[t] != 1 or t == output:
            return None
        return k if reads is None or keep[k].inputs[0] == reads else None

    X = "every value"  # in xs, the outer op's inputs: the tensor's (None: the inner table's)
    for la in layers:
        k, xs, label = None, [], ""
        if la.op == Op.LUT:
            k = inner_lut(la.inputs[0], None)
            xs, label = [None], f"{{}}+{la.activation}"
        elif la.op in (Op.MUL, Op.ADD) and len(la.inputs) == 2 and \
                tensors[la.inputs[0]].shape == tensors[la.inputs[1]].shape:
            for j in (0, 1):
                k = inner_lut(la.inputs[j], la.inputs[1 - j])
                if k is not None:
                    xs = [None, X] if j == 0 else [X, None]
                    label = "x" + ("*" if la.op == Op.MUL else "+") + "{}"
                    break
        if k is None:
            at[la.output] = len(keep)
            keep.append(la)
            continue
        # the outer op on every value (every int8 value in every channel: (256, 1, C), so
        # that a table per channel composes), with the inner table's output where xs holds None
        c = tensors[la.output].shape[2]
        values = np.repeat(np.arange(-128, 128, dtype=np.int8).reshape(256, 1, 1), c, axis=2)
        inner = keep[k]
        assert inner.weight is not None
        looked = op_def(Op.LUT).reference(_TensorTable(tensors), inner, [values])
        out = op_def(la.op).reference(_TensorTable(tensors), la,
                                      [looked if v is None else values for v in xs])
        table = collapse(np.ascontiguousarray(np.asarray(out, np.int8)[:, 0, :].T))  # (C, 256)
        dropped.add(inner.output)
        keep[k] = replace(inner, name=la.name, output=la.output, weight=_ro(table),
                          activation=label.format(inner.activation))
        at[la.output] = k
    if not dropped:
        return tensors, layers, output
    ids = {t.id: n for n, t in enumerate(t for t in tensors if t.id not in dropped)}
    return (tuple(replace(t, id=ids[t.id]) for t in tensors if t.id not in dropped),
            tuple(replace(la, index=n, inputs=tuple(ids[i] for i in la.inputs),
                          output=ids[la.output]) for n, la in enumerate(keep)),
            ids[output])


def activation_qparams(lo: float, hi: float) -> QParams:
    """Asymmetric int8 qparams covering [lo, hi] (always including 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / 255.0
    zp = int(round(-128 - lo / scale))
    return QParams(float(scale), max(-128, min(127, zp)))


def iter_layers(model: Model, ops: Iterable[Op]) -> list[Layer]:
    wanted = set(ops)
    return [layer for layer in model.layers if layer.op in wanted]
