"""Cross-compilation of firmware images for a board, cached on disk.

GCC from the Debian cross packages is the reference compiler; clang from the `ziglang` wheel
is a fallback for Arm and RISC-V when it is installed (results name the compiler used:
instruction counts are only comparable within one compiler and optimisation level).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from msfsim import ToolMissing

from msfsim.platforms import Platform
from msfsim.sim.elf import ElfImage

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DIR = ROOT / "kernels_c" / "runtime"
COMMON_FLAGS = ("-ffreestanding", "-nostdlib", "-O2", "-std=c11", "-Wall", "-Wextra",
                "-ffunction-sections", "-fdata-sections")
LINK_FLAGS = ("-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments")
MIN_STACK_BYTES = 1024  # linker-enforced floor of the stack region
COMPILE_TIMEOUT_S = 120

# Runtime sources per core family (startup, semihosting, helpers) + the shared runtime.
RUNTIME_SOURCES: dict[str, tuple[str, ...]] = {
    "cortex-m": ("startup_cortexm.c", "semihost_arm.S", "semihost_arm_riscv.c"),
    "rv32": ("crt0_rv32.S", "semihost_riscv.S", "semihost_arm_riscv.c"),
    "lx106": ("start_lx106.S", "semihost_xtensa.S", "semihost_xtensa.c", "libgcc_lx106.c"),
}
ENTRY = {"cortex-m": "msf_reset", "rv32": "_start", "lx106": "_start"}

APT_PACKAGES = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "riscv64-unknown-elf-gcc": "gcc-riscv64-unknown-elf",
    "xtensa-lx106-elf-gcc": "gcc-xtensa-lx106",
}


class ToolchainError(ToolMissing):
    """A compiler is missing, or compiling / linking failed (message carries file:line)."""


class LinkOverflowError(ToolchainError):
    """The firmware does not fit the board's flash or SRAM."""

    def __init__(self, message: str, region: str, overflow: int):
        super().__init__(message)
        self.region = region
        self.overflow = overflow


@dataclass(frozen=True)
class Compiler:
    name: str                 # label used in results, e.g. "gcc" or "clang (ziglang)"
    argv: tuple[str, ...]     # command prefix
    available: bool
    install: str              # how to get it

    @property
    def version(self) -> str:
        return _version(self.argv) if self.available else "missing"

    @property
    def label(self) -> str:
        """Name and version for results; gcc's version line already starts with its name."""
        v = self.version
        return v if v.startswith(self.name) else f"{self.name} {v}"


@lru_cache(maxsize=None)
def _version(argv: tuple[str, ...]) -> str:
    out = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=30)
    return (out.stdout or out.stderr).splitlines()[0].strip()


