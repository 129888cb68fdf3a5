"""Writes malformed and unsupported ONNX files for the rejection suite (no binaries in git)."""
from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

OPSET = 13
IR_VERSION = 7


def _model(node: onnx.NodeProto, in_shape: list, out_shape: list) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)
    m = helper.make_model(helper.make_graph([node], "bad", [x], [y]),
                          opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = IR_VERSION
    return m


def write_bad_models(directory: str) -> dict[str, str]:
    """Create the bad models in `directory`; returns name -> path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = {k: d / f"{k}.onnx" for k in ("garbage", "unsupported_op", "dynamic_shape")}
    paths["garbage"].write_bytes(b"this is not a protobuf")
    onnx.save(_model(helper.make_node("Sin", ["input"], ["output"]), [1, 3, 8, 8], [1, 3, 8, 8]),
              paths["unsupported_op"])
    onnx.save(_model(helper.make_node("Relu", ["input"], ["output"]), [1, 3, "H", "W"],
                     [1, 3, "H", "W"]), paths["dynamic_shape"])
    paths["missing"] = d / "does_not_exist.onnx"
    return {k: str(v) for k, v in paths.items()}
