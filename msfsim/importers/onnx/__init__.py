"""ONNX -> msfsim IR.

- load.py: reading the file: size bounds, external data, the checker;
- walk.py: the graph walk (a handler per node: the op modules' lowerings, msfsim.ops, and
  handlers.py / quantize.py for the nodes that fold into layers);
- calibrate.py: float evaluation and calibration of float models;
- quantize.py: QDQ nodes and the emission of the int8 IR.

Float models are quantised by msfsim: symmetric per-channel int8 weights, asymmetric int8
activations whose ranges are the min/max seen on CALIBRATION_BATCH deterministic inputs drawn
uniformly from [-1, 1]. That keeps results reproducible but is not a substitute for calibration
on real data: export QDQ models for accuracy.
"""
from __future__ import annotations

import os

import onnx

from msfsim import MsfsimError, UnsupportedModel
from msfsim.importers.onnx.calibrate import CALIBRATION_BATCH, CALIBRATION_SEED
from msfsim.importers.onnx.load import (MAX_CALIBRATION_BYTES, MAX_FILE_BYTES,
                                        MAX_TENSOR_ELEMENTS, MAX_WEIGHT_ELEMENTS, file_label,
                                        load_onnx, parse_input_shape, short)
from msfsim.importers.onnx.walk import SUPPORTED_OPS, Importer
from msfsim.ir import Model, QParams

__all__ = ["CALIBRATION_BATCH", "CALIBRATION_SEED", "MAX_CALIBRATION_BYTES", "MAX_FILE_BYTES",
           "MAX_TENSOR_ELEMENTS", "MAX_WEIGHT_ELEMENTS", "SUPPORTED_OPS", "calibrate",
           "import_model", "load_onnx", "parse_input_shape"]


def import_model(src: str | os.PathLike | onnx.ModelProto,
                 input_shape: tuple[int, int, int] | str | None = None,
                 name: str | None = None) -> Model:
    """Import an ONNX model (float or QDQ int8) into msfsim's IR.

    Raises `MsfsimError` with a one-line message naming the file, node, op or shape at fault.
    """
    if isinstance(input_shape, str):
        input_shape = parse_input_shape(input_shape)
    proto, stem = load_onnx(src)
    label = file_label(src) if not isinstance(src, onnx.ModelProto) else (name or stem)
    try:
        return Importer(proto, name or stem, input_shape).run()
    except MsfsimError as exc:
        if isinstance(src, onnx.ModelProto):
            raise
        raise type(exc)(f"{label}: {exc}") from None
    except (ValueError, ArithmeticError) as exc:  # shape mismatches found while building the IR
        raise UnsupportedModel(f"{label}: {short(exc, 200)}") from None
    except MemoryError:
        raise UnsupportedModel(f"{label}: out of host memory importing the model") from None


def calibrate(src: str | os.PathLike | onnx.ModelProto,
              input_shape: tuple[int, int, int] | None = None) -> dict[str, QParams]:
    """Activation qparams msfsim would give a float model, by ONNX tensor name.

    Keys are the names of the tensors after folding (the output of the last node folded into each
    layer, e.g. the Relu's output), plus the graph input. Used by the zoo's QDQ export.
    """
    proto, stem = load_onnx(src)
    model = Importer(proto, stem, input_shape).run()
    return {t.name: t.q for t in model.tensors}
