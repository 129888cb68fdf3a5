"""TensorFlow Lite (.tflite) -> msfsim IR, bit-exact with TensorFlow Lite Micro's reference
int8 kernels.

- read.py: the file, read once within msfsim's size bounds, decoded and checked;
- walk.py: the graph walk (edges, constants and shape arithmetic, reshapes as aliases);
- layers.py: the operators that become layers; quant.py: TFLM's integer parameters;
- arena.py: what TFLM's own arena would take (`tflm_arena_bytes`), for comparison.

The file's quantisation is used as it is (no calibration). Models must be int8 inside
(TFLiteConverter full-integer); a float input / output is quantised / dequantised at the
edges by TFLite's QUANTIZE / DEQUANTIZE, which msfsim leaves to the application: msfsim's model
is the int8 interior. docs/tflite.md lists what is supported and how exactness is tested.
"""
from __future__ import annotations

import os

from msfsim import MsfsimError, UnsupportedModel
from msfsim.importers.tflite.arena import tflm_arena_bytes
from msfsim.importers.tflite.read import read_tflite
from msfsim.importers.tflite.walk import Walk, supported_ops
from msfsim.ir import Model

__all__ = ["import_tflite", "supported_ops", "tflm_arena_bytes"]


def import_tflite(path: str | os.PathLike, name: str | None = None) -> Model:
    """Import an int8 .tflite model into msfsim's IR (one-line MsfsimError when it cannot)."""
    g = read_tflite(path)
    try:
        return Walk(g, name or g.stem).run()
    except MsfsimError as exc:
        raise type(exc)(f"{g.label}: {exc}") from None
    except (ValueError, ArithmeticError, IndexError, TypeError) as exc:
        text = str(exc) if str(exc).isprintable() else repr(str(exc))
        raise UnsupportedModel(f"{g.label}: {text[:200]}") from None
    except MemoryError:
        raise UnsupportedModel(f"{g.label}: out of host memory importing the model") from None
