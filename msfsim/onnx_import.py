"""ONNX -> msfsim IR.

One handler per ONNX op (onnx2c style). The walk builds a small float graph (`_FLayer`s on NHWC
tensors) with activations, BatchNorm, bias-adds and QDQ pairs folded into the layer that produces
the tensor; then every tensor gets int8 qparams — from the model's QuantizeLinear nodes (QDQ
models) or by calibration (float models) — and the graph is emitted through `IRBuilder`.

Float models are quantised by msfsim: symmetric per-channel int8 weights, asymmetric int8
activations whose ranges are the min/max seen on CALIBRATION_BATCH deterministic inputs drawn
uniformly from [-1, 1]. That keeps results reproducible but is not a substitute for calibration on
real data: export QDQ models for accuracy.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable, Iterator

import numpy as np
import onnx
from onnx import external_data_helper, numpy_helper

from . import MsfsimError, UnsupportedModel
from .ir import IRBuilder, Model, Op, QParams, activation_qparams, out_size, quantize_weights
from .names import is_safe, shown

CALIBRATION_BATCH = 4
CALIBRATION_SEED = 0

# Size bounds, checked from declared dims before anything is allocated. No supported board
# (msfsim/boards/*.toml) has more than 4 MB of flash and 520 KB of SRAM. An int8 activation tensor
# lives in SRAM, or (the network input) in flash; a fused block never holds a whole intermediate
# tensor, but one of more than 16 MiB elements is 4x the largest flash and 32x the largest SRAM
# and cannot be deployed however it is tiled. The weights all go to flash, so more than 16 MiB of
# them cannot be deployed either. The bound also keeps the host sane: calibration holds
# CALIBRATION_BATCH float64 copies of a tensor (32 B per element, 512 MiB at the bound).
MAX_TENSOR_ELEMENTS = 16 << 20
MAX_WEIGHT_ELEMENTS = 16 << 20          # all initializers together
# A model file is read whole: 16 B per weight element (float64/int64 storage at the bound,
# twice over for protobuf overhead and constants) = 256 MiB.
MAX_FILE_BYTES = 16 * MAX_WEIGHT_ELEMENTS
# Host memory the float calibration of one layer may take (its im2col buffer dominates:
# CALIBRATION_BATCH x Ho x Wo x Cin x kh x kw float64). A 1x3x1000x1000 input needs ~1.1 GiB.
MAX_CALIBRATION_BYTES = 4 << 30


@dataclass
class _Act:
    """A float activation tensor of the graph being imported, NHWC without batch."""
    name: str
    shape: tuple[int, int, int]
    flat: bool = False  # flattened (Flatten/Reshape) in ONNX's NCHW order


@dataclass
class _QConst:
    """A DequantizeLinear of a constant: keeps the integer values and scale exactly."""
    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int

    def value(self) -> np.ndarray:
        shape = [1] * self.q.ndim
        if self.scale.size > 1:
            shape[self.axis] = -1
        s = self.scale.reshape(shape) if self.scale.size > 1 else self.scale
        z = self.zero_point.reshape(shape) if self.zero_point.size > 1 else self.zero_point
        return (self.q.astype(np.float64) - z) * s


@dataclass
class _FLayer:
    op: Op
    name: str
    inputs: list[str]
    output: str
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    weight: np.ndarray | None = None        # float, IR layout
    weight_q: tuple[np.ndarray, np.ndarray] | None = None  # (int8, per-channel scale) from QDQ
    bias: np.ndarray | None = None
    activation: str = "none"
    clip: tuple[float, float] | None = None
    pool: str = ""                          # "max" | "avg" for pooling layers
    extra: dict = field(default_factory=dict)
    where: str = ""                         # the ONNX node, for messages (see _node)


SUPPORTED_OPS = sorted([
    "Conv", "BatchNormalization", "Relu", "Clip", "Add", "MaxPool", "AveragePool",
    "GlobalAveragePool", "ReduceMean", "Flatten", "Reshape", "Squeeze", "Gemm", "MatMul",
    "QuantizeLinear", "DequantizeLinear", "Identity", "Dropout", "Constant", "Shape", "Gather",
    "Unsqueeze", "Concat", "Cast",
])


def _fail(msg: str) -> UnsupportedModel:
    return UnsupportedModel(msg)


def _node(node: onnx.NodeProto) -> str:
    """How error messages name a node: its name, op and first output (exporters leave nodes
    unnamed or call them n0, n1..., so the output tensor is what finds it)."""
    name = shown(node.name) if node.name else "<unnamed>"
    out = shown(node.output[0]) if len(node.output) and node.output[0] else "none"
    op = node.op_type if is_safe(node.op_type) else shown(node.op_type, 40)
    return f"node {name} ({op}, output {out})"


def _short(v: object, limit: int = 60) -> str:
    """A value read from the model (a list of ints, a dtype) for a one-line message."""
    text = str(v)
    text = text if text.isprintable() else repr(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _file_label(path: os.PathLike | str) -> str:
    """The model's path for messages: as given when printable, else escaped; long paths keep
    their tail (the file name)."""
    text = str(path)
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if len(text) <= 160 else "..." + text[-157:]


def _elements(dims, what: str) -> int:
    """Number of elements of a tensor with these declared dims, refused above the bound."""
    n = 1
    for d in dims:
        if d < 0:
            raise MsfsimError(f"{what} has a negative dimension ({_short(list(dims))})")
        n *= int(d)
    if n > MAX_TENSOR_ELEMENTS:
        raise MsfsimError(f"{what} has {n:,} elements ({'x'.join(map(str, dims))}), above msfsim's "
                          f"bound of {MAX_TENSOR_ELEMENTS:,} (16 MiB): no supported board can hold it")
    return n


def _type_name(elem_type: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return str(elem_type)


def _dims_text(dims) -> str:
    """A declared ONNX shape as 1x3xHxW (dimension names quoted when unsafe)."""
    out = []
    for d in dims:
        kind = d.WhichOneof("value")
        if kind == "dim_value":
            out.append(str(d.dim_value))
        elif kind == "dim_param" and d.dim_param:
            out.append(d.dim_param if is_safe(d.dim_param) and len(d.dim_param) <= 20
                       else shown(d.dim_param, 20))
        else:
            out.append("?")
    return "x".join(out)


def _check_act_size(what: str, shape: tuple[int, ...]) -> None:
    """An activation tensor (H, W, C) must fit the bound; checked as shapes are inferred."""
    n = math.prod(shape)
    if n > MAX_TENSOR_ELEMENTS:
        h, w, c = shape
        raise _fail(f"{what} has shape 1x{c}x{h}x{w} = {n:,} B as int8, above msfsim's bound of "
                    f"{MAX_TENSOR_ELEMENTS:,} B (16 MiB): no supported board (at most 4 MB flash, "
                    f"520 KB SRAM) can hold it")


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """'1x3x144x144', '3x144x144' or '1,3,144,144' (NCHW) -> (H, W, C)."""
    parts = [p for p in text.replace(",", "x").lower().split("x") if p]
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise MsfsimError(f"--input-shape {text!r}: expected N x C x H x W, e.g. 1x3x144x144") from None
    if len(dims) == 4:
        if dims[0] != 1:
            raise MsfsimError(f"--input-shape {text!r}: batch must be 1")
        dims = dims[1:]
    if len(dims) != 3 or min(dims) <= 0:
        raise MsfsimError(f"--input-shape {text!r}: expected N x C x H x W, e.g. 1x3x144x144")
    c, h, w = dims
    return h, w, c


def load_onnx(src: str | os.PathLike | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """The model proto, its external data loaded (from beside the model file) and checked."""
    if isinstance(src, onnx.ModelProto):
        for t, _ in _tensors(src.graph):
            if t.data_location == onnx.TensorProto.EXTERNAL:
                raise MsfsimError(f"model {shown(src.graph.name)}: tensor {shown(t.name)} is stored "
                                  f"in an external file; import the model from its .onnx path")
        return src, src.graph.name or "model"
    path = Path(src)
    label = _file_label(path)
    if not path.exists():
        raise MsfsimError(f"{label}: no such file")
    if not path.is_file():
        raise MsfsimError(f"{label}: not a file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise MsfsimError(f"{label}: {size:,} B, above msfsim's bound of {MAX_FILE_BYTES:,} B for a "
                          f"model file (no supported board has more than 4 MB of flash)")
    data = path.read_bytes()
    if not data:
        raise MsfsimError(f"{label}: empty file, not an ONNX model")
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise MsfsimError(f"{label}: not an ONNX model or truncated ({type(exc).__name__})") from None
    del data
    if not proto.graph.node:
        raise MsfsimError(f"{label}: not an ONNX model or truncated (no graph nodes)")
    _load_external_data(proto, path, label)
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MsfsimError(f"{label}: invalid ONNX model: {_short(first, 200)}") from None
    return proto, path.stem


def _tensors(graph: onnx.GraphProto) -> Iterator[tuple[onnx.TensorProto, onnx.NodeProto | None]]:
    """Every tensor the graph stores (initializers, then node attributes, subgraphs included),
    with the node holding it (None for an initializer)."""
    for t in graph.initializer:
        yield t, None
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield a.t, node
            elif a.type == onnx.AttributeProto.TENSORS:
                yield from ((t, node) for t in a.tensors)
            elif a.type == onnx.AttributeProto.GRAPH:
                yield from _tensors(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _tensors(g)


def _tensor_label(t: onnx.TensorProto, node: onnx.NodeProto | None) -> str:
    return f"initializer {shown(t.name)}" if node is None else f"tensor {shown(t.name)} of {_node(node)}"


def _load_external_data(proto: onnx.ModelProto, path: Path, label: str) -> None:
    """Size-check every stored tensor from its dims, then load the external ones from the model's
    own folder (never the current directory). A location that is absolute, holds '..', leaves
    the folder through a symlink, is missing, or whose offset/length lie outside the file or do
    not match the tensor's dims is refused, naming the tensor and the location."""
    root = path.parent.resolve()
    total = 0
    for t, node in _tensors(proto.graph):
        what = f"{label}: {_tensor_label(t, node)}"
        n = _elements(t.dims, what)
        if node is None:
            total += n
            if total > MAX_WEIGHT_ELEMENTS:
                raise MsfsimError(f"{what}: the initializers hold more than {MAX_WEIGHT_ELEMENTS:,} "
                                  f"weights (16 MiB) in all; no supported board has more than 4 MB "
                                  f"of flash")
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        try:
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
        except Exception:
            itemsize = 0
        if itemsize == 0 or t.data_type == onnx.TensorProto.STRING:
            raise MsfsimError(f"{what}: external data of element type {_type_name(t.data_type)} "
                              f"is not supported")
        if t.data_type in _PACKED_TYPES:
            raise MsfsimError(f"{what}: external sub-byte data is not supported")
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        target = _external_file(root, loc, what)
        where = f"{what}: external data {shown(loc)}"
        try:
            offset = int(info.get("offset") or 0)
            length = int(info["length"]) if info.get("length") else None
        except ValueError:
            raise MsfsimError(f"{where}: offset {shown(info.get('offset', ''))} or length "
                              f"{shown(info.get('length', ''))} is not an integer") from None
        fsize = target.stat().st_size
        if length is None:
            length = fsize - offset
        if offset < 0 or length < 0 or offset + length > fsize:
            raise MsfsimError(f"{where}: offset {offset:,} and length {length:,} lie outside the "
                              f"file ({fsize:,} B)")
        if length != n * itemsize:
            raise MsfsimError(f"{where}: holds {length:,} B but dims {_short(list(t.dims))} of "
                              f"{np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).name} "
                              f"need {n * itemsize:,} B")
        # Hand onnx the resolved location (onnx refuses symbolic links, even inside the folder).
        for e in t.external_data:
            if e.key == "location":
                e.value = target.relative_to(root).as_posix()
        try:
            external_data_helper.load_external_data_for_tensor(t, str(root))
        except Exception as exc:
            raise MsfsimError(f"{where}: cannot be read ({type(exc).__name__}: "
                              f"{_short(exc, 100)})") from None


