"""Boards: one declarative TOML file per board in `msfsim/boards/`, read into a frozen `Platform`.

A board file states the core, the real memory sizes (enforced by the linker script), the
addresses the firmware is linked at (chosen so that every emulator maps them), the compiler
flags and the per-backend emulator settings. See DESIGN §6.
"""
from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msfsim import PLATFORMS_DIR as _PACKAGED_BOARDS, MsfsimError

PLATFORMS_DIR = Path(os.environ.get("MSFSIM_PLATFORMS", _PACKAGED_BOARDS))
FAMILIES = ("cortex-m", "rv32", "lx106")


class PlatformError(MsfsimError, ValueError):
    """Unknown board or malformed board file."""


@dataclass(frozen=True)
class Region:
    origin: int
    size: int


@dataclass(frozen=True)
class Platform:
    name: str
    board: str
    core: str
    arch: str
    family: str                  # runtime family: cortex-m | rv32 | lx106
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

    def backend(self, name: str) -> dict[str, Any]:
        if name not in self.backends:
            raise PlatformError(f"platform {self.name!r} has no {name!r} backend "
                                f"(available: {', '.join(sorted(self.backends)) or 'none'})")
        return self.backends[name]

    def __reduce__(self):  # picklable by name: board files are the source of truth
        return (load, (self.name,))


def available() -> list[str]:
    return sorted(p.stem for p in PLATFORMS_DIR.glob("*.toml"))


def _region(d: dict[str, Any], key: str, path: Path) -> Region:
    try:
        r = d[key]
        return Region(int(r["origin"]), int(r["size"]))
    except (KeyError, TypeError, ValueError) as e:
        raise PlatformError(f"{path}: [memory].{key} needs integer origin and size") from e


def _parse(path: Path) -> Platform:
    with path.open("rb") as f:
        d = tomllib.load(f)
    try:
        mem, link, cc = d["memory"], d["link"], d["compiler"]
        family = d["family"]
        if family not in FAMILIES:
            raise PlatformError(f"{path}: family must be one of {FAMILIES}, not {family!r}")
        return Platform(
            name=d["name"], board=d["board"], core=d["core"], arch=d["arch"], family=family,
            clock_hz=int(d["clock_hz"]),
            flash=_region(mem, "flash", path), sram=_region(mem, "sram", path),
            link_flash_origin=int(link["flash_origin"]), link_sram_origin=int(link["sram_origin"]),
            gcc=cc["gcc"], gcc_flags=tuple(cc.get("flags", ())),
            clang_target=cc.get("clang_target", ""), clang_flags=tuple(cc.get("clang_flags", ())),
            backends=dict(d.get("backends", {})),
            proxy=bool(d.get("proxy", False)), proxy_core=d.get("proxy_core", ""),
            input_in_place=bool(d.get("deploy", {}).get("input_in_place", False)),
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
        p = _parse(path)
        if p.name != name:
            raise PlatformError(f"{path}: name {p.name!r} does not match the file name")
        _CACHE[name] = p
    return _CACHE[name]


def all_platforms() -> list[Platform]:
    return [load(n) for n in available()]


def _kb(n: int) -> str:
    """A memory size as the datasheets write it: whole MB, else whole KB, else bytes
    (4 MB, 520 KB, 4,032 KB; K = 1024)."""
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20:,} MB"
    if n % 1024 == 0:
        return f"{n >> 10:,} KB"
    return f"{n:,} B"


def describe() -> list[dict[str, str]]:
    """Rows for `msfsim platforms`: what each board is and what can build / run it here."""
    from msfsim import sim, toolchain

    rows = []
    for p in all_platforms():
        compilers = [c for c in toolchain.compilers_for(p) if c.available]
        backends = [b for b in sim.backend_names() if sim.backend_available(b, p)[0]]
        rows.append({
            "board": p.label, "core": p.core + (f" (runs as {p.proxy_core})" if p.proxy else ""),
            "sram": _kb(p.sram.size), "flash": _kb(p.flash.size),
            "clock": f"{p.clock_hz / 1e6:g} MHz",
            "compilers": ", ".join(c.name for c in compilers) or "none",
            "backends": ", ".join(backends) or "none",
        })
    return rows


def which(tool: str) -> str | None:
    return shutil.which(tool)
