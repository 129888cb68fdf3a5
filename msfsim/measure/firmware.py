"""Measuring firmware: build generated sources + kernels + runtime for a board, run in a backend.

`measure_elf` and `measure_generated` are pure module-level functions of picklable arguments,
so the search can hand them to a process pool. Without a backend, the board's default one runs
the firmware (its family's `default_backend`, msfsim.sim.default_backend).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from .. import KERNELS_DIR, platforms
from ..platforms import Platform
from ..sim import DEFAULT_BUDGET, DEFAULT_TIMEOUT_S, Measurement, default_backend, get_backend
from ..toolchain import RUNTIME_DIR, Elf, LinkOverflowError, compile_firmware


def _platform(p: Platform | str) -> Platform:
    return p if isinstance(p, Platform) else platforms.load(p)


def measure_elf(elf: Elf, platform: Platform | str, backend: str | None = None,
                budget_instructions: int = DEFAULT_BUDGET, timeout_s: float = DEFAULT_TIMEOUT_S) -> Measurement:
    p = _platform(platform)
    if elf.platform != p.name:
        raise ValueError(f"{elf.path} was built for {elf.platform}, not {p.name}")
    return get_backend(backend or default_backend(p)).run(elf, p, budget_instructions, timeout_s)


def firmware_sources(generated_dir: str | Path, kernels_dir: str | Path = KERNELS_DIR) -> list[Path]:
    """Generated C + every kernel/arena/executor source + the firmware main."""
    gen, kern = Path(generated_dir), Path(kernels_dir)
    if not (gen / "msf_generated.h").is_file():
        raise FileNotFoundError(f"{gen} has no msf_generated.h")
    srcs = sorted(gen.glob("*.c")) + sorted(kern.glob("*.c")) + sorted((kern / "kernels").glob("*.c"))
    return srcs + [RUNTIME_DIR / "msf_main.c"]


def build_firmware(platform: Platform | str, generated_dir: str | Path, *,
                   kernels_dir: str | Path = KERNELS_DIR, compiler: str | None = None,
                   defines: Mapping[str, object] | None = None) -> Elf:
    p = _platform(platform)
    srcs = firmware_sources(generated_dir, kernels_dir)
    incs = [Path(generated_dir), Path(kernels_dir)]
    return compile_firmware(p, srcs, incs, defines, compiler=compiler)


def measure_generated(platform: Platform | str, generated_dir: str | Path, backend: str | None = None, *,
                      kernels_dir: str | Path = KERNELS_DIR, compiler: str | None = None,
                      budget_instructions: int = DEFAULT_BUDGET,
                      timeout_s: float = DEFAULT_TIMEOUT_S) -> Measurement:
    """Build and run one generated block/plan; a firmware too large for the board is an
    "overflow" measurement (the search treats it as infeasible), not an exception."""
    p = _platform(platform)
    backend = backend or default_backend(p)
    try:
        elf = build_firmware(p, generated_dir, kernels_dir=kernels_dir, compiler=compiler)
    except LinkOverflowError as e:
        return Measurement(None, None, None, 0, None, b"", "overflow", str(e), backend, compiler or p.gcc, p.label)
    return measure_elf(elf, p, backend, budget_instructions, timeout_s)
