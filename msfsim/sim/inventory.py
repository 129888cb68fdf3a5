"""What this machine can build and run: `msfsim platforms` and `msfsim doctor`.

The one place that looks at boards (msfsim.platforms, data), compilers (msfsim.toolchain) and
emulator backends (the msfsim.sim registry) together.
"""
from __future__ import annotations

from msfsim import platforms, sim, toolchain
from msfsim.platforms import Platform


def compilers(p: Platform) -> list[str]:
    """The compilers installed here that can build for `p`, preferred first."""
    return [c.name for c in toolchain.compilers_for(p) if c.available]


def backends(p: Platform) -> list[str]:
    """The backends that can run `p` here, in listing order."""
    return [b for b in sim.backend_names() if sim.backend_available(b, p)[0]]


def describe() -> list[dict[str, str]]:
    """Rows for `msfsim platforms`: what each board is and what can build / run it here."""
    rows = []
    for p in platforms.all_platforms():
        rows.append({**platforms.summary(p),
                     "compilers": ", ".join(compilers(p)) or "none",
                     "backends": ", ".join(backends(p)) or "none"})
    return rows


def doctor() -> list[dict[str, str]]:
    """What `msfsim doctor` prints: each tool, whether it is here, what it is, and how to
    install it (the toolchain's rows, then every registered backend's)."""
    return toolchain.doctor_rows() + sim.doctor_rows()
