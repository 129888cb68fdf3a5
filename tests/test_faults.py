"""Hostile environments, with real processes: a search killed (SIGKILL, SIGTERM, SIGINT) leaves
no process and no temporary dir behind and a rerun resumes from its cache with the same result;
a damaged cache (database file, rows, ELFs) is set aside or rebuilt, never trusted; a cache dir
that cannot be used is exit 2 before anything is measured; a firmware too big for the board is
exit 3 naming the region and the overflow; a crashing worker costs its candidate, not the search."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from msfsim import refmodel, zoo
from msfsim import measure as engine  # the measurement engine
from msfsim.measure import jobs as measure_jobs
from msfsim.measure.cache import DB_NAME, CacheDirError, temp_dirs
from msfsim.measure.jobs import _ROW

MODEL = "lenet5-r28"          # a full measured search: seconds once the ELFs are cached
BIG = "mbv2-w0.35-r144"       # long enough to be killed while its workers run
BOARD = "stm32f746"
ROOT = Path(__file__).resolve().parent.parent


def run_msfsim(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "msfsim", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT, stdin=subprocess.DEVNULL)


def search(cache: Path, model: str = MODEL, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_msfsim("search", f"zoo:{model}", "--platform", BOARD, "--cache", str(cache),
                      "--jobs", "2", "--json", env=env)


def result(p: subprocess.CompletedProcess) -> dict:
    """The search result without what legitimately differs between a cold and a warm run."""
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    j = json.loads(p.stdout)
    j.pop("search_seconds", None)
    for k in ("stats", "rounds"):
        j["measurement"].pop(k, None)
    for k in ("history", "rounds"):  # a warm run settles the front in fewer rounds
        j["measurement"].get("front", {}).pop(k, None)
    return j


def copy_cache(src: Path, dst: Path, measurements: bool = True) -> Path:
    shutil.copytree(src, dst, ignore=None if measurements else shutil.ignore_patterns(f"{DB_NAME}*"))
    return dst


def leftovers(cache: Path) -> list[Path]:
    """Temporary files and dirs under the cache root (msfsim's all start with a dot)."""
    return sorted({*temp_dirs(cache), *(p for p in cache.rglob(".*"))})


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A clean cold run: its cache (ELFs, generated sources, measurements) and its result."""
    cache = tmp_path_factory.mktemp("clean") / "cache"
    p = search(cache)
    return cache, result(p)


# ----------------------------------------------------------------------------- killed searches

def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        pass
    return out


def _descendants(pid: int) -> set[int]:
    seen: set[int] = set()
    todo = _children(pid)
    while todo:
        c = todo.pop()
        if c not in seen:
            seen.add(c)
            todo += _children(c)
    return seen


def _alive(pid: int) -> bool:
    """Running (a zombie whose parent is gone is dead: PID 1 of a container may not reap)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def _mentioning(text: str) -> set[int]:
    """Live processes whose command line mentions `text` (workers, compilers of the cache)."""
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if text.encode() in f.read() and _alive(int(d)):
                        out.add(int(d))
            except OSError:
                pass
    return out


needs_proc = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@needs_proc
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_killed_search_leaves_nothing_behind_and_resumes(sig, clean, tmp_path):
    src, want = clean
    cache = copy_cache(src, tmp_path / "cache")
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        # -X faulthandler: if it hangs, SIGABRT prints every thread's stack into the log.
        # SIGINT as a terminal's Ctrl-C finds it: not ignored, even when the suite runs as a
        # background job (which inherits SIGINT ignored, and msfsim rightly keeps that).
        p = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "msfsim", "search",
                              f"zoo:{BIG}", "--platform", BOARD, "--cache", str(cache),
                              "--jobs", "2"], cwd=ROOT,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                             start_new_session=True, preexec_fn=_default_sigint)
    seen: set[int] = set()
    try:
        # Until both pool workers exist and one of them runs a compiler or an emulator.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and p.poll() is None:
            workers = _children(p.pid)
            seen |= _descendants(p.pid)
            if len(workers) >= 2 and any(_children(w) for w in workers):
                break
            time.sleep(0.05)
        assert p.poll() is None and len(_children(p.pid)) >= 2, log.read_text()
        for _ in range(5):
            seen |= _descendants(p.pid)
            time.sleep(0.01)
        os.kill(p.pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (p.poll() is None or any(map(_alive, seen))
                                               or _mentioning(str(cache))):
            time.sleep(0.1)
        if p.poll() is None:
            os.kill(p.pid, signal.SIGABRT)
            time.sleep(2)
            assert False, f"msfsim did not stop; its threads:\n{log.read_text()[-6000:]}"
        survivors = sorted(x for x in seen if _alive(x)) + sorted(_mentioning(str(cache)))
        assert not survivors, f"still running after 10 s: {survivors}"
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        for pid in seen | _mentioning(str(cache)):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    stderr = log.read_text()
    if sig == signal.SIGKILL:
        assert p.returncode == -signal.SIGKILL
    else:  # as Ctrl-C: one line, no traceback
        assert p.returncode == 130, stderr
        assert "Traceback" not in stderr and "interrupted" in stderr
    assert not leftovers(cache)
    with sqlite3.connect(cache / DB_NAME) as db:
        assert db.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    # The cache is whole: the rerun takes everything from it and finds the same plan.
    again = search(cache)
    assert result(again) == want
    assert json.loads(again.stdout)["measurement"]["stats"]["measured"] == 0
    assert not leftovers(cache)


@needs_proc
def test_search_killed_midway_resumes_with_the_same_result(clean, tmp_path):
    """SIGKILL of the very search that is rerun, part of its measurements made."""
    src, want = clean
    cache = copy_cache(src, tmp_path / "cache", measurements=False)  # ELFs only
    p = subprocess.Popen([sys.executable, "-m", "msfsim", "search", f"zoo:{MODEL}", "--platform",
                          BOARD, "--cache", str(cache), "--jobs", "2"], cwd=ROOT,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None and len(_children(p.pid)) < 2:
            time.sleep(0.02)
        time.sleep(0.5)  # some measurements in the cache, not all
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _mentioning(str(cache)):
        time.sleep(0.1)
    assert not _mentioning(str(cache))
    assert result(search(cache)) == want
    assert not leftovers(cache)


# ----------------------------------------------------------------------------- damaged caches

def _garble(path: Path, offset: int, n: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(bytes((i * 37 + 11) % 256 for i in range(n)))


@pytest.mark.parametrize("damage", ["truncated", "header", "pages"])
def test_corrupt_measurement_cache_is_set_aside(damage, clean, tmp_path):
    src, want = clean
    cache = copy_cache(src, tmp_path / "cache")
    db = cache / DB_NAME
    if damage == "truncated":
        os.truncate(db, db.stat().st_size // 2)
    elif damage == "header":
        _garble(db, 0, 100)
    else:
        _garble(db, 4096, db.stat().st_size - 4096)
    p = search(cache)
    assert result(p) == want
    warnings = [line for line in p.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "corrupt" in warnings[0], p.stderr
    aside = sorted(cache.glob(f"{DB_NAME}.corrupt-*"))
    assert len(aside) == 1 and str(aside[0]) in warnings[0]
    # A new database, whole: a second run finds everything in it.
    again = search(cache)
    assert result(again) == want and not again.stderr.strip()
    assert json.loads(again.stdout)["measurement"]["stats"]["measured"] == 0


def test_bad_rows_are_misses_and_measured_again(clean, tmp_path):
    src, want = clean
    cache = copy_cache(src, tmp_path / "cache")
    with sqlite3.connect(cache / DB_NAME) as db:
        keys = [k for (k,) in db.execute("SELECT key FROM measurements ORDER BY key")]
        bad = ['{"status": "ok", "instruc', "[1, 2, 3]", "{}", '{"status": "ok"}',
               json.dumps({**_ROW, "status": "ok", "instructions": "many"}), "null"]
        for i, k in enumerate(keys):
            db.execute("UPDATE measurements SET value = ? WHERE key = ?", (bad[i % len(bad)], k))
    p = search(cache)
    assert result(p) == want
    assert json.loads(p.stdout)["measurement"]["stats"]["measured"] > 0
    assert not list(cache.glob(f"{DB_NAME}.corrupt-*"))  # rows, not the file: nothing set aside


def _sha_ok(elf: Path) -> bool:
    want = elf.with_name(elf.name + ".sha256").read_text().split()[0]
    return hashlib.sha256(elf.read_bytes()).hexdigest() == want


def test_truncated_cached_elf_is_rebuilt(clean, tmp_path):
    src, want = clean
    cache = copy_cache(src, tmp_path / "cache", measurements=False)  # every ELF needed again
    elves = sorted((cache / "elf" / BOARD).glob("*.elf"))
    assert elves and all(_sha_ok(e) for e in elves)
    victims = {e: e.stat().st_size for e in elves[:: max(1, len(elves) // 3)]}
    for e, size in victims.items():
        os.truncate(e, size // 2)
    (cache / "elf" / BOARD / (elves[-1].name + ".sha256")).unlink()  # and one without its digest
    assert result(search(cache)) == want
    for e, size in victims.items():
        assert e.stat().st_size == size and _sha_ok(e)
    assert all(_sha_ok(e) for e in elves)
    assert not leftovers(cache)


# ----------------------------------------------------------------------------- unusable cache dirs

def _env(**kw: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MSFSIM_CACHE", "XDG_CACHE_HOME")}
    env.update(kw)
    return env


def _one_line_exit_2(p: subprocess.CompletedProcess, directory: str, elapsed: float) -> None:
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert directory in lines[0]
    assert not p.stdout and elapsed < 30  # refused before any measurement


@pytest.mark.parametrize("how", ["home-cache-is-a-file", "env-under-a-file", "unwritable"])
def test_unusable_cache_dir_is_exit_2_at_once(how, tmp_path):
    (tmp_path / "afile").write_text("x")
    if how == "home-cache-is-a-file":  # HOME/.cache is a file: the default cannot be created
        home = tmp_path / "home"
        home.mkdir()
        (home / ".cache").write_text("x")
        env, directory = _env(HOME=str(home)), str(home / ".cache" / "msfsim")
    elif how == "env-under-a-file":
        directory = str(tmp_path / "afile" / "cache")
        env = _env(MSFSIM_CACHE=directory)
    else:  # read-only: a directory nobody may write (for root, /proc takes no new dirs)
        if os.geteuid() != 0:
            ro = tmp_path / "ro"
            ro.mkdir()
            ro.chmod(0o500)
            directory = str(ro / "cache")
        else:
            directory = "/proc/msfsim-cache"
        env = _env(MSFSIM_CACHE=directory)
    t0 = time.monotonic()
    p = run_msfsim("search", f"zoo:{MODEL}", "--platform", BOARD, "--jobs", "2", env=env)
    _one_line_exit_2(p, directory, time.monotonic() - t0)
    assert "--cache" in p.stderr and "MSFSIM_CACHE" in p.stderr


def test_unusable_cache_dir_from_the_api(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CacheDirError) as e:
        engine.Measurer(BOARD, jobs=1, cache_dir=tmp_path / "afile", progress=False)
    assert e.value.exit_code == 2 and str(tmp_path / "afile") in str(e.value)


# ----------------------------------------------------------------------------- link overflow

def test_link_overflow_is_exit_3_naming_region_and_bytes(tmp_path):
    p = run_msfsim("measure", f"zoo:{BIG}", "--platform", "hifive1b", "--vanilla",
                   env=_env(MSFSIM_CACHE=str(tmp_path / "cache")))
    assert p.returncode == 3, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert "SRAM" in lines[0] and "overflowed by" in lines[0] and "bytes" in lines[0]


# ----------------------------------------------------------------------------- a crashing worker

_VICTIM = "L1-1:layer:1x1"
_measure_job = engine.measure_job


def _crashing_job(job):
    if job.label == _VICTIM:  # the emulator or a compiler dies with the worker
        os.kill(os.getpid(), signal.SIGKILL)
    return _measure_job(job)


def test_worker_crash_costs_its_candidate_only(clean, tmp_path, monkeypatch):
    from msfsim.codegen import generate_block
    from msfsim.deploy import deploy
    from msfsim.fusion.block import Block
    from msfsim.fusion.geometry import block_structure
    from msfsim.platforms import load

    src, _ = clean
    cache = copy_cache(src, tmp_path / "cache", measurements=False)
    model = deploy(zoo.load(MODEL), load(BOARD))
    values = refmodel.run_layers(model, engine.measurement_input(model))
    items = []
    for i in range(3):
        b = Block(i, i)
        code = generate_block(model, b, [values[t] for t in block_structure(model, i, i).inputs])
        items.append(engine.Item(b.key, code, engine.output_digest(values[code.output]),
                                       10**9))
    assert _VICTIM in {it.label for it in items}
    monkeypatch.setattr(measure_jobs, "measure_job", _crashing_job)  # the pool forks: workers see it
    with engine.Measurer(BOARD, jobs=2, cache_dir=cache, progress=False) as m:
        out = m.measure(items)
    assert out[_VICTIM].status == "error" and "died" in out[_VICTIM].detail
    assert all(o.ok for k, o in out.items() if k != _VICTIM)
    assert not leftovers(cache)
