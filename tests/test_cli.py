"""The command-line contract of DESIGN §7: exit codes and one-line errors, never a traceback."""
import argparse
import subprocess
import sys

import onnx
import pytest

from msfsim.cli import parse_size

from onnx_models import residual_net


def msfsim(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "msfsim", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def assert_one_line_error(r, code, *needles):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    err = r.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err


@pytest.mark.parametrize("text,value", [("65536", 65536), ("64K", 65536), ("0.5M", 524288),
                                        ("64kb", 65536), ("1G", 1 << 30)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("bad", ["", "abc", "-3K", "0", "nan"])
def test_parse_size_rejects(bad):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(bad)


def test_usage_error_is_one_line_exit_2():
    assert_one_line_error(msfsim("search"), 2, "msfsim search: error:")
    assert_one_line_error(msfsim("search", "zoo:x", "--platform", "stm32f746", "--max-ram", "lots"),
                          2, "invalid size 'lots'")


def test_missing_model_file(tmp_path):
    r = msfsim("search", tmp_path / "missing.onnx", "--platform", "stm32f746", "--cost", "analytic")
    assert_one_line_error(r, 2, "missing.onnx: no such file")


def test_garbage_model_file(tmp_path):
    p = tmp_path / "garbage.onnx"
    p.write_bytes(bytes(range(256)) * 4)
    r = msfsim("search", p, "--platform", "stm32f746", "--cost", "analytic")
    assert_one_line_error(r, 2, "garbage.onnx: not an ONNX model")


def test_unsupported_op_via_cli(tmp_path):
    proto = residual_net()
    for n in proto.graph.node:
        if n.name == "pool":
            n.op_type = "LpPool"
    p = tmp_path / "lp.onnx"
    onnx.save(proto, p)
    r = msfsim("search", p, "--platform", "stm32f746", "--cost", "analytic")
    assert_one_line_error(r, 2, "lp.onnx: node 'pool': unsupported op 'LpPool'")


def test_latency_objective_needs_ram_budget():
    r = msfsim("search", "zoo:mbv2-w0.35-r144", "--platform", "stm32f746", "--objective", "latency")
    assert_one_line_error(r, 2, "--objective latency needs --max-ram")


def test_run_rejects_bad_input_array(tmp_path):
    import numpy as np
    p = tmp_path / "m.onnx"
    onnx.save(residual_net(), p)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((16, 16, 3), np.float32))
    r = msfsim("run", p, "--platform", "stm32f746", "--backend", "host", "--input", x,
               "--output", tmp_path / "y.npy")
    assert_one_line_error(r, 2, "dtype float32, expected int8")
    assert not (tmp_path / "y.npy").exists()
