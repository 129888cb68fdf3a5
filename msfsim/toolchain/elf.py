"""A minimal little-endian ELF32 reader: loadable segments, sections and symbols.

Enough for the emulator backends (what to load where, where the markers and the result record
are) and for the RAM / flash accounting; no dependency beyond the standard library. It lives with
the toolchain that produces the images (msfsim.sim.elf re-exports it for the backends).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

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
