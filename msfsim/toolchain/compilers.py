"""Which compilers can build for a board, their labels, and the flags each is given.

GCC from the Debian cross packages is the reference compiler; clang from the `ziglang` wheel
(`pip install ziglang`, driven as `zig cc`) is a fallback for Arm and RISC-V. Results name the
compiler used (`Compiler.label`): instruction counts are only comparable within one compiler and
optimisation level, so the label also enters the build cache key.

`zig cc` takes zig's target and CPU names, not clang's: the board file's clang triple and flags
are translated (thumbv7em-none-eabi + -mcpu=cortex-m7 -> thumb-freestanding-eabi +
-mcpu=cortex_m7; -march=rv32imac -> -mcpu=generic_rv32+m+a+c+zicsr+zifencei). Its linker is
lld: the ELF entry is passed explicitly (zig would ask for `_start`), and zig's compiler_rt
stands in for libgcc.
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache

from msfsim.platforms import Platform

from .errors import ToolchainError

COMMON_FLAGS = ("-ffreestanding", "-nostdlib", "-O2", "-std=c11", "-Wall", "-Wextra",
                "-ffunction-sections", "-fdata-sections")
LINK_FLAGS = ("-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments")
# zig cc (clang + lld): no unwind tables in a C firmware.
ZIG_FLAGS = ("-fno-unwind-tables", "-fno-asynchronous-unwind-tables")
ZIG_LINK_FLAGS = ("-Wl,--gc-sections",)
CLANG_NAME = "clang (ziglang)"
ZIG_CC = (sys.executable, "-m", "ziglang", "cc")


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
        return zig_version() if self.kind == "zig" else tool_version(self.argv)

    @property
    def label(self) -> str:
        """Name and version for results; gcc's version line already starts with its name."""
        v = self.version
        return v if v.startswith(self.name) else f"{self.name} {v}"


@lru_cache(maxsize=None)
def tool_version(argv: tuple[str, ...]) -> str:
    """The first line of `argv --version`."""
    out = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=30)
    return (out.stdout or out.stderr).splitlines()[0].strip()


@lru_cache(maxsize=None)
def zig_version() -> str:
    """"<clang version> (zig <zig version>)": zig's driver and compiler_rt matter as much as
    clang's version, so both go into results and cache keys."""
    clang = tool_version(ZIG_CC).removeprefix("clang version ").split()[0]
    zig = subprocess.run([sys.executable, "-m", "ziglang", "version"], capture_output=True,
                         text=True, timeout=30).stdout.strip()
    return f"{clang} (zig {zig})"


def zig_available() -> bool:
    return importlib.util.find_spec("ziglang") is not None


def compilers_for(platform: Platform) -> list[Compiler]:
    """The compilers that can build for `platform`, preferred first."""
    gcc = platform.gcc
    out = [Compiler(gcc, (gcc,), shutil.which(gcc) is not None,
                    f"apt-get install --no-install-recommends {platform.gcc_package or gcc}")]
    if platform.clang_target:
        out.append(Compiler(CLANG_NAME, ZIG_CC, zig_available(), "pip install ziglang", kind="zig"))
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


# ---------------------------------------------------------------- flags

def compile_flags(platform: Platform, compiler: Compiler) -> list[str]:
    if compiler.kind == "zig":
        return [*zig_target_flags(platform), *ZIG_FLAGS, *COMMON_FLAGS]
    return [*platform.gcc_flags, *COMMON_FLAGS]


def link_flags(platform: Platform, compiler: Compiler) -> list[str]:
    if compiler.kind == "zig":
        return [*ZIG_LINK_FLAGS, f"-Wl,--entry={platform.family_info.entry}"]
    return list(LINK_FLAGS)


def libs(compiler: Compiler) -> list[str]:
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
            out.append("-mcpu=" + zig_riscv_cpu(f.removeprefix("-march=")))
        else:
            out.append(f)
    return out


def zig_riscv_cpu(march: str) -> str:
    """rv32imac -> generic_rv32+m+a+c+zicsr+zifencei (ISA spec 2.2, as gcc is told: the base
    ISA includes the CSR and fence.i instructions)."""
    base, *multi = march.lower().split("_")
    m = re.fullmatch(r"rv(32|64)i([a-z]*)", base)
    if not m:
        raise ToolchainError(f"cannot translate -march={march} for zig cc")
    feats = [*m.group(2), *multi, "zicsr", "zifencei"]
    return f"generic_rv{m.group(1)}" + "".join(f"+{x}" for x in dict.fromkeys(feats))
