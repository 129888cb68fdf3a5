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


def test_unknown_platform_is_a_usage_error():
    r = msfsim("search", "zoo:lenet5-r28", "--platform", "stm32f999", "--cost", "analytic")
    assert_one_line_error(r, 2, "unknown platform 'stm32f999'", "stm32f746")


def test_unknown_zoo_model():
    r = msfsim("search", "zoo:resnet1000", "--platform", "stm32f746", "--cost", "analytic")
    assert_one_line_error(r, 2, "unknown zoo model 'resnet1000'", "lenet5-r28")


def test_platforms_and_doctor_list_every_board_and_tool():
    r = msfsim("platforms")
    assert r.returncode == 0
    for board in ("stm32f746", "nucleo-f767zi", "nucleo-f412zg", "hifive1b", "esp32c3", "esp32 (proxy"):
        assert board in r.stdout
    r = msfsim("doctor", "--json")
    assert r.returncode == 0
    import json
    tools = {row["tool"]: row for row in json.loads(r.stdout)}
    assert "unicorn" in tools and "arm-none-eabi-gcc" in tools
    assert all(row["install"] for row in tools.values())


def test_analytic_search_json_contract(tmp_path):
    import json
    plan = tmp_path / "plan.json"
    r = msfsim("search", "zoo:lenet5-r28", "--platform", "stm32f746", "--cost", "analytic", "--json",
               "-o", plan)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("model", "platform", "objective", "cost", "cost_model", "backend", "compiler", "blocks",
                "peak_ram", "macs", "overhead", "instructions", "latency_ms", "flash_bytes", "baselines",
                "pareto"):
        assert key in out, key
    assert out["cost"] == "analytic" and out["peak_ram"]["measured"] is None
    covered = [i for b in out["blocks"] for i in range(b["layers"][0], b["layers"][1] + 1)]
    assert covered == list(range(7))
    assert json.loads(plan.read_text())["blocks"] == out["blocks"]


def test_infeasible_budget_exits_3():
    r = msfsim("search", "zoo:lenet5-r28", "--platform", "stm32f746", "--cost", "analytic",
               "--objective", "latency", "--max-ram", "16")
    assert_one_line_error(r, 3)
