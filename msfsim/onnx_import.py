"""Compatibility: the ONNX importer lives in `msfsim.importers.onnx` (op lowerings in the op
modules, `msfsim.ops`). Import from there; this module re-exports its public names."""
from msfsim.importers.onnx import (CALIBRATION_BATCH, CALIBRATION_SEED,  # noqa: F401
                                   MAX_CALIBRATION_BYTES, MAX_FILE_BYTES, MAX_TENSOR_ELEMENTS,
                                   MAX_WEIGHT_ELEMENTS, SUPPORTED_OPS, calibrate, import_model,
                                   load_onnx, parse_input_shape)
