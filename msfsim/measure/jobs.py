"""The pure measurement job: a picklable `Job` (generated sources on disk, or shipped inside
the job for a worker on another machine; board, backend, compiler, instruction budget, timeout)
and `measure_job(job)` -> a JSON row, keyed in the cache by exactly what determines it (DESIGN §4
"Scale-out"); the deterministic measurement input and the instruction budget of a firmware.
A remote worker runs `msfsim.measure.remote.measure_remote(job)`, which checks first that it
measures as the client would (same msfsim version, kernels, compiler version, backend).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ToolMissing, platforms
from ..ir import Model
from ..toolchain import LinkOverflowError, using_cache_dir

DEFAULT_TIMEOUT_S = 300.0
BASE_BUDGET = 20_000_000          # instructions any firmware may spend beyond its work estimate
INSTRUCTIONS_PER_WORK = 200       # budget per MAC (or byte moved): ~20x what int8 kernels need
INPUT_SEED = 0                    # measurement input: deterministic, so cache keys are stable
# Deterministic outcomes are cached; timeouts, budget stops and host errors may not recur.
CACHED_STATUSES = ("ok", "fault", "overflow")
# A worker that cannot measure as the client would (a tool missing, another msfsim version,
# kernels or compiler version): the run stops with the worker's reason (exit 4).
REFUSED_STATUSES = ("tool-missing", "refused")


class WorkerUnfit(ToolMissing):
    """A worker of a cluster lacks a tool or measures otherwise than the client (exit 4): the
    run stops, naming the worker (the row's detail)."""


def measurement_input(model: Model, seed: int = INPUT_SEED) -> np.ndarray:
    """The int8 NHWC input every measurement runs on (uniform over the int8 range)."""
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=model.tensor(model.input).shape, dtype=np.int8)


def output_digest(data: bytes | np.ndarray) -> str:
    raw = data if isinstance(data, bytes) else np.ascontiguousarray(data, np.int8).tobytes()
    return hashlib.sha256(raw).hexdigest()


# ----------------------------------------------------------------------------- the pure job

@dataclass(frozen=True)
class Job:
    """Everything one measurement depends on; picklable (strings and numbers only)."""
    key: str
    label: str                 # what is measured, for reports (block key or "plan")
    generated_dir: str
    platform: str
    backend: str
    compiler: str | None
    budget: int
    timeout_s: float
    cache_dir: str | None = None   # cache root: the ELF build cache (and native helpers) live here
    # A remote job (msfsim.measure.remote) carries its sources and what the client measures
    # with, so that a worker that would measure otherwise refuses instead of differing.
    files: tuple[tuple[str, str], ...] = ()   # (file name, C source) when generated_dir is ""
    version: str = ""              # msfsim version of the client
    kernels: str = ""              # digest of the client's kernel and runtime sources
    compiler_label: str = ""       # the client's compiler name and version line



# A measurement row: what `measure_job` returns and the cache stores (JSON).
_ROW: dict[str, Any] = {"status": "error", "detail": "", "instructions": None,
                        "stack_peak": None, "arena_peak": None, "static_ram": None,
                        "measured_ram": None, "flash_bytes": None, "elf": None,
                        "compiler": None, "output_sha256": None, "csr_instructions": None}
_ROW_COUNTS = ("instructions", "stack_peak", "arena_peak", "static_ram", "measured_ram",
               "flash_bytes")


def valid_row(row: dict[str, Any]) -> bool:
    """Whether a cached row is one `measure_job` could have written (a row that is not is a
    cache miss: measured again, never trusted)."""
    if not all(k in row for k in _ROW) or row["status"] not in CACHED_STATUSES:
        return False
    if not isinstance(row["detail"], str) or not isinstance(row["compiler"], (str, type(None))):
        return False
    if not isinstance(row["output_sha256"], (str, type(None))):
        return False
    counts = [row[k] for k in _ROW_COUNTS] + [row["csr_instructions"]]
    if not all(v is None or (type(v) is int and v >= 0) for v in counts):
        return False
    return row["status"] != "ok" or all(row[k] is not None for k in _ROW_COUNTS)


def measure_job(job: Job) -> dict[str, Any]:
    """Build and run one firmware -> a JSON-able row. Never raises for a bad candidate: a
    build failure, a firmware too big for the board or a guest fault is a status with its
    cause."""
    from ..sim import BackendUnavailable
    from .firmware import build_firmware, measure_elf

    row = dict(_ROW)
    try:
        plat = platforms.load(job.platform)
        with using_cache_dir(job.cache_dir):
            try:
                elf = build_firmware(plat, job.generated_dir, compiler=job.compiler)
            except LinkOverflowError as exc:
                return {**row, "status": "overflow", "detail": str(exc)}
            m = measure_elf(elf, plat, job.backend, job.budget, job.timeout_s)
    except BackendUnavailable:
        raise
    except Exception as exc:  # a broken candidate must not stop the search
        return {**row, "detail": f"{type(exc).__name__}: {exc}"}
    return {**row, "status": m.status, "detail": m.detail, "instructions": m.instructions,
            "stack_peak": m.stack_peak, "arena_peak": m.arena_peak, "static_ram": m.static_ram,
            "measured_ram": m.measured_ram, "flash_bytes": elf.flash_bytes, "elf": elf.key,
            "compiler": m.compiler, "output_sha256": output_digest(m.output) if m.output else None,
            "csr_instructions": m.csr_instructions}


def plan_budget(macs: int, io_bytes: int) -> int:
    """Instruction budget of a firmware doing `macs` MACs and moving `io_bytes` bytes."""
    return BASE_BUDGET + INSTRUCTIONS_PER_WORK * (macs + io_bytes)

