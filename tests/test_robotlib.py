"""The Robot Framework regression layer: a tampered baseline must fail with both figures;
recording merges into a baseline file; `Search Plan` searches as `msfsim search` does."""
from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
from pathlib import Path

import pytest

robot = pytest.importorskip("robot")
from robot.api import ExecutionResult  # noqa: E402

from msfsim import ROOT, platforms  # noqa: E402
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
    # another compiler: no comparison, a request to re-record with the suite's own switch
    assert "arm-none-eabi-gcc 99.1.0" in msg and robotlib.UPDATE_VARIABLE in msg


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


def test_missing_or_foreign_baseline_file_says_how_to_record(tmp_path):
    # a user's project: the recording switch, not a script of msfsim's checkout
    with pytest.raises(robotlib.Failure, match="no baseline file") as exc:
        robotlib.read_baselines(tmp_path / "none.json")
    assert robotlib.UPDATE_VARIABLE in str(exc.value)
    assert "scripts/update_baselines.py" not in str(exc.value)
    (tmp_path / "old.json").write_text(json.dumps({"format": 0, "entries": {}}))
    with pytest.raises(robotlib.Failure, match="unknown baseline format") as exc:
        robotlib.read_baselines(tmp_path / "old.json")
    assert robotlib.UPDATE_VARIABLE in str(exc.value)
    # msfsim's own suites also name the script that re-records them all
    own = robotlib.how_to_record(ROOT / "robot" / "baselines" / "stm32f746.json")
    assert robotlib.UPDATE_VARIABLE in own and robotlib.UPDATE_COMMAND in own


# ---------------------------------------------------------------- recording merges

def _lib_with_measurement(update=True) -> robotlib.MsfsimLibrary:
    """A library whose current plan is lenet5-r28 layer by layer on stm32f746, with figures set
    by hand (no emulator needed to exercise the baseline keywords)."""
    lib = robotlib.MsfsimLibrary(update_baselines=update)
    lib.load_model("zoo:lenet5-r28")
    lib.use_vanilla_plan("stm32f746")
    lib._last = robotlib.Figures("ok", "", 1000, 900, 600, 200, 100, 5000, "gcc 1",
                                 "unicorn", "unicorn 9", False)
    return lib


def test_recording_merges_into_the_baseline_file(tmp_path):
    path = tmp_path / "baselines.json"
    other = {"model": "x", "plan": ["L0-0:layer:1x1"], "instructions": 7}
    stale_key = "lenet5-r28/vanilla/unicorn"
    path.write_text(json.dumps({"format": 1, "generated_by": "someone", "msfsim": "0",
                                "entries": {"x/ram/unicorn": other,
                                            stale_key: {**other, "instructions": 1}}}))
    lib = _lib_with_measurement()
    lib.measurement_should_match_baseline(str(path))
    data = json.loads(path.read_text())
    # the other entry is kept as it was; the recorded one is replaced by what was measured
    assert data["entries"]["x/ram/unicorn"] == other
    rec = data["entries"][stale_key]
    assert rec["instructions"] == 1000 and rec["measured_ram"] == 900
    assert rec["model"] == "lenet5-r28" and rec["platform"] == "stm32f746" and rec["plan"]
    assert data["format"] == robotlib.BASELINE_FORMAT
    assert sorted(data["entries"]) == ["lenet5-r28/vanilla/unicorn", "x/ram/unicorn"]
    assert [p.name for p in tmp_path.iterdir()] == ["baselines.json"]  # atomic: no temp left
    # a second key in the same run, and then a check run: both entries are there to compare
    lib._set_plan(dataclasses.replace(lib._plan, tag="other"))
    lib._last = robotlib.Figures("ok", "", 2000, 950, 650, 200, 100, 5000, "gcc 1",
                                 "unicorn", "unicorn 9", False)
    lib.instructions_should_match_baseline(str(path))
    assert set(json.loads(path.read_text())["entries"]) == {
        "x/ram/unicorn", stale_key, "lenet5-r28/other/unicorn"}
    check = _lib_with_measurement(update=False)
    check.measurement_should_match_baseline(str(path))
    # the same key measured on another board is not compared with this board's figures
    figures = check._last
    check._set_plan(dataclasses.replace(check._plan, platform=platforms.load("nucleo-f767zi")))
    check._last = figures
    with pytest.raises(robotlib.Failure, match="recorded on stm32f746, this run is on "
                                              "nucleo-f767zi"):
        check.measurement_should_match_baseline(str(path))
    # a file that is not a baseline file is never overwritten by a recording
    bad = tmp_path / "notes.json"
    bad.write_text("my notes")
    with pytest.raises(robotlib.Failure, match="cannot record into"):
        lib.measurement_should_match_baseline(str(bad))
    assert bad.read_text() == "my notes"


