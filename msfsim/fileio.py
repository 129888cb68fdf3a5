"""Atomic file writes: readers (and interrupted runs) never see a half-written file; and the
checks every command makes on its path options before it starts any work."""
from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from . import MsfsimError


def write_atomic(path: str | os.PathLike, data: str | bytes, mode: int = 0o644) -> Path:
    """Write via a temporary file in the same directory, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ------------------------------------------------------------------ paths checked up front
#
# Every path option is checked when a command starts, before any work, so a typo costs a
# second, not the minutes of a measured search: the problem is one line naming the option and
# the path (MsfsimError, exit 2). The checks create nothing; the writers create missing parent
# directories later (write_atomic, mkdir(parents=True)).

MAX_JSON_BYTES = 64 << 20  # a plan file is a few kilobytes; anything this large is not one


def shown_path(path: str | os.PathLike) -> str:
    """`path` for a one-line message: as typed when printable, else quoted with escapes."""
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)


def _stat(path: Path, option: str, orig: str | os.PathLike) -> os.stat_result | None:
    """stat() following symlinks; None when nothing is there (or a component is a file)."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise MsfsimError(f"{option} {shown_path(orig)}: {exc.strerror or exc}") from None


def _fail(option: str, path: str | os.PathLike, problem: str) -> MsfsimError:
    return MsfsimError(f"{option} {shown_path(path)}: {problem}")


def _check_path_text(path: str | os.PathLike, option: str) -> str:
    text = os.fspath(path)
    if not text:
        raise MsfsimError(f"{option}: empty path")
    if "\0" in text:
        raise _fail(option, path, "invalid path (NUL character)")
    return text


def _check_creatable(target: Path, option: str, orig: str | os.PathLike) -> None:
    """`target` is a writable directory, or the nearest existing directory above it is one
    (so that it can be created)."""
    cur = Path(os.path.abspath(target))
    while True:
        st = _stat(cur, option, orig)
        if st is not None:
            break
        if cur.is_symlink():
            raise _fail(option, orig, f"{shown_path(cur)} is a broken symbolic link")
        if cur.parent == cur:  # the root vanished?
            raise _fail(option, orig, "no such directory")
        cur = cur.parent
    if not stat.S_ISDIR(st.st_mode):
        raise _fail(option, orig, f"{shown_path(cur)} is not a directory")
    if not os.access(cur, os.W_OK | os.X_OK):
        itself = cur == Path(os.path.abspath(orig))
        raise _fail(option, orig, "directory is not writable" if itself
                    else f"{shown_path(cur)} is not writable")
    # access() trusts the mode bits, which do not bind root and do not know /proc, FUSE or
    # root-squashed NFS: create (and at once remove) an empty file to be sure.
    try:
        fd, probe = tempfile.mkstemp(prefix=".msfsim-check-", dir=cur)
    except OSError as exc:
        raise _fail(option, orig, f"cannot create files in {shown_path(cur)} "
                                  f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: str | os.PathLike, option: str) -> None:
    """Refuse an output FILE that cannot be written: a directory, a device, a parent that is a
    file, or a parent that is not writable (or cannot be created)."""
    text = _check_path_text(path, option)
    if text.endswith((os.sep, "/")) or Path(text).name in ("", ".", ".."):
        raise _fail(option, path, "names a directory; give a file name")
    st = _stat(Path(text), option, path)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise _fail(option, path, "is a directory; give a file name")
        if not stat.S_ISREG(st.st_mode):
            raise _fail(option, path, "exists and is not a regular file")
    _check_creatable(Path(text).parent, option, path)


def check_output_dir(path: str | os.PathLike, option: str) -> None:
    """Refuse an output DIR that cannot be written: an existing file, a parent that is a file,
    or a place that is not writable (or cannot be created)."""
    text = _check_path_text(path, option)
    st = _stat(Path(text), option, path)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise _fail(option, path, "exists and is not a directory")
    _check_creatable(Path(text), option, path)


def check_input_file(path: str | os.PathLike, option: str) -> Path:
    """An input FILE that exists, is a regular file and can be read."""
    text = _check_path_text(path, option)
    p = Path(text)
    st = _stat(p, option, path)
    if st is None:
        raise _fail(option, path, "no such file")
    if stat.S_ISDIR(st.st_mode):
        raise _fail(option, path, "is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(option, path, "is not a regular file")
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise _fail(option, path, f"cannot be read ({exc.strerror or exc})") from None
    return p


def read_json_file(path: str | os.PathLike, option: str, what: str = "JSON") -> Any:
    """The parsed contents of a JSON input file, or one error naming the option and path."""
    p = check_input_file(path, option)
    if p.stat().st_size > MAX_JSON_BYTES:
        raise _fail(option, path, f"too large to be {what} ({p.stat().st_size:,} B)")
    try:
        return json.loads(p.read_bytes())
    except OSError as exc:
        raise _fail(option, path, f"cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise _fail(option, path, f"not {what} (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise _fail(option, path, f"not {what} ({exc.msg} at line {exc.lineno} column "
                                  f"{exc.colno})") from None
    except RecursionError:
        raise _fail(option, path, f"not {what} (nested too deeply)") from None
