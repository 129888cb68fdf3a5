"""The graph walk: one handler per ONNX node, in order (onnx2c style).

The walk builds a small float graph (`FloatLayer`s on NHWC tensors) with activations,
BatchNorm, bias-adds and QDQ pairs folded into the layer that produces the tensor; then every
tensor gets int8 qparams (from the model's QuantizeLinear nodes, or by calibration) and the
graph is emitted as IR, each layer quantised by its op. Nodes that produce layers are lowered
by their op modules (`msfsim.ops`, `OpDef.onnx`), which see the `Importer` as their
`msfsim.ops.base.OnnxContext`; the rest are handled here (handlers.py, quantize.py).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from msfsim import MsfsimError, ops
from msfsim.ops import channels
from msfsim.importers.onnx import calibrate, handlers, nodes, quantize, sequence
from msfsim.importers.onnx.load import dims_text, elements, short, type_name
from msfsim.importers.onnx.nodes import (Act, Grouped, Padded, QConst, Selected,
                                         check_act_size, fail, node_label)
from msfsim.ir import Model, QParams
from msfsim.names import shown
from msfsim.ops.base import FloatLayer

Handler = Callable[["Importer", onnx.NodeProto], None]


def handler_table() -> dict[str, Handler]:
    """ONNX op type -> handler: the op modules' lowerings and the importer's own."""
    table: dict[str, Handler] = dict(ops.onnx_lowerings())
    for own in (handlers.HANDLERS, quantize.HANDLERS):
        clash = table.keys() & own.keys()
        if clash:
            raise ValueError(f"ONNX ops handled twice: {sorted(clash)}")
        table.update(own)
    return table


HANDLERS = handler_table()
SUPPORTED_OPS = sorted(HANDLERS)

# Ops of onnxruntime's QOperator format (and of its dynamic quantisation): integer kernels with
# their quantisation parameters as inputs. msfsim reads the QDQ format of the same models.
QOPERATOR_OPS = frozenset({
    "QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool",
    "QLinearAveragePool", "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax",
    "QLinearReduceMean", "QLinearWhere", "QLinearConvTranspose", "QGemm", "ConvInteger",
    "MatMulInteger", "DynamicQuantizeLinear", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"})
QDQ_HINT = ("re-quantise it in QDQ format (onnxruntime.quantization.quantize_static(..., "
            "quant_format=QuantFormat.QDQ)) or give msfsim the float model")
# The nodes that may read a Pad's output (input 0): Conv and AveragePool fold its zeros into
# their padding, another Pad adds to it, Identity, Dropout and a QDQ pair pass it on.
PAD_READERS = frozenset({"Conv", "AveragePool", "Pad", "Identity", "Dropout", "QuantizeLinear",
                         "DequantizeLinear"})
_PAD_WHY = {"MaxPool": "max pooling ignores padding, but a padded zero can be the maximum"}


class Importer:
    """The state of one import; op lowerings use it through the methods of `OnnxContext`."""

    def __init__(self, proto: onnx.ModelProto, name: str, input_shape: tuple[int, int, int] | None):
        self.proto = sequence.lift(proto)  # a 1-D model's N x C x L as N x C x 1 x L
        self.name = name
        self.forced_shape = input_shape
        self.values: dict[str, object] = {}     # name -> np.ndarray | QConst | Act
        self.layers: list[FloatLayer] = []
        self.producer: dict[str, FloatLayer] = {}  # activation name -> layer writing it
        self.qparams: dict[str, QParams] = {}   # activation name -> qparams from QDQ
        self.fallback_q: dict[str, QParams] = {}  # qparams inherited through a folded activation
        self.alias: dict[str, str] = {}         # activation name -> canonical name
        self.uses: dict[str, int] = {}
        self.nonfinite: dict[str, str] = {}     # constant name -> "initializer 'w' holds NaN"
        self.input_name = ""

    # ---------------------------------------------------------------- OnnxContext
    where = staticmethod(node_label)
    attrs = staticmethod(nodes.attrs)
    short = staticmethod(short)
    kernel_stride = staticmethod(nodes.kernel_stride)
    pads = staticmethod(nodes.pads_2d)
    check_padded = staticmethod(nodes.check_padded)

    @staticmethod
    def supported_ops() -> list[str]:
        return SUPPORTED_OPS

    def canon(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def const(self, node: onnx.NodeProto, k: int, what: str) -> np.ndarray:
        if k >= len(node.input) or not node.input[k]:
            raise fail(f"{node_label(node)}: missing {what}")
        v = self.values.get(node.input[k])
        if isinstance(v, QConst):
            return v.value()
        if not isinstance(v, np.ndarray):
            raise fail(f"{node_label(node)}: {what} must be a constant")
        return v

    def qconst(self, name: str) -> QConst | None:
        v = self.values.get(name)
        return v if isinstance(v, QConst) else None

    def act(self, node: onnx.NodeProto, k: int = 0) -> Act:
        v = self.values.get(node.input[k])
        if isinstance(v, Selected):
            return self._materialise(node.input[k], v)
        if isinstance(v, Grouped):
            raise fail(f"{node_label(node)}: reads the channel view of {v.where}; only a "
                       f"channel shuffle (Transpose [0, 2, 1, 3, 4], then Reshape back to "
                       f"[1, C, H, W]) is supported")
        if not isinstance(v, Act):
            raise fail(f"{node_label(node)}: input {shown(node.input[k])} must be an "
                       f"activation tensor, not a constant")
        return v

    def view(self, node: onnx.NodeProto, k: int = 0) -> Act | Selected:
        """Input k as an activation or a channel selection not yet made a layer."""
        v = self.values.get(node.input[k])
        return v if isinstance(v, Selected) else self.act(node, k)

    def select(self, node: onnx.NodeProto, k: int, index: np.ndarray,
               src: Act | Selected | None = None) -> None:
        """Output k of `node` is channels `index` of `src` (default: input 0), a selection of
        a selection composing: the source itself if that is all its channels in order."""
        index = np.asarray(index, np.int64).ravel()
        if index.size == 0:
            raise fail(f"{node_label(node)}: output {k} selects no channel")
        v = self.view(node) if src is None else src
        if isinstance(v, Selected):
            v, index = v.src, v.index[index]
        out = node.output[k]
        if np.array_equal(index, np.arange(v.shape[2])):
            self.values[out] = v
            self.alias[out] = v.name
            return
        one = onnx.helper.make_node(node.op_type, [node.input[0]], [out], name=node.name)
        self.values[out] = Selected(v, index, one)

    def selection(self, node: onnx.NodeProto, k: int = 0) -> Selected | None:
        """Input k if it is a channel selection that only `node` reads (it may fold into it)."""
        v = self.values.get(node.input[k])
        return v if isinstance(v, Selected) and self.uses.get(node.input[k], 0) == 1 else None

    def _materialise(self, name: str, v: Selected) -> Act:
        """A channel selection as its one-hot 1x1 conv layer (once: its value becomes it)."""
        x = v.src
        self.new_layer(v.node, channels.one_hot_layer(
            Act(self.canon(x.name), x.shape, x.flat), v.index, v.node.name or v.node.output[0],
            v.node.output[0]))
        if x.flat:
            self.define(v.node.output[0], v.shape, flat=True)
        act = self.values[v.node.output[0]]
        assert isinstance(act, Act)
        self.values[name] = act
        return act

    def padded_input(self, node: onnx.NodeProto) -> tuple[Act, tuple[int, int, int, int]]:
        """Input 0 of a Conv / AveragePool and the zero padding (top, left, bottom, right) of
        the Pad producing it, if one does (else no padding)."""
        v = self.values.get(node.input[0])
        if isinstance(v, Padded):
            return v.src, v.pad
        return self.act(node), (0, 0, 0, 0)

    def is_act(self, name: str) -> bool:
        return isinstance(self.values.get(name), (Act, Selected))

    def define(self, name: str, shape: tuple[int, int, int], flat: bool = False) -> None:
        self.values[name] = Act(name, shape, flat=flat)

    def default_qparams(self, name: str, q: QParams) -> None:
        """The qparams of activation `name` unless the model's QDQ nodes give others (an op
        whose output quantisation is fixed, e.g. softmax's 1/256, -128): never calibrated."""
        self.fallback_q[name] = q

    def new_layer(self, node: onnx.NodeProto, layer: FloatLayer) -> None:
        h, w, c = layer.out_shape
        for axis, v in ((1, c), (2, h), (3, w)):
            if v <= 0:
                raise fail(f"{node_label(node)}: dimension {axis} ({'NCHW'[axis]}) of its output "
                           f"has size {v} (shape 1x{c}x{h}x{w})")
        check_act_size(f"{node_label(node)}: its output", layer.out_shape)
        layer.where = node_label(node)
        self.layers.append(layer)
        self.producer[layer.output] = layer
        self.values[node.output[0]] = Act(layer.output, layer.out_shape)

    def same_as(self, node: onnx.NodeProto, k: int = 0) -> None:
        """node's output is its input k, unchanged (Identity, Dropout, a one-input Concat)."""
        v = self.values.get(node.input[k])
        if isinstance(v, Selected):  # one name per selection: it becomes its layer here
            v = self.act(node, k)
        self.values[node.output[0]] = v
        if isinstance(v, Act):
            self.alias[node.output[0]] = v.name

    def foldable(self, node: onnx.NodeProto) -> FloatLayer | None:
        """The layer producing node's first input if node may be folded into it."""
        v = self.values.get(node.input[0])
        if not isinstance(v, Act):
            return None
        layer = self.producer.get(v.name)
        if layer is None or self.uses.get(node.input[0], 0) != 1 or layer.activation != "none":
            return None
        return layer

    def rename_output(self, layer: FloatLayer, node: onnx.NodeProto, carry_q: bool = False) -> None:
        """node (an activation, BatchNorm or bias add) now ends `layer`: its output is the layer's.

        carry_q: an activation clamps in the int8 domain of the tensor it reads, so that tensor's
        qparams stand for the result unless a QuantizeLinear later says otherwise."""
        old = layer.output
        flat = self.values[node.input[0]].flat  # type: ignore[union-attr]
        layer.output = node.output[0]
        del self.producer[old]
        self.producer[layer.output] = layer
        self.values[node.output[0]] = Act(layer.output, layer.out_shape, flat=flat)
        if carry_q and (old in self.qparams or old in self.fallback_q):
            self.fallback_q[layer.output] = self.qparams.get(old) or self.fallback_q[old]

    # ---------------------------------------------------------------- driver
    def run(self) -> Model:
        # No numpy warning may reach stderr: float trouble in the model's constants raises here
        # and becomes a one-line error naming the node.
        with np.errstate(divide="raise", over="raise", invalid="raise", under="ignore"):
            return self._run()

    def _run(self) -> Model:
        g = self.proto.graph
        if len(g.sparse_initializer):
            raise fail(f"initializer {shown(g.sparse_initializer[0].values.name)}: sparse "
                       f"initializers are not supported")
        for init in g.initializer:
            elements(init.dims, f"initializer {shown(init.name)}")  # ModelProto sources
            try:
                arr = numpy_helper.to_array(init)
            except Exception as exc:
                raise fail(f"initializer {shown(init.name)}: cannot be decoded "
                           f"({type(exc).__name__}: {short(exc, 100)})") from None
            self.values[init.name] = arr
            self.note_finite(init.name, arr, "initializer")
        inputs = [i for i in g.input if i.name not in self.values]
        if len(inputs) != 1:
            names = ", ".join(shown(i.name, 40) for i in inputs[:4]) + (", ..." if len(inputs) > 4 else "")
            raise fail(f"model has {len(inputs)} graph inputs ({names}); msfsim handles one image input")
        if len(g.output) != 1:
            raise fail(f"model has {len(g.output)} graph outputs; msfsim handles a single output")
        self.input_name = inputs[0].name
        shape = self._input_shape(inputs[0])
        flat = len(inputs[0].type.tensor_type.shape.dim) == 2 and self.forced_shape is None
        self.values[self.input_name] = Act(self.input_name, shape, flat=flat)
        for node in g.node:
            for name in node.input:
                if name:
                    self.uses[name] = self.uses.get(name, 0) + 1
        self.uses[g.output[0].name] = self.uses.get(g.output[0].name, 0) + 1
        for node in g.node:
            self._visit(node)
        out = self.values.get(g.output[0].name)
        if isinstance(out, Selected):
            out = self._materialise(g.output[0].name, out)
        if isinstance(out, Padded):
            raise fail(f"{out.where}: its output is the graph output; msfsim folds a Pad only "
                       f"into the Conv or AveragePool reading it")
        if not isinstance(out, Act):
            raise fail(f"graph output {shown(g.output[0].name)} is not computed from the input")
        if not self.layers:
            raise fail("model has no layers msfsim can run (no Conv/Gemm/pooling)")
        return self._emit(self.canon(out.name))

    def _visit(self, node: onnx.NodeProto) -> None:
        if node.op_type in QOPERATOR_OPS:
            raise fail(f"{node_label(node)}: {shown(node.op_type, 40)} is an op of the QOperator "
                       f"quantisation format, which msfsim does not read; {QDQ_HINT}")
        handler = HANDLERS.get(node.op_type)
        if node.op_type in handlers.ARITHMETIC and node.input and all(
                isinstance(self.values.get(n), np.ndarray) for n in node.input):
            handler = handlers.fold_arithmetic
        if handler is None or node.domain not in ("", "ai.onnx"):
            name = shown(node.name) if node.name else "<unnamed>"
            out = shown(node.output[0]) if len(node.output) and node.output[0] else "none"
            domain = node.domain not in ("", "ai.onnx")
            raise fail(f"node {name}: unsupported op {shown(node.op_type, 40)}"
                       f"{' (domain ' + shown(node.domain, 40) + ')' if domain else ''}, "
                       f"output {out}; supported: {', '.join(SUPPORTED_OPS)}")
        for k, name in enumerate(node.input):
            v = self.values.get(name)
            if isinstance(v, Padded) and (k or node.op_type not in PAD_READERS):
                why = _PAD_WHY.get(node.op_type, "msfsim folds a Pad only into the Conv or "
                                                 "AveragePool reading it")
                raise fail(f"{v.where}: its padding cannot be folded into {node_label(node)}, "
                           f"which reads it ({why})")
            if name in self.nonfinite:
                raise fail(f"{node_label(node)}: {self.nonfinite[name]}; weights, biases and "
                           f"quantisation parameters must be finite")
        try:
            handler(self, node)
        except MsfsimError:
            raise
        except FloatingPointError as exc:
            raise fail(f"{node_label(node)}: float arithmetic on its constants fails ({exc}); "
                       f"are they finite and in range?") from None
        except MemoryError:
            raise
        except Exception as exc:  # a malformed node the handler did not foresee
            raise fail(f"{node_label(node)}: cannot be imported ({type(exc).__name__}: "
                       f"{short(exc, 100)})") from None

    def note_finite(self, name: str, value: object, kind: str) -> None:
        """Remember a constant holding NaN or Inf: the first node reading it is refused."""
        arr = np.asarray(value)
        if arr.dtype.kind in "biuSUO" or arr.size == 0:
            return
        try:
            finite = np.isfinite(arr)
        except TypeError:
            return
        if not finite.all():
            what = "NaN" if np.isnan(arr).any() else "Inf"
            self.nonfinite[name] = f"{kind} {shown(name)} holds {what}"

    def _input_shape(self, vi: onnx.ValueInfoProto) -> tuple[int, int, int]:
        what = f"input {shown(vi.name)}"
        tt = vi.type.tensor_type
        dims = tt.shape.dim
        ok_types = (onnx.TensorProto.FLOAT, onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
        if self.forced_shape is not None:
            if len(dims) not in (0, 4):
                raise fail(f"{what} is {len(dims)}-D; msfsim needs a 4-D NCHW image input")
            h, w, c = self.forced_shape
            if len(dims) == 4:
                # A static size in C, H or W must agree; the batch may be overridden (msfsim runs
                # one image) and so may a dynamic dimension or a nonsensical size <= 0.
                static = [d.dim_value if d.WhichOneof("value") == "dim_value" else 0 for d in dims]
                if any(v > 0 and v != want for v, want in zip(static[1:], (c, h, w))):
                    raise fail(f"--input-shape 1x{c}x{h}x{w} contradicts the static shape "
                               f"{dims_text(dims)} of {what}")
            if tt.elem_type not in (*ok_types, onnx.TensorProto.UNDEFINED):
                raise fail(f"{what} has element type {type_name(tt.elem_type)}; expected float or int8")
            check_act_size(what, self.forced_shape)
            return self.forced_shape
        if tt.elem_type not in ok_types:
            raise fail(f"{what} has element type {type_name(tt.elem_type)}; expected float or int8")
        if not tt.HasField("shape"):
            raise fail(f"{what} has no shape; give one with --input-shape 1xCxHxW")
        if len(dims) == 2:  # N x F features (an MLP, an autoencoder): a flat (1, F) input
            d = dims[1]
            if d.WhichOneof("value") != "dim_value" or d.dim_value <= 0:
                raise fail(f"{what} has a dynamic or missing feature dimension "
                           f"{dims_text(dims)}")
            if dims[0].WhichOneof("value") == "dim_value" and dims[0].dim_value != 1:
                raise fail(f"{what} has batch {dims[0].dim_value}; msfsim runs batch 1")
            check_act_size(what, (1, 1, d.dim_value))
            return (1, 1, d.dim_value)
        if len(dims) != 4:
            seq = (" (or an N x C x L sequence of Conv1d layers whose shapes ONNX can infer)"
                   if len(dims) == 3 else "")
            raise fail(f"{what} is {len(dims)}-D; msfsim needs a 4-D NCHW image input "
                       f"(N x C x H x W){seq}")
        vals = []
        for i, d in enumerate(dims):
            if d.WhichOneof("value") == "dim_value":
                if d.dim_value <= 0:
                    raise fail(f"dimension {i} ({'NCHW'[i]}) of {what} has size {d.dim_value} "
                               f"(shape {dims_text(dims)}); give the shape with --input-shape 1xCxHxW")
                vals.append(d.dim_value)
            elif i == 0:
                vals.append(1)  # dynamic batch: msfsim runs one image
            else:
                raise fail(f"{what} has a dynamic or missing dimension {dims_text([d])} "
                           f"(axis {i}); give the shape with --input-shape 1xCxHxW")
        if vals[0] != 1:
            raise fail(f"{what} has batch {vals[0]}; msfsim runs batch 1 "
                       f"(use --input-shape 1x{vals[1]}x{vals[2]}x{vals[3]})")
        shape = (vals[2], vals[3], vals[1])
        check_act_size(what, shape)
        return shape

    # ---------------------------------------------------------------- qparams + emit
    def _emit(self, out_name: str) -> Model:
        needed = {self.canon(i) for layer in self.layers for i in layer.inputs}
        needed |= {self.canon(self.input_name)}
        for layer in self.layers:
            needed.add(layer.output)
        missing = [n for n in needed if n not in self.qparams and n not in self.fallback_q]
        calib = calibrate.calibrate(self, missing) if missing else {}
        return quantize.emit(self, out_name, {**calib, **self.fallback_q, **self.qparams})

    def live_layers(self, out_name: str) -> set[str]:
        """Outputs of the layers the graph output depends on (dead branches are dropped)."""
        live, todo = set(), [out_name]
        while todo:
            n = todo.pop()
            if n in live or n not in self.producer:
                continue
            live.add(n)
            todo.extend(self.canon(i) for i in self.producer[n].inputs)
        return live

    def shape_of(self, name: str) -> tuple[int, int, int]:
        layer = self.producer.get(name)
        if layer is not None:
            return layer.out_shape
        v = self.values[self.input_name]
        assert isinstance(v, Act)
        return v.shape
