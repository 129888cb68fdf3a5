"""The toolchain's errors, and the one reading of a failed build's stderr: a link that overflows
the board's flash or SRAM is "nothing fits" (exit 3), anything else a build failure whose message
carries the compiler's file:line diagnostics."""
from __future__ import annotations

import re

from msfsim import NoPlan, ToolMissing
from msfsim.platforms import Platform


class ToolchainError(ToolMissing):
    """A compiler is missing, or compiling / linking failed (message carries file:line)."""


class LinkOverflowError(ToolchainError, NoPlan):
    """The firmware does not fit the board's flash or SRAM: nothing fits the board (exit 3)."""
    exit_code = NoPlan.exit_code

    def __init__(self, message: str, region: str, overflow: int):
        super().__init__(message)
        self.region = region
        self.overflow = overflow


# GNU ld: "region `SRAM' overflowed by N bytes" (after "section `.bss' will not fit in region
# `SRAM'"); lld: "section '.bss' will not fit in region 'SRAM': overflowed by N bytes".
_OVERFLOW = re.compile(r"region [`'](?P<region>\w+)' overflowed by (?P<n>\d+) bytes"
                       r"|will not fit in region [`'](?P<region2>\w+)'(?::\s*overflowed by (?P<n2>\d+) bytes)?")
_DIAG = re.compile(r"^(?P<loc>[^:\s]+:\d+(?::\d+)?): (?:fatal )?error: (?P<msg>.*)$", re.M)
_UNDEF = re.compile(r"undefined reference to `([^']+)'")


def diagnose(stderr: str, platform: Platform) -> ToolchainError:
    """The error a failed compile / link of a firmware for `platform` means (its stderr)."""
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
