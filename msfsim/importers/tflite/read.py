"""Reading a .tflite file: one bounded read, the flatbuffer checked as it is decoded into plain
records (tensors with their constant data, operators with their options), so the graph walk
never touches the raw flatbuffer and every malformed field is a one-line `MsfsimError`.

Nothing read here reaches a path, a shell or C: names stay raw in these records (error messages
quote them with `shown`) and the IR sanitises what it keeps.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from types import SimpleNamespace
from pathlib import Path
from typing import Any

import numpy as np
import tflite

from msfsim import MsfsimError
from msfsim.importers.onnx.load import (MAX_WEIGHT_ELEMENTS, elements, file_label,
                                        read_model_bytes, short)
from msfsim.names import shown

IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
MAX_TENSORS = 1 << 16      # far above any model a microcontroller runs; bounds the decode loop
MAX_OPERATORS = 1 << 16
MAX_RANK = 8

_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
# numpy dtypes of the constant tensors msfsim reads
_DTYPES = {tflite.TensorType.INT8: np.int8, tflite.TensorType.INT32: np.int32,
           tflite.TensorType.INT64: np.int64, tflite.TensorType.FLOAT32: np.float32,
           tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT16: np.int16}
# builtin options table class by op name (the walk reads these fields)
_OPTIONS = {"CONV_2D": tflite.Conv2DOptions, "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
            "FULLY_CONNECTED": tflite.FullyConnectedOptions, "ADD": tflite.AddOptions,
            "AVERAGE_POOL_2D": tflite.Pool2DOptions, "MAX_POOL_2D": tflite.Pool2DOptions,
            "MEAN": tflite.ReducerOptions, "STRIDED_SLICE": tflite.StridedSliceOptions,
            "PACK": tflite.PackOptions, "RESHAPE": tflite.ReshapeOptions,
            "MUL": tflite.MulOptions, "CONCATENATION": tflite.ConcatenationOptions,
            "SOFTMAX": tflite.SoftmaxOptions, "LEAKY_RELU": tflite.LeakyReluOptions,
            "SUB": tflite.SubOptions, "REDUCE_MAX": tflite.ReducerOptions}


def type_name(t: int) -> str:
    return _TYPE_NAMES.get(t, f"type {t}")


@dataclass(frozen=True)
class TflTensor:
    index: int
    name: str                 # raw, as in the file
    shape: tuple[int, ...]
    dtype: int                # tflite.TensorType
    scale: np.ndarray         # float32, empty when not quantised
    zero_point: np.ndarray    # int64
    qdim: int                 # quantized_dimension
    data: np.ndarray | None   # constant data in `shape`, None for activations

    @property
    def quantized(self) -> bool:
        return self.scale.size > 0


@dataclass(frozen=True)
class TflOp:
    index: int
    name: str                 # BuiltinOperator name (CUSTOM ops: "CUSTOM 'code'")
    inputs: tuple[int, ...]   # -1: an optional input left out
    outputs: tuple[int, ...]
    options: Any              # the op's options (SimpleNamespace of ints) or None


@dataclass(frozen=True)
class TflGraph:
    label: str
    stem: str
    tensors: tuple[TflTensor, ...]
    ops: tuple[TflOp, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def read_tflite(path: str | os.PathLike) -> TflGraph:
    """Read and decode a .tflite file (subgraph 0) or raise a one-line MsfsimError."""
    p = Path(path)
    label = file_label(p)
    data = read_model_bytes(p, label)
    if len(data) < 8:
        raise MsfsimError(f"{label}: {len(data)} B, too short for a TensorFlow Lite model")
    if data[4:8] != IDENTIFIER:
        raise MsfsimError(f"{label}: not a TensorFlow Lite flatbuffer (file identifier "
                          f"{short(repr(bytes(data[4:8])))}, expected 'TFL3')")
    try:
        return _decode(data, label, p.stem)
    except MsfsimError:
        raise
    except (IndexError, struct.error, ValueError, TypeError, OverflowError, AttributeError,
            UnicodeError, MemoryError) as exc:
        raise MsfsimError(f"{label}: malformed or truncated TensorFlow Lite flatbuffer "
                          f"({type(exc).__name__})") from None


def _decode(data: bytes, label: str, stem: str) -> TflGraph:
    (root,) = struct.unpack_from("<I", data, 0)
    if not 8 <= root < len(data):
        raise MsfsimError(f"{label}: truncated TensorFlow Lite flatbuffer (root offset {root:,} "
                          f"outside the {len(data):,} B file)")
    m = tflite.Model.GetRootAs(data, 0)
    if m.Version() != SCHEMA_VERSION:
        raise MsfsimError(f"{label}: TensorFlow Lite schema version {m.Version()}, msfsim reads "
                          f"version {SCHEMA_VERSION}")
    n_sub = m.SubgraphsLength()
    if n_sub != 1:
        raise MsfsimError(f"{label}: {n_sub} subgraphs; msfsim reads models of one subgraph "
                          f"(no control flow)")
    g = m.Subgraphs(0)
    n_t, n_o, n_b = g.TensorsLength(), g.OperatorsLength(), m.BuffersLength()
    if n_t > MAX_TENSORS or n_o > MAX_OPERATORS:
        raise MsfsimError(f"{label}: {n_t:,} tensors and {n_o:,} operators, above msfsim's bound "
                          f"of {MAX_TENSORS:,}")
    total = 0
    tensors = []
    for i in range(n_t):
        t = _tensor(m, g.Tensors(i), i, n_b, data, label)
        if t.data is not None:
            total += t.data.size
            if total > MAX_WEIGHT_ELEMENTS:
                raise MsfsimError(f"{label}: the constant tensors hold more than "
                                  f"{MAX_WEIGHT_ELEMENTS:,} values (16 MiB) in all; no supported "
                                  f"board has more than 4 MB of flash")
        tensors.append(t)
    codes = [_op_name(m.OperatorCodes(k)) for k in range(m.OperatorCodesLength())]
    ops = []
    for k in range(n_o):
        op = g.Operators(k)
        oc = op.OpcodeIndex()
        if not 0 <= oc < len(codes):
            raise MsfsimError(f"{label}: operator {k} names operator code {oc}, the file has "
                              f"{len(codes)}")
        ins = _indices(op.InputsAsNumpy(), n_t, f"{label}: operator {k} ({codes[oc]})", True)
        outs = _indices(op.OutputsAsNumpy(), n_t, f"{label}: operator {k} ({codes[oc]})", False)
        ops.append(TflOp(k, codes[oc], ins, outs, _options(op, codes[oc])))
    gin = _indices(g.InputsAsNumpy(), n_t, f"{label}: graph inputs", False)
    gout = _indices(g.OutputsAsNumpy(), n_t, f"{label}: graph outputs", False)
    return TflGraph(label, stem, tuple(tensors), tuple(ops), gin, gout)


def _indices(v, n: int, what: str, optional: bool) -> tuple[int, ...]:
    """Tensor indices of a vector (absent: empty), each in range (-1 allowed if optional)."""
    out = tuple(int(i) for i in (v if isinstance(v, np.ndarray) else ()))
    bad = [i for i in out if not (0 <= i < n or (optional and i == -1))]
    if bad:
        raise MsfsimError(f"{what}: tensor index {bad[0]} out of range (the graph has {n} "
                          f"tensors)")
    return out


def _op_name(oc) -> str:
    code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
    if code == tflite.BuiltinOperator.CUSTOM:
        return f"CUSTOM {shown(oc.CustomCode() or b'')}"
    return _OP_NAMES.get(code, f"builtin operator {code}")


# the options fields the walk reads, decoded here (the flatbuffer is read nowhere else)
_FIELDS = {"Padding": "padding", "StrideH": "stride_h", "StrideW": "stride_w",
           "DilationHFactor": "dilation_h", "DilationWFactor": "dilation_w",
           "FusedActivationFunction": "activation", "FilterHeight": "filter_h",
           "FilterWidth": "filter_w", "WeightsFormat": "weights_format",
           "KeepNumDims": "keep_num_dims", "KeepDims": "keep_dims", "BeginMask": "begin_mask",
           "EndMask": "end_mask", "EllipsisMask": "ellipsis_mask",
           "NewAxisMask": "new_axis_mask", "ShrinkAxisMask": "shrink_axis_mask",
           "Axis": "axis", "DepthMultiplier": "depth_multiplier"}
_FLOAT_FIELDS = {"Beta": "beta", "Alpha": "alpha"}


def _options(op, name: str) -> SimpleNamespace | None:
    """The op's builtin options as plain values (None when the op has none)."""
    cls = _OPTIONS.get(name)
    table = op.BuiltinOptions() if cls is not None else None
    if table is None:
        return None
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return SimpleNamespace(**{py: int(getattr(opts, fb)()) for fb, py in _FIELDS.items()
                              if hasattr(opts, fb)},
                           **{py: float(getattr(opts, fb)()) for fb, py in _FLOAT_FIELDS.items()
                              if hasattr(opts, fb)})


