"""Cross-compilation of firmware images for a board, cached on disk.

GCC from the Debian cross packages is the reference compiler; clang from the `ziglang` wheel
(`pip install ziglang`, driven as `zig cc`) is a fallback for Arm and RISC-V. Results name the
compiler used: instruction counts are only comparable within one compiler and optimisation level.

What a build needs per board is data: the board's compiler, flags and clang target (its core
family's `[compiler]`, msfsim/boards/families/, which the board may override), the runtime
files and entry symbol of its family (`[runtime]`). Nothing here branches on a family name.

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
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from msfsim import KERNELS_DIR, NoPlan, ToolMissing, platforms
from msfsim.cache import remove_tree, sweep_temp, temp_prefix, usable_dir
from msfsim.platforms import Platform

RUNTIME_DIR = KERNELS_DIR / "runtime"
COMMON_FLAGS = ("-ffreestanding", "-nostdlib", "-O2", "-std=c11", "-Wall", "-Wextra",
                "-ffunction-sections", "-fdata-sections")
LINK_FLAGS = ("-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments")
# zig cc (clang + lld): no unwind tables in a C firmware.
ZIG_FLAGS = ("-fno-unwind-tables", "-fno-asynchronous-unwind-tables")
ZIG_LINK_FLAGS = ("-Wl,--gc-sections",)
CLANG_NAME = "clang (ziglang)"
MIN_STACK_BYTES = 1024  # linker-enforced floor of the stack region
COMPILE_TIMEOUT_S = 120

# The runtime every firmware links (before its family's: msfsim/boards/families/*.toml [runtime]).
RUNTIME_COMMON = ("msf_runtime.c",)


# ---------------------------------------------------------------- ELF images
# A minimal little-endian ELF32 reader: loadable segments, sections and symbols. Enough for
# the emulator backends (what to load where, where the markers and the result record are) and
# for the RAM / flash accounting; no dependency beyond the standard library. It lives with the
# toolchain that produces the images (msfsim.sim.elf re-exports it for the backends).

PT_LOAD = 1
SHT_SYMTAB = 2
SHT_NOBITS = 8
SHF_ALLOC = 0x2
EM_ARM, EM_RISCV, EM_XTENSA = 40, 243, 94


class ElfError(ValueError):
    pass


@dataclass(frozen=True)
class Segment:
    paddr: int       # load (flash) address
    vaddr: int
    data: bytes      # file bytes; memsz beyond them is zero
    memsz: int


@dataclass(frozen=True)
class Section:
    name: str
    addr: int
    size: int
    nobits: bool
    alloc: bool


class ElfImage:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.raw = self.path.read_bytes()
        b = self.raw
        if b[:4] != b"\x7fELF" or b[4] != 1 or b[5] != 1:
            raise ElfError(f"{path}: not a little-endian ELF32 file")
        (_, self.machine, _, self.entry, self._phoff, self._shoff, _, _, self._phentsize,
         self._phnum, self._shentsize, self._shnum, self._shstrndx) = struct.unpack_from(
            "<HHIIIIIHHHHHH", b, 16)

    @cached_property
    def segments(self) -> list[Segment]:
        out = []
        for i in range(self._phnum):
            (ptype, off, vaddr, paddr, filesz, memsz, _, _) = struct.unpack_from(
                "<IIIIIIII", self.raw, self._phoff + i * self._phentsize)
            if ptype == PT_LOAD and memsz:
                out.append(Segment(paddr, vaddr, self.raw[off:off + filesz], memsz))
        return out

    def _section_headers(self) -> list[tuple[int, ...]]:
        return [struct.unpack_from("<IIIIIIIIII", self.raw, self._shoff + i * self._shentsize)
                for i in range(self._shnum)]

    @cached_property
    def sections(self) -> dict[str, Section]:
        hdrs = self._section_headers()
        stroff = hdrs[self._shstrndx][4]
        out = {}
        for (name, stype, flags, addr, _, size, *_rest) in hdrs:
            n = self._cstr(stroff + name)
            if n:
                out[n] = Section(n, addr, size, stype == SHT_NOBITS, bool(flags & SHF_ALLOC))
        return out

    @cached_property
    def symbols(self) -> dict[str, tuple[int, int]]:
        """name -> (value, size); Thumb function values keep bit 0 (mask it for addresses)."""
        hdrs = self._section_headers()
        out: dict[str, tuple[int, int]] = {}
        for (_, stype, _, _, off, size, link, _, _, entsize) in hdrs:
            if stype != SHT_SYMTAB:
                continue
            stroff = hdrs[link][4]
            for k in range(size // entsize):
                name, value, ssize, _, _, _ = struct.unpack_from("<IIIBBH", self.raw, off + k * entsize)
                n = self._cstr(stroff + name)
                if n and n not in out:
                    out[n] = (value, ssize)
        return out

    def symbol(self, name: str) -> int:
        try:
            return self.symbols[name][0]
        except KeyError:
            raise ElfError(f"{self.path}: symbol {name!r} not found") from None

    def address(self, name: str) -> int:
        """A symbol's address with the Thumb bit cleared."""
        v = self.symbol(name)
        return v & ~1 if self.machine == EM_ARM else v

    def read(self, address: int, size: int) -> bytes:
        """Up to `size` file bytes the image loads at `address` (b"" if it loads none there)."""
        for seg in self.segments:
            lo = address - seg.vaddr
            if 0 <= lo < len(seg.data):
                return seg.data[lo:lo + size]
        return b""

    def _cstr(self, off: int) -> str:
        end = self.raw.index(b"\0", off)
        return self.raw[off:end].decode()


