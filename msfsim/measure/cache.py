"""Persistent measurement cache: SQLite, keyed by everything that determines a result.

SQLite in WAL mode gives atomic commits, so concurrent writers (a process pool, two msfsim runs)
and interrupted runs (Ctrl-C, a killed process) leave it consistent: a row is there whole or not
at all. Values are JSON objects.

A cache is a hint, never an authority: a database that fails `PRAGMA quick_check` or is not
one at all is moved aside (`measurements.sqlite.corrupt-<time>`, with its -wal / -shm), named
in one warning line, and started anew; a row that is not a JSON object with the keys its reader
needs is a miss; an error of SQLite while the search runs costs the cache, not the search.

Where the cache lives (the cache root, temporary dirs) is msfsim.cache's rule, shared with the
toolchain's build cache; its names are re-exported here.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Callable

from .. import MsfsimError
from ..cache import (TEMP_MAX_AGE_S, CacheDirError, default_dir, remove_tree,  # noqa: F401
                     sweep_temp, temp_dirs, temp_prefix, usable_dir)

SCHEMA_VERSION = 1
DB_NAME = "measurements.sqlite"


def make_key(**parts: Any) -> str:
    """Stable key from named parts (compiler, version, flags, backend, platform, ELF hash, ...)."""
    blob = json.dumps({"v": SCHEMA_VERSION, **parts}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


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
