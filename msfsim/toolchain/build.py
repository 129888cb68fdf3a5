"""Compile and link a firmware image for a board, cached by content (msfsim.toolchain.elfcache).

What a build needs per board is data: the board's compiler, flags and clang target (its core
family's `[compiler]`, msfsim/boards/families/, which the board may override), the runtime
files and entry symbol of its family (`[runtime]`). Nothing here branches on a family name.
"""
from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from msfsim import KERNELS_DIR
from msfsim.platforms import Platform

from . import elfcache
from .compilers import Compiler, compile_flags, libs, link_flags, select_compiler
from .elf import ElfImage
from .errors import ToolchainError, diagnose
from .procs import run_tool

RUNTIME_DIR = KERNELS_DIR / "runtime"
MIN_STACK_BYTES = 1024  # linker-enforced floor of the stack region
COMPILE_TIMEOUT_S = 120

# The runtime every firmware links (before its family's: msfsim/boards/families/*.toml [runtime]).
RUNTIME_COMMON = ("msf_runtime.c",)


@dataclass(frozen=True)
class Elf:
    """A linked firmware image for one board, built by one compiler."""
    path: str
    platform: str
    compiler: str             # "<name> <version>"
    key: str                  # content hash the build is cached under

    def image(self) -> ElfImage:
        return ElfImage(self.path)

    @property
    def flash_bytes(self) -> int:
        return sum(len(s.data) for s in self.image().segments)

    @property
    def static_ram(self) -> int:
        """.data + .bss of runtime and kernels: the arena storage and the stack excluded."""
        secs = self.image().sections
        return sum(secs[n].size for n in (".data", ".bss") if n in secs)


def linker_script(platform: Platform, min_stack: int = MIN_STACK_BYTES, discard_debug: bool = False) -> str:
    """The board's linker script. `discard_debug` drops DWARF sections: zig's compiler_rt brings
    ~1.2 MB of it into every ELF, and zig reads any strip option as "strip the symbols too"."""
    text = (RUNTIME_DIR / "link.ld.in").read_text()
    if discard_debug:
        text = text.replace("/DISCARD/ : {", "/DISCARD/ : { *(.debug_*)", 1)
    subs = {
        "BOARD": platform.label, "ENTRY": platform.family_info.entry,
        "FLASH_ORIGIN": hex(platform.link_flash.origin), "FLASH_SIZE": hex(platform.flash.size),
        "SRAM_ORIGIN": hex(platform.link_sram.origin), "SRAM_SIZE": hex(platform.sram.size),
        "MIN_STACK": str(min_stack),
    }
    for k, v in subs.items():
        text = text.replace(f"@{k}@", v)
    return text


def runtime_sources(platform: Platform) -> list[Path]:
    """The runtime a firmware for `platform` links: the shared runtime, then the family's
    startup and the rest of its runtime files, in that order."""
    names = (*RUNTIME_COMMON, *platform.family_info.runtime_sources)
    return [RUNTIME_DIR / f for f in names]


def _headers(include_dirs: Iterable[Path]) -> list[Path]:
    return sorted(h for d in include_dirs for h in Path(d).glob("*.h"))


def _cache_key(cc: Compiler, platform: Platform, script: str, flags: Sequence[str],
               incs: Sequence[Path], link: Sequence[str], libraries: Sequence[str],
               srcs: Sequence[Path]) -> str:
    """The content hash a build is cached under: every source and header byte, the flags, the
    linker script and the compiler's version line, so that a hit is the very same build.

    The include dirs enter the key by position, not by path (their headers by name and
    content): a cache moved or copied elsewhere, generated sources under it, still hits."""
    h = hashlib.sha256()
    for part in (cc.name, cc.version, platform.name, script, *flags,
                 *(f"-I#{i}" for i in range(len(incs))), *link, *libraries):
        h.update(part.encode() + b"\0")
    for f in srcs:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    for i, d in enumerate(incs):
        for f in _headers([d]):
            h.update(f"{i}/{f.name}".encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:24]


def compile_firmware(platform: Platform, sources: Sequence[str | Path],
                     include_dirs: Sequence[str | Path] = (), defines: Mapping[str, object] | None = None,
                     *, compiler: str | None = None, with_runtime: bool = True,
                     min_stack: int = MIN_STACK_BYTES, extra_flags: Sequence[str] = (),
                     cache_dir: str | Path | None = None) -> Elf:
    """Compile and link `sources` (+ the runtime) into an ELF for `platform`, cached by content
    under `cache_dir` (default: see `elfcache.cache_dir()`).

    A hit is the very same build (`_cache_key`). The ELF is written atomically (temporary dir +
    rename) with its SHA-256 beside it; a cached ELF whose bytes do not match is rebuilt.
    """
    cc = select_compiler(platform, compiler)
    srcs = [Path(s) for s in sources] + (runtime_sources(platform) if with_runtime else [])
    incs = [Path(d) for d in include_dirs] + [RUNTIME_DIR]
    flags = compile_flags(platform, cc) + list(extra_flags)
    flags += [f"-D{k}={v}" if v is not None else f"-D{k}" for k, v in sorted((defines or {}).items())]
    link, libraries = link_flags(platform, cc), libs(cc)
    script = linker_script(platform, min_stack, discard_debug=cc.kind == "zig")
    key = _cache_key(cc, platform, script, flags, incs, link, libraries, srcs)
    flags += [f"-I{d}" for d in incs]

    root = elfcache.cache_dir(cache_dir)
    out = elfcache.elf_path(root, platform.name, key)
    label = cc.label
    if elfcache.elf_ok(out):
        return Elf(str(out), platform.name, label, key)
    with elfcache.build_dir(root, out) as tmp:
        ld = tmp / "link.ld"
        ld.write_text(script)
        tmp_elf = tmp / "fw.elf"
        cmd = [*cc.argv, *flags, *link, f"-Wl,-T,{ld}", "-o", str(tmp_elf), *map(str, srcs),
               *libraries]
        try:
            r = run_tool(cmd, COMPILE_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise ToolchainError(f"{cc.name} timed out after {COMPILE_TIMEOUT_S} s") from e
        if r.returncode != 0:
            raise diagnose(r.stderr, platform)
        elfcache.install(tmp_elf, out)
    return Elf(str(out), platform.name, label, key)
