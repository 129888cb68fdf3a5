"""`--emit-c DIR`: the emitted project builds with make alone (after being moved), its firmware
runs in the emulator and reports pass with the reference output, the measured count matches
msfsim's own build, and DIR is written atomically and never over someone else's files. Two
projects emitted with symbol prefixes link into one C++ program; the header gives the model's
shapes and quantisation; the README says where the input lives; `make qemu` prints one line."""
from __future__ import annotations

import dataclasses
import os
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from msfsim import ROOT, MsfsimError, cli, platforms, refmodel, zoo
from msfsim.codegen import generate_plan, project
from msfsim.pipeline import measurement_input
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


# ----------------------------------------------------------------------------- prefix, C++, API

CPP_MAIN = r"""
// Two emitted models in one C++ program: both headers, one kernel library, one arena.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "msf_arena.h"
#include "a_generated.h"
#include "b_generated.h"

// The sample inputs and reference outputs of the projects' self-tests (app/).
extern "C" const int8_t a_input[A_INPUT_BYTES];
extern "C" const int8_t a_expected_output[A_OUTPUT_BYTES];
extern "C" const int8_t b_input[B_INPUT_BYTES];
extern "C" const int8_t b_expected_output[B_OUTPUT_BYTES];

static uint8_t arena[A_ARENA_BYTES > B_ARENA_BYTES ? A_ARENA_BYTES : B_ARENA_BYTES]
    __attribute__((aligned(8)));

void msf_fatal(int code) { std::printf("msf_fatal(%d)\n", code); std::exit(3); }

int main()
{
    static_assert(A_INPUT_H * A_INPUT_W * A_INPUT_C == A_INPUT_BYTES, "input shape");
    static_assert(B_OUTPUT_H * B_OUTPUT_W * B_OUTPUT_C == B_OUTPUT_BYTES, "output shape");
    msf_arena_init(arena, sizeof arena);
    const bool a_ok = std::memcmp(a_generated_run(a_input), a_expected_output, A_OUTPUT_BYTES) == 0;
    msf_arena_init(arena, sizeof arena);
    const bool b_ok = std::memcmp(b_generated_run(b_input), b_expected_output, B_OUTPUT_BYTES) == 0;
    std::printf("a %s, b %s\n", a_ok ? "PASS" : "FAIL", b_ok ? "PASS" : "FAIL");
    return a_ok && b_ok ? 0 : 1;
}
"""
SECOND_MODEL = "dscnn-kws"


def _compile(argv: list[str]) -> None:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, (argv, r.stderr[-2000:])


def _globals(obj: Path) -> set[str]:
    """Symbols an object defines with external linkage (nm: upper-case type, not U)."""
    out = subprocess.run(["nm", "--defined-only", str(obj)], capture_output=True, text=True,
                         check=True).stdout
    return {p[2] for p in (line.split() for line in out.splitlines())
            if len(p) == 3 and p[1].isupper()}


@pytest.mark.skipif(not all(shutil.which(t) for t in ("gcc", "g++", "nm")),
                    reason="host gcc, g++ or nm not installed")
def test_two_prefixed_models_link_into_one_cpp_program(model, tmp_path):
    """lenet5 as a_ and dscnn-kws as b_, emitted for one board: their generated sources, one
    copy of the kernel library and a C++ main that includes both headers link into one host
    program, which runs both plans and gets both reference outputs."""
    pa, ra = _search(model, "stm32f746")
    a = project.emit_project(model, pa, ra, tmp_path / "a", prefix="a_")
    second = zoo.load(SECOND_MODEL)
    pb, rb = _search(second, "stm32f746")
    b = project.emit_project(second, pb, rb, tmp_path / "b", prefix="b_")
    assert (a / "model/a_generated.h").is_file() and (b / "model/b_generated.c").is_file()
    assert not (a / "model/msf_generated.h").exists()
    for d, p in ((a, "a_"), (b, "b_")):
        h = (d / f"model/{p}generated.h").read_text()
        assert 'extern "C" {' in h and f"const int8_t *{p}generated_run(" in h
        assert "msf_input" not in h and "extern const" not in h  # no firmware data in the API
    assert (a / "lib/msf_arena.h").read_text().count('extern "C" {') == 1
    objs = tmp_path / "obj"
    objs.mkdir()
    inc = [f"-I{a}/model", f"-I{b}/model", f"-I{a}/lib"]
    sources = [a / "model/a_generated.c", a / "app/a_input.c", a / "app/a_expected.c",
               b / "model/b_generated.c", b / "app/b_input.c", b / "app/b_expected.c",
               *sorted((a / "lib").glob("*.c")), *sorted((a / "lib/kernels").glob("*.c"))]
    for src in sources:
        _compile(["gcc", "-O1", "-std=c11", "-Wall", "-Wextra", "-Werror", *inc, "-c", str(src),
                  "-o", str(objs / f"{src.stem}.o")])
    (tmp_path / "main.cpp").write_text(CPP_MAIN)
    _compile(["g++", "-std=c++11", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic", *inc, "-c",
              str(tmp_path / "main.cpp"), "-o", str(objs / "main.o")])
    exe = tmp_path / "two_models"
    _compile(["g++", "-o", str(exe), *map(str, sorted(objs.glob("*.o")))])
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and r.stdout.strip() == "a PASS, b PASS", r.stdout + r.stderr
    # Each plan's weights, parameters and descriptors are static: it exports its run only.
    assert _globals(objs / "a_generated.o") == {"a_generated_run"}
    assert _globals(objs / "b_generated.o") == {"b_generated_run"}


