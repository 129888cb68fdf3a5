"""A zoo model as ONNX (float or QDQ-int8) or .tflite (int8), written to a file, or imported
into msfsim's IR."""
from __future__ import annotations

import functools
import os
from pathlib import Path

import onnx

from msfsim import MsfsimError
from msfsim.fileio import write_atomic
from msfsim.ir import Model

from .catalog import lookup
from .graph import GraphBuilder, QParamsMap


def _float(name: str) -> tuple[onnx.ModelProto, GraphBuilder]:
    entry, net = lookup(name)
    g = GraphBuilder(name, None)
    return g.model(net(g), entry.description), g


def build_onnx(name: str, qdq: bool = False, qparams: QParamsMap | None = None) -> onnx.ModelProto:
    """The zoo model `name` as float32 ONNX, or in QDQ-int8 form when `qdq`.

    The QDQ form's activation scales and zero points are `qparams` (float tensor name ->
    (scale, zero point) or QParams), by default what `msfsim.importers.onnx.calibrate` gives the
    float model, so that the QDQ export and msfsim's own quantisation of the float model agree
    (the calibration gives a Concat's private inputs the Concat's qparams, as TFLiteConverter
    does and TFLite's int8 CONCATENATION requires).
    """
    entry, net = lookup(name)
    if not qdq:
        return _float(name)[0]
    if qparams is None:
        from msfsim.importers.onnx import calibrate  # the importer is loaded only when needed
        qparams = calibrate(_float(name)[0])
    g = GraphBuilder(name, qparams)
    return g.model(net(g), entry.description + " (QDQ int8)")


def export(name: str, path: str | os.PathLike, qdq: bool = False) -> Path:
    """Write the model to `path` atomically (a temporary file in the same directory, renamed):
    a `.tflite` path gets the int8 model as TFLiteConverter would write it
    (`msfsim.exporters.tflite`), any other path ONNX (float, or QDQ-int8 when `qdq`)."""
    if Path(path).suffix.lower() == ".tflite":
        if qdq:
            raise MsfsimError("--qdq applies to ONNX exports; a .tflite export is always int8")
        from msfsim.exporters import tflite_bytes
        lookup(name)
        return write_atomic(path, tflite_bytes(load(name)))
    return write_atomic(path, build_onnx(name, qdq).SerializeToString())


@functools.lru_cache(maxsize=None)
def load(name: str) -> Model:
    """The zoo model imported into msfsim's IR (float export, quantised by the importer)."""
    from msfsim.importers.onnx import import_model
    lookup(name)
    return import_model(build_onnx(name))