class ToolchainError(ToolMissing):
    """A compiler is missing, or compiling / linking failed (message carries file:line)."""


class LinkOverflowError(ToolchainError, NoPlan):
    """The firmware does not fit the board's flash or SRAM: nothing fits the board (exit 3)."""
    exit_code = NoPlan.exit_code

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


_CACHE_DIR: ContextVar[str | None] = ContextVar("msfsim_cache_dir", default=None)


def cache_dir(directory: str | Path | None = None) -> Path:
    """The cache root builds go under: `directory`, else the one a `using_cache_dir` around
    the caller names (a measurement's --cache), else `cache.default_dir()`. Created and
    checked writable (`cache.CacheDirError`, exit 2, if it cannot be used)."""
    return _root(directory)


def _root(directory: str | Path | None) -> Path:
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


def _elf_ok(path: Path) -> bool:
    """Whether the cached ELF at `path` is whole: its bytes match the digest stored beside it
    (`KEY.elf.sha256`, written after the ELF). A truncated, unreadable or unsigned ELF is
    rebuilt, never reused."""
    try:
        want = path.with_name(path.name + ".sha256").read_text().split()[0]
        return hashlib.sha256(path.read_bytes()).hexdigest() == want
    except (OSError, IndexError, UnicodeDecodeError):
        return False


_ZIG_CC = (sys.executable, "-m", "ziglang", "cc")


def _zig_available() -> bool:
    return importlib.util.find_spec("ziglang") is not None


def compilers_for(platform: Platform) -> list[Compiler]:
    """The compilers that can build for `platform`, preferred first."""
    gcc = platform.gcc
    out = [Compiler(gcc, (gcc,), shutil.which(gcc) is not None,
                    f"apt-get install --no-install-recommends {platform.gcc_package or gcc}")]
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


# Compilers run in a process group of their own, killed whole (driver, cc1, as, ld) when the
# caller is interrupted; a measurement worker leads a group itself and keeps them in it.
_TOOLS_OWN_GROUP = True


def tools_in_caller_group() -> None:
    """Run tools in this process's group (a pool worker that leads one: killing the group
    ends the worker and its compilers together)."""
    global _TOOLS_OWN_GROUP
    _TOOLS_OWN_GROUP = False


def run_tool(cmd: Sequence[str], timeout: float) -> subprocess.CompletedProcess:
    """`subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)`, except that a
    timeout or an interrupt (Ctrl-C, SIGTERM) kills the tool with every process it started."""
    own = _TOOLS_OWN_GROUP and os.name == "posix"
    p = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         **({"process_group": 0} if own else {}))
    try:
        out, err = p.communicate(timeout=timeout)
    except BaseException:
        kill_descendants(p.pid)
        try:
            if own:
                os.killpg(p.pid, signal.SIGKILL)
            else:
                p.kill()
        except OSError:
            pass
        p.communicate()
        raise
    return subprocess.CompletedProcess(list(cmd), p.returncode, out, err)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            pass
    return out


