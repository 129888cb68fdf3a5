"""Persistent measurement cache: SQLite, keyed by everything that determines a result.

SQLite in WAL mode gives atomic commits, so concurrent writers (a process pool, two msfsim runs)
and interrupted runs (Ctrl-C, a killed process) leave it consistent: a row is there whole or not
at all. Values are JSON objects.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def default_dir() -> Path:
    env = os.environ.get("MSFSIM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "msfsim"


def make_key(**parts: Any) -> str:
    """Stable key from named parts (compiler, version, flags, backend, platform, ELF hash, ...)."""
    blob = json.dumps({"v": SCHEMA_VERSION, **parts}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class MeasurementCache:
    def __init__(self, directory: str | Path | None = None):
        d = Path(directory) if directory else default_dir()
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / "measurements.sqlite"
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS measurements ("
                         "key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)")
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict | None:
        row = self._db.execute("SELECT value FROM measurements WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, value: dict) -> None:
        self._db.execute("INSERT OR REPLACE INTO measurements (key, value, created) VALUES (?, ?, ?)",
                         (key, json.dumps(value, sort_keys=True), time.time()))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "MeasurementCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
