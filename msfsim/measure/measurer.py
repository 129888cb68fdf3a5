"""`Measurer`: measures batches of generated firmware for one board, backend and compiler,
cached and in parallel. Every result is keyed in the persistent `MeasurementCache` by what
determines it (every firmware source byte, compiler + version, flags, linker script, backend,
board); identical firmware is measured once; outputs are checked against the host reference;
progress shows on stderr. Jobs run inline (one job at a time) or on an `Executor`.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import sys
import tempfile
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import KERNELS_DIR, MsfsimError, ToolMissing, platforms
from ..cache import remove_tree, sweep_temp, temp_prefix, usable_dir
from ..platforms import Platform
from ..toolchain import COMMON_FLAGS, LINK_FLAGS, ToolchainError, linker_script, select_compiler
from . import jobs
from .cache import MeasurementCache, make_key
from .executor import (Executor, LocalPoolExecutor, _on_sigterm_like_sigint, _restore_sigterm,
                       _signals_held)
from .jobs import _ROW, CACHED_STATUSES, DEFAULT_TIMEOUT_S, Job, valid_row
from .outcome import Outcome

GeneratedCode = Any   # msfsim.codegen.GeneratedCode: .files {name: text}, .write(dir)


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
                 on_fail: Callable[[str, Outcome], None] | None = None,
                 executor: Executor | None = None):
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
        self.executor: Executor | None = executor
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
    def _executor(self) -> Executor:
        """The executor of the jobs (by default a local process pool of `jobs` workers)."""
        if self.executor is None:
            self.executor = LocalPoolExecutor(self.jobs, self.cache_root)
        return self.executor

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
                self._collect(key, its, jobs.measure_job(job), out)
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
        ex = self._executor()
        futs = {ex.submit(job): key for key, (job, _) in todo.items()}
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
                row = self._executor().submit(todo[key][0]).result()
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
        """End the executor's workers at once, with what they started."""
        if self.executor is not None:
            self.executor.cancel_all()

    def abort(self) -> None:
        """Stop at once: queued jobs are cancelled, running workers are ended with what they
        started; a second Ctrl-C or SIGTERM meanwhile waits until that is done."""
        with _signals_held():
            self._discard_pool()

    def close(self) -> None:
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

    def __enter__(self) -> "Measurer":
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None:
            self.abort()
        self.close()


def _bar_class() -> type:
    from tqdm import tqdm

    class Bar(tqdm):
        monitor_interval = 0  # no monitor thread: the process pool forks this process
    return Bar


def _check_backend(backend: str, plat: Platform) -> None:
    from ..sim import get_backend
    try:
        ok, why = get_backend(backend).available(plat)
    except ValueError as exc:
        raise MsfsimError(str(exc)) from None
    if not ok:
        raise ToolMissing(f"backend {backend} cannot run {plat.label}: {why}")