def kill_descendants(pid: int) -> None:
    """SIGKILL every descendant of `pid` (Linux: found in /proc; elsewhere none). Each is
    stopped (SIGSTOP) before its children are listed, so none starts another one unseen."""
    todo = _children(pid)
    seen: set[int] = set()
    while todo:
        c = todo.pop()
        if c in seen:
            continue
        seen.add(c)
        try:
            os.kill(c, signal.SIGSTOP)
        except OSError:
            continue
        todo += _children(c)
    for c in seen:
        try:
            os.kill(c, signal.SIGKILL)
        except OSError:
            pass


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


def _flags(platform: Platform, compiler: Compiler) -> list[str]:
    if compiler.kind == "zig":
        return [*zig_target_flags(platform), *ZIG_FLAGS, *COMMON_FLAGS]
    return [*platform.gcc_flags, *COMMON_FLAGS]


def _link_flags(platform: Platform, compiler: Compiler) -> list[str]:
    if compiler.kind == "zig":
        return [*ZIG_LINK_FLAGS, f"-Wl,--entry={platform.family_info.entry}"]
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
                     min_stack: int = MIN_STACK_BYTES, extra_flags: Sequence[str] = (),
                     cache_dir: str | Path | None = None) -> Elf:
    """Compile and link `sources` (+ the runtime) into an ELF for `platform`, cached by content
    under `cache_dir` (default: see `cache_dir()`).

    The cache key covers every source and header byte, the flags, the linker script and the
    compiler's version line, so a hit is the very same build. The ELF is written atomically
    (temporary dir + rename) with its SHA-256 beside it; a cached ELF whose bytes do not match
    is rebuilt.
    """
    cc = select_compiler(platform, compiler)
    srcs = [Path(s) for s in sources] + (runtime_sources(platform) if with_runtime else [])
    incs = [Path(d) for d in include_dirs] + [RUNTIME_DIR]
    flags = _flags(platform, cc) + list(extra_flags)
    flags += [f"-D{k}={v}" if v is not None else f"-D{k}" for k, v in sorted((defines or {}).items())]
    link, libs = _link_flags(platform, cc), _libs(cc)
    script = linker_script(platform, min_stack, discard_debug=cc.kind == "zig")

    # The include dirs enter the key by position, not by path (their headers by name and
    # content): a cache moved or copied elsewhere, generated sources under it, still hits.
    h = hashlib.sha256()
    for part in (cc.name, cc.version, platform.name, script, *flags,
                 *(f"-I#{i}" for i in range(len(incs))), *link, *libs):
        h.update(part.encode() + b"\0")
    flags += [f"-I{d}" for d in incs]
    for f in srcs:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    for i, d in enumerate(incs):
        for f in _headers([d]):
            h.update(f"{i}/{f.name}".encode() + b"\0" + f.read_bytes() + b"\0")
    key = h.hexdigest()[:24]
    root = _root(cache_dir)
    out = root / "elf" / platform.name / f"{key}.elf"
    label = cc.label
    if _elf_ok(out):
        return Elf(str(out), platform.name, label, key)

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
        ld = Path(tmp) / "link.ld"
        ld.write_text(script)
        tmp_elf = Path(tmp) / "fw.elf"
        cmd = [*cc.argv, *flags, *link, f"-Wl,-T,{ld}", "-o", str(tmp_elf), *map(str, srcs), *libs]
        try:
            r = run_tool(cmd, COMPILE_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise ToolchainError(f"{cc.name} timed out after {COMPILE_TIMEOUT_S} s") from e
        if r.returncode != 0:
            raise _diagnose(r.stderr, platform)
        digest = Path(tmp) / "fw.elf.sha256"
        digest.write_text(hashlib.sha256(tmp_elf.read_bytes()).hexdigest() + "\n")
        # Atomic renames, the ELF first: a reader between the two sees a digest that does not
        # match (or none) and builds again; it never takes a partial ELF for a whole one.
        os.replace(tmp_elf, out)
        os.replace(digest, out.with_name(out.name + ".sha256"))
    finally:
        remove_tree(tmp)
        with _LIVE_LOCK:
            _LIVE_BUILDS.discard(tmp)
    return Elf(str(out), platform.name, label, key)


# GNU ld: "region `SRAM' overflowed by N bytes" (after "section `.bss' will not fit in region
# `SRAM'"); lld: "section '.bss' will not fit in region 'SRAM': overflowed by N bytes".
_OVERFLOW = re.compile(r"region [`'](?P<region>\w+)' overflowed by (?P<n>\d+) bytes"
                       r"|will not fit in region [`'](?P<region2>\w+)'(?::\s*overflowed by (?P<n2>\d+) bytes)?")
_DIAG = re.compile(r"^(?P<loc>[^:\s]+:\d+(?::\d+)?): (?:fatal )?error: (?P<msg>.*)$", re.M)
_UNDEF = re.compile(r"undefined reference to `([^']+)'")


def _diagnose(stderr: str, platform: Platform) -> ToolchainError:
    over: dict[str, int] = {}   # region -> bytes over (0: the linker did not say)
    for m in _OVERFLOW.finditer(stderr):
        region, n = m["region"] or m["region2"], m["n"] or m["n2"]
        over[region] = max(over.get(region, 0), int(n or 0))
    if over:
        parts = []
        for region, n in over.items():
            size = platform.sram.size if region == "SRAM" else platform.flash.size
            parts.append(f"{region} ({size} bytes) overflowed by {n} bytes" if n else
                         f"{region} ({size} bytes) overflowed")
        region = max(over, key=lambda r: over[r])
        return LinkOverflowError(f"firmware does not fit {platform.label}: " + "; ".join(parts),
                                 region, over[region])
    diags = [f"{d['loc']}: {d['msg']}" for d in _DIAG.finditer(stderr)]
    undef = sorted(set(_UNDEF.findall(stderr)))
    if undef:
        diags.append("undefined reference to " + ", ".join(undef))
    tail = stderr.strip().splitlines()
    detail = "; ".join(diags[:5]) or (tail[-1] if tail else "no diagnostic")
    return ToolchainError(f"build for {platform.label} failed: {detail}")


# What msfsim reads from its own package at run time (shipped in the wheel as package data).
PACKAGE_DATA = ("kernels_c/msf_kernels.h", "kernels_c/msf_executor.c", "kernels_c/kernels/*.c",
                "kernels_c/runtime/link.ld.in", "kernels_c/runtime/*.S", "boards/*.toml",
                "boards/families/*.toml",
                "sim/uc_count.c", "sim/qemu_plugin/msf_count.c", "codegen/templates/*.in")


def missing_package_data() -> list[str]:
    """The PACKAGE_DATA patterns that match no file in the installed package."""
    from msfsim import PACKAGE_DIR
    return [p for p in PACKAGE_DATA if not any(f.is_file() for f in PACKAGE_DIR.glob(p))]


def doctor_rows() -> list[dict[str, str]]:
    """The toolchain's rows of `msfsim doctor` (msfsim.sim.inventory adds the emulators'): the
    package data, each family's cross-compiler, and the clang fallback."""
    from msfsim import PACKAGE_DIR

    lost = missing_package_data()
    rows = [{"tool": "msfsim package data", "status": "missing" if lost else "ok",
             "detail": ("not found: " + ", ".join(lost)) if lost else
             f"kernels, runtime, boards, templates in {PACKAGE_DIR}",
             "install": "reinstall msfsim (pip install --force-reinstall msfsim)"}]
    for tool, pkg in cross_compilers():
        path = shutil.which(tool)
        rows.append({"tool": tool, "status": "ok" if path else "missing",
                     "detail": _version((tool,)) if path else "",
                     "install": f"apt-get install --no-install-recommends {pkg}"})
    zig = _zig_available()
    rows.append({"tool": CLANG_NAME, "status": "ok" if zig else "optional, missing",
                 "detail": f"fallback compiler for Arm and RISC-V{': ' + _zig_version() if zig else ''}",
                 "install": "pip install ziglang"})
    return rows


def cross_compilers() -> list[tuple[str, str]]:
    """(gcc command, Debian package) of every core family, by command."""
    found = {}
    for name in platforms.families():
        fam = platforms.family(name)
        found.setdefault(fam.gcc, fam.gcc_package)
    return sorted(found.items())
