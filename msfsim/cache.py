"""Where msfsim keeps files: the one rule for the cache root (`default_dir`, `usable_dir`) and
for naming the temporary directories of builds and workers so that a later run can remove what
a killed one left (`temp_prefix`, `sweep_temp`). The toolchain's ELF cache, the host build and
and the measurement cache (msfsim.measure.cache) all live there.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterable

from msfsim import MsfsimError


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



