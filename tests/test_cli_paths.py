"""Bad options and paths are refused before any work (issue "Untrusted models", "Options and
paths"): exit 2, one stderr line naming the option and the path, no traceback, nothing written,
and at once — the searches below would take minutes if the check came after the work."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from msfsim import MsfsimError, fileio

# A measured search of this model takes a minute cold: a refusal within seconds proves the
# check ran first.
BIG = "zoo:mbv2-w0.35-r144"
BOARD = "stm32f746"
FAST_S = 15.0  # generous: the machine is shared; a refusal takes well under a second


def msfsim(*args, cwd):
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "msfsim", *map(str, args)], capture_output=True,
                       text=True, cwd=cwd, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    r.elapsed = time.perf_counter() - t0
    return r


def tree(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1)
                  for p in root.rglob("*"))


@pytest.fixture
def place(tmp_path):
    """cwd with a file `f`, an empty directory `d`, a bad JSON file and a JSON array."""
    (tmp_path / "f").write_text("x\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "bad.json").write_text("{\n")
    (tmp_path / "list.json").write_text("[1, 2]\n")
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY")
    return tmp_path


def refused(r, *needles):
    """Exit 2 and one line on stderr naming every needle, no traceback, fast."""
    err = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], err)
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert str(n) in err, (n, err)
    assert r.elapsed < FAST_S, f"took {r.elapsed:.1f} s: the check did not come before the work"
    return err


SEARCH = ("search", BIG, "--platform", BOARD)  # measured: the default cost


@pytest.mark.parametrize("opt,value", [
    ("--max-ram", "inf"), ("--max-ram", "nan"), ("--max-ram", "-5"), ("--max-ram", "0"),
    ("--max-ram", "1e400"), ("--max-ram", "0.25"), ("--max-ram", "-inf"),
    ("--max-overhead", "inf"), ("--max-overhead", "nan"), ("--max-overhead", "0"),
    ("--jobs", "0"), ("--jobs", "-3"), ("--jobs", "two"),
])
def test_bad_numeric_options(place, opt, value):
    extra = ["--objective", "latency"] if opt == "--max-ram" else []
    before = tree(place)
    refused(msfsim(*SEARCH, *extra, f"{opt}={value}", cwd=place), opt, value)
    assert tree(place) == before


def test_jobs_above_core_count_is_clamped_with_a_note(place):
    n = (os.cpu_count() or 1) * 100 + 1
    r = msfsim("search", "zoo:lenet5-r28", "--platform", BOARD, "--cost", "analytic", "--json",
               "--jobs", n, cwd=place)
    assert r.returncode == 0, r.stderr
    note = [line for line in r.stderr.splitlines() if "--jobs" in line]
    assert len(note) == 1 and f"--jobs {n}" in note[0] and f"using {os.cpu_count()}" in note[0]
    json.loads(r.stdout)


# (arguments after SEARCH or the command, option named, path named)
SEARCH_PATHS = [
    (["-o", "d"], "--output", "d"),
    (["-o", "d/"], "--output", "d/"),
    (["--output", "f/plan.json"], "--output", "f/plan.json"),
    (["-o", "f/sub/plan.json"], "--output", "f/sub/plan.json"),
    (["--report", "f"], "--report", "f"),
    (["--report", "f/rep"], "--report", "f/rep"),
    (["--cache", "f"], "--cache", "f"),
    (["--cache", "f/c/d"], "--cache", "f/c/d"),
    (["--emit-c", "f"], "--emit-c", "f"),
    (["--emit-c", "f/proj"], "--emit-c", "f/proj"),
]


@pytest.mark.parametrize("args,opt,path", SEARCH_PATHS, ids=[" ".join(a) for a, _, _ in SEARCH_PATHS])
def test_search_paths_checked_before_the_search(place, args, opt, path):
    before = tree(place)
    refused(msfsim(*SEARCH, *args, cwd=place), opt, path)
    assert tree(place) == before


def test_a_bad_path_after_good_ones_writes_none_of_them(place):
    before = tree(place)
    refused(msfsim(*SEARCH, "-o", "out/plan.json", "--report", "out/rep", "--emit-c", "f",
                   cwd=place), "--emit-c", "f")
    assert tree(place) == before


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_place_where_nothing_can_be_created(place):
    # Mode bits do not stop root; /proc refuses new files to everyone.
    refused(msfsim(*SEARCH, "-o", "/proc/plan.json", cwd=place), "--output", "/proc/plan.json")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0o555 directory regardless; "
                                               "test_a_place_where_nothing_can_be_created "
                                               "covers it")
@pytest.mark.parametrize("args,opt", [(["-o", "ro/plan.json"], "--output"),
                                      (["--report", "ro/rep"], "--report"),
                                      (["--report", "ro"], "--report"),
                                      (["--cache", "ro/new/deeper"], "--cache")])
def test_read_only_directory(place, args, opt):
    ro = place / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        refused(msfsim(*SEARCH, *args, cwd=place), opt, args[1])
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


PLAN_CASES = [("missing.json", "no such file"), ("d", "directory"),
              ("bad.json", "not a JSON plan"), ("list.json", "expected a JSON object")]


@pytest.mark.parametrize("plan,why", PLAN_CASES)
def test_measure_plan_checked_first(place, plan, why):
    before = tree(place)
    refused(msfsim("measure", BIG, "--platform", BOARD, "--plan", plan, cwd=place),
            "--plan", plan, why)
    assert tree(place) == before


@pytest.mark.parametrize("plan,why", PLAN_CASES)
def test_run_plan_checked_first(place, plan, why):
    np = pytest.importorskip("numpy")
    np.save(place / "x.npy", np.zeros((144, 144, 3), np.int8))
    before = tree(place)
    refused(msfsim("run", BIG, "--platform", BOARD, "--backend", "unicorn", "--plan", plan,
                   "--input", "x.npy", "--output", "y.npy", cwd=place), "--plan", plan, why)
    assert tree(place) == before


@pytest.mark.parametrize("args,opt,path", [
    (["--input", "missing.npy", "--output", "y.npy"], "--input", "missing.npy"),
    (["--input", "d", "--output", "y.npy"], "--input", "d"),
    (["--input", "x.npy", "--output", "d"], "--output", "d"),
    (["--input", "x.npy", "--output", "f/y.npy"], "--output", "f/y.npy"),
])
def test_run_paths_checked_first(place, args, opt, path):
    before = tree(place)
    refused(msfsim("run", BIG, "--platform", BOARD, "--backend", "unicorn", *args, cwd=place),
            opt, path)
    assert tree(place) == before


@pytest.mark.parametrize("out", ["d", "f/m.onnx", "sub/"])
def test_zoo_export_output(place, out):
    before = tree(place)
    refused(msfsim("zoo", "export", "lenet5-r28", "-o", out, cwd=place), "--output", out)
    assert tree(place) == before


@pytest.mark.parametrize("out", ["f", "f/sub"])
def test_reproduce_out(place, out):
    # The reproduction takes minutes: refusing within seconds shows the check came first.
    before = tree(place)
    refused(msfsim("reproduce", "msf-cnn", "--out", out, cwd=place), "--out", out)
    assert tree(place) == before


def test_good_paths_are_created(place):
    r = msfsim("search", "zoo:lenet5-r28", "--platform", BOARD, "--cost", "analytic",
               "-o", "new/deeper/plan.json", "--report", "new/rep", cwd=place)
    assert r.returncode == 0, r.stderr
    assert json.loads((place / "new/deeper/plan.json").read_text())["blocks"]
    assert (place / "new/rep/index.html").is_file()
    assert not [p for p in place.rglob(".msfsim-check-*")]
    r = msfsim("zoo", "export", "lenet5-r28", "-o", "f", cwd=place)  # a file is replaced
    assert r.returncode == 0, r.stderr
    assert (place / "f").stat().st_size > 1000


# ------------------------------------------------------------------ the helpers themselves

def test_helpers(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "dead").symlink_to(tmp_path / "nowhere")
    fileio.check_output_file(tmp_path / "a/b/c.json", "-o")   # creatable: fine
    fileio.check_output_file(tmp_path / "f", "-o")            # replaced atomically: fine
    fileio.check_output_file(tmp_path / "dead", "-o")         # replaces the link: fine
    fileio.check_output_dir(tmp_path / "x/y", "--report")
    fileio.check_output_dir(tmp_path, "--report")
    with pytest.raises(MsfsimError, match="broken symbolic link"):
        fileio.check_output_dir(tmp_path / "dead", "--report")
    with pytest.raises(MsfsimError, match="not a regular file"):
        fileio.check_output_file("/dev/null", "-o")
    with pytest.raises(MsfsimError, match="empty path"):
        fileio.check_output_file("", "-o")
    with pytest.raises(MsfsimError, match="NUL"):
        fileio.check_output_dir("a\0b", "--report")
    with pytest.raises(MsfsimError, match=r"--plan .*: no such file"):
        fileio.read_json_file(tmp_path / "none.json", "--plan")
    weird = tmp_path / "new\nline"
    with pytest.raises(MsfsimError) as e:
        fileio.check_input_file(weird, "--input")
    assert "\n" not in str(e.value)  # quoted: still one line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dead", "f"]  # the checks create nothing
