"""Reading an ONNX file: size bounds checked from declared dims before anything is allocated,
the protobuf, its external data (from the model's own folder only) and the ONNX checker."""
from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterator

import numpy as np
import onnx
from onnx import external_data_helper

from msfsim import MsfsimError
from msfsim.names import is_safe, shown

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


def short(v: object, limit: int = 60) -> str:
    """A value read from the model (a list of ints, a dtype) for a one-line message."""
    text = str(v)
    text = text if text.isprintable() else repr(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_model_bytes(path: Path, label: str) -> bytes:
    """A model file's bytes, bounded before they are read (the one rule for every format)."""
    if not path.exists():
        raise MsfsimError(f"{label}: no such file")
    if not path.is_file():
        raise MsfsimError(f"{label}: not a file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise MsfsimError(f"{label}: {size:,} B, above msfsim's bound of {MAX_FILE_BYTES:,} B for a "
                          f"model file (no supported board has more than 4 MB of flash)")
    with open(path, "rb") as f:
        return f.read(MAX_FILE_BYTES + 1)  # a file grown since the check stays bounded


def file_label(path: os.PathLike | str) -> str:
    """The model's path for messages: as given when printable, else escaped; long paths keep
    their tail (the file name)."""
    text = str(path)
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if len(text) <= 160 else "..." + text[-157:]


def elements(dims, what: str) -> int:
    """Number of elements of a tensor with these declared dims, refused above the bound."""
    n = 1
    for d in dims:
        if d < 0:
            raise MsfsimError(f"{what} has a negative dimension ({short(list(dims))})")
        n *= int(d)
    if n > MAX_TENSOR_ELEMENTS:
        raise MsfsimError(f"{what} has {n:,} elements ({'x'.join(map(str, dims))}), above msfsim's "
                          f"bound of {MAX_TENSOR_ELEMENTS:,} (16 MiB): no supported board can hold it")
    return n


def type_name(elem_type: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return str(elem_type)


def dims_text(dims) -> str:
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
    label = file_label(path)
    data = read_model_bytes(path, label)
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
        raise MsfsimError(f"{label}: invalid ONNX model: {short(first, 200)}") from None
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


def node_label(node: onnx.NodeProto) -> str:
    """How error messages name a node: its name, op and first output (exporters leave nodes
    unnamed or call them n0, n1..., so the output tensor is what finds it)."""
    name = shown(node.name) if node.name else "<unnamed>"
    out = shown(node.output[0]) if len(node.output) and node.output[0] else "none"
    op = node.op_type if is_safe(node.op_type) else shown(node.op_type, 40)
    return f"node {name} ({op}, output {out})"


def tensor_label(t: onnx.TensorProto, node: onnx.NodeProto | None) -> str:
    return f"initializer {shown(t.name)}" if node is None else f"tensor {shown(t.name)} of {node_label(node)}"


def _load_external_data(proto: onnx.ModelProto, path: Path, label: str) -> None:
    """Size-check every stored tensor from its dims, then load the external ones from the model's
    own folder (never the current directory). A location that is absolute, holds '..', leaves
    the folder through a symlink, is missing, or whose offset/length lie outside the file or do
    not match the tensor's dims is refused, naming the tensor and the location."""
    root = path.parent.resolve()
    total = 0
    for t, node in _tensors(proto.graph):
        what = f"{label}: {tensor_label(t, node)}"
        n = elements(t.dims, what)
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
            raise MsfsimError(f"{what}: external data of element type {type_name(t.data_type)} "
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
            raise MsfsimError(f"{where}: holds {length:,} B but dims {short(list(t.dims))} of "
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
                              f"{short(exc, 100)})") from None


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