_PACKED_TYPES = {getattr(onnx.TensorProto, n) for n in ("INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2")
                 if hasattr(onnx.TensorProto, n)}


def _external_file(root: Path, loc: str, what: str) -> Path:
    """The file an external-data location names, which must lie inside `root` (resolved)."""
    if not loc:
        raise MsfsimError(f"{what}: stored in an external file but names no location")
    where = f"{what}: external data {shown(loc)}"
    if "\0" in loc or PurePosixPath(loc).is_absolute() or PureWindowsPath(loc).anchor:
        raise MsfsimError(f"{where}: the location must be relative to the model's folder")
    if ".." in re.split(r"[\\/]", loc):
        raise MsfsimError(f"{where}: the location must not contain '..'")
    try:
        target = (root / loc).resolve()
    except (OSError, RuntimeError, ValueError):
        raise MsfsimError(f"{where}: cannot be resolved") from None
    if not target.is_relative_to(root):
        raise MsfsimError(f"{where}: leaves the model's folder (symbolic link)")
    if not target.exists():
        raise MsfsimError(f"{where}: no such file beside the model")
    if not target.is_file():
        raise MsfsimError(f"{where}: not a regular file")
    return target


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pads_2d(node: onnx.NodeProto, a: dict, hw: tuple[int, int], k: tuple[int, int],
             s: tuple[int, int]) -> tuple[int, int, int, int]:
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for n, kk, ss in zip(hw, k, s):
            o = -(-n // ss)
            total = max((o - 1) * ss + kk - n, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return pads[0][0], pads[1][0], pads[0][1], pads[1][1]
    if auto == "VALID":
        return 0, 0, 0, 0
    p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
    if len(p) != 4:
        raise _fail(f"{_node(node)}: expected 2-D pads, got {_short(p)}")
    if min(p) < 0:
        raise _fail(f"{_node(node)}: negative pads {p} are not supported")
    return p[0], p[1], p[2], p[3]


def _kernel_stride(node: onnx.NodeProto, k, s) -> tuple[tuple[int, int], tuple[int, int]]:
    """Kernel and strides as 2-tuples of positive ints (checked before any arithmetic)."""
    k, s = tuple(int(v) for v in k), tuple(int(v) for v in s)
    if len(k) != 2 or min(k) < 1:
        raise _fail(f"{_node(node)}: kernel {_short(list(k))} is not a 2-D kernel of positive sizes")
    if len(s) != 2 or min(s) < 1:
        raise _fail(f"{_node(node)}: strides {_short(list(s))} are not 2 positive integers")
    return k, s  # type: ignore[return-value]


def _check_padded(node: onnx.NodeProto, shape: tuple[int, int, int], k, pad, pool: bool = False) -> None:
    """The padded input a window op reads must fit the size bound (calibration allocates it),
    and a pooling window must overlap the input (ONNX: pads smaller than the kernel)."""
    h, w, c = shape
    t, l, b, r = pad
    if pool and max(t, b) >= k[0] or pool and max(l, r) >= k[1]:
        raise _fail(f"{_node(node)}: pads {[t, l, b, r]} are not smaller than the kernel {list(k)}")
    _check_act_size(f"{_node(node)}: its padded input", (h + t + b, w + l + r, c))


class _Importer:
    def __init__(self, proto: onnx.ModelProto, name: str, input_shape: tuple[int, int, int] | None):
        self.proto = proto
        self.name = name
        self.forced_shape = input_shape
        self.values: dict[str, object] = {}     # name -> np.ndarray | _QConst | _Act
        self.layers: list[_FLayer] = []
        self.producer: dict[str, _FLayer] = {}  # activation name -> layer writing it
        self.qparams: dict[str, QParams] = {}   # activation name -> qparams from QDQ
        self.fallback_q: dict[str, QParams] = {}  # qparams inherited through a folded activation
        self.alias: dict[str, str] = {}         # activation name -> canonical name
        self.uses: dict[str, int] = {}
        self.nonfinite: dict[str, str] = {}     # constant name -> "initializer 'w' holds NaN"
        self.input_name = ""

    # ---------------------------------------------------------------- helpers
    def canon(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def const(self, node: onnx.NodeProto, k: int, what: str) -> np.ndarray:
        if k >= len(node.input) or not node.input[k]:
            raise _fail(f"{_node(node)}: missing {what}")
        v = self.values.get(node.input[k])
        if isinstance(v, _QConst):
            return v.value()
        if not isinstance(v, np.ndarray):
            raise _fail(f"{_node(node)}: {what} must be a constant")
        return v

    def act(self, node: onnx.NodeProto, k: int = 0) -> _Act:
        v = self.values.get(node.input[k])
        if not isinstance(v, _Act):
            raise _fail(f"{_node(node)}: input {shown(node.input[k])} must be an "
                        f"activation tensor, not a constant")
        return v

    def is_act(self, name: str) -> bool:
        return isinstance(self.values.get(name), _Act)

    def new_layer(self, node: onnx.NodeProto, layer: _FLayer) -> None:
        h, w, c = layer.out_shape
        for axis, v in ((1, c), (2, h), (3, w)):
            if v <= 0:
                raise _fail(f"{_node(node)}: dimension {axis} ({'NCHW'[axis]}) of its output has "
                            f"size {v} (shape 1x{c}x{h}x{w})")
        _check_act_size(f"{_node(node)}: its output", layer.out_shape)
        layer.where = _node(node)
        self.layers.append(layer)
        self.producer[layer.output] = layer
        self.values[node.output[0]] = _Act(layer.output, layer.out_shape)

    def foldable(self, node: onnx.NodeProto) -> _FLayer | None:
        """The layer producing node's first input if node may be folded into it."""
        v = self.values.get(node.input[0])
        if not isinstance(v, _Act):
            return None
        layer = self.producer.get(v.name)
        if layer is None or self.uses.get(node.input[0], 0) != 1 or layer.activation != "none":
            return None
        return layer

    def rename_output(self, layer: _FLayer, node: onnx.NodeProto, carry_q: bool = False) -> None:
        """node (an activation, BatchNorm or bias add) now ends `layer`: its output is the layer's.

        carry_q: an activation clamps in the int8 domain of the tensor it reads, so that tensor's
        qparams stand for the result unless a QuantizeLinear later says otherwise."""
        old = layer.output
        flat = self.values[node.input[0]].flat  # type: ignore[union-attr]
        layer.output = node.output[0]
        del self.producer[old]
        self.producer[layer.output] = layer
        self.values[node.output[0]] = _Act(layer.output, layer.out_shape, flat=flat)
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
            raise _fail(f"initializer {shown(g.sparse_initializer[0].values.name)}: sparse "
                        f"initializers are not supported")
        for init in g.initializer:
            _elements(init.dims, f"initializer {shown(init.name)}")  # ModelProto sources
            try:
                arr = numpy_helper.to_array(init)
            except Exception as exc:
                raise _fail(f"initializer {shown(init.name)}: cannot be decoded "
                            f"({type(exc).__name__}: {_short(exc, 100)})") from None
            self.values[init.name] = arr
            self.note_finite(init.name, arr, "initializer")
        inputs = [i for i in g.input if i.name not in self.values]
        if len(inputs) != 1:
            names = ", ".join(shown(i.name, 40) for i in inputs[:4]) + (", ..." if len(inputs) > 4 else "")
            raise _fail(f"model has {len(inputs)} graph inputs ({names}); msfsim handles one image input")
        if len(g.output) != 1:
            raise _fail(f"model has {len(g.output)} graph outputs; msfsim handles a single output")
        self.input_name = inputs[0].name
        self.values[self.input_name] = _Act(self.input_name, self._input_shape(inputs[0]))
        for node in g.node:
            for name in node.input:
                if name:
                    self.uses[name] = self.uses.get(name, 0) + 1
        self.uses[g.output[0].name] = self.uses.get(g.output[0].name, 0) + 1
        for node in g.node:
            handler = _HANDLERS.get(node.op_type)
            if handler is None or node.domain not in ("", "ai.onnx"):
                name = shown(node.name) if node.name else "<unnamed>"
                out = shown(node.output[0]) if len(node.output) and node.output[0] else "none"
                domain = node.domain not in ("", "ai.onnx")
                raise _fail(f"node {name}: unsupported op {shown(node.op_type, 40)}"
                            f"{' (domain ' + shown(node.domain, 40) + ')' if domain else ''}, "
                            f"output {out}; supported: {', '.join(SUPPORTED_OPS)}")
            for name in node.input:
                if name in self.nonfinite:
                    raise _fail(f"{_node(node)}: {self.nonfinite[name]}; weights, biases and "
                                f"quantisation parameters must be finite")
            try:
                handler(self, node)
            except MsfsimError:
                raise
            except FloatingPointError as exc:
                raise _fail(f"{_node(node)}: float arithmetic on its constants fails ({exc}); "
                            f"are they finite and in range?") from None
            except MemoryError:
                raise
            except Exception as exc:  # a malformed node the handler did not foresee
                raise _fail(f"{_node(node)}: cannot be imported ({type(exc).__name__}: "
                            f"{_short(exc, 100)})") from None
        out = self.values.get(g.output[0].name)
        if not isinstance(out, _Act):
            raise _fail(f"graph output {shown(g.output[0].name)} is not computed from the input")
        if not self.layers:
            raise _fail("model has no layers msfsim can run (no Conv/Gemm/pooling)")
        return self._emit(self.canon(out.name))

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
                raise _fail(f"{what} is {len(dims)}-D; msfsim needs a 4-D NCHW image input")
            h, w, c = self.forced_shape
            if len(dims) == 4:
                # A static size in C, H or W must agree; the batch may be overridden (msfsim runs
                # one image) and so may a dynamic dimension or a nonsensical size <= 0.
                static = [d.dim_value if d.WhichOneof("value") == "dim_value" else 0 for d in dims]
                if any(v > 0 and v != want for v, want in zip(static[1:], (c, h, w))):
                    raise _fail(f"--input-shape 1x{c}x{h}x{w} contradicts the static shape "
                                f"{_dims_text(dims)} of {what}")
            if tt.elem_type not in (*ok_types, onnx.TensorProto.UNDEFINED):
                raise _fail(f"{what} has element type {_type_name(tt.elem_type)}; expected float or int8")
            _check_act_size(what, self.forced_shape)
            return self.forced_shape
        if tt.elem_type not in ok_types:
            raise _fail(f"{what} has element type {_type_name(tt.elem_type)}; expected float or int8")
        if not tt.HasField("shape"):
            raise _fail(f"{what} has no shape; give one with --input-shape 1xCxHxW")
        if len(dims) != 4:
            raise _fail(f"{what} is {len(dims)}-D; msfsim needs a 4-D NCHW image input "
                        f"(N x C x H x W)")
        vals = []
        for i, d in enumerate(dims):
            if d.WhichOneof("value") == "dim_value":
                if d.dim_value <= 0:
                    raise _fail(f"dimension {i} ({'NCHW'[i]}) of {what} has size {d.dim_value} "
                                f"(shape {_dims_text(dims)}); give the shape with --input-shape 1xCxHxW")
                vals.append(d.dim_value)
            elif i == 0:
                vals.append(1)  # dynamic batch: msfsim runs one image
            else:
                raise _fail(f"{what} has a dynamic or missing dimension {_dims_text([d])} "
                            f"(axis {i}); give the shape with --input-shape 1xCxHxW")
        if vals[0] != 1:
            raise _fail(f"{what} has batch {vals[0]}; msfsim runs batch 1 "
                        f"(use --input-shape 1x{vals[1]}x{vals[2]}x{vals[3]})")
        shape = (vals[2], vals[3], vals[1])
        _check_act_size(what, shape)
        return shape

    # ---------------------------------------------------------------- quantisation + emit
    def _emit(self, out_name: str) -> Model:
        needed = {self.canon(i) for layer in self.layers for i in layer.inputs}
        needed |= {self.canon(self.input_name)}
        for layer in self.layers:
            needed.add(layer.output)
        missing = [n for n in needed if n not in self.qparams and n not in self.fallback_q]
        calib = self._calibrate(missing) if missing else {}
        q = {**calib, **self.fallback_q, **self.qparams}

        src_shape = self.values[self.input_name]
        assert isinstance(src_shape, _Act)
        b = IRBuilder(self.name, src_shape.shape, q[self.canon(self.input_name)], self.input_name)
        tid = {self.canon(self.input_name): b.input}
        live = self._live_layers(out_name)
        for layer in self.layers:
            if layer.output not in live:
                continue
            try:
                tid[layer.output] = self._emit_layer(b, layer, [tid[self.canon(i)] for i in layer.inputs],
                                                     q[layer.output])
            except (ValueError, ArithmeticError) as exc:  # FloatingPointError, OverflowError too
                raise _fail(f"{layer.where}: cannot be quantised ({type(exc).__name__}: "
                            f"{_short(exc, 120)})") from None
        return b.build(tid[out_name])

    @staticmethod
    def _emit_layer(b: IRBuilder, layer: _FLayer, ins: list[int], oq: QParams) -> int:
        kw = dict(name=layer.name, out_name=layer.output)
        if layer.op in (Op.CONV, Op.DWCONV):
            wq, ws = layer.weight_q or quantize_weights(layer.weight, 0 if layer.op == Op.CONV else 2)
            t = b.conv(ins[0], wq, ws, layer.bias, oq, stride=layer.stride, pad=layer.pad,
                       depthwise=layer.op == Op.DWCONV, activation=layer.activation,
                       clip=layer.clip, **kw)
        elif layer.op == Op.DENSE:
            wq, ws = layer.weight_q or quantize_weights(layer.weight, 0)
            t = b.dense(ins[0], wq, ws, layer.bias, oq, activation=layer.activation,
                        clip=layer.clip, **kw)
        elif layer.op == Op.ADD:
            t = b.add(ins[0], ins[1], oq, activation=layer.activation, clip=layer.clip, **kw)
        elif layer.op in (Op.MAXPOOL, Op.AVGPOOL):
            t = b.pool(ins[0], layer.pool, layer.kernel, layer.stride, layer.pad, out_q=oq,
                       activation=layer.activation, clip=layer.clip, **kw)
        else:
            t = b.gap(ins[0], out_q=oq, **kw)
        return t

    def _live_layers(self, out_name: str) -> set[str]:
        """Outputs of the layers the graph output depends on (dead branches are dropped)."""
        live, todo = set(), [out_name]
        while todo:
            n = todo.pop()
            if n in live or n not in self.producer:
                continue
            live.add(n)
            todo.extend(self.canon(i) for i in self.producer[n].inputs)
        return live

    def _shape_of(self, name: str) -> tuple[int, int, int]:
        layer = self.producer.get(name)
        if layer is not None:
            return layer.out_shape
        v = self.values[self.input_name]
        assert isinstance(v, _Act)
        return v.shape

    def _calibration_bytes(self, layer: _FLayer) -> int:
        """A bound on the host memory `_float_layer` takes for `layer` over the calibration
        batch: its padded input, the im2col copy einsum makes, the output twice (bias add)."""
        h, w, c = self._shape_of(self.canon(layer.inputs[0]))
        ho, wo, co = layer.out_shape
        t, l, b, r = layer.pad
        kh, kw = layer.kernel
        n = 2 * ho * wo * co + sum(math.prod(self._shape_of(self.canon(i))) for i in layer.inputs)
        if layer.op in (Op.CONV, Op.DWCONV, Op.MAXPOOL, Op.AVGPOOL):
            n += (h + t + b) * (w + l + r) * c + ho * wo * c * kh * kw
        return CALIBRATION_BATCH * 8 * n

    def _calibrate(self, names: list[str]) -> dict[str, QParams]:
        for layer in self.layers:  # before allocating anything
            need = self._calibration_bytes(layer)
            if need > MAX_CALIBRATION_BYTES:
                raise _fail(f"{layer.where}: calibrating it would take about {need / 2**30:.1f} GiB "
                            f"of host memory (msfsim's bound: {MAX_CALIBRATION_BYTES / 2**30:.0f} GiB); "
                            f"give a QDQ model with its own quantisation parameters")
        last_use: dict[str, int] = {}
        for k, layer in enumerate(self.layers):
            for i in layer.inputs:
                last_use[self.canon(i)] = k
        rng = np.random.default_rng(CALIBRATION_SEED)
        x0 = self.values[self.input_name]
        assert isinstance(x0, _Act)
        x = rng.uniform(-1.0, 1.0, size=(CALIBRATION_BATCH, *x0.shape))
        ranges = {self.canon(self.input_name): (float(x.min()), float(x.max()))}
        env = {self.canon(self.input_name): x}
        del x
        for k, layer in enumerate(self.layers):
            try:
                y = _float_layer(layer, [env[self.canon(i)] for i in layer.inputs])
                lo, hi = float(y.min()), float(y.max())
            except MemoryError:
                raise _fail(f"{layer.where}: out of host memory calibrating it; give a QDQ model "
                            f"with its own quantisation parameters") from None
            except ArithmeticError:  # FloatingPointError: overflow in the float evaluation
                lo, hi = math.nan, math.nan
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise _fail(f"{layer.where}: its output overflows in float on calibration inputs in "
                            f"[-1, 1]; are its weights and biases in range?")
            ranges[layer.output] = (lo, hi)
            env[layer.output] = y
            for i in {self.canon(i) for i in layer.inputs}:  # free what no later layer reads
                if last_use.get(i) == k:
                    del env[i]
            del y
        out = {}
        for n in names:
            lo, hi = ranges[n]
            layer = self.producer.get(n)
            if layer is not None and layer.op == Op.MAXPOOL:
                continue  # a max-pool keeps its input's qparams
            out[n] = activation_qparams(lo, hi)
        for layer in self.layers:  # max-pool: same qparams in and out (in topological order)
            if layer.op == Op.MAXPOOL and layer.output not in self.qparams:
                out[layer.output] = self.qparams.get(self.canon(layer.inputs[0])) or out[self.canon(layer.inputs[0])]
        return out


# -------------------------------------------------------------------- float evaluation

def _windows(x: np.ndarray, k, s, pad, value: float = 0.0) -> np.ndarray:
    """x (B,H,W,C) -> (B,Ho,Wo,C,kh,kw) sliding windows with padding."""
    t, l, b, r = pad
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)
    v = np.lib.stride_tricks.sliding_window_view(xp, k, axis=(1, 2))
    return v[:, ::s[0], ::s[1]]


def _float_layer(layer: _FLayer, xs: list[np.ndarray]) -> np.ndarray:
    x = xs[0]
    if layer.op == Op.CONV:
        w = layer.weight if layer.weight_q is None else layer.weight_q[0] * layer.weight_q[1][:, None, None, None]
        win = _windows(x, layer.kernel, layer.stride, layer.pad)  # B,Ho,Wo,Cin,kh,kw
        y = np.einsum("bhwcij,oijc->bhwo", win, w, optimize=True)
    elif layer.op == Op.DWCONV:
        w = layer.weight if layer.weight_q is None else layer.weight_q[0] * layer.weight_q[1][None, None, :]
        win = _windows(x, layer.kernel, layer.stride, layer.pad)
        y = np.einsum("bhwcij,ijc->bhwc", win, w, optimize=True)
    elif layer.op == Op.DENSE:
        w = layer.weight if layer.weight_q is None else layer.weight_q[0] * layer.weight_q[1][:, None]
        y = (x.reshape(x.shape[0], -1) @ w.T).reshape(x.shape[0], 1, 1, -1)
    elif layer.op == Op.ADD:
        y = xs[0] + xs[1]
    elif layer.op == Op.MAXPOOL:
        y = _windows(x, layer.kernel, layer.stride, layer.pad, -np.inf).max(axis=(4, 5))
    elif layer.op == Op.AVGPOOL:
        y = _windows(x, layer.kernel, layer.stride, layer.pad).mean(axis=(4, 5))
    else:  # GAP
        y = x.mean(axis=(1, 2), keepdims=True)
    if layer.bias is not None:
        y = y + layer.bias
    if layer.activation in ("relu", "relu6", "clip"):
        lo, hi = layer.clip if layer.clip else (0.0, 6.0 if layer.activation == "relu6" else math.inf)
        y = np.clip(y, lo, hi)
    return y


# -------------------------------------------------------------------- op handlers

def _conv(im: _Importer, node: onnx.NodeProto) -> None:
    x = im.act(node)
    if x.flat:
        raise _fail(f"{_node(node)}: input is flattened")
    a = _attrs(node)
    wv = im.values.get(node.input[1])
    w = wv.value() if isinstance(wv, _QConst) else im.const(node, 1, "weights")
    if w.ndim != 4:
        raise _fail(f"{_node(node)}: only 2-D convolutions are supported "
                    f"(weights are {w.ndim - 2}-D)")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise _fail(f"{_node(node)}: dilation {_short(list(a['dilations']))} is not supported")
    h, wd, c = x.shape
    cout, cin_g, kh, kw = w.shape
    group = a.get("group", 1)
    k, s = _kernel_stride(node, a.get("kernel_shape", [kh, kw]), a.get("strides", [1, 1]))
    if k != (kh, kw):
        raise _fail(f"{_node(node)}: kernel_shape {list(k)} differs from the weights' {kh}x{kw}")
    pad = _pads_2d(node, a, (h, wd), k, s)
    _check_padded(node, x.shape, k, pad)
    if group == 1:
        if cin_g != c:
            raise _fail(f"{_node(node)}: weights expect {cin_g} input channels, input has {c}")
        op, wir, axis_perm = Op.CONV, w.transpose(0, 2, 3, 1), (0, 2, 3, 1)
    elif group == c and cout == c and cin_g == 1:
        op, wir, axis_perm = Op.DWCONV, w[:, 0].transpose(1, 2, 0), None
    else:
        raise _fail(f"{_node(node)}: group={group} with {c} input and {cout} output "
                    f"channels is not supported (standard or depthwise with multiplier 1 only)")
    wq = None
    if isinstance(wv, _QConst):
        if np.any(wv.zero_point != 0) or wv.q.dtype != np.int8:
            wq = None  # asymmetric or uint8 weights: requantised symmetrically below
        else:
            scale = np.broadcast_to(wv.scale.astype(np.float64).ravel(), (cout,)).copy()
            qi = wv.q.transpose(*axis_perm) if axis_perm else wv.q[:, 0].transpose(1, 2, 0)
            wq = (np.ascontiguousarray(qi), scale)
    bias = im.const(node, 2, "bias").astype(np.float64) if len(node.input) > 2 and node.input[2] else None
    if bias is not None and bias.size != cout:
        raise _fail(f"{_node(node)}: bias {shown(node.input[2])} has {bias.size} values for "
                    f"{cout} output channels")
    ho = out_size(h, k[0], s[0], pad[0], pad[2])
    wo = out_size(wd, k[1], s[1], pad[1], pad[3])
    im.new_layer(node, _FLayer(op, node.name or node.output[0], [im.canon(x.name)], node.output[0],
                               (ho, wo, cout), kernel=k, stride=s, pad=pad,
                               weight=wir.astype(np.float64), weight_q=wq, bias=bias))


def _batchnorm(im: _Importer, node: onnx.NodeProto) -> None:
    layer = im.foldable(node)
    if layer is None or layer.op not in (Op.CONV, Op.DWCONV):
        raise _fail(f"{_node(node)}: can only be folded into the Conv "
                    f"right before it, whose output it alone reads")
    cout = layer.out_shape[2]
    params = []
    for i, n in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")):
        v = im.const(node, i, n).astype(np.float64).ravel()
        if v.size not in (1, cout):
            raise _fail(f"{_node(node)}: {n} {shown(node.input[i])} has {v.size} values for "
                        f"{cout} channels")
        params.append(np.broadcast_to(v, (cout,)))
    scale, b, mean, var = params
    eps = float(_attrs(node).get("epsilon", 1e-5))
    if not math.isfinite(eps) or np.any(var + eps <= 0):
        raise _fail(f"{_node(node)}: variance {shown(node.input[4])} + epsilon {eps:g} must be "
                    f"positive")
    f = scale / np.sqrt(var + eps)
    layer.weight = layer.weight * (f[:, None, None, None] if layer.op == Op.CONV else f)
    if layer.weight_q is not None:  # int8 weights stay exact: fold |f| into the scale, sign into q
        q, s = layer.weight_q
        sign = np.where(f < 0, -1, np.where(f > 0, 1, 0))  # f = 0: the channel is zero
        q = q * (sign[:, None, None, None] if layer.op == Op.CONV else sign)
        layer.weight_q = (q.astype(np.int8), np.where(f == 0, 1.0, s * np.abs(f)))
    layer.bias = (layer.bias if layer.bias is not None else 0.0) * f + b - mean * f
    im.rename_output(layer, node)


def _activation(im: _Importer, node: onnx.NodeProto) -> None:
    if node.op_type == "Relu":
        kind, clip = "relu", None
    else:
        a = _attrs(node)
        lo = a.get("min", -math.inf)
        hi = a.get("max", math.inf)
        if len(node.input) > 1 and node.input[1]:
            lo = float(im.const(node, 1, "min"))
        if len(node.input) > 2 and node.input[2]:
            hi = float(im.const(node, 2, "max"))
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            raise _fail(f"{_node(node)}: bounds [{lo}, {hi}] are not a range")
        kind = "relu6" if (lo, hi) == (0.0, 6.0) else "relu" if (lo, hi) == (0.0, math.inf) else "clip"
        clip = (float(lo), float(hi))
    layer = im.foldable(node)
    if layer is None or layer.op == Op.MAXPOOL and kind != "relu":
        raise _fail(f"{_node(node)}: an activation must directly follow the "
                    f"layer it belongs to (Conv, Gemm, Add, pooling) and be its only reader")
    layer.activation, layer.clip = kind, clip
    im.rename_output(layer, node, carry_q=True)


def _add(im: _Importer, node: onnx.NodeProto) -> None:
    a, b = node.input[0], node.input[1]
    if im.is_act(a) and im.is_act(b):
        ta, tb = im.values[a], im.values[b]
        assert isinstance(ta, _Act) and isinstance(tb, _Act)
        if ta.shape != tb.shape or ta.flat != tb.flat:
            raise _fail(f"{_node(node)}: shapes {ta.shape} and {tb.shape} differ "
                        f"(broadcasting adds are not supported)")
        if ta.flat:
            raise _fail(f"{_node(node)}: adds of flattened tensors are not supported")
        im.new_layer(node, _FLayer(Op.ADD, node.name or node.output[0], [im.canon(a), im.canon(b)],
                                   node.output[0], ta.shape))
        return
    if im.is_act(b) and not im.is_act(a):
        node = onnx.helper.make_node("Add", [b, a], list(node.output), name=node.name)
    layer = im.foldable(node) if im.is_act(node.input[0]) else None
    if layer is None or layer.op not in (Op.CONV, Op.DWCONV, Op.DENSE) or layer.activation != "none":
        raise _fail(f"{_node(node)}: adding a constant is supported only as the bias of "
                    f"the Conv/Gemm/MatMul right before it")
    c = np.asarray(im.const(node, 1, "addend"), dtype=np.float64).ravel()
    cout = layer.out_shape[2]
    if c.size not in (1, cout):
        raise _fail(f"{_node(node)}: constant of {c.size} values for {cout} channels")
    layer.bias = (layer.bias if layer.bias is not None else 0.0) + np.broadcast_to(c, (cout,))
    im.rename_output(layer, node)


def _pool(im: _Importer, node: onnx.NodeProto) -> None:
    x = im.act(node)
    a = _attrs(node)
    h, w, c = x.shape
    if len(a.get("kernel_shape", [])) != 2:
        raise _fail(f"{_node(node)}: only 2-D pooling is supported")
    if a.get("ceil_mode", 0):
        raise _fail(f"{_node(node)}: ceil_mode=1 is not supported")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise _fail(f"{_node(node)}: dilations are not supported")
    k, s = _kernel_stride(node, a["kernel_shape"], a.get("strides", [1, 1]))
    pad = _pads_2d(node, a, (h, w), k, s)
    avg = node.op_type == "AveragePool"
    _check_padded(node, x.shape, k, pad, pool=not avg)  # a max window of padding only is -inf
    if avg and any(pad) and not a.get("count_include_pad", 0):
        raise _fail(f"{_node(node)}: padding with count_include_pad=0 is not "
                    f"supported (the divisor would vary at the borders)")
    ho, wo = out_size(h, k[0], s[0], pad[0], pad[2]), out_size(w, k[1], s[1], pad[1], pad[3])
    if avg and (ho, wo) == (1, 1) and k == (h, w) and not any(pad):
        _gap(im, node)
        return
    im.new_layer(node, _FLayer(Op.AVGPOOL if avg else Op.MAXPOOL, node.name or node.output[0],
                               [im.canon(x.name)], node.output[0], (ho, wo, c), kernel=k, stride=s,
                               pad=pad, pool="avg" if avg else "max"))


def _gap(im: _Importer, node: onnx.NodeProto) -> None:
    x = im.act(node)
    if node.op_type == "ReduceMean":
        a = _attrs(node)
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = im.const(node, 1, "axes").tolist()
        if sorted(int(v) % 4 for v in (axes or [])) != [2, 3]:
            raise _fail(f"{_node(node)}: only the mean over H and W (axes 2, 3) "
                        f"is supported, got axes {_short(axes)}")
        keep = a.get("keepdims", 1)
    else:
        keep = 1
    h, w, c = x.shape
    im.new_layer(node, _FLayer(Op.GAP, node.name or node.output[0], [im.canon(x.name)],
                               node.output[0], (1, 1, c), kernel=(h, w)))
    if not keep:
        im.values[node.output[0]] = _Act(node.output[0], (1, 1, c), flat=True)


def _flatten(im: _Importer, node: onnx.NodeProto) -> None:
    x = im.act(node)
    if node.op_type == "Flatten" and _attrs(node).get("axis", 1) != 1:
        raise _fail(f"{_node(node)}: only axis=1 is supported")
    if node.op_type == "Reshape":
        target = [int(v) for v in im.const(node, 1, "shape")]
        total = x.shape[0] * x.shape[1] * x.shape[2]
        ok = (len(target) == 2 and target[0] in (1, -1, 0) and target[1] in (-1, total)) or \
             (len(target) == 4 and target[0] in (1, 0) and target[1:] in ([x.shape[2], x.shape[0], x.shape[1]],))
        if len(target) == 4 and ok:
            im.values[node.output[0]] = x  # no-op reshape
            return
        if not ok:
            raise _fail(f"{_node(node)}: only flattening to [1, {total}] is supported, "
                        f"got {_short(target)}")
    if node.op_type == "Squeeze":
        axes = _attrs(node).get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = im.const(node, 1, "axes").tolist()
        if x.shape[:2] != (1, 1) or sorted(int(a) % 4 for a in (axes or [2, 3])) != [2, 3]:
            raise _fail(f"{_node(node)}: only squeezing a 1x1 spatial map is supported")
    im.values[node.output[0]] = _Act(x.name, x.shape, flat=True)


def _gemm(im: _Importer, node: onnx.NodeProto) -> None:
    x = im.act(node)
    a = _attrs(node) if node.op_type == "Gemm" else {}
    if a.get("transA", 0):
        raise _fail(f"{_node(node)}: transA=1 is not supported")
    if not x.flat and x.shape[:2] != (1, 1):
        raise _fail(f"{_node(node)}: input must be flattened (Flatten/Reshape) "
                    f"before a dense layer, got an {x.shape[0]}x{x.shape[1]}x{x.shape[2]} map")
    wv = im.values.get(node.input[1])
    w = im.const(node, 1, "weights").astype(np.float64)
    if w.ndim != 2:
        raise _fail(f"{_node(node)}: weights must be 2-D, got {_short(list(w.shape))}")
    trans = bool(a.get("transB", 0))
    wmat = w if trans else w.T  # (Cout, K), K in ONNX's NCHW flatten order
    h, wd, c = x.shape
    k = h * wd * c
    if wmat.shape[1] != k:
        raise _fail(f"{_node(node)}: weights expect {wmat.shape[1]} inputs, "
                    f"the input has {k}")
    cout = wmat.shape[0]
    # ONNX flattens NCHW: column index c*H*W + y*W + x; msfsim's tensors are NHWC.
    perm = np.arange(k).reshape(c, h, wd).transpose(1, 2, 0).ravel()
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if not (math.isfinite(alpha) and math.isfinite(beta)):
        raise _fail(f"{_node(node)}: alpha {alpha} and beta {beta} must be finite")
    wq = None
    if isinstance(wv, _QConst) and np.all(wv.zero_point == 0) and wv.q.dtype == np.int8 and alpha == 1.0:
        qm = wv.q if trans else wv.q.T
        sc = np.broadcast_to(wv.scale.astype(np.float64).ravel(), (cout,)).copy()
        wq = (np.ascontiguousarray(qm[:, perm]), sc)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = np.broadcast_to(im.const(node, 2, "bias").astype(np.float64).ravel() * beta, (cout,)).copy()
    im.new_layer(node, _FLayer(Op.DENSE, node.name or node.output[0], [im.canon(x.name)],
                               node.output[0], (1, 1, cout), weight=alpha * wmat[:, perm],
                               weight_q=wq, bias=bias))
    im.values[node.output[0]] = _Act(node.output[0], (1, 1, cout), flat=True)


def _scale_zero_point(im: _Importer, node: onnx.NodeProto, default_zp: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A QuantizeLinear/DequantizeLinear's scale (positive) and zero point (integer constant)."""
    scale = im.const(node, 1, "scale").astype(np.float64)
    if scale.size == 0 or np.any(scale <= 0):
        bad = float(scale.min()) if scale.size else "empty"
        raise _fail(f"{_node(node)}: scale {shown(node.input[1])} must be positive, got {bad}")
    if len(node.input) < 3 or not node.input[2]:
        return scale, default_zp
    zp = im.values.get(node.input[2])
    if not isinstance(zp, np.ndarray) or zp.dtype.kind not in "iu":
        kind = zp.dtype.name if isinstance(zp, np.ndarray) else "not a constant"
        raise _fail(f"{_node(node)}: zero point {shown(node.input[2])} must be an integer "
                    f"constant ({kind})")
    if zp.size not in (1, scale.size):
        raise _fail(f"{_node(node)}: zero point {shown(node.input[2])} has {zp.size} values for "
                    f"{scale.size} scales")
    return scale, zp


def _quantize(im: _Importer, node: onnx.NodeProto) -> None:
    x = im.values.get(node.input[0])
    scale, zp = _scale_zero_point(im, node, np.array(0, np.uint8))
    if not isinstance(x, _Act):  # quantising a constant: keep it as integer values
        zpa = np.asarray(zp)
        q = np.clip(np.round(np.asarray(x, np.float64) / scale) + zpa, -128, 127)
        im.values[node.output[0]] = _QConst(q.astype(np.int8), scale, zpa.astype(np.int64),
                                            _attrs(node).get("axis", 1))
        return
    zpa = np.asarray(zp)
    if scale.size != 1:
        raise _fail(f"{_node(node)}: per-channel activation quantisation is "
                    f"not supported")
    z = int(zpa.ravel()[0])
    if zpa.dtype == np.uint8:
        z -= 128  # uint8 activations map onto int8 by shifting the zero point
    elif zpa.dtype != np.int8:
        raise _fail(f"{_node(node)}: {zpa.dtype} activations are not supported "
                    f"(int8 or uint8)")
    name = im.canon(x.name)
    im.qparams.setdefault(name, QParams(float(scale.ravel()[0]), z))
    im.values[node.output[0]] = ("q", x)


def _dequantize(im: _Importer, node: onnx.NodeProto) -> None:
    v = im.values.get(node.input[0])
    if isinstance(v, tuple) and v and v[0] == "q":  # Q -> DQ pair: the float tensor itself
        x = v[1]
        im.values[node.output[0]] = x
        im.alias[node.output[0]] = x.name
        return
    if isinstance(v, _QConst):
        im.values[node.output[0]] = v
        return
    if isinstance(v, np.ndarray):
        scale, zp = _scale_zero_point(im, node, np.array(0))
        im.values[node.output[0]] = _QConst(v, scale.ravel(), np.asarray(zp).astype(np.int64).ravel(),
                                            _attrs(node).get("axis", 1))
        return
    raise _fail(f"{_node(node)}: input {shown(node.input[0])} must be a "
                f"QuantizeLinear output or a constant (integer graph inputs are not supported)")


def _identity(im: _Importer, node: onnx.NodeProto) -> None:
    v = im.values.get(node.input[0])
    im.values[node.output[0]] = v
    if isinstance(v, _Act):
        im.alias[node.output[0]] = v.name


def _constant(im: _Importer, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    if "value" in a:
        _elements(a["value"].dims, f"{_node(node)}: its value")
        v = numpy_helper.to_array(a["value"])
    elif "value_float" in a or "value_int" in a:
        v = np.array(a.get("value_float", a.get("value_int")))
    elif "value_floats" in a or "value_ints" in a:
        v = np.array(a.get("value_floats", a.get("value_ints")))
    else:
        raise _fail(f"{_node(node)}: unsupported constant attribute "
                    f"{', '.join(shown(k, 30) for k in list(a)[:3])}")
    im.values[node.output[0]] = v
    im.note_finite(node.output[0], v, "constant")


def _const_fold(fn: Callable[[_Importer, onnx.NodeProto, dict], np.ndarray]):
    """Shape arithmetic on constants (e.g. PyTorch's `x.view(x.size(0), -1)`), folded at import."""
    def handler(im: _Importer, node: onnx.NodeProto) -> None:
        if node.op_type == "Squeeze" and im.is_act(node.input[0]):
            return _flatten(im, node)
        acts = [n for n in node.input if n and im.is_act(n)]
        if acts and node.op_type != "Shape":
            raise _fail(f"{_node(node)}: unsupported op {shown(node.op_type, 40)} on activation tensor "
                        f"{shown(acts[0])}; supported: {', '.join(SUPPORTED_OPS)}")
        im.values[node.output[0]] = v = fn(im, node, _attrs(node))
        if isinstance(v, np.ndarray) and v.size > MAX_TENSOR_ELEMENTS:
            raise _fail(f"{_node(node)}: folds to {v.size:,} elements, above msfsim's bound of "
                        f"{MAX_TENSOR_ELEMENTS:,}")
    return handler


def _shape(im, node, a):
    x = im.values[node.input[0]]
    if isinstance(x, _Act):
        if x.flat:
            return np.array([1, x.shape[0] * x.shape[1] * x.shape[2]], np.int64)
        return np.array([1, x.shape[2], x.shape[0], x.shape[1]], np.int64)
    return np.array(np.asarray(x).shape, np.int64)


def _axes(im, node, a, k=1):
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    return [int(v) for v in im.const(node, k, "axes").ravel()]


_CONST_OPS = {
    "Shape": _shape,
    "Gather": lambda im, n, a: np.take(im.const(n, 0, "data"), im.const(n, 1, "indices"), axis=a.get("axis", 0)),
    "Unsqueeze": lambda im, n, a: np.expand_dims(im.const(n, 0, "data"), tuple(_axes(im, n, a))),
    "Squeeze": lambda im, n, a: np.squeeze(im.const(n, 0, "data"), tuple(_axes(im, n, a))),
    "Concat": lambda im, n, a: np.concatenate([np.atleast_1d(im.const(n, i, "input"))
                                               for i in range(len(n.input))], axis=a.get("axis", 0)),
    "Cast": lambda im, n, a: np.asarray(im.const(n, 0, "input")).astype(
        onnx.helper.tensor_dtype_to_np_dtype(a["to"])),
}

_HANDLERS: dict[str, Callable[[_Importer, onnx.NodeProto], None]] = {
    "Conv": _conv, "BatchNormalization": _batchnorm, "Relu": _activation, "Clip": _activation,
    "Add": _add, "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _gap,
    "ReduceMean": _gap, "Flatten": _flatten, "Reshape": _flatten, "Gemm": _gemm, "MatMul": _gemm,
    "QuantizeLinear": _quantize, "DequantizeLinear": _dequantize, "Identity": _identity,
    "Dropout": _identity, "Constant": _constant,
    **{k: _const_fold(v) for k, v in _CONST_OPS.items()},
}


def import_model(src: str | os.PathLike | onnx.ModelProto,
                 input_shape: tuple[int, int, int] | str | None = None,
                 name: str | None = None) -> Model:
    """Import an ONNX model (float or QDQ int8) into msfsim's IR.

    Raises `MsfsimError` with a one-line message naming the file, node, op or shape at fault.
    """
    if isinstance(input_shape, str):
        input_shape = parse_input_shape(input_shape)
    proto, stem = load_onnx(src)
    label = _file_label(src) if not isinstance(src, onnx.ModelProto) else (name or stem)
    try:
        return _Importer(proto, name or stem, input_shape).run()
    except MsfsimError as exc:
        if isinstance(src, onnx.ModelProto):
            raise
        raise type(exc)(f"{label}: {exc}") from None
    except (ValueError, ArithmeticError) as exc:  # shape mismatches found while building the IR
        raise UnsupportedModel(f"{label}: {_short(exc, 200)}") from None
    except MemoryError:
        raise UnsupportedModel(f"{label}: out of host memory importing the model") from None


def calibrate(src: str | os.PathLike | onnx.ModelProto,
              input_shape: tuple[int, int, int] | None = None) -> dict[str, QParams]:
    """Activation qparams msfsim would give a float model, by ONNX tensor name.

    Keys are the names of the tensors after folding (the output of the last node folded into each
    layer, e.g. the Relu's output), plus the graph input. Used by the zoo's QDQ export.
    """
    proto, stem = load_onnx(src)
    im = _Importer(proto, stem, input_shape)
    model = im.run()
    return {t.name: t.q for t in model.tensors}