def cache_dir() -> Path:
    d = Path(os.environ.get("MSFSIM_CACHE", Path.home() / ".cache" / "msfsim"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _zig_available() -> bool:
    return importlib.util.find_spec("ziglang") is not None


def compilers_for(platform: Platform) -> list[Compiler]:
    """The compilers that can build for `platform`, preferred first."""
    gcc = platform.gcc
    out = [Compiler(gcc, (gcc,), shutil.which(gcc) is not None,
                    f"apt-get install --no-install-recommends {APT_PACKAGES.get(gcc, gcc)}")]
    if platform.clang_target:
        out.append(Compiler("clang (ziglang)", (sys.executable, "-m", "ziglang", "cc"),
                            _zig_available(), "pip install ziglang"))
    return out


def select_compiler(platform: Platform, name: str | None = None) -> Compiler:
    choices = compilers_for(platform)
    if name is not None:
        choices = [c for c in choices if c.name == name or c.argv[0] == name]
        if not choices:
            raise ToolchainError(f"no compiler {name!r} for {platform.name}")
    for c in choices:
        if c.available:
            return c
    hint = "; or ".join(c.install for c in choices)
    raise ToolchainError(f"no compiler for {platform.label} is installed: {hint}")


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


def linker_script(platform: Platform, min_stack: int = MIN_STACK_BYTES) -> str:
    text = (RUNTIME_DIR / "link.ld.in").read_text()
    subs = {
        "BOARD": platform.label, "ENTRY": ENTRY[platform.family],
        "FLASH_ORIGIN": hex(platform.link_flash.origin), "FLASH_SIZE": hex(platform.flash.size),
        "SRAM_ORIGIN": hex(platform.link_sram.origin), "SRAM_SIZE": hex(platform.sram.size),
        "MIN_STACK": str(min_stack),
    }
    for k, v in subs.items():
        text = text.replace(f"@{k}@", v)
    return text


def runtime_sources(platform: Platform) -> list[Path]:
    return [RUNTIME_DIR / "msf_runtime.c"] + [RUNTIME_DIR / f for f in RUNTIME_SOURCES[platform.family]]


def _flags(platform: Platform, compiler: Compiler) -> list[str]:
    if compiler.name.startswith("clang"):
        return ["-target", platform.clang_target, *platform.clang_flags, *COMMON_FLAGS]
    return [*platform.gcc_flags, *COMMON_FLAGS]


def _headers(include_dirs: Iterable[Path]) -> list[Path]:
    return sorted(h for d in include_dirs for h in Path(d).glob("*.h"))


def compile_firmware(platform: Platform, sources: Sequence[str | Path],
                     include_dirs: Sequence[str | Path] = (), defines: Mapping[str, object] | None = None,
                     *, compiler: str | None = None, with_runtime: bool = True,
                     min_stack: int = MIN_STACK_BYTES, extra_flags: Sequence[str] = ()) -> Elf:
    """Compile and link `sources` (+ the runtime) into an ELF for `platform`, cached by content.

    The cache key covers every source and header byte, the flags, the linker script and the
    compiler's version line, so a hit is the very same build.
    """
    cc = select_compiler(platform, compiler)
    srcs = [Path(s) for s in sources] + (runtime_sources(platform) if with_runtime else [])
    incs = [Path(d) for d in include_dirs] + [RUNTIME_DIR]
    flags = _flags(platform, cc) + list(extra_flags)
    flags += [f"-D{k}={v}" if v is not None else f"-D{k}" for k, v in sorted((defines or {}).items())]
    flags += [f"-I{d}" for d in incs]
    script = linker_script(platform, min_stack)

    h = hashlib.sha256()
    for part in (cc.name, cc.version, platform.name, script, *flags):
        h.update(part.encode() + b"\0")
    for f in [*srcs, *_headers(incs)]:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    key = h.hexdigest()[:24]
    out = cache_dir() / "elf" / platform.name / f"{key}.elf"
    label = cc.label
    if out.is_file():
        return Elf(str(out), platform.name, label, key)

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as tmp:
        ld = Path(tmp) / "link.ld"
        ld.write_text(script)
        tmp_elf = Path(tmp) / "fw.elf"
        cmd = [*cc.argv, *flags, *LINK_FLAGS, f"-Wl,-T,{ld}", "-o", str(tmp_elf),
               *map(str, srcs)] + ([] if cc.name.startswith("clang") else ["-lgcc"])
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise ToolchainError(f"{cc.name} timed out after {COMPILE_TIMEOUT_S} s") from e
        if r.returncode != 0:
            raise _diagnose(r.stderr, platform)
        os.replace(tmp_elf, out)  # atomic: concurrent builders of the same key agree
    return Elf(str(out), platform.name, label, key)


_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")
_DIAG = re.compile(r"^(?P<loc>[^:\s]+:\d+(?::\d+)?): (?:fatal )?error: (?P<msg>.*)$", re.M)
_UNDEF = re.compile(r"undefined reference to `([^']+)'")


def _diagnose(stderr: str, platform: Platform) -> ToolchainError:
    m = _OVERFLOW.search(stderr)
    if m:
        region, n = m.group(1), int(m.group(2))
        size = platform.sram.size if region == "SRAM" else platform.flash.size
        return LinkOverflowError(
            f"firmware does not fit {platform.label}: {region} ({size} bytes) overflowed by {n} bytes",
            region, n)
    diags = [f"{d['loc']}: {d['msg']}" for d in _DIAG.finditer(stderr)]
    undef = sorted(set(_UNDEF.findall(stderr)))
    if undef:
        diags.append("undefined reference to " + ", ".join(undef))
    tail = stderr.strip().splitlines()
    detail = "; ".join(diags[:5]) or (tail[-1] if tail else "no diagnostic")
    return ToolchainError(f"build for {platform.label} failed: {detail}")


def doctor() -> list[dict[str, str]]:
    """What `msfsim doctor` prints: each tool, whether it is here, and how to install it."""
    from msfsim import sim

    rows = []
    for tool, pkg in APT_PACKAGES.items():
        path = shutil.which(tool)
        rows.append({"tool": tool, "status": "ok" if path else "missing",
                     "detail": _version((tool,)) if path else "",
                     "install": f"apt-get install --no-install-recommends {pkg}"})
    rows.append({"tool": "clang (ziglang)", "status": "ok" if _zig_available() else "optional, missing",
                 "detail": "fallback compiler for Arm and RISC-V", "install": "pip install ziglang"})
    rows.extend(sim.doctor_rows())
    return rows
