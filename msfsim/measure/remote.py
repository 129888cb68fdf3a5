"""What a worker of a cluster runs: `measure_remote(job)`, a job that carries its C sources.

The worker first checks that it measures exactly as the client would: the same msfsim version,
the same kernel and runtime sources, the same compiler version and an emulator that can run the
board. A worker that cannot returns a row that says which worker and what to install
("tool-missing") or why it refuses ("refused"); the client stops with that line (exit 4) rather
than mixing measurements of different tool versions. Otherwise the sources are written to a
temporary directory of the worker, built into firmware under the worker's own cache root (its
ELF build cache, never the client's measurement cache) and measured by `measure_job`, whose
timeout and instruction budget bound the emulator as they do locally.
"""
from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import KERNELS_DIR, __version__, platforms
from .jobs import _ROW, Job, measure_job

SETUP_HINT = "`bash scripts/setup.sh` in an msfsim checkout, or `msfsim doctor` for the packages"


def worker_name() -> str:
    """This worker's address and host name (the host name alone outside a Dask worker)."""
    host = socket.gethostname()
    try:
        from distributed import get_worker
        return f"{get_worker().address} ({host})"
    except (ImportError, ValueError):
        return host


@lru_cache(maxsize=1)
def kernels_digest() -> str:
    from .measurer import _tree_digest
    return _tree_digest(KERNELS_DIR)


@lru_cache(maxsize=1)
def _cache_root() -> str:
    """The worker's own cache root (its MSFSIM_CACHE or ~/.cache/msfsim), else a temporary one."""
    from ..cache import CacheDirError, usable_dir
    try:
        return str(usable_dir(None))
    except CacheDirError:
        return tempfile.mkdtemp(prefix="msfsim-worker-cache-")


def refusal(job: Job) -> dict[str, Any] | None:
    """The row of a worker that cannot measure `job` as the client would, or None."""
    from ..sim import get_backend
    from ..toolchain import ToolchainError, select_compiler

    who = worker_name()
    row = dict(_ROW)
    if job.version and job.version != __version__:
        return {**row, "status": "refused",
                "detail": f"worker {who} runs msfsim {__version__}, the client {job.version}: "
                          f"install msfsim {job.version} (pip install 'msfsim[dask]=="
                          f"{job.version}') on that worker"}
    if job.kernels and job.kernels != kernels_digest():
        return {**row, "status": "refused",
                "detail": f"worker {who}: its msfsim kernel sources differ from the client's "
                          f"(same version {__version__}, another build): install the client's "
                          f"msfsim build on that worker"}
    try:
        plat = platforms.load(job.platform)
    except Exception as exc:
        return {**row, "status": "refused", "detail": f"worker {who}: {exc}"}
    try:
        cc = select_compiler(plat, job.compiler)
    except ToolchainError as exc:
        return {**row, "status": "tool-missing",
                "detail": f"worker {who}: {exc} ({SETUP_HINT})"}
    if job.compiler_label and cc.label != job.compiler_label:
        return {**row, "status": "refused",
                "detail": f"worker {who} compiles with {cc.label!r}, the client with "
                          f"{job.compiler_label!r}: counts would differ; install the "
                          f"client's compiler version on that worker"}
    try:
        ok, why = get_backend(job.backend).available(plat)
    except ValueError as exc:
        ok, why = False, str(exc)
    if not ok:
        return {**row, "status": "tool-missing",
                "detail": f"worker {who}: backend {job.backend} cannot run {plat.label}: {why} "
                          f"({SETUP_HINT})"}
    return None


def measure_remote(job: Job) -> dict[str, Any]:
    """`measure_job` of a job that carries its sources, on a worker (see the module doc)."""
    from ..sim import BackendUnavailable

    no = refusal(job)
    if no is not None:
        return no
    with tempfile.TemporaryDirectory(prefix="msfsim-job-") as d:
        for name, text in job.files:
            if os.path.basename(name) != name or name in ("", ".", ".."):
                return {**_ROW, "detail": f"job {job.label}: bad source file name {name!r}"}
            (Path(d) / name).write_text(text)
        try:
            return measure_job(replace(job, generated_dir=d, cache_dir=_cache_root(), files=()))
        except BackendUnavailable as exc:
            return {**_ROW, "status": "tool-missing",
                    "detail": f"worker {worker_name()}: {exc} ({SETUP_HINT})"}
