"""Persistent measurement cache: SQLite, keyed by everything that determines a result.

SQLite in WAL mode gives atomic commits, so concurrent writers (a process pool, two msfsim runs)
and interrupted runs (Ctrl-C, a killed process) leave it consistent: a row is there whole or not
at all. Values are JSON objects.

A cache is a hint, never an authority: a database that fails `PRAGMA quick_check` or is not
one at all is moved aside (`measurements.sqlite.corrupt-<time>`, with its -wal / -shm), named
in one warning line, and started anew; a row that is not a JSON object with the keys its reader
needs is a miss; an error of SQLite while the search runs costs the cache, not the search.

This module also holds the one rule for where msfsim keeps files (`default_dir`,
`usable_dir`) and for naming the temporary directories of builds and workers so that a later
run can remove what a killed one left (`temp_prefix`, `sweep_temp`).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from msfsim import MsfsimError

SCHEMA_VERSION = 1
DB_NAME = "measurements.sqlite"


class CacheDirError(MsfsimError):
    """The cache directory cannot be created or written (exit 2)."""


def default_dir() -> Path:
    """msfsim's cache root when no --cache is given: $MSFSIM_CACHE, else
    $XDG_CACHE_HOME/msfsim, else ~/.cache/msfsim."""
    env = os.environ.get("MSFSIM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME and no passwd entry
            raise CacheDirError("no cache directory: HOME is not set; give one with --cache DIR "
                                "or MSFSIM_CACHE=DIR") from None
    return Path(base) / "msfsim"


_USABLE: set[str] = set()


def usable_dir(directory: str | Path | None = None) -> Path:
    """The cache root (`directory`, else `default_dir()`), created and checked writable: a
    directory that cannot be used is a one-line error (exit 2) before anything is measured."""
    d = Path(directory) if directory else default_dir()
    if str(d) in _USABLE:
        return d
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=temp_prefix("probe"), dir=d)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise CacheDirError(f"cannot use the cache directory {d}: {why}; choose a writable one "
                            f"with --cache DIR or MSFSIM_CACHE=DIR") from None
    _USABLE.add(str(d))
    return d


def make_key(**parts: Any) -> str:
    """Stable key from named parts (compiler, version, flags, backend, platform, ELF hash, ...)."""
    blob = json.dumps({"v": SCHEMA_VERSION, **parts}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# ----------------------------------------------------------------------------- temporary dirs

_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"
_TEMP = re.compile(r"^\.(?:build|gen|work|probe)-(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-")
TEMP_MAX_AGE_S = 86400.0   # a temporary dir this old is stale whoever owns it


def temp_prefix(kind: str) -> str:
    """Name prefix of a temporary dir of this process under the cache root: `.KIND-HOST-PID-`.
    `sweep_temp` removes it once its process is gone."""
    return f".{kind}-{_HOST}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's process
        return True
    try:  # a zombie is dead for our purposes (its owner cannot write any more)
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def temp_dirs(root: str | Path) -> list[Path]:
    """The temporary dirs (and probe files) msfsim creates under the cache root `root`."""
    r = Path(root)
    found: list[Path] = []
    for pattern in (".work-*", ".probe-*", "generated/.gen-*", "elf/*/.build-*"):
        try:
            found += [p for p in r.glob(pattern) if _TEMP.match(p.name)]
        except OSError:
            pass
    return found


def sweep_temp(root: str | Path, dead: Iterable[int] = ()) -> None:
    """Remove the temporary dirs under `root` whose process has ended (or is in `dead`, the
    pids of workers just killed), or that are older than a day."""
    dead = set(dead)
    now = time.time()
    for p in temp_dirs(root):
        m = _TEMP.match(p.name)
        pid = int(m["pid"])  # type: ignore[index]
        mine = m["host"] == _HOST  # type: ignore[index]
        try:
            old = now - p.stat().st_mtime > TEMP_MAX_AGE_S
        except OSError:
            continue
        if old or (mine and pid != os.getpid() and (pid in dead or not _alive(pid))):
            remove_tree(p)


def remove_tree(path: str | Path) -> None:
    """rmtree that tolerates a dir vanishing or a straggler writing into it (or a file)."""
    if os.path.isfile(path) or os.path.islink(path):
        try:
            os.unlink(path)
        except OSError:
            pass
        return
    for _ in range(3):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.lexists(path):
            return
        time.sleep(0.05)


# ----------------------------------------------------------------------------- the database

# SQLite result codes (primary, low byte of extended codes).
_SQLITE_CORRUPT, _SQLITE_NOTADB, _SQLITE_ERROR = 11, 26, 1
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


def _code(exc: BaseException) -> int | None:
    c = getattr(exc, "sqlite_errorcode", None)
    return None if c is None else c & 0xFF


def _is_corrupt(exc: BaseException) -> bool:
    if isinstance(exc, _Corrupt):
        return True
    if _code(exc) in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return True
    msg = str(exc).lower()
    return "malformed" in msg or "not a database" in msg


class _Corrupt(sqlite3.DatabaseError):
    """quick_check failed, or the file holds a table that is not ours."""


class MeasurementCache:
    def __init__(self, directory: str | Path | None = None):
        d = usable_dir(directory)
        self.path = d / DB_NAME
        self.hits = 0
        self.misses = 0
        self._warned = False
        self._resets = 0
        self._db: sqlite3.Connection | None = self._open()

    # -- opening, and what to do with a file that is not a sound cache
    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            rows = db.execute("PRAGMA quick_check").fetchall()
            if rows != [("ok",)]:
                raise _Corrupt(f"quick_check: {rows[0][0] if rows else 'no answer'}")
            db.execute("CREATE TABLE IF NOT EXISTS measurements ("
                       "key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)")
            try:
                db.execute("SELECT key, value, created FROM measurements LIMIT 1").fetchall()
            except sqlite3.OperationalError as exc:  # a table of another shape: not our file
                raise _Corrupt(str(exc)) from None
        except BaseException:
            db.close()
            raise
        return db

    def _open(self) -> sqlite3.Connection | None:
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if not _is_corrupt(exc):
                raise CacheDirError(f"cannot open the measurement cache {self.path}: {exc}; "
                                    f"choose another directory with --cache DIR or "
                                    f"MSFSIM_CACHE=DIR") from None
            self._set_aside(exc)
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            raise CacheDirError(f"cannot create the measurement cache {self.path}: {exc}; "
                                f"choose another directory with --cache DIR or MSFSIM_CACHE=DIR"
                                ) from None

    def _set_aside(self, why: BaseException) -> None:
        """Move the database (and its -wal / -shm) to `<name>.corrupt-<time>`: one warning."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while any(os.path.lexists(f"{aside}{s}") for s in ("", "-wal", "-shm")):
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        for suffix in ("", "-wal", "-shm"):
            try:
                os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise CacheDirError(f"the measurement cache {self.path} is corrupt ({why}) and "
                                    f"cannot be moved aside: {exc.strerror or exc}") from None
        self._resets += 1
        print(f"msfsim: warning: the measurement cache {self.path} is corrupt "
              f"({_one_line(why)}); moved it to {aside} and started a new one", file=sys.stderr)

    def _trouble(self, exc: sqlite3.Error) -> bool:
        """An error while the search runs. A corrupt file is set aside and the cache reopened
        (True: retry); anything else (locked, disk full) costs the cache, not the search."""
        if _is_corrupt(exc) and self._resets < 2:
            self._close_db()
            try:
                self._set_aside(exc)
                self._db = self._connect()
                return True
            except (sqlite3.DatabaseError, MsfsimError) as again:
                exc = again  # type: ignore[assignment]
        if not self._warned:
            self._warned = True
            print(f"msfsim: warning: the measurement cache {self.path} failed "
                  f"({_one_line(exc)}); continuing without it for this run", file=sys.stderr)
        self._close_db()
        return False

    def _close_db(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    # -- access
    def get(self, key: str, check: Callable[[dict], bool] | None = None) -> dict | None:
        """The JSON object stored under `key`, or None: a missing row, a row that is not a JSON
        object and one that `check` rejects are all misses (the caller measures again)."""
        value = None
        for _ in range(2):
            if self._db is None:
                break
            try:
                row = self._db.execute("SELECT value FROM measurements WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error as exc:
                if self._trouble(exc):
                    continue
                row = None
            if row is not None:
                try:
                    value = json.loads(row[0])
                except (TypeError, ValueError, RecursionError):
                    value = None
            break
        if not isinstance(value, dict) or (check is not None and not _safe(check, value)):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: dict) -> None:
        blob = json.dumps(value, sort_keys=True)
        for _ in range(2):
            if self._db is None:
                return
            try:
                self._db.execute("INSERT OR REPLACE INTO measurements (key, value, created) "
                                 "VALUES (?, ?, ?)", (key, blob, time.time()))
                return
            except sqlite3.Error as exc:
                if not self._trouble(exc):
                    return

    def __len__(self) -> int:
        if self._db is None:
            return 0
        try:
            return self._db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
        except sqlite3.Error:
            return 0

    def close(self) -> None:
        self._close_db()

    def __enter__(self) -> "MeasurementCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _safe(check: Callable[[dict], bool], value: dict) -> bool:
    try:
        return bool(check(value))
    except Exception:
        return False


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
