"""The command-line contract on broken and hostile files of every kind, generated here: exit
2 (or 3 when the model is fine but cannot fit), exactly one stderr line naming the problem, no
traceback, no warning, and nothing written. Complements test_hostile_models (one failure
family per test) with breadth: truncations, garbage, bad attributes, odd file types."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from msfsim import cli

from onnx_models import residual_net


def conv(attrs=None, in_shape=(1, 3, 8, 8), w=None, nodes=None) -> onnx.ModelProto:
    w = np.random.default_rng(0).normal(0, .3, (4, in_shape[1] if len(in_shape) == 4 else 3, 3, 3)
                                        ).astype(np.float32) if w is None else w
    nodes = nodes or [helper.make_node("Conv", ["x", "w"], ["y"], name="conv0",
                                       **(attrs if attrs is not None else {"pads": [1, 1, 1, 1]}))]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "h", "w"])],
                          [numpy_helper.from_array(np.asarray(w), "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


GOOD = residual_net().SerializeToString()

# name -> (file bytes, words the one error line must contain)
CASES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "truncated_half": (GOOD[: len(GOOD) // 2], ("truncated",)),
    "truncated_tail": (GOOD[:-7], ("truncated",)),
    "random_bytes": (np.random.default_rng(1).bytes(5000), ("not an ONNX model",)),
    "zeros": (b"\0" * 100, ("not an ONNX model",)),
    "empty": (b"", ("empty",)),
    "stride_zero": (conv({"strides": [0, 0]}).SerializeToString(), ("conv0", "strides")),
    "negative_pads": (conv({"pads": [-5, -5, -5, -5]}).SerializeToString(), ("conv0", "pads")),
    "huge_pads": (conv({"pads": [10**5] * 4}).SerializeToString(), ("conv0", "bound")),
    "dilation": (conv({"dilations": [0, 2], "pads": [2, 2, 2, 2]}).SerializeToString(), ("conv0", "dilation")),
    "huge_dilation": (conv({"dilations": [10**6, 1]}).SerializeToString(), ("conv0", "dilation")),
    "group_mismatch": (conv({"group": 2}).SerializeToString(), ("conv0", "group")),
    "group_zero": (conv({"group": 0}).SerializeToString(), ("conv0", "group")),
    "weights_1d": (conv(w=np.ones(4, np.float32)).SerializeToString(), ("conv0",)),
    "input_3d": (conv(in_shape=(3, 8, 8)).SerializeToString(), ("'x'", "4-D")),
    "input_5d": (conv(in_shape=(1, 1, 3, 8, 8)).SerializeToString(), ("'x'", "4-D")),
    "batch_2": (conv(in_shape=(2, 3, 8, 8)).SerializeToString(), ("'x'", "batch")),
    "negative_dim": (conv(in_shape=(1, 3, -1, 8)).SerializeToString(), ("'x'", "-1")),
    "nan_weights": (conv(w=np.full((4, 3, 3, 3), np.nan, np.float32)).SerializeToString(), ("'w'", "NaN")),
    "control_flow": (conv(nodes=[helper.make_node(
        "If", ["x"], ["y"], then_branch=helper.make_graph([], "t", [], []),
        else_branch=helper.make_graph([], "e", [], []))]).SerializeToString(), ("'If'",)),
    "nan_activation": (conv(nodes=[helper.make_node("LeakyRelu", ["x"], ["y"], alpha=float("nan"))]
                            ).SerializeToString(), ("LeakyRelu", "alpha nan")),
    "nothing_to_run": (conv(nodes=[helper.make_node("Identity", ["x"], ["y"])]).SerializeToString(), ("no layers",)),
}


def _contract(capsys, argv: list[str], code: int = 2) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rc = cli.main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc == code, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err and "Warning" not in err
    return lines[0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_file_is_one_clear_line(name, tmp_path, capsys, monkeypatch):
    data, words = CASES[name]
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(data)
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.iterdir())
    line = _contract(capsys, ["search", str(path), "--platform", "stm32f746", "--cost", "analytic",
                              "-o", str(tmp_path / "plan.json")])
    assert line.startswith("msfsim: error: ")
    for w in words:
        assert w in line, line
    assert sorted(tmp_path.iterdir()) == before  # nothing written


@pytest.mark.parametrize("kind", ["directory", "fifo", "device", "text"])
def test_files_that_are_not_models(kind, tmp_path, capsys):
    path = {"directory": tmp_path, "device": Path("/dev/null"), "text": tmp_path / "notes.onnx",
            "fifo": tmp_path / "pipe.onnx"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    if kind == "text":
        path.write_text("hello\n")
    line = _contract(capsys, ["search", str(path), "--platform", "stm32f746", "--cost", "analytic"])
    assert str(path) in line


def test_model_too_large_for_the_board_is_exit_3(tmp_path, capsys):
    """A valid model whose network input and output alone exceed the board's SRAM."""
    path = tmp_path / "big.onnx"
    path.write_bytes(conv(in_shape=(1, 3, 400, 400)).SerializeToString())
    line = _contract(capsys, ["search", str(path), "--platform", "stm32f746", "--cost", "analytic"], 3)
    assert "input and output alone" in line and "327,680 B" in line
