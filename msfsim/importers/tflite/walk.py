"""The graph walk: TFLite operators, in the file's execution order, onto msfsim's IR.

Activation tensors map to IR tensors (`ir`); constant tensors, and the shape arithmetic Keras
puts around Flatten / Reshape (SHAPE, STRIDED_SLICE, PACK), fold into `consts`; a RESHAPE of an
activation is an alias (msfsim's tensors are NHWC bytes: a flatten changes no byte); a PAD waits
in `pads` for the convolution that folds it. The layers themselves are built by layers.py.
QUANTIZE at a float or uint8 input and DEQUANTIZE (QUANTIZE) at a float (uint8) output are the
graph's edges: msfsim works on the int8 interior between them.
"""
from __future__ import annotations

import numpy as np
import tflite

from msfsim import UnsupportedModel
from msfsim.importers.tflite.read import TflGraph, TflOp, TflTensor, type_name
from msfsim.ir import IRBuilder, Model, QParams, Shape
from msfsim.names import shown

INT8 = tflite.TensorType.INT8
FLOAT32 = tflite.TensorType.FLOAT32
FLOAT_REFUSAL = ("float .tflite: quantise with TFLiteConverter full-integer (int8), or export "
                 "ONNX")
UINT8 = tflite.TensorType.UINT8
# the types a model's input / output may have at its edges (inference_input_type float32 or
# uint8): a QUANTIZE (DEQUANTIZE for float out) converts them, and msfsim works on the int8
# tensors inside; the message refusing any other use of them
EDGE_TYPES = {FLOAT32: FLOAT_REFUSAL,
              UINT8: "msfsim runs int8 models (uint8 only at the input and output, converted "
                     "by a QUANTIZE)"}


