"""Measuring generated firmware, cached and in parallel; `msfsim measure` (one whole plan).

A measurement is a pure, picklable function of a `Job` (generated sources on disk, board,
backend, compiler, instruction budget, timeout): `measure_job`. `Measurer` feeds jobs to a
process pool (or runs them inline for one job at a time), keys every result in the persistent
`MeasurementCache` by what determines it (every firmware source byte, compiler + version,
flags, linker script, backend, board), measures identical firmware once, checks outputs against
the host reference and shows progress on stderr.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from . import KERNELS_DIR, MsfsimError, NoPlan, ToolMissing, platforms, refmodel
from .cache import MeasurementCache, make_key, remove_tree, sweep_temp, temp_prefix, usable_dir
from .codegen import GeneratedCode, generate_plan
from .fusion import exact
from .fusion.block import Block, BlockInfeasible
from .ir import Model
from .platforms import Platform
from .search.result import MEMORY_CONVENTION, BlockSummary, deployment_lines
from .toolchain import (COMMON_FLAGS, LINK_FLAGS, LinkOverflowError, ToolchainError,
                        kill_descendants, linker_script, remove_build_dirs, select_compiler,
                        tools_in_caller_group, using_cache_dir)

DEFAULT_TIMEOUT_S = 300.0
BASE_BUDGET = 20_000_000          # instructions any firmware may spend beyond its work estimate
INSTRUCTIONS_PER_WORK = 200       # budget per MAC (or byte moved): ~20x what int8 kernels need
INPUT_SEED = 0                    # measurement input: deterministic, so cache keys are stable
# Deterministic outcomes are cached; timeouts, budget stops and host errors may not recur.
CACHED_STATUSES = ("ok", "fault", "overflow")
PARENT_POLL_S = 0.25              # how often a pool worker checks that msfsim still runs


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
    from .measure import build_firmware, measure_elf
    from .sim import BackendUnavailable

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


# ----------------------------------------------------------------------------- outcomes

@dataclass(frozen=True)
class Outcome:
    """One measured firmware, checked against the reference output."""
    status: str                # ok | fault | timeout | budget | overflow | error | mismatch
    detail: str
    instructions: int | None
    stack_peak: int | None
    arena_peak: int | None
    static_ram: int | None
    measured_ram: int | None
    flash_bytes: int | None
    compiler: str | None
    cached: bool
    csr_instructions: int | None = None   # RV32 minstret under QEMU -icount (equal when ok)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def cause(self) -> str:
        return f"{self.status}: {self.detail}" if self.detail else self.status

    @classmethod
    def of(cls, row: dict[str, Any], expect_sha: str | None, cached: bool,
           budget: int | None = None) -> "Outcome":
        """`row` checked against the reference digest and, for a cached row measured under
        another budget, against this budget (as a fresh run would be)."""
        status, detail = row["status"], row["detail"]
        if status == "ok" and expect_sha is not None and row["output_sha256"] != expect_sha:
            status, detail = "mismatch", "output differs from the host reference (refmodel)"
        elif status == "ok" and budget is not None and row["instructions"] > budget:
            status, detail = "budget", (f"{row['instructions']:,} instructions exceed the budget "
                                        f"of {budget:,}")
        return cls(status, detail, row["instructions"], row["stack_peak"], row["arena_peak"],
                   row["static_ram"], row["measured_ram"], row["flash_bytes"], row["compiler"],
                   cached, row.get("csr_instructions"))


@dataclass
class Item:
    """A firmware to measure: generated code, the expected output digest, its budget."""
    label: str
    code: GeneratedCode
    expect_sha: str | None
    budget: int


@dataclass
class Stats:
    measured: int = 0          # firmware built and run in this process tree
    cache_hits: int = 0
    shared: int = 0            # identical firmware met again in this run
    failed: int = 0

    def to_json(self) -> dict[str, int]:
        return {"measured": self.measured, "cache_hits": self.cache_hits,
                "identical": self.shared, "failed": self.failed}


# ----------------------------------------------------------------------------- the measurer

def _holds(d: Path, code: GeneratedCode) -> bool:
    try:
        return (set(os.listdir(d)) == set(code.files)
                and all((d / name).read_text() == text for name, text in code.files.items()))
    except (OSError, UnicodeDecodeError):
        return False


def _tree_digest(root: Path) -> str:
    """Digest of every kernel / runtime source and header (they all go into a firmware)."""
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".c", ".h", ".S", ".in", ".ld")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


class Measurer:
    """Measures batches of generated firmware for one board, backend and compiler."""

    def __init__(self, platform: Platform | str, backend: str = "unicorn", jobs: int | None = None,
                 cache_dir: str | Path | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 compiler: str | None = None, progress: bool | None = None,
                 on_fail: Callable[[str, Outcome], None] | None = None):
        self.platform = platform if isinstance(platform, Platform) else platforms.load(platform)
        self.backend = backend
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.timeout_s = timeout_s
        try:
            cc = select_compiler(self.platform, compiler)
        except ToolchainError as exc:
            raise ToolMissing(str(exc)) from None
        self.compiler = compiler
        self.compiler_label = cc.label
        _check_backend(backend, self.platform)
        # One cache root for measurements, generated sources and ELF builds; one that cannot
        # be written is an error now (exit 2), not a failure of every candidate later.
        self.cache_root = usable_dir(cache_dir)
        sweep_temp(self.cache_root)  # what a killed run left
        self.cache = MeasurementCache(self.cache_root)
        self.gen_root = self.cache_root / "generated"
        p = self.platform
        self._base = {"compiler": self.compiler_label, "backend": backend, "platform": p.name,
                      "flags": [*p.gcc_flags, *p.clang_flags, *COMMON_FLAGS, *LINK_FLAGS],
                      "linker_script": hashlib.sha256(linker_script(p).encode()).hexdigest(),
                      "kernels": _tree_digest(KERNELS_DIR)}
        self.stats = Stats()
        self._seen: dict[str, dict[str, Any]] = {}
        self._pool: cf.ProcessPoolExecutor | None = None
        self._on_fail = on_fail
        show = sys.stderr.isatty() if progress is None else progress
        self.bar = _bar_class()(total=0, unit="fw", desc="measuring", file=sys.stderr, disable=not show,
                        dynamic_ncols=True, leave=False)
        self._old_sigterm = _on_sigterm_like_sigint()
        self._announced = 0
        self.stage = ""

    # -- keys and sources
    def key_of(self, **parts: Any) -> str:
        """A cache key for `parts` under this board, backend, compiler, flags and kernels."""
        return make_key(**parts, **self._base)

    def key(self, code: GeneratedCode) -> str:
        h = hashlib.sha256()
        for name in sorted(code.files):
            h.update(name.encode() + b"\0" + code.files[name].encode() + b"\0")
        return self.key_of(kind="firmware-measurement", generated=h.hexdigest())

    def _write(self, key: str, code: GeneratedCode) -> Path:
        """The generated sources on disk (atomically: a temporary dir renamed), reused only if
        every file there is what `code` holds."""
        d = self.gen_root / key[:24]
        if not _holds(d, code):
            d.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=temp_prefix("gen"), dir=d.parent))
            try:
                code.write(tmp)
                try:
                    os.replace(tmp, d)
                except OSError:  # there already: a concurrent run's (same content) or damaged
                    if not _holds(d, code):
                        remove_tree(d)
                        os.replace(tmp, d)
            finally:
                if tmp.exists():
                    remove_tree(tmp)
        return d

    # -- running
    def _executor(self) -> cf.ProcessPoolExecutor:
        if self._pool is not None and getattr(self._pool, "_broken", False):
            self._discard_pool()  # a worker died between batches (OOM killer, a signal)
        if self._pool is None:
            # fork: workers need no re-import of the caller's main module; the parent has no
            # threads at this point (the progress bar runs without its monitor thread).
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            ctx = multiprocessing.get_context(method)
            self._pool = cf.ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_worker_init,
                                                initargs=(str(self.cache_root), os.getpid()))
        return self._pool

    def set_best(self, text: str) -> None:
        self.bar.set_postfix_str(f"best {text}", refresh=True)

    def measure(self, items: Iterable[Item]) -> dict[str, Outcome]:
        """Outcome per item label. Cached and identical firmware are not measured again."""
        items = list(items)
        out: dict[str, Outcome] = {}
        todo: dict[str, tuple[Job, list[Item]]] = {}
        for it in items:
            key = self.key(it.code)
            row = self._seen.get(key) or self.cache.get(key, check=valid_row)
            if row is not None:
                self.stats.cache_hits += key not in self._seen
                self.stats.shared += key in self._seen
                self._finish(it, row, key, cached=True, out=out)
            elif key in todo:
                self.stats.shared += 1
                todo[key][1].append(it)
            else:
                job = Job(key, it.label, str(self._write(key, it.code)), self.platform.name,
                          self.backend, self.compiler, it.budget, self.timeout_s,
                          str(self.cache_root))
                todo[key] = (job, [it])
        announced = min(self._announced, len(items))  # already in the total
        self._announced -= announced
        self.bar.total += len(items) - announced
        self.bar.update(len(items) - sum(len(v[1]) for v in todo.values()))
        self._refresh()
        if self.jobs == 1:
            for key, (job, its) in todo.items():
                self._collect(key, its, measure_job(job), out)
        elif todo:
            # In workers even when one firmware is left: msfsim itself then never has a
            # compiler or an emulator to leave behind if it is killed.
            try:
                self._run_pool(todo, out)
            except BaseException:
                self.abort()
                raise
        return out

    def _run_pool(self, todo: dict[str, tuple[Job, list[Item]]], out: dict[str, Outcome]) -> None:
        pool = self._executor()
        futs = {pool.submit(measure_job, job): key for key, (job, _) in todo.items()}
        crashed: list[str] = []
        for fut in cf.as_completed(futs):
            key = futs[fut]
            try:
                row = fut.result()
            except BrokenProcessPool:  # a worker died: every job it shared the pool with fails
                crashed.append(key)
                continue
            self._collect(key, todo[key][1], row, out)
        # Again, one at a time in a fresh pool: a crash is then its own candidate's alone.
        for key in sorted(crashed):
            self._discard_pool()
            try:
                row = self._executor().submit(measure_job, todo[key][0]).result()
            except BrokenProcessPool:
                row = {**_ROW, "detail": "the worker process measuring it died (crashed or "
                                         "was killed)"}
                self._discard_pool()
            self._collect(key, todo[key][1], row, out)

    def _collect(self, key: str, its: list[Item], row: dict[str, Any], out: dict[str, Outcome]) -> None:
        self.stats.measured += 1
        if row["status"] in CACHED_STATUSES:
            self.cache.put(key, row)  # one atomic row: an interrupted run leaves no half entry
        for it in its:
            self._finish(it, row, key, cached=False, out=out)
        self.bar.update(len(its))
        self._refresh()

    def _finish(self, it: Item, row: dict[str, Any], key: str, cached: bool,
                out: dict[str, Outcome]) -> None:
        self._seen[key] = row
        o = Outcome.of(row, it.expect_sha, cached, it.budget)
        out[it.label] = o
        if not o.ok:
            self.stats.failed += 1
            if self._on_fail:
                self._on_fail(it.label, o)

    def announce(self, n: int, stage: str = "") -> None:
        """Put `n` firmwares that will be measured later into the bar's total now (its ETA
        then covers them; a negative `n` withdraws what will not come); `stage` names what is
        being measured (e.g. "round 2")."""
        self._announced += n
        self.bar.total += n
        if stage:
            self.stage = stage
        self._refresh()

    def _refresh(self) -> None:
        s = self.stats
        stage = f"{self.stage}: " if self.stage else ""
        self.bar.set_description(f"{stage}measuring ({s.measured} built+run, {s.cache_hits} "
                                 f"cached, {s.failed} dropped)", refresh=True)

    def _discard_pool(self) -> None:
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

    def abort(self) -> None:
        """Stop at once: queued jobs are cancelled, running workers are ended with what they
        started; a second Ctrl-C or SIGTERM meanwhile waits until that is done."""
        with _signals_held():
            self._discard_pool()

    def close(self) -> None:
        try:
            if self._pool is not None:
                try:
                    self._pool.shutdown(wait=True)
                    self._pool = None
                except BaseException:  # interrupted while waiting: end the workers now
                    self.abort()
                    raise
        finally:
            self.bar.close()
            self.cache.close()
            sweep_temp(self.cache_root)
            _restore_sigterm(self._old_sigterm)
            self._old_sigterm = None

    def __enter__(self) -> "Measurer":
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None:
            self.abort()
        self.close()


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


def _bar_class() -> type:
    from tqdm import tqdm

    class Bar(tqdm):
        monitor_interval = 0  # no monitor thread: the process pool forks this process
    return Bar


def _check_backend(backend: str, plat: Platform) -> None:
    from .sim import get_backend
    try:
        ok, why = get_backend(backend).available(plat)
    except ValueError as exc:
        raise MsfsimError(str(exc)) from None
    if not ok:
        raise ToolMissing(f"backend {backend} cannot run {plat.label}: {why}")


def plan_budget(macs: int, io_bytes: int) -> int:
    """Instruction budget of a firmware doing `macs` MACs and moving `io_bytes` bytes."""
    return BASE_BUDGET + INSTRUCTIONS_PER_WORK * (macs + io_bytes)


def plan_item(model: Model, blocks: list[Block], x: np.ndarray, expect: np.ndarray | None,
              label: str = "plan") -> Item:
    """A whole plan as one firmware on input `x`."""
    code = generate_plan(model, blocks, x)
    try:
        cost = exact.plan_cost(model, blocks)
        work = cost.macs + cost.act_io
    except BlockInfeasible:
        work = model.total_macs
    return Item(label, code, None if expect is None else output_digest(expect),
                plan_budget(work, code.input_bytes + code.output_bytes))


# ----------------------------------------------------------------------------- msfsim measure

@dataclass(frozen=True)
class PlanMeasurement:
    """`msfsim measure`: one plan built into one firmware and run in an emulator."""
    model: str
    platform: str
    backend: str
    compiler: str | None
    plan: str                          # "vanilla" or the plan file
    blocks: tuple[Block, ...]
    block_costs: tuple[Any, ...]       # exact BlockCost per block
    total: Any                         # exact.plan_cost of the whole plan (peaks, MACs)
    outcome: Outcome
    clock_hz: int
    output_matches_reference: bool
    extras: dict[str, Any] = field(default_factory=dict)
    input_in_place: bool = False
    wide_weights: tuple[int, ...] = ()  # layers whose weights are pre-widened (msfsim.deploy)

    @property
    def act(self) -> int:
        return self.total.act

    @property
    def act_io(self) -> int:
        return self.total.act_io

    @property
    def macs(self) -> int:
        return self.total.macs

    @property
    def latency_ms(self) -> float | None:
        o = self.outcome
        return None if o.instructions is None else 1e3 * o.instructions / self.clock_hz

    def to_json(self) -> dict[str, Any]:
        o = self.outcome
        return {
            "model": self.model, "platform": self.platform, "objective": None,
            "cost": "measured", "cost_model": "exact", "backend": self.backend,
            "compiler": self.compiler, "plan": self.plan,
            "blocks": [BlockSummary(b, c.act, c.act_io, c.macs).to_json()
                       for b, c in zip(self.blocks, self.block_costs)],
            "peak_ram": {"act": self.act, "act_io": self.act_io, "measured": o.measured_ram},
            "macs": self.macs, "overhead": None, "instructions": o.instructions,
            "latency_ms": self.latency_ms, "latency_is_estimate": True,
            "flash_bytes": o.flash_bytes,
            "measured": {"status": o.status, "detail": o.detail, "arena": o.arena_peak,
                         "stack": o.stack_peak, "static": o.static_ram, "cached": o.cached,
                         "minstret_instructions": o.csr_instructions},
            "output_matches_reference": self.output_matches_reference,
            "input_in_place": self.input_in_place, "wide_weight_layers": list(self.wide_weights),
            "convention": MEMORY_CONVENTION}

    def format_table(self) -> str:
        o = self.outcome
        lines = [f"msfsim measure: model {self.model}, platform {self.platform}, backend "
                 f"{self.backend}, compiler {self.compiler}", f"plan: {self.plan}, "
                 f"{len(self.blocks)} blocks, one firmware"]
        lines.append(f"{'#':>3} {'layers':>9} {'tile':>7} {'scheme':>9} {'act B':>9} "
                     f"{'act_io B':>9} {'MACs':>13}")
        for k, (b, c) in enumerate(zip(self.blocks, self.block_costs)):
            t = b.config.tile
            lines.append(f"{k:>3} {b.first:>4}-{b.last:<4} {t[0]:>3}x{t[1]:<3} "
                         f"{b.config.scheme:>9} {c.act:>9,} {c.act_io:>9,} {c.macs:>13,}")
        lines.append(f"analytic (exact): peak act {self.act:,} B, act_io {self.act_io:,} B, "
                     f"{self.macs:,} MACs")
        lines.append(f"measured: {o.instructions:,} instructions, RAM {o.measured_ram:,} B = "
                     f"arena {o.arena_peak:,} + stack {o.stack_peak:,} + static {o.static_ram:,}, "
                     f"flash {o.flash_bytes:,} B")
        if o.csr_instructions is not None:
            lines.append(f"cross-check: the guest's minstret counted {o.csr_instructions:,} "
                         f"instructions (QEMU -icount shift=0), equal to the plugin's count")
        lines.append(f"latency estimate: {self.latency_ms:.2f} ms at "
                     f"{self.clock_hz / 1e6:g} MHz (instructions / clock)")
        lines.append("output: " + ("bit-exact with the host reference" if
                                   self.output_matches_reference else "DIFFERS from the reference"))
        lines.append(MEMORY_CONVENTION)
        lines += deployment_lines(self.input_in_place, self.wide_weights)
        return "\n".join(lines)


def plan_blocks(model: Model, plan: str | Path | None) -> list[Block]:
    """The blocks of a plan file, or layer-by-layer (the search's vanilla baseline)."""
    from . import plan as planfile
    if plan is not None:
        return planfile.load(model, plan)
    from .search.baselines import layer_blocks
    from .search.weights import EdgeWeights
    return layer_blocks(model, EdgeWeights(model, exact.block_cost))


def measure_plan(model: Model, plat: Platform | str, plan: str | Path | None = None,
                 vanilla: bool = False, backend: str = "unicorn",
                 cache_dir: str | Path | None = None, compiler: str | None = None
                 ) -> PlanMeasurement:
    """Build `plan` (a plan file; layer by layer when None or `vanilla`) into one firmware, run
    it on the measurement input and check its output against the host reference."""
    p = plat if isinstance(plat, Platform) else platforms.load(plat)
    blocks = plan_blocks(model, None if vanilla else plan)
    try:
        costs = tuple(exact.block_cost(model, b) for b in blocks)
    except BlockInfeasible as exc:
        raise MsfsimError(f"the plan cannot be built: {exc}") from None
    x = measurement_input(model)
    expect = refmodel.run(model, x)
    with Measurer(p, backend, jobs=1, cache_dir=cache_dir, compiler=compiler, progress=False) as m:
        o = m.measure([plan_item(model, blocks, x, expect)])["plan"]
        compiler = o.compiler or m.compiler_label
    if o.status == "mismatch":
        raise MsfsimError(f"the plan's firmware output differs from the host reference on "
                          f"{backend}: generated code or kernels are wrong for this plan")
    if o.status == "overflow":  # nothing to choose: this plan is all there is (exit 3)
        raise NoPlan(f"the plan's {o.detail}")
    if not o.ok:
        raise ToolMissing(f"measuring the plan on {backend} failed: {o.cause}")
    return PlanMeasurement(model.name, p.name, backend, compiler,
                           "vanilla" if plan is None or vanilla else str(plan), tuple(blocks),
                           costs, exact.plan_cost(model, blocks), o, p.clock_hz, True,
                           input_in_place=model.input_in_place,
                           wide_weights=tuple(sorted(model.wide_weights)))
