"""The Robot Framework regression layer: a tampered baseline must fail with both figures."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

robot = pytest.importorskip("robot")
from robot.api import ExecutionResult  # noqa: E402

from msfsim import ROOT  # noqa: E402
from msfsim import robotlib  # noqa: E402

SUITE = "stm32f746.robot"
TEST = "Plan fits and matches baseline"


def _copy_suite(tmp: Path) -> Path:
    d = tmp / "robot"
    shutil.copytree(ROOT / "robot" / "resources", d / "resources")
    shutil.copytree(ROOT / "robot" / "baselines", d / "baselines")
    shutil.copy(ROOT / "robot" / SUITE, d / SUITE)
    return d


def _run(suite_dir: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, str]]:
    monkeypatch.delenv(robotlib.UPDATE_ENV, raising=False)
    with open(out / "console.txt", "w") as console:
        rc = robot.run(str(suite_dir / SUITE), test=TEST, outputdir=str(out), output="output.xml",
                       log="NONE", report="NONE", stdout=console, pythonpath=[str(ROOT)])
    result = ExecutionResult(str(out / "output.xml"))
    tests: dict[str, tuple[str, str]] = {}

    def visit(suite) -> None:
        for t in suite.tests:
            tests[t.name] = (t.status, t.message)
        for s in suite.suites:
            visit(s)
    visit(result.suite)
    assert rc == sum(1 for s, _ in tests.values() if s == "FAIL")
    return tests


def test_tampered_baselines_fail_with_both_figures(tmp_path, monkeypatch):
    d = _copy_suite(tmp_path)
    path = d / "baselines" / "stm32f746.json"
    data = json.loads(path.read_text())
    e = data["entries"]
    instr_key, ram_key, cc_key = ("lenet5-r28/ram,F<=1.5/unicorn", "dscnn-kws/ram,F<=1.5/unicorn",
                                  "resnet8-r32/ram,F<=1.5/unicorn")
    true_instr, true_ram = e[instr_key]["instructions"], e[ram_key]["measured_ram"]
    e[instr_key]["instructions"] = true_instr + 1234
    e[ram_key]["measured_ram"] = true_ram - 100
    e[cc_key]["compiler"] = "arm-none-eabi-gcc 99.1.0"
    path.write_text(json.dumps(data))

    (tmp_path / "out").mkdir()
    tests = _run(d, tmp_path / "out", monkeypatch)
    status, msg = tests[TEST]
    print(msg)
    assert status == "FAIL"
    # instructions: the tampered baseline and the measured count, side by side
    assert f"instructions: baseline {true_instr + 1234:,}, actual {true_instr:,}" in msg
    # RAM: both figures, their breakdown and the memory convention
    assert f"measured RAM: baseline {true_ram - 100:,} B" in msg and f"actual {true_ram:,} B" in msg
    assert robotlib.MEASURED_RAM in msg
    # another compiler: no comparison, a request to regenerate
    assert "arm-none-eabi-gcc 99.1.0" in msg and robotlib.UPDATE_COMMAND in msg


def test_untampered_baselines_pass(tmp_path, monkeypatch):
    d = _copy_suite(tmp_path)
    (tmp_path / "out").mkdir()
    tests = _run(d, tmp_path / "out", monkeypatch)
    assert tests[TEST][0] == "PASS", tests[TEST][1]


def test_parse_size():
    assert robotlib.parse_size("64K") == 65536
    assert robotlib.parse_size("0.5M") == 512 * 1024
    assert robotlib.parse_size("1000") == 1000
    with pytest.raises(ValueError):
        robotlib.parse_size("lots")


def test_missing_or_foreign_baseline_file_says_how_to_regenerate(tmp_path):
    with pytest.raises(robotlib.Failure, match="update_baselines"):
        robotlib._read_baselines(tmp_path / "none.json")
    (tmp_path / "old.json").write_text(json.dumps({"format": 0, "entries": {}}))
    with pytest.raises(robotlib.Failure, match="update_baselines"):
        robotlib._read_baselines(tmp_path / "old.json")
