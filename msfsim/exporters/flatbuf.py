"""Writing a TensorFlow Lite flatbuffer (schema version 3, file identifier TFL3) from plain
records, with the `tflite` package's generated builder functions and `flatbuffers.Builder`.

One subgraph; buffer 0 is the empty buffer activations point to (the schema's convention) and
every constant tensor has a buffer of its own, its data aligned to 16 bytes as TFLiteConverter
aligns it. Builtin options are tables of scalars, named by their schema table and fields
(`("Conv2DOptions", {"Padding": 1, "StrideH": 2})`), so this module knows no operator.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Sequence

import flatbuffers
import numpy as np
import tflite

SCHEMA_VERSION = 3
IDENTIFIER = b"TFL3"
DATA_ALIGNMENT = 16
# the operator code's int8 field holds builtin codes below this; above, the int32 field alone
PLACEHOLDER_FOR_GREATER_OP_CODES = 127


def _schema(table: str) -> ModuleType:
    """The generated module of a schema table (`tflite.Model` the attribute is its class)."""
    return importlib.import_module(f"tflite.{table}")


@dataclass
class FbTensor:
    name: str
    shape: tuple[int, ...]
    dtype: int                                  # tflite.TensorType
    scale: Sequence[float] = ()                 # empty: not quantised
    zero_point: Sequence[int] = ()
    quantized_dimension: int = 0
    data: bytes | None = None                   # constant data, little-endian


@dataclass
class FbOp:
    code: int                                   # tflite.BuiltinOperator
    inputs: list[int]
    outputs: list[int]
    options: tuple[str, dict[str, float]] | None = None
    version: int = 1


@dataclass
class FbGraph:
    name: str
    tensors: list[FbTensor] = field(default_factory=list)
    ops: list[FbOp] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    description: str = ""


def _vector(b: flatbuffers.Builder, values, dtype) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype))


def _offsets(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _aligned_bytes(b: flatbuffers.Builder, data: bytes) -> int:
    b.StartVector(1, len(data), DATA_ALIGNMENT)
    b.head = b.head - len(data)
    b.Bytes[b.head:b.head + len(data)] = data
    return b.EndVector()


def _buffer(b: flatbuffers.Builder, data: bytes | None) -> int:
    m = _schema("Buffer")
    vec = _aligned_bytes(b, data) if data else None
    m.BufferStart(b)
    if vec is not None:
        m.BufferAddData(b, vec)
    return m.BufferEnd(b)


def _quantization(b: flatbuffers.Builder, t: FbTensor) -> int | None:
    if not len(t.scale):
        return None
    m = _schema("QuantizationParameters")
    scale = _vector(b, t.scale, np.float32)
    zp = _vector(b, t.zero_point, np.int64)
    m.QuantizationParametersStart(b)
    m.QuantizationParametersAddScale(b, scale)
    m.QuantizationParametersAddZeroPoint(b, zp)
    m.QuantizationParametersAddQuantizedDimension(b, t.quantized_dimension)
    return m.QuantizationParametersEnd(b)


def _tensor(b: flatbuffers.Builder, t: FbTensor, buffer: int) -> int:
    m = _schema("Tensor")
    name = b.CreateString(t.name)
    shape = _vector(b, t.shape, np.int32)
    quant = _quantization(b, t)
    m.TensorStart(b)
    m.TensorAddShape(b, shape)
    m.TensorAddType(b, t.dtype)
    m.TensorAddBuffer(b, buffer)
    m.TensorAddName(b, name)
    if quant is not None:
        m.TensorAddQuantization(b, quant)
    return m.TensorEnd(b)


def _options(b: flatbuffers.Builder, table: str, fields: dict[str, float]) -> int:
    m = _schema(table)
    getattr(m, f"{table}Start")(b)
    for name, value in fields.items():
        getattr(m, f"{table}Add{name}")(b, value)
    return getattr(m, f"{table}End")(b)


def _operator(b: flatbuffers.Builder, op: FbOp, opcode_index: int) -> int:
    m = _schema("Operator")
    ins = _vector(b, op.inputs, np.int32)
    outs = _vector(b, op.outputs, np.int32)
    opts = _options(b, *op.options) if op.options is not None else None
    m.OperatorStart(b)
    m.OperatorAddOpcodeIndex(b, opcode_index)
    m.OperatorAddInputs(b, ins)
    m.OperatorAddOutputs(b, outs)
    if op.options is not None:
        m.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, op.options[0]))
        m.OperatorAddBuiltinOptions(b, opts)
    return m.OperatorEnd(b)


def _opcode(b: flatbuffers.Builder, code: int, version: int) -> int:
    m = _schema("OperatorCode")
    m.OperatorCodeStart(b)
    m.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, PLACEHOLDER_FOR_GREATER_OP_CODES))
    m.OperatorCodeAddBuiltinCode(b, code)
    m.OperatorCodeAddVersion(b, version)
    return m.OperatorCodeEnd(b)


def serialise(g: FbGraph) -> bytes:
    """The flatbuffer of `g`, ready to be written as a .tflite file."""
    b = flatbuffers.Builder(1 << 16)
    codes: dict[int, int] = {}      # builtin code -> operator code index
    versions: dict[int, int] = {}
    for op in g.ops:
        codes.setdefault(op.code, len(codes))
        versions[op.code] = max(versions.get(op.code, 1), op.version)
    buffer_of: list[int] = []
    blobs: list[bytes | None] = [None]
    for t in g.tensors:
        if t.data is None:
            buffer_of.append(0)
        else:
            buffer_of.append(len(blobs))
            blobs.append(t.data)
    buffers = [_buffer(b, data) for data in blobs]
    tensors = [_tensor(b, t, k) for t, k in zip(g.tensors, buffer_of)]
    operators = [_operator(b, op, codes[op.code]) for op in g.ops]
    opcodes = [_opcode(b, code, versions[code]) for code in codes]

    sg = _schema("SubGraph")
    tensors_v, ops_v = _offsets(b, tensors), _offsets(b, operators)
    ins, outs = _vector(b, g.inputs, np.int32), _vector(b, g.outputs, np.int32)
    name = b.CreateString(g.name)
    sg.SubGraphStart(b)
    sg.SubGraphAddTensors(b, tensors_v)
    sg.SubGraphAddInputs(b, ins)
    sg.SubGraphAddOutputs(b, outs)
    sg.SubGraphAddOperators(b, ops_v)
    sg.SubGraphAddName(b, name)
    subgraph = sg.SubGraphEnd(b)

    mm = _schema("Model")
    opcodes_v, subgraphs_v = _offsets(b, opcodes), _offsets(b, [subgraph])
    buffers_v = _offsets(b, buffers)
    description = b.CreateString(g.description)
    mm.ModelStart(b)
    mm.ModelAddVersion(b, SCHEMA_VERSION)
    mm.ModelAddOperatorCodes(b, opcodes_v)
    mm.ModelAddSubgraphs(b, subgraphs_v)
    mm.ModelAddDescription(b, description)
    mm.ModelAddBuffers(b, buffers_v)
    b.Finish(mm.ModelEnd(b), file_identifier=IDENTIFIER)
    return bytes(b.Output())
