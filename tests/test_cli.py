"""The command-line contract of DESIGN §7: exit codes and one-line errors, never a traceback."""
import argparse
import json
import subprocess
import sys

import onnx
import pytest

from msfsim.cli import build_parser, parse_size, positive_float, positive_int

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


@pytest.mark.parametrize("bad", ["", "abc", "-3K", "0", "nan", "inf", "-inf", "1e400", "infK",
                                 "0.5", "1e-400", "2048G"])
def test_parse_size_rejects(bad):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(bad)


@pytest.mark.parametrize("bad", ["inf", "nan", "-inf", "0", "-1", "1e400", "x"])
def test_positive_float_rejects(bad):
    with pytest.raises(argparse.ArgumentTypeError):
        positive_float(bad)


@pytest.mark.parametrize("bad", ["0", "-1", "1.5", "x", ""])
def test_positive_int_rejects(bad):
    with pytest.raises(argparse.ArgumentTypeError):
        positive_int(bad)


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
    assert "3.9375" not in r.stdout
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


# ------------------------------------------------------------------ help, listings, info

def _parsers(parser, path=("msfsim",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions if a.help}
            for name, sp in action.choices.items():
                assert name in helped, f"{' '.join(path)} {name} has no help line"
                yield from _parsers(sp, (*path, name))


def test_every_option_has_help_with_its_default():
    seen = set()
    for path, parser in _parsers(build_parser()):
        seen.add(" ".join(path))
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                continue
            name = "/".join(a.option_strings) or a.dest
            assert a.help and a.help.strip(), f"{' '.join(path)} {name}: no help"
            if a.default not in (None, False, argparse.SUPPRESS) and a.option_strings:
                assert "default" in a.help, f"{' '.join(path)} {name}: default not stated"
    for cmd in ("search", "measure", "run", "info", "zoo list", "zoo export", "platforms",
                "doctor", "reproduce"):
        assert f"msfsim {cmd}" in seen, cmd


@pytest.mark.parametrize("cmd", ["search", "measure", "run", "reproduce"])
def test_help_shows_examples(cmd):
    r = msfsim(cmd, "--help")
    assert r.returncode == 0
    examples = r.stdout.split("examples:", 1)[1]
    lines = [line.strip() for line in examples.splitlines() if line.strip().startswith(f"msfsim {cmd}")]
    assert 2 <= len(lines) <= 3, r.stdout
    assert all(len(line) > len(f"msfsim {cmd}") + 5 for line in lines)  # not wrapped away


def test_zoo_list_columns_align():
    r = msfsim("zoo", "list")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert len(lines) >= 5
    assert len({line.index(" layers ") for line in lines}) == 1, r.stdout
    shape_ends = {line.index(" layers ") - 5 for line in lines}  # "  NNN layers": shapes end aligned
    assert len(shape_ends) == 1
    assert any(len(line.split()[1]) >= 11 for line in lines)  # e.g. 1x3x144x144


def test_platform_sizes_are_clean():
    from msfsim.platforms import _kb
    assert [_kb(n) for n in (16 << 10, 4 << 20, (4 << 20) - (64 << 10), 520 << 10, 1000)] == \
        ["16 KB", "4 MB", "4,032 KB", "520 KB", "1,000 B"]
    r = msfsim("platforms", "--json")
    rows = {row["board"]: row for row in json.loads(r.stdout)}
    assert rows["hifive1b"]["flash"] == "4,032 KB" and rows["hifive1b"]["sram"] == "16 KB"
    for row in rows.values():
        for key in ("sram", "flash"):
            assert row[key].replace(",", "").split()[0].isdigit(), row


def test_info_lenet_text_and_json():
    from msfsim import zoo
    model = zoo.load("lenet5-r28")
    q = model.tensor(model.input).q
    r = msfsim("info", "zoo:lenet5-r28")
    assert r.returncode == 0, r.stderr
    assert f"scale {q.scale:.9g}, zero point {q.zero_point}" in r.stdout
    assert "NHWC 1x28x28x1" in r.stdout and "int8" in r.stdout
    assert f"{len(model.layers)} layers" in r.stdout and f"{model.total_macs:,} MACs" in r.stdout
    for layer in model.layers:
        assert layer.name in r.stdout
    r = msfsim("info", "zoo:lenet5-r28", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["input"] == {"name": model.tensor(model.input).name, "dtype": "int8",
                             "layout": "NHWC", "shape": [1, 28, 28, 1], "scale": q.scale,
                             "zero_point": q.zero_point}
    assert info["totals"]["layers"] == len(info["layers"]) == len(model.layers) == 7
    assert info["totals"]["macs"] == model.total_macs
    assert info["totals"]["weight_bytes"] == sum(l.weight.nbytes for l in model.layers
                                                 if l.weight is not None)
    assert info["layers"][0]["kernel"] == [5, 5] and info["layers"][0]["output_shape"] == [28, 28, 6]
    assert info["totals"]["largest_activation"]["bytes"] == max(t.size for t in model.tensors)
    assert info["output"]["shape"] == [1, 1, 1, 10]


def test_info_errors_are_one_line(tmp_path):
    assert_one_line_error(msfsim("info", tmp_path / "none.onnx"), 2, "none.onnx")
    assert_one_line_error(msfsim("info", "zoo:nope"), 2, "unknown zoo model 'nope'")


def test_doctor_text_is_narrow_and_hints_only_what_is_missing():
    r = msfsim("doctor")
    assert r.returncode == 0
    assert max(len(line) for line in r.stdout.splitlines()) <= 132
    assert "msfsim package data" in r.stdout and "apt-get install" not in r.stdout.split("to install:")[0]


def test_search_tflite_states_tflm_arena(tmp_path):
    """On a .tflite model the search prints the arena TFLM's own interpreter would allocate."""
    pytest.importorskip("tflite_micro")
    from pathlib import Path
    model = Path(__file__).parent / "data" / "tflite" / "dscnn.tflite"
    r = msfsim("search", model, "--platform", "stm32f746", "--cost", "analytic", "--json")
    assert r.returncode == 0, r.stderr
    arena = json.loads(r.stdout)["tflm_arena_bytes"]
    assert isinstance(arena, int) and arena > 0
    r = msfsim("search", model, "--platform", "stm32f746", "--cost", "analytic")
    assert f"TensorFlow Lite Micro would need an arena of {arena:,} B" in r.stdout
