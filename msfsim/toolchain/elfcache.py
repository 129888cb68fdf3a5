"""Where firmware builds go and how a cached ELF is trusted.

Builds are cached by content under `<cache root>/elf/<board>/<key>.elf`, each with its SHA-256
beside it (`KEY.elf.sha256`). A build happens in a temporary directory next to its destination
and is renamed into place, the ELF before its digest: a reader between the two renames sees a
digest that does not match (or none) and builds again; it never takes a partial ELF for a whole
one. The temporary directories of this process are tracked so that a worker told to die removes
them (`remove_build_dirs`), and those a killed run left behind are swept once per cache root.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from msfsim.cache import remove_tree, sweep_temp, temp_prefix, usable_dir

from .errors import ToolchainError

_CACHE_DIR: ContextVar[str | None] = ContextVar("msfsim_cache_dir", default=None)


def cache_dir(directory: str | Path | None = None) -> Path:
    """The cache root builds go under: `directory`, else the one a `using_cache_dir` around
    the caller names (a measurement's --cache), else `cache.default_dir()`. Created and
    checked writable (`cache.CacheDirError`, exit 2, if it cannot be used)."""
    return usable_dir(directory or _CACHE_DIR.get())


@contextmanager
def using_cache_dir(directory: str | Path | None) -> Iterator[None]:
    """Builds (and the emulators' native helpers) in this context go under `directory`."""
    if directory is None:
        yield
        return
    token = _CACHE_DIR.set(str(directory))
    try:
        yield
    finally:
        _CACHE_DIR.reset(token)


def elf_path(root: Path, platform: str, key: str) -> Path:
    return root / "elf" / platform / f"{key}.elf"


def elf_ok(path: Path) -> bool:
    """Whether the cached ELF at `path` is whole: its bytes match the digest stored beside it
    (written after the ELF). A truncated, unreadable or unsigned ELF is rebuilt, never reused."""
    try:
        want = path.with_name(path.name + ".sha256").read_text().split()[0]
        return hashlib.sha256(path.read_bytes()).hexdigest() == want
    except (OSError, IndexError, UnicodeDecodeError):
        return False


# Build dirs of this process that exist right now: a worker told to die removes them.
_LIVE_BUILDS: set[str] = set()
_LIVE_LOCK = threading.Lock()
_CLOSED = False
_SWEPT: set[str] = set()


def remove_build_dirs() -> None:
    """Remove the temporary build dirs of this process, which is about to exit abruptly (a
    worker whose msfsim is gone): no build starts in it afterwards."""
    global _CLOSED
    with _LIVE_LOCK:
        _CLOSED = True
        dirs = list(_LIVE_BUILDS)
    for d in dirs:
        remove_tree(d)


@contextmanager
def build_dir(root: Path, out: Path) -> Iterator[Path]:
    """A temporary directory beside `out` (under the cache `root`) to build it in, removed on
    exit whatever happens."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if str(root) not in _SWEPT:  # build dirs a killed run left behind
        _SWEPT.add(str(root))
        sweep_temp(root)
    with _LIVE_LOCK:
        if _CLOSED:
            raise ToolchainError("msfsim is stopping: no new build")
        tmp = tempfile.mkdtemp(dir=out.parent, prefix=temp_prefix("build"))
        _LIVE_BUILDS.add(tmp)
    try:
        yield Path(tmp)
    finally:
        remove_tree(tmp)
        with _LIVE_LOCK:
            _LIVE_BUILDS.discard(tmp)


def install(built: Path, out: Path) -> None:
    """Move the ELF `built` (in a `build_dir`) to `out`, its digest after it (atomic renames)."""
    digest = built.with_name(built.name + ".sha256")
    digest.write_text(hashlib.sha256(built.read_bytes()).hexdigest() + "\n")
    os.replace(built, out)
    os.replace(digest, out.with_name(out.name + ".sha256"))