class Walk:
    """One import: `run()` returns the Model or raises a one-line UnsupportedModel."""

    def __init__(self, g: TflGraph, name: str):
        self.g = g
        self.name = name
        self.ir: dict[int, int] = {}                 # TFLite tensor -> IR tensor id
        self.consts: dict[int, np.ndarray] = {t.index: t.data for t in g.tensors
                                              if t.data is not None}
        # PAD output -> (IR source, (top, left, bottom, right)), until a convolution folds it
        self.pads: dict[int, tuple[int, tuple[int, int, int, int]]] = {}
        self.b: IRBuilder | None = None

    # ------------------------------------------------------------------ messages, tensors
    def where(self, op: TflOp) -> str:
        out = self.g.tensors[op.outputs[0]].name if op.outputs else "none"
        return f"operator {op.index} ({op.name}, output {shown(out)})"

    def fail(self, op: TflOp, msg: str) -> UnsupportedModel:
        return UnsupportedModel(f"{self.where(op)}: {msg}")

    def t(self, i: int) -> TflTensor:
        return self.g.tensors[i]

    def qparams(self, i: int, op: TflOp | None = None) -> QParams:
        """The int8 per-tensor quantisation of activation tensor i."""
        t = self.t(i)
        what = f"tensor {shown(t.name)}"
        what = what if op is None else f"{self.where(op)}: {what}"
        if t.dtype == FLOAT32:
            raise UnsupportedModel(f"{what} is float32: {FLOAT_REFUSAL}")
        if t.dtype != INT8:
            raise UnsupportedModel(f"{what} is {type_name(t.dtype)}; msfsim runs int8 activations")
        if t.scale.size != 1:
            raise UnsupportedModel(f"{what}: an int8 activation needs one scale and zero point, "
                                   f"has {t.scale.size}")
        zp = int(t.zero_point[0])
        if not -128 <= zp <= 127:
            raise UnsupportedModel(f"{what}: zero point {zp} outside int8")
        return QParams(float(t.scale[0]), zp)

    def hwc(self, i: int, op: TflOp | None = None) -> Shape:
        """An activation's shape as msfsim's (H, W, C): (1, H, W, C); (1, W, C) -> (1, W, C)
        (a Conv1D model's sequence, which the converter reshapes to (1, 1, W, C) around each
        convolution: the same bytes); (1, C) and (C,) -> (1, 1, C) (the converter squeezes a
        per-channel vector to (C,) before a broadcast ADD or MUL; TFLite broadcasts it along
        the last axis, the channels)."""
        s = self.t(i).shape
        if len(s) == 4 and s[0] == 1:
            return (s[1], s[2], s[3])
        if len(s) == 3 and s[0] == 1:
            return (1, s[1], s[2])
        if len(s) == 2 and s[0] == 1:
            return (1, 1, s[1])
        if len(s) == 1:
            return (1, 1, s[0])
        where = f"{self.where(op)}: " if op is not None else ""
        raise UnsupportedModel(f"{where}tensor {shown(self.t(i).name)} has shape "
                               f"{list(s)}; msfsim takes batch 1: NHWC, (1, W, C) or (1, C)")

    def act(self, op: TflOp, k: int) -> int:
        """IR id of input k of `op`, an activation some earlier operator wrote."""
        if k >= len(op.inputs) or op.inputs[k] < 0:
            raise self.fail(op, f"input {k} is missing")
        i = op.inputs[k]
        if i in self.pads:
            raise self.fail(op, f"reads the output of a PAD ({shown(self.t(i).name)}); msfsim "
                                f"folds PAD only into the CONV_2D / DEPTHWISE_CONV_2D after it")
        if i not in self.ir:
            what = "a constant" if i in self.consts else "a tensor no earlier operator writes"
            raise self.fail(op, f"input {k} {shown(self.t(i).name)} is {what} (dangling or "
                                f"cyclic reference, or an unsupported constant operand)")
        return self.ir[i]

    def const(self, op: TflOp, k: int, what: str) -> np.ndarray:
        if k >= len(op.inputs) or op.inputs[k] < 0 or op.inputs[k] not in self.consts:
            raise self.fail(op, f"{what} (input {k}) must be a constant")
        return self.consts[op.inputs[k]]

    def define(self, op: TflOp, ir_id: int, k: int = 0) -> None:
        """Bind the op's output k to an IR tensor (each tensor is written once)."""
        out = op.outputs[k]
        if out in self.ir or out in self.consts or out in self.pads:
            raise self.fail(op, f"writes tensor {shown(self.t(out).name)} that is already "
                                f"defined (cyclic graph)")
        self.ir[out] = ir_id

    def reshape_input(self, shape: Shape) -> None:
        """Start the IR again with the network input of `shape` (the same bytes): only before
        any layer reads it."""
        assert self.b is not None and not self.b.layers
        old = self.b
        self.b = IRBuilder(self.name, shape, old.tensors[old.input].q,
                           input_name=old.tensors[old.input].name)
        for t, ir_id in self.ir.items():
            if ir_id == old.input:
                self.ir[t] = self.b.input

    def check_shape(self, op: TflOp, shape: Shape, k: int = 0) -> None:
        """The op's output k's shape as the file declares it must be the one msfsim
        computes."""
        out = op.outputs[k]
        if any(d <= 0 for d in shape) or self.hwc(out, op) != tuple(shape):
            raise self.fail(op, f"output declared {list(self.t(out).shape)}, computes "
                                f"{'x'.join(map(str, shape))}")

    def new_tensor(self, op: TflOp, shape: Shape, k: int = 0) -> int:
        """The IR tensor for the op's output k, its computed shape checked against the
        file's."""
        self.check_shape(op, shape, k)
        out = op.outputs[k]
        assert self.b is not None
        return self.b.new_tensor(self.t(out).name, shape, self.qparams(out, op))

    # ------------------------------------------------------------------ the walk
    def run(self) -> Model:
        from msfsim.importers.tflite import layers
        g = self.g
        if len(g.inputs) != 1 or len(g.outputs) != 1:
            raise UnsupportedModel(f"{len(g.inputs)} inputs and {len(g.outputs)} outputs; "
                                   f"msfsim takes models of one input and one output")
        ops = list(g.ops)
        x = g.inputs[0]
        if self.t(x).dtype in EDGE_TYPES:  # float or uint8 in: the QUANTIZE reading it
            first = [op for op in ops if x in op.inputs]
            if (len(first) != 1 or first[0].name != "QUANTIZE"
                    or self.t(first[0].outputs[0]).dtype != INT8):
                raise UnsupportedModel(f"input {shown(self.t(x).name)} is "
                                       f"{type_name(self.t(x).dtype)} and not quantised to "
                                       f"int8 by a QUANTIZE: {EDGE_TYPES[self.t(x).dtype]}")
            ops.remove(first[0])
            x = first[0].outputs[0]
        out = g.outputs[0]
        if self.t(out).dtype in EDGE_TYPES:  # float or uint8 out: the op writing it
            last = [op for op in ops if out in op.outputs]
            want = "DEQUANTIZE" if self.t(out).dtype == FLOAT32 else "QUANTIZE"
            if (len(last) != 1 or last[0].name != want
                    or self.t(last[0].inputs[0]).dtype != INT8):
                raise UnsupportedModel(f"output {shown(self.t(out).name)} is "
                                       f"{type_name(self.t(out).dtype)} and not converted "
                                       f"from int8 by a {want}: {EDGE_TYPES[self.t(out).dtype]}")
            ops.remove(last[0])
            out = last[0].inputs[0]
        self.b = IRBuilder(self.name, self.hwc(x), self.qparams(x), input_name=self.t(x).name)
        self.ir[x] = self.b.input
        for op in ops:
            if not op.outputs:
                raise self.fail(op, "has no output")
            handler = layers.HANDLERS.get(op.name) or SHAPE_HANDLERS.get(op.name)
            if handler is None and op.name == "DEQUANTIZE":
                floats = sorted({o.name for o in ops if op.outputs[0] in o.inputs})
                raise self.fail(op, f"a DEQUANTIZE inside the graph: the converter left "
                                    f"{', '.join(floats) or 'what follows'} in float32 (no "
                                    f"int8 kernel for it); msfsim runs int8 models")
            if handler is None:
                raise self.fail(op, "operator not supported by msfsim (supported: "
                                    f"{', '.join(sorted(supported_ops()))})")
            handler(self, op)
        if out not in self.ir:
            raise UnsupportedModel(f"output {shown(self.t(out).name)} is not computed by a "
                                   f"supported operator")
        if not self.b.layers:
            raise UnsupportedModel("the model has no layer msfsim computes")
        return self.b.build(self.ir[out])


