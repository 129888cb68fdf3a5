"""Compile C sources into a host extension module with cffi, cached on disk.

The cache key is a hash of everything that determines the library: the sources, every header
in the include directories, the cdef, the preamble, the flags and the Python ABI. A library is
compiled in a private temporary directory and moved into the cache with an atomic rename, so
processes that build the same library at the same time never see a half-written file.

Each source is compiled on its own into an object file cached under the hash of its
preprocessed text and the compiler command (as ccache does), so libraries that differ in one
generated file recompile only that file: the kernels, arena and executor are compiled once.
"""
from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

import cffi

from msfsim.cache import default_dir

CFLAGS = ("-O2", "-std=c99")
_loaded: dict[str, tuple[Any, Any]] = {}


def cache_dir() -> Path:
    """`host/` under msfsim's cache root (`$MSFSIM_CACHE`, else `~/.cache/msfsim`)."""
    return default_dir() / "host"


def _key(name: str, sources: Sequence[Path], cdef: str, preamble: str,
         include_dirs: Sequence[Path], flags: Sequence[str]) -> str:
    h = hashlib.sha256()

    def feed(label: str, data: bytes) -> None:
        h.update(f"{label}:{len(data)}:".encode())
        h.update(data)

    feed("name", name.encode())
    feed("cdef", cdef.encode())
    feed("preamble", preamble.encode())
    feed("flags", "\0".join(flags).encode())
    feed("abi", f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}".encode())
    feed("cffi", cffi.__version__.encode())
    for src in sources:
        feed(f"src {src.name}", src.read_bytes())
    for inc in include_dirs:
        for hdr in sorted(inc.rglob("*.h")):
            feed(f"hdr {hdr.relative_to(inc)}", hdr.read_bytes())
    return h.hexdigest()[:20]


def _load(module_name: str, path: Path) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader(module_name, str(path))
    spec = importlib.util.spec_from_file_location(module_name, path, loader=loader)
    if spec is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def cdef_from_header(path: str | Path) -> str:
    """The declarations of a C header in the form `ffi.cdef` accepts.

    Drops comments, `extern "C"` guards, preprocessor lines and `static inline` functions
    (cffi cannot declare those; wrap them in the preamble to reach them from Python).
    """
    text = Path(path).read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    out, pos = [], 0
    for m in re.finditer(r"static\s+inline\b[^;{]*\{", text):
        if m.start() < pos:
            continue
        out.append(text[pos:m.start()])
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        pos = i
    out.append(text[pos:])
    return re.sub(r"\n\s*\n+", "\n", "".join(out)).strip() + "\n"


def _compiler() -> list[str]:
    """The C compiler and flags Python builds extensions with (what cffi itself would use)."""
    return [*(sysconfig.get_config_var("CC") or "cc").split(),
            *(sysconfig.get_config_var("CFLAGS") or "").split(),
            *(sysconfig.get_config_var("CCSHARED") or "-fPIC").split()]


def _run(cmd: list[str], what: str) -> bytes:
    r = subprocess.run(cmd, capture_output=True, check=False)
    if r.returncode != 0:
        tail = r.stderr.decode(errors="replace").strip().splitlines()[-12:]
        raise cffi.VerificationError(f"{what} failed:\n" + "\n".join(tail))
    return r.stdout


def _object(src: Path, incs: Sequence[Path], flags: Sequence[str]) -> Path:
    """`src` compiled to a position-independent object, cached by its preprocessed text."""
    cc = [*_compiler(), *flags]
    cmd = [*cc, *(f"-I{d}" for d in incs)]
    text = _run([*cmd, "-E", "-P", str(src)], f"preprocessing {src.name}")
    # where the headers lie does not change the object: what they say is in `text`
    h = hashlib.sha256("\0".join(cc).encode() + b"\0" + text)
    obj = cache_dir() / "obj" / f"{src.stem}-{h.hexdigest()[:20]}.o"
    if not obj.exists():
        obj.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="obj-", dir=obj.parent) as tmp:
            staged = Path(tmp) / obj.name
            _run([*cmd, "-c", str(src), "-o", str(staged)], f"compiling {src.name}")
            os.replace(staged, obj)
    return obj


def build(name: str, sources: Sequence[str | Path], cdef: str,
          include_dirs: Sequence[str | Path] = (), headers: Sequence[str] = (),
          preamble: str = "", extra_compile_args: Sequence[str] = ()) -> tuple[Any, Any]:
    """Compile `sources` into a module exposing `cdef`; returns (ffi, lib).

    `headers` are #included by the cffi wrapper (they must declare what `cdef` names), followed
    by `preamble` (extra C code, e.g. wrappers of inline functions). Repeated calls with the
    same inputs return the library already loaded in this process.
    """
    srcs = [Path(s).resolve() for s in sources]
    incs = [Path(d).resolve() for d in include_dirs]
    flags = tuple(CFLAGS) + tuple(extra_compile_args)
    preamble = "".join(f'#include "{h}"\n' for h in headers) + preamble
    key = _key(name, srcs, cdef, preamble, incs, flags)
    if key in _loaded:
        return _loaded[key]

    module_name = f"_msf_{name}_{key}"
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    out_dir = cache_dir()
    target = out_dir / f"{module_name}{suffix}"
    if not target.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        ffi = cffi.FFI()
        ffi.cdef(cdef)
        objects = [str(_object(src, incs, flags)) for src in srcs]
        ffi.set_source(module_name, preamble, extra_objects=objects,
                       include_dirs=[str(d) for d in incs], extra_compile_args=list(flags))
        with tempfile.TemporaryDirectory(prefix=f"{module_name}-", dir=out_dir) as tmp:
            built = Path(ffi.compile(tmpdir=tmp, verbose=False))
            staged = Path(tmp) / f"{module_name}.staged"
            os.replace(built, staged)
            os.replace(staged, target)  # atomic on one filesystem: readers see all or nothing
    module = _load(module_name, target)
    _loaded[key] = (module.ffi, module.lib)
    return _loaded[key]
