import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from msfsim import cache as cache_mod
from msfsim.measure.cache import (CacheDirError, MeasurementCache, default_dir, make_key, sweep_temp,
                                  usable_dir)


def test_key_depends_on_every_part_and_not_on_order():
    a = make_key(compiler="gcc 12.2", flags="-O2", elf="abc", backend="unicorn")
    assert a == make_key(backend="unicorn", elf="abc", flags="-O2", compiler="gcc 12.2")
    assert a != make_key(compiler="gcc 12.2", flags="-O3", elf="abc", backend="unicorn")
    assert a != make_key(compiler="gcc 12.2", flags="-O2", elf="abc", backend="qemu")


def test_roundtrip_and_persistence(tmp_path):
    with MeasurementCache(tmp_path) as c:
        assert c.get("k") is None
        c.put("k", {"instructions": 123, "stack_peak": 40})
    with MeasurementCache(tmp_path) as c:
        assert c.get("k") == {"instructions": 123, "stack_peak": 40}
        assert (c.hits, c.misses, len(c)) == (1, 0, 1)


def _writer(args):
    directory, start = args
    with MeasurementCache(directory) as c:
        for i in range(start, start + 200):
            c.put(f"k{i}", {"i": i})
    return True


def test_concurrent_writers(tmp_path):
    with mp.get_context("spawn").Pool(4) as pool:
        assert all(pool.map(_writer, [(str(tmp_path), s) for s in (0, 100, 200, 300)]))
    with MeasurementCache(tmp_path) as c:
        assert len(c) == 500
        assert all(c.get(f"k{i}") == {"i": i} for i in range(500))


# ----------------------------------------------------------------------------- damaged caches


def _filled(directory, n=300):
    with MeasurementCache(directory) as c:
        for i in range(n):
            c.put(f"k{i}", {"i": i, "pad": "x" * 100})
    return directory / "measurements.sqlite"


def _warnings(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line]


@pytest.mark.parametrize("damage", ["truncated", "header", "pages", "foreign-table"])
def test_corrupt_database_is_set_aside_with_one_warning(tmp_path, capsys, damage):
    db = _filled(tmp_path)
    if damage == "truncated":
        os.truncate(db, db.stat().st_size // 2)
    elif damage == "header":
        with open(db, "r+b") as f:
            f.write(b"\xa5" * 100)
    elif damage == "pages":
        with open(db, "r+b") as f:
            f.seek(4096)
            f.write(bytes(range(256)) * 64)
    else:  # some other program's database under our name
        db.unlink()
        with sqlite3.connect(db) as other:
            other.execute("CREATE TABLE measurements (id INTEGER)")
    with MeasurementCache(tmp_path) as c:
        assert c.get("k1") is None and len(c) == 0  # a new, empty cache
        c.put("k", {"ok": 1})
        assert c.get("k") == {"ok": 1}
    lines = _warnings(capsys)
    aside = sorted(tmp_path.glob("measurements.sqlite.corrupt-*"))
    assert len(lines) == 1 and "corrupt" in lines[0] and len(aside) == 1
    assert str(aside[0]) in lines[0] and str(db) in lines[0]
    with MeasurementCache(tmp_path) as c:  # the new one is sound: no warning, rows kept
        assert c.get("k") == {"ok": 1}
    assert not _warnings(capsys)


def test_wal_and_shm_go_aside_with_the_database(tmp_path, capsys):
    db = _filled(tmp_path)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"measurements.sqlite{suffix}").write_bytes(b"\x5a" * 512)
    with open(db, "r+b") as f:
        f.write(b"\xa5" * 100)
    with MeasurementCache(tmp_path) as c:
        c.put("k", {"a": 1})
        # The new database has none of the old files beside it (SQLite may already have
        # dropped an invalid WAL; what is left goes aside with the database).
        for s in ("-wal", "-shm"):
            p = tmp_path / f"measurements.sqlite{s}"
            assert not p.exists() or p.read_bytes()[:512] != b"\x5a" * 512
        assert c.get("k") == {"a": 1}
    assert len(list(tmp_path.glob("measurements.sqlite.corrupt-*"))) >= 1
    assert len(_warnings(capsys)) == 1