def _tensor(m, t, i: int, n_buffers: int, data: bytes, label: str) -> TflTensor:
    raw_name = t.Name() or b""
    name = raw_name.decode("utf-8", "replace")
    what = f"{label}: tensor {i} {shown(name)}"
    shape_v = t.ShapeAsNumpy()
    shape = tuple(int(d) for d in shape_v) if isinstance(shape_v, np.ndarray) else ()
    if len(shape) > MAX_RANK:
        raise MsfsimError(f"{what} has rank {len(shape)}, above {MAX_RANK}")
    n = elements(shape, what)  # negative dimensions and size bound
    q = t.Quantization()
    scale = np.zeros(0, np.float32)
    zp = np.zeros(0, np.int64)
    qdim = 0
    if q is not None:
        s = q.ScaleAsNumpy()
        z = q.ZeroPointAsNumpy()
        scale = s.astype(np.float32) if isinstance(s, np.ndarray) else scale
        zp = z.astype(np.int64) if isinstance(z, np.ndarray) else zp
        qdim = int(q.QuantizedDimension())
        if scale.size and zp.size not in (0, scale.size):
            raise MsfsimError(f"{what}: {scale.size} scales but {zp.size} zero points")
        if scale.size and not zp.size:
            zp = np.zeros(scale.size, np.int64)
        if scale.size and not np.all(np.isfinite(scale) & (scale > 0)):
            bad = scale[~(np.isfinite(scale) & (scale > 0))][0]
            raise MsfsimError(f"{what}: quantisation scale {float(bad)!r} (scales must be "
                              f"finite and positive)")
        if scale.size > 1 and not (0 <= qdim < max(len(shape), 1)
                                   and shape[qdim] == scale.size):
            raise MsfsimError(f"{what}: {scale.size} scales along dimension {qdim} of shape "
                              f"{short(list(shape))}")
    b = t.Buffer()
    if not 0 <= b < n_buffers:
        raise MsfsimError(f"{what} names buffer {b}, the file has {n_buffers}")
    return TflTensor(i, name, shape, int(t.Type()), scale, zp, qdim,
                     _buffer_data(m.Buffers(b), t.Type(), shape, n, data, what))


def _buffer_data(buf, dtype: int, shape: tuple[int, ...], n: int, data: bytes,
                 what: str) -> np.ndarray | None:
    """The tensor's constant data (None for an activation: an empty buffer)."""
    raw = buf.DataAsNumpy()
    off, size = int(buf.Offset()), int(buf.Size())
    if isinstance(raw, np.ndarray) and raw.size:
        blob = raw.tobytes()
    elif off > 1 and size:  # large models keep data after the flatbuffer, at offset/size
        if off + size > len(data):
            raise MsfsimError(f"{what}: buffer at offset {off:,} and size {size:,} lies outside "
                              f"the {len(data):,} B file")
        blob = data[off:off + size]
    else:
        return None
    np_type = _DTYPES.get(dtype)
    if np_type is None:
        raise MsfsimError(f"{what}: constant data of element type {type_name(dtype)} is not "
                          f"supported")
    need = n * np.dtype(np_type).itemsize
    if len(blob) != need:
        raise MsfsimError(f"{what}: buffer holds {len(blob):,} B but shape "
                          f"{short(list(shape))} of {type_name(dtype)} needs {need:,} B")
    return np.frombuffer(blob, dtype=np.dtype(np_type).newbyteorder("<")).reshape(shape)
