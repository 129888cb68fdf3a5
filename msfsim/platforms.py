"""Boards and core families: declarative TOML files, read into frozen `Platform` / `Family`.

This module is data: it reads board descriptions and imports neither the toolchain nor the
emulator backends (which compilers and backends are usable for a board here is
`msfsim.sim.inventory`).

`msfsim/boards/NAME.toml`, one per board: the part (core, arch, clock, `features` such as
"dsp"), its real memory sizes (enforced by the linker script), the addresses the firmware is
linked at (chosen so that every emulator maps them) and what is particular to it (the QEMU
machine that resembles it, a proxy core, deployment defaults). See DESIGN §6.

`msfsim/boards/families/FAMILY.toml`, one per core family: what every board of the family
shares, which used to be branches on the family name in Python: the runtime sources, startup
file and entry symbol (msfsim/kernels_c/runtime/), the cross-compiler (command, Debian package,
flags, clang target, the macro the compiler predefines for the DSP extension), how a fault's
cause register reads, the backend used by default, and a `[backends.NAME]` table per emulator
that models the core (unicorn's CPU model, QEMU's system, cpu and load arguments, Renode's CPU
line). A board file may override any key of `[compiler]` and of a `[backends.NAME]` table, or
drop a family backend with `NAME = false` under `[backends]`. In family strings `@core@` and
`@arch@` stand for the board's core and arch, `@CORE@` for its core in upper case with `-` as
`_` (cortex-m7 -> CORTEX_M7).

A new board of an existing family is one board file; a board of a new family is a family file,
its runtime C in msfsim/kernels_c/runtime/ and the board file.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msfsim import PLATFORMS_DIR as _PACKAGED_BOARDS, MsfsimError

PLATFORMS_DIR = Path(os.environ.get("MSFSIM_PLATFORMS", _PACKAGED_BOARDS))
FAMILIES_SUBDIR = "families"
# Keys every family file has (test_backends checks each shipped family against them).
FAMILY_KEYS = {
    "": ("name", "description", "default_backend", "faults"),
    "runtime": ("startup", "sources", "entry", "instret_csr"),
    "compiler": ("gcc", "package", "flags", "clang_target", "clang_flags", "dsp_macro"),
}
# Features a board may list (what the code reads them for).
FEATURES = {"dsp": "Arm DSP extension: int16-pair SIMD multiply-accumulates (msfsim.deploy, "
                   "the kernels' DSP loops)"}


class PlatformError(MsfsimError, ValueError):
    """Unknown board or family, or a malformed board or family file."""


@dataclass(frozen=True)
class Region:
    origin: int
    size: int


@dataclass(frozen=True)
class Family:
    """What every board of a core family shares (msfsim/boards/families/NAME.toml)."""
    name: str
    description: str
    default_backend: str          # backend a board of the family is measured with by default
    faults: str                   # how msf_fault's cause register reads (msfsim.sim.base)
    startup: str                  # runtime files (kernels_c/runtime/), linked in this order:
    sources: tuple[str, ...]      # startup first, then these
    entry: str                    # ELF entry symbol
    instret_csr: str              # CSR the markers record as a second count ("" none)
    gcc: str                      # cross-compiler command
    gcc_package: str              # Debian package that has it
    dsp_macro: str                # macro the compiler predefines on cores with "dsp" ("" none)
    compiler: dict[str, Any] = field(hash=False, compare=False)   # [compiler] defaults
    backends: dict[str, dict[str, Any]] = field(hash=False, compare=False)
    path: str = ""

    @property
    def runtime_sources(self) -> tuple[str, ...]:
        """The family's runtime files, startup first (msf_runtime.c, shared, comes before)."""
        return (self.startup, *self.sources)