def test_bad_rows_are_misses(tmp_path):
    db = _filled(tmp_path, 5)
    with sqlite3.connect(db) as raw:
        for k, v in [("k0", "{not json"), ("k1", "[1, 2]"), ("k2", "null"), ("k3", '"text"')]:
            raw.execute("UPDATE measurements SET value = ? WHERE key = ?", (v, k))
    with MeasurementCache(tmp_path) as c:
        assert [c.get(f"k{i}") for i in range(4)] == [None] * 4
        assert c.get("k4", check=lambda v: "missing" in v) is None          # rejected by its reader
        assert c.get("k4", check=lambda v: v["missing"] > 0) is None        # a check that raises
        assert c.get("k4", check=lambda v: v["i"] == 4) == {"i": 4, "pad": "x" * 100}
        assert (c.hits, c.misses) == (1, 6)
        c.put("k0", {"i": 0})  # measured again: the row is replaced
        assert c.get("k0") == {"i": 0}


def test_sqlite_errors_while_running_cost_the_cache_not_the_caller(tmp_path, capsys):
    c = MeasurementCache(tmp_path)
    c.put("k", {"a": 1})
    c._db.close()  # the connection fails under it (any sqlite3.Error)
    assert c.get("k") is None
    c.put("k2", {"a": 2})
    assert len(c) == 0 and c.get("k2") is None
    c.close()
    lines = _warnings(capsys)
    assert len(lines) == 1 and "continuing without it" in lines[0]


# ----------------------------------------------------------------------------- the cache dir

def test_default_dir_rule(monkeypatch, tmp_path):
    monkeypatch.setenv("MSFSIM_CACHE", str(tmp_path / "env"))
    assert default_dir() == tmp_path / "env"
    monkeypatch.delenv("MSFSIM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_dir() == tmp_path / "xdg" / "msfsim"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_dir() == tmp_path / "home" / ".cache" / "msfsim"
    assert usable_dir() == tmp_path / "home" / ".cache" / "msfsim" and usable_dir().is_dir()


@pytest.mark.parametrize("where", ["file-in-the-way", "under-a-file"])
def test_unusable_dir_is_a_one_line_error(tmp_path, where):
    (tmp_path / "f").write_text("x")
    d = tmp_path / "f" if where == "file-in-the-way" else tmp_path / "f" / "cache"
    with pytest.raises(CacheDirError) as e:
        MeasurementCache(d)
    msg = str(e.value)
    assert e.value.exit_code == 2 and "\n" not in msg
    assert str(d) in msg and "--cache" in msg and "MSFSIM_CACHE" in msg


def test_sweep_removes_only_what_dead_processes_left(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    host = cache_mod._HOST
    made = {
        "dead": tmp_path / "elf" / "b" / f".build-{host}-{dead}-x",
        "gen-dead": tmp_path / "generated" / f".gen-{host}-{dead}-x",
        "work-dead": tmp_path / f".work-{host}-{dead}-x",
        "alive": tmp_path / "elf" / "b" / f".build-{host}-{os.getppid()}-x",
        "mine": tmp_path / f".work-{host}-{os.getpid()}-x",
        "other-host": tmp_path / "generated" / f".gen-elsewhere-{dead}-x",
        "old-other-host": tmp_path / "generated" / f".gen-elsewhere-{dead}-y",
        "not-ours": tmp_path / "generated" / "abc",
    }
    for p in made.values():
        p.mkdir(parents=True)
        (p / "f").write_text("x")
    probe = tmp_path / f".probe-{host}-{dead}-x"  # a file: the writability check's
    probe.write_text("")
    old = time.time() - 2 * cache_mod.TEMP_MAX_AGE_S
    os.utime(made["old-other-host"], (old, old))
    sweep_temp(tmp_path)
    gone = {k for k, p in made.items() if not p.exists()}
    assert gone == {"dead", "gen-dead", "work-dead", "old-other-host"} and not probe.exists()
    sweep_temp(tmp_path, dead=[os.getppid()])
    assert not made["alive"].exists() and made["mine"].exists()
