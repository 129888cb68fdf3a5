"""`--emit-c DIR`: the emitted project builds with make alone (after being moved), its firmware
runs in the emulator and reports pass with the reference output, the measured count matches
msfsim's own build, and DIR is written atomically and never over someone else's files."""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from msfsim import ROOT, MsfsimError, cli, platforms, refmodel, zoo
from msfsim.codegen import generate_plan, project
from msfsim.measure_plan import measurement_input
from msfsim.search.api import search_analytic
from msfsim.search.result import MEMORY_CONVENTION
from msfsim.sim import get_backend
from msfsim.toolchain import Elf

MODEL = "lenet5-r28"
BOARDS = ["stm32f746", "hifive1b"]


@pytest.fixture(scope="module")
def model():
    return zoo.load(MODEL)


def _search(model, board: str):
    p = platforms.load(board)
    return p, search_analytic(model, p.name, sram_bytes=p.sram.size)


def _need(board: str) -> None:
    p = platforms.load(board)
    if shutil.which(p.gcc) is None or shutil.which("make") is None:
        pytest.skip(f"{p.gcc} or make not installed")
    ok, why = get_backend("unicorn").available(p)
    if not ok:
        pytest.skip(why)


def _make(d: Path) -> Path:
    r = subprocess.run(["make", "-C", str(d)], capture_output=True, text=True, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return d / "firmware.elf"


def _run(elf: Path, board: str):
    p = platforms.load(board)
    return get_backend("unicorn").run(Elf(str(elf), p.name, p.gcc, "emitted"), p)


def _moved_project(model, board: str, tmp_path: Path) -> tuple[Path, object]:
    """Emit, then move the project elsewhere and delete the original: a path back into the
    emitting tree or the first location would break the build."""
    p, result = _search(model, board)
    first = project.emit_project(model, p, result, tmp_path / "a" / "proj")
    moved = tmp_path / "b" / "proj"
    shutil.copytree(first, moved)
    shutil.rmtree(tmp_path / "a")
    return moved, result


@pytest.mark.parametrize("board", BOARDS)
def test_project_builds_elsewhere_and_passes(model, board, tmp_path):
    _need(board)
    d, result = _moved_project(model, board, tmp_path)
    for f in d.rglob("*"):
        if f.is_file():
            text = f.read_bytes()
            assert str(ROOT).encode() not in text and str(tmp_path).encode() not in text, f
    m = _run(_make(d), board)
    x = measurement_input(model)
    assert m.status == "ok", m.detail  # the self-test sets ok only when the output matched
    assert m.output == refmodel.run(model, x).tobytes()
    arena = int(re.search(r"#define MSF_ARENA_BYTES (\d+)u", (d / "model/msf_generated.h")
                          .read_text()).group(1))
    assert arena == generate_plan(model, [b.block for b in result.plan.blocks], x).arena_bytes
    assert 0 < m.arena_peak <= arena
    readme = (d / "README.md").read_text()
    assert f"`MSF_ARENA_BYTES` = {arena:,} bytes" in readme
    assert MEMORY_CONVENTION.removeprefix("memory: ") in readme
    assert f"| {len(result.plan.blocks) - 1} | " in readme  # one table row per block
    assert (d / project.MARKER).is_file()
    r = subprocess.run(["make", "-C", str(d), "clean"], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and not (d / "firmware.elf").exists() and not (d / "build").exists()


def test_same_instruction_count_as_msfsim_build(model, tmp_path, monkeypatch):
    """The Makefile reproduces the compiler and flags msfsim measures with."""
    _need("stm32f746")
    from msfsim.measure import build_firmware
    monkeypatch.setenv("MSFSIM_CACHE", str(tmp_path / "cache"))
    d, result = _moved_project(model, "stm32f746", tmp_path)
    ours = _run(_make(d), "stm32f746")
    x = measurement_input(model)
    generate_plan(model, [b.block for b in result.plan.blocks], x).write(tmp_path / "gen")
    elf = build_firmware("stm32f746", tmp_path / "gen")
    theirs = get_backend("unicorn").run(elf, platforms.load("stm32f746"))
    assert theirs.status == "ok" and ours.instructions == theirs.instructions > 0


def test_wrong_reference_reports_fail(model, tmp_path):
    _need("stm32f746")
    d, _ = _moved_project(model, "stm32f746", tmp_path)
    exp = d / "app/msf_expected.c"
    text = exp.read_text()
    head, body = text.split("{\n    ", 1)
    first, rest = body.split(",", 1)
    exp.write_text(f"{head}{{\n    {(int(first) + 1 + 128) % 256 - 128}," + rest)
    m = _run(_make(d), "stm32f746")
    assert m.status == "fault" and f"msf_fatal({project.CHECK_FATAL_CODE})" in m.detail


def _siblings(d: Path) -> list[str]:
    return sorted(p.name for p in d.parent.iterdir())


def test_refuses_foreign_directory(tmp_path, capsys):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    rc = cli.main(["search", f"zoo:{MODEL}", "--platform", "stm32f746", "--cost", "analytic",
                   "--emit-c", str(d)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and str(d) in err
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]
    assert _siblings(d) == ["mine"]


def test_replaces_previous_project_and_accepts_empty_dir(model, tmp_path):
    p, result = _search(model, "stm32f746")
    d = tmp_path / "proj"
    d.mkdir()  # empty: fine
    project.emit_project(model, p, result, d)
    (d / "stale.txt").write_text("from the previous emission")
    project.emit_project(model, p, result, d)
    assert not (d / "stale.txt").exists() and (d / "Makefile").is_file()
    assert _siblings(d) == ["proj"]


def test_failure_midway_leaves_nothing(model, tmp_path, monkeypatch):
    p, result = _search(model, "stm32f746")

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(project, "_readme", boom)
    with pytest.raises(OSError):
        project.emit_project(model, p, result, tmp_path / "proj")
    assert list(tmp_path.iterdir()) == []


def test_unsupported_cases_are_one_line_errors(model, tmp_path, capsys):
    rc = cli.main(["search", f"zoo:{MODEL}", "--platform", "esp32", "--cost", "analytic",
                   "--emit-c", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "proxy" in err
    # A plan whose arena cannot fit the board's SRAM is refused before anything is written.
    big = zoo.load("resnet8-r32")
    result = search_analytic(big, "stm32f746", objective="latency", max_ram=320 * 1024)
    tiny = platforms.load("hifive1b")
    with pytest.raises(MsfsimError, match="SRAM"):
        project.emit_project(big, tiny, dataclasses.replace(result, platform="hifive1b"),
                             tmp_path / "q")
    assert list(tmp_path.iterdir()) == []