@dataclass(frozen=True)
class Platform:
    name: str
    board: str
    core: str
    arch: str
    family: str                  # core family: a file of msfsim/boards/families/
    clock_hz: int
    flash: Region                # real board flash (size enforced at link time)
    sram: Region                 # real board SRAM (size enforced at link time)
    link_flash_origin: int       # where the firmware is linked (emulator-compatible)
    link_sram_origin: int
    gcc: str
    gcc_flags: tuple[str, ...]
    clang_target: str
    clang_flags: tuple[str, ...]
    backends: dict[str, dict[str, Any]] = field(hash=False, compare=False)
    proxy: bool = False
    proxy_core: str = ""
    input_in_place: bool = False  # default deployment: network input read where it lies
    features: frozenset[str] = frozenset()   # e.g. "dsp" (see FEATURES)
    gcc_package: str = ""        # Debian package with `gcc`
    default_backend: str = ""    # the family's, unless the board names another

    @property
    def label(self) -> str:
        """Name to print next to every figure; proxies say so."""
        return f"{self.name} (proxy: {self.proxy_core})" if self.proxy else self.name

    @property
    def link_flash(self) -> Region:
        return Region(self.link_flash_origin, self.flash.size)

    @property
    def link_sram(self) -> Region:
        return Region(self.link_sram_origin, self.sram.size)

    @property
    def family_info(self) -> Family:
        """The board's core family (runtime, entry, fault decoding, ...)."""
        return family(self.family)

    def has(self, feature: str) -> bool:
        return feature in self.features

    def backend(self, name: str) -> dict[str, Any]:
        if name not in self.backends:
            raise PlatformError(f"platform {self.name!r} has no {name!r} backend "
                                f"(available: {', '.join(sorted(self.backends)) or 'none'})")
        return self.backends[name]

    def __reduce__(self):  # picklable by name: board files are the source of truth
        return (load, (self.name,))


def available() -> list[str]:
    return sorted(p.stem for p in PLATFORMS_DIR.glob("*.toml"))


def _family_dirs() -> list[Path]:
    """Where family files are looked up: beside the boards (MSFSIM_PLATFORMS may name a folder
    of a user's own), then msfsim's."""
    dirs = [PLATFORMS_DIR / FAMILIES_SUBDIR, Path(_PACKAGED_BOARDS) / FAMILIES_SUBDIR]
    return list(dict.fromkeys(dirs))


def families() -> list[str]:
    return sorted({p.stem for d in _family_dirs() for p in d.glob("*.toml")})


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise PlatformError(f"{path}: not valid TOML: {e}") from None


def _parse_family(path: Path) -> Family:
    d = _load_toml(path)
    for section, keys in FAMILY_KEYS.items():
        table = d.get(section, {}) if section else d
        missing = [k for k in keys if k not in table]
        if missing:
            where = f"[{section}]" if section else "top level"
            raise PlatformError(f"{path}: missing {', '.join(missing)} ({where})")
    rt, cc = d["runtime"], d["compiler"]
    backends = d.get("backends", {})
    if not all(isinstance(v, dict) for v in backends.values()):
        raise PlatformError(f"{path}: every [backends.NAME] must be a table")
    return Family(
        name=d["name"], description=d["description"], default_backend=d["default_backend"],
        faults=d["faults"], startup=rt["startup"], sources=tuple(rt["sources"]), entry=rt["entry"],
        instret_csr=rt["instret_csr"], gcc=cc["gcc"], gcc_package=cc["package"],
        dsp_macro=cc["dsp_macro"], compiler=dict(cc), backends={k: dict(v) for k, v in backends.items()},
        path=str(path))


_FAMILIES: dict[str, Family] = {}


def family(name: str) -> Family:
    """The core family called `name`; an unknown name lists the known families."""
    if name not in _FAMILIES:
        path = next((d / f"{name}.toml" for d in _family_dirs() if (d / f"{name}.toml").is_file()), None)
        if path is None:
            raise PlatformError(f"unknown core family {name!r}; known: {', '.join(families())}")
        _FAMILIES[name] = _named(_parse_family(path), name, path)
    return _FAMILIES[name]


def _named(item: Any, name: str, path: Path) -> Any:
    """A parsed board or family file whose `name` must be its file name."""
    if item.name != name:
        raise PlatformError(f"{path}: name {item.name!r} does not match the file name")
    return item