def test_flash_is_compared_on_its_own(tmp_path):
    """`Flash Should Match Baseline` fails on a flash change that leaves the counts alone (a
    kernel linked into every firmware), which `Measurement Should Match Baseline` does not
    compare."""
    path = tmp_path / "baselines.json"
    _lib_with_measurement().measurement_should_match_baseline(str(path))
    data = json.loads(path.read_text())
    (entry,) = data["entries"].values()
    assert entry["flash_bytes"] == 5000
    check = _lib_with_measurement(update=False)
    check.flash_should_match_baseline(str(path))
    entry["flash_bytes"] = 4000
    path.write_text(json.dumps(data))
    check.measurement_should_match_baseline(str(path))  # instructions and RAM still equal
    with pytest.raises(robotlib.Failure, match=r"flash: baseline 4,000 B, actual 5,000 B "
                                               r"\(\+1,000 B\)"):
        check.flash_should_match_baseline(str(path))


def test_recording_switch_as_robot_variable(tmp_path, monkeypatch):
    """`robot --variable MSFSIM_UPDATE_BASELINES:1 SUITE` records (a new file here), and a run
    without it compares against what was recorded."""
    monkeypatch.delenv(robotlib.UPDATE_ENV, raising=False)
    suite = tmp_path / "budget.robot"
    suite.write_text(
        "*** Settings ***\nLibrary    msfsim.robotlib.MsfsimLibrary\n\n"
        "*** Test Cases ***\nRecorded\n"
        "    Load Model    zoo:lenet5-r28\n"
        "    Search Plan    stm32f746    objective=ram    max_overhead=1.5    cost=analytic\n"
        "    Measure Plan    unicorn\n"
        "    Measurement Should Match Baseline    ${CURDIR}/baselines.json\n")
    for i, variables in enumerate(([f"{robotlib.UPDATE_ENV}:1"], [])):
        out = tmp_path / f"out{i}"
        out.mkdir()
        with open(out / "console.txt", "w") as console:
            rc = robot.run(str(suite), outputdir=str(out), log="NONE", report="NONE",
                           variable=variables, stdout=console, pythonpath=[str(ROOT)])
        assert rc == 0, (out / "console.txt").read_text()
    entries = json.loads((tmp_path / "baselines.json").read_text())["entries"]
    assert list(entries) == ["lenet5-r28/ram,F<=1.5/unicorn"]


# ---------------------------------------------------------------- Search Plan's cost

def test_search_plan_default_cost_is_measured_as_on_the_command_line(monkeypatch):
    from msfsim.cli import build_parser
    from msfsim.pipeline import stages as measured
    from msfsim.search import api
    default = inspect.signature(robotlib.MsfsimLibrary.search_plan).parameters["cost"].default
    assert default == "measured"
    args = build_parser().parse_args(["search", "zoo:lenet5-r28", "--platform", "stm32f746"])
    assert args.cost == default
    # without a cost argument the keyword runs the measured search (stubbed here with the
    # analytic result, so that no firmware is built) and tags the plan with it
    calls: list[dict] = []

    def fake_measured(model, plat, **kw):
        calls.append(kw)
        return api.search_analytic(model, plat.name, objective=kw["objective"],
                                   max_overhead=kw["max_overhead"], sram_bytes=plat.sram.size)
    monkeypatch.setattr(measured, "search_measured", fake_measured)
    lib = robotlib.MsfsimLibrary()
    lib.load_model("zoo:lenet5-r28")
    lib.search_plan("stm32f746", objective="ram", max_overhead="1.5")
    assert len(calls) == 1 and calls[0]["backend"] == "unicorn"
    assert lib._plan.tag == "ram,F<=1.5,measured"
    # cost=analytic stays available, and does not touch the measured search
    lib.search_plan("stm32f746", objective="ram", max_overhead="1.5", cost="analytic")
    assert len(calls) == 1 and lib._plan.tag == "ram,F<=1.5"
    with pytest.raises(robotlib.Failure, match="unknown cost"):
        lib.search_plan("stm32f746", cost="guess")


# ---------------------------------------------------------------- failed measurements

@pytest.mark.parametrize("status", ["mismatch", "overflow", "fault"])
def test_a_failed_measurement_fails_as_on_the_command_line(monkeypatch, status):
    """`Measure Plan` turns a whole-plan outcome into a failure through the one rule the CLI
    uses (msfsim.measure.outcome.whole_plan_error), not a reading of its own."""
    from msfsim import pipeline
    from msfsim.measure.outcome import Outcome, whole_plan_error
    o = Outcome(status, "something went wrong", None, None, None, None, None, None, "gcc 1", False)
    monkeypatch.setattr(pipeline, "measure_blocks", lambda *a, **k: (o, "gcc 1"))
    lib = robotlib.MsfsimLibrary()
    lib.load_model("zoo:lenet5-r28")
    lib.use_vanilla_plan("stm32f746")
    with pytest.raises(robotlib.Failure) as exc:
        lib.measure_plan("unicorn")
    assert str(exc.value) == str(whole_plan_error(o, "unicorn", lib._plan.what))
    assert lib._last is None
