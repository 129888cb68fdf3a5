"""Executors of measurement jobs. The measurer hands each `Job` to an executor and collects the
rows: `submit(job) -> Future` (its result is `measure_job(job)`'s row), `cancel_all()` (stop at
once: queued jobs cancelled, running ones ended with everything they started) and `shutdown()`
(wait for the running ones, then release the workers). `LocalPoolExecutor` is the local process
pool; `msfsim.measure.dask_executor.DaskExecutor` a Dask distributed cluster (its jobs carry
their sources: it says so with `remote = True`). Which one a run uses is decided in one place,
`msfsim.measure.session.executor_for`.

Signal handling of a measurement (SIGTERM as Ctrl-C, signals held during a cleanup) lives here
too: it is what keeps a killed run from leaving compilers, emulators or temporary dirs behind.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import multiprocessing.util
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from ..cache import remove_tree, sweep_temp, temp_prefix
from ..toolchain import kill_descendants, remove_build_dirs, tools_in_caller_group
from . import jobs
from .jobs import Job

PARENT_POLL_S = 0.25              # how often a pool worker checks that msfsim still runs


class Executor(Protocol):
    """Where measurement jobs run."""

    def submit(self, job: Job) -> cf.Future: ...

    def cancel_all(self) -> None: ...

    def shutdown(self) -> None: ...


# ----------------------------------------------------------------------------- pool workers
#
# A worker must never outlive msfsim. It leads a process group of its own, holding the
# compilers and emulators it starts, so that msfsim ends it and them with one killpg (Ctrl-C,
# SIGTERM, an error). If msfsim itself is killed (kill -9), a thread of the worker sees its
# parent change, kills its children, removes its temporary dirs and exits. Its temporary files
# (TMPDIR: gcc's, QEMU's) live in a scratch dir under the cache root, named so that the next
# run removes it if neither could.

_SCRATCH: str | None = None


def _worker_init(cache_dir: str | None = None, parent: int | None = None) -> None:
    global _SCRATCH
    # Ctrl-C is the parent's to handle: it stops the pool and keeps the cache consistent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (fork copies it)
    try:
        os.setpgid(0, 0)
        tools_in_caller_group()
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may still warn on a tty
    except OSError:
        pass
    if cache_dir is not None:
        try:
            _SCRATCH = tempfile.mkdtemp(prefix=temp_prefix("work"), dir=cache_dir)
        except OSError:
            _SCRATCH = None
        if _SCRATCH is not None:
            tempfile.tempdir = _SCRATCH
            os.environ["TMPDIR"] = _SCRATCH
            multiprocessing.util.Finalize(None, remove_tree, args=(_SCRATCH,), exitpriority=10)
    if parent is not None:
        threading.Thread(target=_watch_parent, args=(parent,), name="msfsim-parent-watch",
                         daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    _die()


def _die() -> None:
    """msfsim is gone: stop the compilers and emulators, remove the temporary dirs, exit.
    The main thread may still be running a job meanwhile: builds are closed first, and what
    it may have started since the first sweep goes in a second one."""
    try:
        for _ in range(2):
            remove_build_dirs()
            kill_descendants(os.getpid())
            if _SCRATCH is not None:
                remove_tree(_SCRATCH)
    finally:
        os._exit(1)


class LocalPoolExecutor:
    """A process pool on this machine: each worker leads a process group of its own (its
    compilers and emulators die with it), watches msfsim and exits when msfsim is gone, and
    keeps its temporary files in a scratch dir under the cache root. A pool broken by a dead
    worker is replaced at the next `submit`."""

    def __init__(self, workers: int, cache_root: str | Path):
        self.workers = workers
        self.cache_root = Path(cache_root)
        self._pool: cf.ProcessPoolExecutor | None = None

    def _get(self) -> cf.ProcessPoolExecutor:
        if self._pool is not None and getattr(self._pool, "_broken", False):
            self.cancel_all()  # a worker died between batches (OOM killer, a signal)
        if self._pool is None:
            # fork: workers need no re-import of the caller's main module; the parent has no
            # threads at this point (the progress bar runs without its monitor thread).
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            ctx = multiprocessing.get_context(method)
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=ctx,
                                                initializer=_worker_init,
                                                initargs=(str(self.cache_root), os.getpid()))
        return self._pool

    def submit(self, job: Job) -> cf.Future:
        return self._get().submit(jobs.measure_job, job)

    def cancel_all(self) -> None:
        """End the pool at once: queued jobs are cancelled; each worker is killed with its
        process group (its compilers and emulators); their temporary dirs are removed."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        pids = [p.pid for p in procs if p.pid is not None]
        for p in procs:
            if p.pid is None:
                continue
            try:
                os.killpg(p.pid, signal.SIGKILL)  # the worker leads its group (_worker_init)
            except OSError:
                kill_descendants(p.pid)
                try:
                    p.kill()
                except (OSError, ValueError):
                    pass
        deadline = time.monotonic() + 5.0
        for p in procs:
            try:
                p.join(max(0.0, deadline - time.monotonic()))
            except (OSError, ValueError, AssertionError):
                pass
        sweep_temp(self.cache_root, dead=pids)

    def shutdown(self) -> None:
        """Wait for the running jobs, then end the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


# ----------------------------------------------------------------------------- signals

def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _on_sigterm_like_sigint() -> Any:
    """SIGTERM stops a measurement as Ctrl-C does (workers and their children ended, temporary
    dirs removed, the cache consistent), where nothing else handles it. -> the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return None
        signal.signal(signal.SIGTERM, _raise_interrupt)
    except (ValueError, OSError):
        return None
    return signal.SIG_DFL


def _restore_sigterm(old: Any) -> None:
    if old is None or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is _raise_interrupt:
            signal.signal(signal.SIGTERM, old)
    except (ValueError, OSError):
        pass


class _signals_held:
    """Block SIGINT and SIGTERM in this thread for a cleanup; pending ones fire afterwards."""

    def __enter__(self) -> None:
        self._old = None
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            except (AttributeError, OSError, ValueError):
                self._old = None

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old)