def _region(d: dict[str, Any], key: str, path: Path) -> Region:
    try:
        r = d[key]
        return Region(int(r["origin"]), int(r["size"]))
    except (KeyError, TypeError, ValueError) as e:
        raise PlatformError(f"{path}: [memory].{key} needs integer origin and size") from e


def _substitute(value: Any, subs: dict[str, str]) -> Any:
    """`value` with the family placeholders (@core@, @CORE@, @arch@) filled in."""
    if isinstance(value, str):
        for k, v in subs.items():
            value = value.replace(f"@{k}@", v)
        return value
    if isinstance(value, list):
        return [_substitute(v, subs) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, subs) for k, v in value.items()}
    return value


def _merged_backends(fam: Family, board: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    """The family's [backends.NAME] tables, each updated by the board's; `NAME = false` in the
    board's [backends] drops one."""
    out = {k: dict(v) for k, v in fam.backends.items()}
    for name, cfg in board.items():
        if cfg is False:
            out.pop(name, None)
        elif isinstance(cfg, dict):
            out[name] = {**out.get(name, {}), **cfg}
        else:
            raise PlatformError(f"{path}: [backends].{name} must be a table or false")
    return out


def _parse(path: Path) -> Platform:
    d = _load_toml(path)
    try:
        mem, link = d["memory"], d["link"]
        fam = family(d["family"])
        subs = {"core": d["core"], "CORE": d["core"].upper().replace("-", "_"), "arch": d["arch"]}
        cc = _substitute({**fam.compiler, **d.get("compiler", {})}, subs)
        features = d.get("features", [])
        if not isinstance(features, list) or not all(isinstance(x, str) for x in features):
            raise PlatformError(f"{path}: features must be a list of names")
        unknown = sorted(set(features) - set(FEATURES))
        if unknown:
            raise PlatformError(f"{path}: unknown feature(s) {', '.join(unknown)} "
                                f"(known: {', '.join(sorted(FEATURES))})")
        return Platform(
            name=d["name"], board=d["board"], core=d["core"], arch=d["arch"], family=fam.name,
            clock_hz=int(d["clock_hz"]),
            flash=_region(mem, "flash", path), sram=_region(mem, "sram", path),
            link_flash_origin=int(link["flash_origin"]), link_sram_origin=int(link["sram_origin"]),
            gcc=cc["gcc"], gcc_flags=tuple(cc.get("flags", ())),
            clang_target=cc.get("clang_target", ""), clang_flags=tuple(cc.get("clang_flags", ())),
            backends=_substitute(_merged_backends(fam, d.get("backends", {}), path), subs),
            proxy=bool(d.get("proxy", False)), proxy_core=d.get("proxy_core", ""),
            input_in_place=bool(d.get("deploy", {}).get("input_in_place", False)),
            features=frozenset(features), gcc_package=cc.get("package", cc["gcc"]),
            default_backend=d.get("default_backend", fam.default_backend),
        )
    except KeyError as e:
        raise PlatformError(f"{path}: missing key {e}") from e


_CACHE: dict[str, Platform] = {}


def load(name: str) -> Platform:
    """The board called `name`; an unknown name lists the known boards."""
    if name not in _CACHE:
        path = PLATFORMS_DIR / f"{name}.toml"
        if not path.is_file():
            raise PlatformError(f"unknown platform {name!r}; known: {', '.join(available())}")
        _CACHE[name] = _named(_parse(path), name, path)
    return _CACHE[name]


def all_platforms() -> list[Platform]:
    return [load(n) for n in available()]


def size_text(n: int) -> str:
    """A memory size as the datasheets write it: whole MB, else whole KB, else bytes
    (4 MB, 520 KB, 4,032 KB; K = 1024)."""
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20:,} MB"
    if n % 1024 == 0:
        return f"{n >> 10:,} KB"
    return f"{n:,} B"


_kb = size_text


def summary(p: Platform) -> dict[str, str]:
    """What a board is (the data part of a `msfsim platforms` row)."""
    return {"board": p.label, "core": p.core + (f" (runs as {p.proxy_core})" if p.proxy else ""),
            "sram": size_text(p.sram.size), "flash": size_text(p.flash.size),
            "clock": f"{p.clock_hz / 1e6:g} MHz"}