# ------------------------------------------------------------------ edges and shape arithmetic

def reshape(w: Walk, op: TflOp) -> None:
    """RESHAPE: of a constant, folded; of an activation, an alias of the same bytes, allowed
    when msfsim's (H, W, C) stays the same (a (1, 1, 1, C) squeezed to (C,) included) or the
    result is flat (1, N) (Flatten before a FULLY_CONNECTED, which reads its input flattened
    in NHWC order anyway)."""
    i, out = op.inputs[0], op.outputs[0]
    if i in w.consts:
        w.consts[out] = np.reshape(w.consts[i], w.t(out).shape)
        return
    assert w.b is not None
    if i in w.pads:  # a padded sequence reshaped for its CONV_2D: the PAD waits on
        src, p = w.pads[i]
        sh = w.b.tensors[src].shape
        padded = (sh[0] + p[0] + p[2], sh[1] + p[1] + p[3], sh[2])
        if w.qparams(i, op) != w.qparams(out, op) or w.hwc(out, op) != padded:
            raise w.fail(op, f"reshapes a PAD's output {list(w.t(i).shape)} to "
                             f"{list(w.t(out).shape)}; msfsim folds a PAD only into the "
                             f"convolution reading it")
        w.pads[out] = w.pads[i]
        return
    src = w.act(op, 0)
    sh = w.b.tensors[src].shape
    n = int(np.prod(w.t(out).shape))
    if n != sh[0] * sh[1] * sh[2]:
        raise w.fail(op, f"reshapes {sh[0] * sh[1] * sh[2]} values into {n}")
    if w.qparams(i, op) != w.qparams(out, op):
        raise w.fail(op, "input and output quantisation differ")
    new = w.hwc(out, op)
    if new != sh and src == w.b.input and not w.b.layers:
        # the network input reshaped before any layer reads it (TFLM's micro_speech: a
        # (1, 1960) input as (1, 49, 40, 1)): the same bytes, so the input takes that shape
        w.reshape_input(new)
        w.define(op, w.b.input)
        return
    if new != sh and not (new[:2] == (1, 1) and len(w.t(out).shape) == 2):
        raise w.fail(op, f"reshape {'x'.join(map(str, sh))} -> {list(w.t(out).shape)} changes "
                         f"the spatial layout; msfsim supports flattening only")
    w.define(op, src)


def shape(w: Walk, op: TflOp) -> None:
    w.consts[op.outputs[0]] = np.array(w.t(op.inputs[0]).shape, np.int32)


def strided_slice(w: Walk, op: TflOp) -> None:
    """STRIDED_SLICE of a constant 1-D shape vector (Keras' Flatten takes the batch size); of
    an activation, along its channels only (layers.channel_slice)."""
    if op.inputs and op.inputs[0] >= 0 and op.inputs[0] not in w.consts:
        from msfsim.importers.tflite import layers
        layers.channel_slice(w, op)
        return
    v = w.const(op, 0, "input")
    begin, end, stride = (w.const(op, k, n).astype(np.int64)
                          for k, n in ((1, "begin"), (2, "end"), (3, "strides")))
    o = op.options
    if v.ndim != 1 or begin.shape != (1,) or end.shape != (1,) or stride.shape != (1,):
        raise w.fail(op, "only 1-D slices of constant shape vectors are supported")
    if o is not None and (o.ellipsis_mask or o.new_axis_mask):
        raise w.fail(op, "ellipsis and new-axis masks are not supported")
    if stride[0] == 0:
        raise w.fail(op, "stride 0")
    b = None if (o is not None and o.begin_mask & 1) else int(begin[0])
    e = None if (o is not None and o.end_mask & 1) else int(end[0])
    r = v[slice(b, e, int(stride[0]))]
    if o is not None and o.shrink_axis_mask & 1:
        if r.size != 1:
            raise w.fail(op, "shrink of an empty slice")
        r = r.reshape(())
    w.consts[op.outputs[0]] = r


def pack(w: Walk, op: TflOp) -> None:
    """PACK of constant scalars / vectors (the new shape of a Flatten)."""
    vals = [w.const(op, k, f"value {k}") for k in range(len(op.inputs))]
    axis = int(op.options.axis) if op.options is not None else 0
    if axis != 0 or len({v.shape for v in vals}) != 1:
        raise w.fail(op, "only packing constants of one shape along axis 0 is supported")
    w.consts[op.outputs[0]] = np.stack(vals)


SHAPE_HANDLERS = {"RESHAPE": reshape, "SHAPE": shape,
                  "STRIDED_SLICE": strided_slice, "PACK": pack}


def supported_ops() -> set[str]:
    from msfsim.importers.tflite import layers
    return set(layers.HANDLERS) | set(SHAPE_HANDLERS) | {"DEQUANTIZE"}
