"""msfsim IR -> model files other tools run: `tflite` writes an int8 .tflite flatbuffer as
TFLiteConverter's full-integer quantisation does (`flatbuf` serialises it), which TensorFlow
Lite Micro runs and msfsim's .tflite importer reads back with the same layers."""
from __future__ import annotations

import os
from pathlib import Path

from msfsim.exporters.tflite import tflite_bytes
from msfsim.fileio import write_atomic
from msfsim.ir import Model

__all__ = ["export_tflite", "tflite_bytes"]


def export_tflite(model: Model, path: str | os.PathLike) -> Path:
    """Write `model` as an int8 .tflite file, atomically (nothing written when it is refused)."""
    return write_atomic(path, tflite_bytes(model))
