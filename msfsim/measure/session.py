"""`MeasureSession`: what the measurers of one run share — the cache root and its SQLite
cache, the executor, the rows already seen (identical firmware is measured once per run), the
totals and ONE progress bar. A `Measurer` (one board, backend and compiler) opens a private
session when it is given none; a sweep or a reproduction opens one and hands it to every search.

`executor_for` is the one place that decides where jobs run: a Dask cluster when a scheduler
address is given (`--scheduler`, `MSFSIM_SCHEDULER`), else the local process pool (created
lazily by the session; inline when `jobs` is 1).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Hashable

from ..cache import sweep_temp, usable_dir
from .cache import MeasurementCache
from .executor import (Executor, LocalPoolExecutor, _on_sigterm_like_sigint, _restore_sigterm,
                       _signals_held)

SCHEDULER_ENV = "MSFSIM_SCHEDULER"


@dataclass
class Stats:
    """Counts of a measurer, or of a whole session."""
    measured: int = 0          # firmware built and run in this run
    cache_hits: int = 0
    shared: int = 0            # identical firmware met again in this run
    failed: int = 0

    def to_json(self) -> dict[str, int]:
        return {"measured": self.measured, "cache_hits": self.cache_hits,
                "identical": self.shared, "failed": self.failed}


def scheduler_address(scheduler: str | None) -> str | None:
    """The Dask scheduler to use: `scheduler`, else $MSFSIM_SCHEDULER, else None (local)."""
    return scheduler or os.environ.get(SCHEDULER_ENV) or None


def executor_for(scheduler: str | None, jobs: int, cache_root: Path) -> Executor | None:
    """The one decision: a `DaskExecutor` on `scheduler`, else None (the session's local pool,
    made when first needed; inline with one job)."""
    address = scheduler_address(scheduler)
    if address is None:
        return None
    from .dask_executor import DaskExecutor
    return DaskExecutor(address)


class MeasureSession:
    """Cache, executor, dedupe, totals and the progress bar of one run (see the module doc)."""

    def __init__(self, cache_dir: str | Path | None = None, jobs: int | None = None,
                 progress: bool | None = None, executor: Executor | None = None,
                 scheduler: str | None = None):
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        # One cache root for measurements, generated sources and ELF builds; one that cannot
        # be written is an error now (exit 2), not a failure of every candidate later.
        self.cache_root = usable_dir(cache_dir)
        sweep_temp(self.cache_root)  # what a killed run left
        self.executor: Executor | None = executor
        self._own_executor = executor is None
        if executor is None:
            self.executor = executor_for(scheduler, self.jobs, self.cache_root)
        self.cache = MeasurementCache(self.cache_root)
        self.stats = Stats()
        self.seen: dict[str, dict[str, Any]] = {}
        self.stage = ""
        self.label = ""            # what is being measured (a sweep: model and board)
        self._reserved: dict[Hashable, int] = {}
        show = sys.stderr.isatty() if progress is None else progress
        self.bar = _bar_factory()(total=0, unit="fw", desc="measuring", file=sys.stderr,
                               disable=not show, dynamic_ncols=True, leave=False)
        self._old_sigterm = _on_sigterm_like_sigint()
        self._closed = False

    @property
    def remote(self) -> bool:
        """Whether jobs go to other machines (they then carry their sources)."""
        return bool(getattr(self.executor, "remote", False))

    @property
    def inline(self) -> bool:
        """One job at a time in this process: one local job and no executor given."""
        return self.jobs == 1 and self.executor is None

    def get_executor(self) -> Executor:
        if self.executor is None:
            self.executor = LocalPoolExecutor(self.jobs, self.cache_root)
        return self.executor

    # -- the bar
    def grow(self, n: int) -> None:
        """Add `n` firmwares to the bar's total (negative: withdraw)."""
        self.bar.total = max(self.bar.n, self.bar.total + n)
        self.refresh()

    def reserve(self, key: Hashable, n: int) -> None:
        """Hold `n` firmwares in the total for work not started yet (a sweep's later cases)."""
        self.grow(n - self._reserved.get(key, 0))
        self._reserved[key] = n

    def release(self, key: Hashable) -> None:
        """That work starts: it announces its own figures now."""
        self.grow(-self._reserved.pop(key, 0))

    def set_best(self, text: str) -> None:
        self.bar.set_postfix_str(f"best {text}", refresh=True)

    def refresh(self) -> None:
        s = self.stats
        stage = " ".join(t for t in (self.label, self.stage) if t)
        stage = f"{stage}: " if stage else ""
        self.bar.set_description(f"{stage}measuring ({s.measured} built+run, {s.cache_hits} "
                                 f"cached, {s.failed} dropped)", refresh=True)

    # -- stopping
    def discard_workers(self) -> None:
        """End the executor's running jobs at once, with what they started."""
        if self.executor is not None:
            self.executor.cancel_all()

    def abort(self) -> None:
        """Stop at once: queued jobs are cancelled, running workers are ended with what they
        started; a second Ctrl-C or SIGTERM meanwhile waits until that is done."""
        with _signals_held():
            self.discard_workers()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.executor is not None:
                try:
                    self.executor.shutdown()
                except BaseException:  # interrupted while waiting: end the workers now
                    self.abort()
                    raise
        finally:
            self.bar.close()
            self.cache.close()
            sweep_temp(self.cache_root)
            _restore_sigterm(self._old_sigterm)
            self._old_sigterm = None

    def __enter__(self) -> "MeasureSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None:
            self.abort()
        self.close()


def _bar_factory() -> type:
    """The bar class, looked up where a test may have replaced it (measurer._bar_class)."""
    from . import measurer
    return measurer._bar_class()


def bar_class() -> type:
    from tqdm import tqdm

    class Bar(tqdm):
        monitor_interval = 0  # no monitor thread: the process pool forks this process
    return Bar
