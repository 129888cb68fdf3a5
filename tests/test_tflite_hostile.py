"""Broken and hostile .tflite files: each is refused with one line naming the file and what is
wrong (exit 2 from the CLI), never a traceback; names carrying C or shell payloads reach
msfsim's IR only sanitised. The variants are real converter output with fields patched in
place (tests/tflite_models.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from msfsim import MsfsimError
from msfsim.importers.onnx.load import MAX_FILE_BYTES
from msfsim.importers.tflite import import_tflite
from msfsim.names import is_safe

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tflite_models as tm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def variant(tmp_path: Path, patch, name: str = "dscnn") -> Path:
    data = bytearray(tm.fixture(name).read_bytes())
    patch(data)
    p = tmp_path / "model.tflite"
    p.write_bytes(bytes(data))
    return p


def refused(path: Path, *fragments: str) -> str:
    with pytest.raises(MsfsimError) as info:
        import_tflite(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path)), text
    for f in fragments:
        assert f in text, text
    return text


def conv_weights(data) -> int:
    return tm.tensor_index(data, "conv2d_6_1/convolution", rank=4)


def first_act(data) -> int:
    return tm.tensor_index(data, "conv2d_6_1/Relu", rank=4)


CASES = {
    "truncated": (lambda d: d.__delitem__(slice(len(d) // 2, None)), ["malformed or truncated"]),
    "not a flatbuffer": (lambda d: d.__setitem__(slice(None), b"\x00" * 4 + b"PK\x03\x04"
                                                 + bytes(len(d) - 8)), ["not a TensorFlow Lite"]),
    "wrong identifier": (lambda d: d.__setitem__(slice(4, 8), b"TFL2"), ["'TFL3'"]),
    "root outside": (lambda d: d.__setitem__(slice(0, 4), (1 << 30).to_bytes(4, "little")),
                     ["root offset"]),
    "buffer out of range": (lambda d: tm.set_buffer(d, conv_weights(d), 9999),
                            ["names buffer 9999"]),
    "absurd shape": (lambda d: tm.set_dim(d, first_act(d), 1, 1 << 30), ["elements", "bound"]),
    "negative dim": (lambda d: tm.set_dim(d, first_act(d), 2, -5), ["negative dimension"]),
    "nan scale": (lambda d: tm.set_scale(d, first_act(d), float("nan")), ["scale nan"]),
    "zero scale": (lambda d: tm.set_scale(d, first_act(d), 0.0), ["scale 0.0"]),
    "inf scale": (lambda d: tm.set_scale(d, first_act(d), float("inf")), ["scale inf"]),
    "zero point outside int8": (lambda d: tm.set_zero_point(d, first_act(d), 1000),
                                ["zero point 1000"]),
    "weights size mismatch": (lambda d: tm.set_dim(d, conv_weights(d), 1, 11), ["needs"]),
    "dangling input": (lambda d: tm.set_op_input(d, 0, 0, 9999), ["out of range"]),
    "cyclic input": (lambda d: tm.set_op_input(d, 0, 0, first_act(d)),
                     ["dangling or cyclic"]),
    "missing input": (lambda d: tm.set_op_input(d, 0, 0, -1), ["input 0 is missing"]),
}


@pytest.mark.parametrize("case", CASES)
def test_broken_files_are_refused_in_one_line(tmp_path, case):
    patch, fragments = CASES[case]
    refused(variant(tmp_path, patch), *fragments)


def test_empty_missing_and_huge_files(tmp_path):
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    refused(empty, "too short")
    refused(tmp_path / "absent.tflite", "no such file")
    huge = tmp_path / "huge.tflite"
    with open(huge, "wb") as f:  # sparse: the size check comes before any read
        f.truncate(MAX_FILE_BYTES + 1)
    refused(huge, "above msfsim's bound")


def test_injection_names_are_sanitised(tmp_path):
    payload = b'*/ system("rm -rf ~"); /* $(reboot) ../../etc/passwd\n\x00'
    def patch(d):  # every tensor name: as much of the payload as fits
        for i in range(tm._model(d).Subgraphs(0).TensorsLength()):
            tm.set_name(d, i, payload[:len(tm.tensor(d, i).Name())])
    p = variant(tmp_path, patch)
    m = import_tflite(p)
    assert all(is_safe(t.name) for t in m.tensors)
    assert all(is_safe(layer.name) for layer in m.layers)
    assert is_safe(m.name)
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "msfsim"), "search", str(p), "--platform",
                        "stm32f746", "--cost", "analytic"], capture_output=True, text=True,
                       timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_error_messages_quote_hostile_names_on_one_line(tmp_path):
    def patch(d):
        k = tm.op_index(d, "AVERAGE_POOL_2D")
        out = tm._model(d).Subgraphs(0).Operators(k).Outputs(0)
        tm.set_name(d, out, b"evil\n*/ $(x)")
        tm.set_builtin_code(d, k, 14)  # LOGISTIC
    text = refused(variant(tmp_path, patch), "LOGISTIC", "evil\\n")
    assert "$(x)" in text  # quoted (repr), one line


def test_cli_exit_2_one_line(tmp_path):
    p = variant(tmp_path, CASES["nan scale"][0])
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "msfsim"), "search", str(p), "--platform",
                        "stm32f746", "--cost", "analytic"], capture_output=True, text=True,
                       timeout=600, cwd=ROOT)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("name", ["lenet", "mbv2_block"])
def test_random_corruption_never_escapes_as_a_traceback(tmp_path, name):
    """Seeded byte flips anywhere in a real file: msfsim imports it or refuses it with an
    MsfsimError, nothing else."""
    base = tm.fixture(name).read_bytes()
    rng = np.random.default_rng(2024)
    p = tmp_path / "fuzz.tflite"
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(150):
        d = bytearray(base)
        for pos in rng.integers(0, len(d), size=int(rng.integers(1, 6))):
            d[int(pos)] = int(rng.integers(0, 256))
        p.write_bytes(bytes(d))
        try:
            import_tflite(p)
            outcomes["ok"] += 1
        except MsfsimError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0