def _macros(header: str, prefix: str) -> dict[str, str]:
    return dict(re.findall(rf"#define {prefix}(\w+) (\S+)", header))


def test_header_gives_shapes_and_quantisation(tmp_path):
    m = zoo.load(SECOND_MODEL)  # its output zero point is negative
    p, result = _search(m, "stm32f746")
    d = project.emit_project(m, p, result, tmp_path / "p", prefix="kws_")
    got = _macros((d / "model/kws_generated.h").read_text(), "KWS_")
    for role, tid in (("INPUT", m.input), ("OUTPUT", m.output)):
        t = m.tensor(tid)
        assert float(got[f"{role}_SCALE"]) == t.q.scale  # the double literal reads back exactly
        assert int(got[f"{role}_ZERO_POINT"].strip("()")) == t.q.zero_point
        assert tuple(int(got[f"{role}_{a}"].rstrip("u")) for a in "HWC") == t.shape
        assert int(got[f"{role}_BYTES"].rstrip("u")) == t.size
    assert got["OUTPUT_ZERO_POINT"].startswith("(-")  # a negative macro is parenthesised
    readme = (d / "README.md").read_text()
    assert "`kws_generated_run`" in readme and "`KWS_ARENA_BYTES`" in readme
    assert "msf_generated" not in readme and "MSF_ARENA_BYTES" not in readme
    main = (d / "app/main.c").read_text()
    assert "extern const int8_t kws_input[KWS_INPUT_BYTES];" in main
    assert json.loads((d / project.MARKER).read_text())["prefix"] == "kws_"


def test_readme_follows_where_the_input_lives(model, tmp_path):
    """hifive1b reads the network input in place (its board default): its README must not say
    the input is copied into the arena; a board that copies it says so."""
    from msfsim.deploy import deploy
    texts = {}
    for board in ("hifive1b", "stm32f746"):
        p = platforms.load(board)
        m = deploy(model, p, None, wide=False)
        assert m.input_in_place == (board == "hifive1b")
        result = search_analytic(m, p.name, sram_bytes=p.sram.size)
        d = project.emit_project(m, p, result, tmp_path / board)
        texts[board] = " ".join((d / "README.md").read_text().split())
        header = (d / "model/msf_generated.h").read_text()
        assert f"#define MSF_INPUT_IN_PLACE {int(m.input_in_place)}" in header
    hifive, stm = texts["hifive1b"], texts["stm32f746"]
    assert "reads the input in place" in hifive and "`MSF_INPUT_IN_PLACE` = 1" in hifive
    assert "copied in by" not in hifive and "copies the network input" not in hifive
    assert "copied in by `msf_generated_run`" in stm and "`MSF_INPUT_IN_PLACE` = 0" in stm
    assert "in place" not in stm


def _make_qemu(d: Path, *args: str) -> subprocess.CompletedProcess:
    # as a user types it: cwd instead of -C (make -C adds "Entering/Leaving directory" lines),
    # and not as a sub-make of the test run's own make (which adds them too)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(["make", "qemu", *args], cwd=d, capture_output=True, text=True,
                          timeout=300, check=False, env=env)


def test_make_qemu_prints_one_verdict_line(model, tmp_path):
    _need("stm32f746")
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not installed")
    p, result = _search(model, "stm32f746")
    d = project.emit_project(model, p, result, tmp_path / "proj")
    _make(d)
    r = _make_qemu(d)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["msf self-test: PASS, output matches the reference"]
    r = _make_qemu(d, "V=1")  # the command and the firmware's whole report, then the verdict
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0].startswith("qemu-system-arm ")
    assert any(x.startswith("MSFR ") for x in lines) and any(x.startswith("MSFO ") for x in lines)
    assert lines[-1] == "msf self-test: PASS, output matches the reference"
    exp = d / "app/msf_expected.c"
    head, body = exp.read_text().split("{\n    ", 1)
    first, rest = body.split(",", 1)
    exp.write_text(f"{head}{{\n    {(int(first) + 1 + 128) % 256 - 128}," + rest)
    _make(d)
    r = _make_qemu(d)
    assert r.returncode != 0
    assert r.stdout.splitlines() == ["msf self-test: FAIL, output differs from the reference"]


@pytest.mark.parametrize("prefix", ["", "9a_", "a-b", "a b", "kws_\n", "a;rm", "ä_", "x" * 33,
                                    "msf_kws_", "MSF_", None])
def test_bad_prefix_is_refused(model, tmp_path, prefix):
    p, result = _search(model, "stm32f746")
    with pytest.raises(ValueError, match="prefix") as exc:
        project.emit_project(model, p, result, tmp_path / "p", prefix=prefix)
    assert isinstance(exc.value, MsfsimError) and "\n" not in str(exc.value)
    assert list(tmp_path.iterdir()) == []
