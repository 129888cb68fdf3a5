"""Cross-compilation of firmware images for a board, cached on disk.

GCC from the Debian cross packages is the reference compiler; clang from the `ziglang` wheel
(`pip install ziglang`, driven as `zig cc`) is a fallback for Arm and RISC-V. Results name the
compiler used: instruction counts are only comparable within one compiler and optimisation level.

`zig cc` takes zig's target and CPU names, not clang's: the board file's clang triple and flags
are translated (thumbv7em-none-eabi + -mcpu=cortex-m7 -> thumb-freestanding-eabi +
-mcpu=cortex_m7; -march=rv32imac -> -mcpu=generic_rv32+m+a+c+zicsr+zifencei). Its linker is
lld: the ELF entry is passed explicitly (zig would ask for `_start`), and zig's compiler_rt
stands in for libgcc.
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
# zig cc (clang + lld): no unwind tables in a C firmware.
ZIG_FLAGS = ("-fno-unwind-tables", "-fno-asynchronous-unwind-tables")
ZIG_LINK_FLAGS = ("-Wl,--gc-sections",)
CLANG_NAME = "clang (ziglang)"
MIN_STACK_BYTES = 1024  # linker-enforced floor of the stack region
COMPILE_TIMEOUT_S = 120

# Runtime sources per core family (startup, semihosting, helpers) + the shared runtime.
RUNTIME_SOURCES: dict[str, tuple[str, ...]] = {
    "cortex-m": ("startup_cortexm.c", "semihost_arm.S", "semihost_arm_riscv.c"),
    "rv32": ("crt0_rv32.S", "markers_rv32.S", "semihost_riscv.S", "semihost_arm_riscv.c"),
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
    kind: str = "gcc"         # "gcc" | "zig" (clang driven through `zig cc`)

    @property
    def version(self) -> str:
        if not self.available:
            return "missing"
        return _zig_version() if self.kind == "zig" else _version(self.argv)

    @property
    def label(self) -> str:
        """Name and version for results; gcc's version line already starts with its name."""
        v = self.version
        return v if v.startswith(self.name) else f"{self.name} {v}"


@lru_cache(maxsize=None)
def _version(argv: tuple[str, ...]) -> str:
    out = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=30)
    return (out.stdout or out.stderr).splitlines()[0].strip()


@lru_cache(maxsize=None)
def _zig_version() -> str:
    """"<clang version> (zig <zig version>)": zig's driver and compiler_rt matter as much as
    clang's version, so both go into results and cache keys."""
    clang = _version(_ZIG_CC).removeprefix("clang version ").split()[0]
    zig = subprocess.run([sys.executable, "-m", "ziglang", "version"], capture_output=True,
                         text=True, timeout=30).stdout.strip()
    return f"{clang} (zig {zig})"


def cache_dir() -> Path:
    d = Path(os.environ.get("MSFSIM_CACHE", Path.home() / ".cache" / "msfsim"))
    d.mkdir(parents=True, exist_ok=True)
    return d


_ZIG_CC = (sys.executable, "-m", "ziglang", "cc")


def _zig_available() -> bool:
    return importlib.util.find_spec("ziglang") is not None


def compilers_for(platform: Platform) -> list[Compiler]:
    """The compilers that can build for `platform`, preferred first."""
    gcc = platform.gcc
    out = [Compiler(gcc, (gcc,), shutil.which(gcc) is not None,
                    f"apt-get install --no-install-recommends {APT_PACKAGES.get(gcc, gcc)}")]
    if platform.clang_target:
        out.append(Compiler(CLANG_NAME, _ZIG_CC, _zig_available(), "pip install ziglang", kind="zig"))
    return out


def select_compiler(platform: Platform, name: str | None = None) -> Compiler:
    """The first installed compiler for `platform`, or the one `name` asks for: its full name,
    its command, or simply "gcc" / "clang"."""
    choices = compilers_for(platform)
    if name is not None:
        choices = [c for c in choices if name in (c.name, c.argv[0], "clang" if c.kind == "zig" else "gcc")]
        if not choices:
            known = ", ".join(["gcc", *(["clang"] if platform.clang_target else [])])
            raise ToolchainError(f"no compiler {name!r} for {platform.name} (choose {known})")
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


def linker_script(platform: Platform, min_stack: int = MIN_STACK_BYTES, discard_debug: bool = False) -> str:
    """The board's linker script. `discard_debug` drops DWARF sections: zig's compiler_rt brings
    ~1.2 MB of it into every ELF, and zig reads any strip option as "strip the symbols too"."""
    text = (RUNTIME_DIR / "link.ld.in").read_text()
    if discard_debug:
        text = text.replace("/DISCARD/ : {", "/DISCARD/ : { *(.debug_*)", 1)
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
    if compiler.kind == "zig":
        return [*zig_target_flags(platform), *ZIG_FLAGS, *COMMON_FLAGS]
    return [*platform.gcc_flags, *COMMON_FLAGS]


def _link_flags(platform: Platform, compiler: Compiler) -> list[str]:
    if compiler.kind == "zig":
        return [*ZIG_LINK_FLAGS, f"-Wl,--entry={ENTRY[platform.family]}"]
    return list(LINK_FLAGS)


def _libs(compiler: Compiler) -> list[str]:
    return ["-lcompiler_rt"] if compiler.kind == "zig" else ["-lgcc"]


def zig_target_flags(platform: Platform) -> list[str]:
    """The board's clang triple and flags in `zig cc`'s terms (zig names targets arch-os-abi
    and CPUs with underscores; it reads -march as a CPU name)."""
    parts = platform.clang_target.split("-")
    arch, abi = parts[0], parts[-1] if len(parts) >= 3 else "none"
    arch = "thumb" if arch.startswith("thumb") else "arm" if arch.startswith("arm") else arch
    out = ["-target", f"{arch}-freestanding-{abi if abi.startswith('eabi') else 'none'}"]
    for f in platform.clang_flags:
        if f.startswith("-mcpu="):
            out.append("-mcpu=" + f.removeprefix("-mcpu=").replace("-", "_"))
        elif f.startswith("-march=rv"):
            out.append("-mcpu=" + _zig_riscv_cpu(f.removeprefix("-march=")))
        else:
            out.append(f)
    return out


def _zig_riscv_cpu(march: str) -> str:
    """rv32imac -> generic_rv32+m+a+c+zicsr+zifencei (ISA spec 2.2, as gcc is told: the base
    ISA includes the CSR and fence.i instructions)."""
    base, *multi = march.lower().split("_")
    m = re.fullmatch(r"rv(32|64)i([a-z]*)", base)
    if not m:
        raise ToolchainError(f"cannot translate -march={march} for zig cc")
    feats = [*m.group(2), *multi, "zicsr", "zifencei"]
    return f"generic_rv{m.group(1)}" + "".join(f"+{x}" for x in dict.fromkeys(feats))


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
    link, libs = _link_flags(platform, cc), _libs(cc)
    script = linker_script(platform, min_stack, discard_debug=cc.kind == "zig")

    h = hashlib.sha256()
    for part in (cc.name, cc.version, platform.name, script, *flags, *link, *libs):
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
        cmd = [*cc.argv, *flags, *link, f"-Wl,-T,{ld}", "-o", str(tmp_elf), *map(str, srcs), *libs]
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
    zig = _zig_available()
    rows.append({"tool": CLANG_NAME, "status": "ok" if zig else "optional, missing",
                 "detail": f"fallback compiler for Arm and RISC-V{': ' + _zig_version() if zig else ''}",
                 "install": "pip install ziglang"})
    rows.extend(sim.doctor_rows())
    return rows
