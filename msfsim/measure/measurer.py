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
import tempfile
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import KERNELS_DIR, MsfsimError, ToolMissing, __version__, platforms
from ..cache import remove_tree, temp_prefix
from ..platforms import Platform
from ..toolchain import COMMON_FLAGS, LINK_FLAGS, ToolchainError, linker_script, select_compiler
from . import jobs
from .cache import MeasurementCache, make_key  # noqa: F401
from .executor import Executor
from .jobs import (_ROW, CACHED_STATUSES, DEFAULT_TIMEOUT_S, REFUSED_STATUSES, Job, WorkerUnfit,
                   valid_row)
from .outcome import Outcome
from .session import MeasureSession, Stats, bar_class

GeneratedCode = Any   # msfsim.codegen.GeneratedCode: .files {name: text}, .write(dir)


@dataclass
class Item:
    """A firmware to measure: generated code, the expected output digest, its budget."""
    label: str
    code: GeneratedCode
    expect_sha: str | None
    budget: int


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
                 executor: Executor | None = None, session: MeasureSession | None = None):
        """`session` (shared by the measurers of one run: cache, executor, dedupe, one bar);
        without one, a private session of `jobs`, `cache_dir`, `progress` and `executor`."""
        self.platform = platform if isinstance(platform, Platform) else platforms.load(platform)
        self.backend = backend
        self.timeout_s = timeout_s
        try:
            cc = select_compiler(self.platform, compiler)
        except ToolchainError as exc:
            raise ToolMissing(str(exc)) from None
        self.compiler = compiler
        self.compiler_label = cc.label
        _check_backend(backend, self.platform)
        self._own_session = session is None
        self.session = session or MeasureSession(cache_dir, jobs, progress, executor)
        self.jobs = self.session.jobs
        self.cache_root = self.session.cache_root
        self.cache = self.session.cache
        self.gen_root = self.cache_root / "generated"
        p = self.platform
        self._kernels = _tree_digest(KERNELS_DIR)
        self._base = {"compiler": self.compiler_label, "backend": backend, "platform": p.name,
                      "flags": [*p.gcc_flags, *p.clang_flags, *COMMON_FLAGS, *LINK_FLAGS],
                      "linker_script": hashlib.sha256(linker_script(p).encode()).hexdigest(),
                      "kernels": self._kernels}
        self.stats = Stats()
        self._seen = self.session.seen
        self._on_fail = on_fail
        self.bar = self.session.bar
        self._announced = 0

    @property
    def executor(self) -> Executor | None:
        return self.session.executor

    @property
    def stage(self) -> str:
        return self.session.stage

    @stage.setter
    def stage(self, text: str) -> None:
        self.session.stage = text

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
        return self.session.get_executor()

    def set_best(self, text: str) -> None:
        self.session.set_best(text)

    def _job(self, key: str, it: Item) -> Job:
        if self.session.remote:  # another machine: the sources travel inside the job
            return Job(key, it.label, "", self.platform.name, self.backend, self.compiler,
                       it.budget, self.timeout_s, None, tuple(sorted(it.code.files.items())),
                       __version__, self._kernels, self.compiler_label)
        return Job(key, it.label, str(self._write(key, it.code)), self.platform.name,
                   self.backend, self.compiler, it.budget, self.timeout_s, str(self.cache_root))

    def measure(self, items: Iterable[Item]) -> dict[str, Outcome]:
        """Outcome per item label. Cached and identical firmware are not measured again."""
        items = list(items)
        out: dict[str, Outcome] = {}
        todo: dict[str, tuple[Job, list[Item]]] = {}
        for it in items:
            key = self.key(it.code)
            row = self._seen.get(key) or self.cache.get(key, check=valid_row)
            if row is not None:
                self._count("cache_hits" if key not in self._seen else "shared")
                self._finish(it, row, key, cached=True, out=out)
            elif key in todo:
                self._count("shared")
                todo[key][1].append(it)
            else:
                todo[key] = (self._job(key, it), [it])
        announced = min(self._announced, len(items))  # already in the total
        self._announced -= announced
        self.session.grow(len(items) - announced)
        self.bar.update(len(items) - sum(len(v[1]) for v in todo.values()))
        self._refresh()
        if self.session.inline:
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

    def _count(self, what: str, n: int = 1) -> None:
        for st in (self.stats, self.session.stats):
            setattr(st, what, getattr(st, what) + n)

    def _collect(self, key: str, its: list[Item], row: dict[str, Any], out: dict[str, Outcome]) -> None:
        if row["status"] in REFUSED_STATUSES:  # a worker cannot measure as we would: stop
            raise WorkerUnfit(row["detail"])
        self._count("measured")
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
            self._count("failed")
            if self._on_fail:
                self._on_fail(it.label, o)

    def announce(self, n: int, stage: str = "") -> None:
        """Put `n` firmwares that will be measured later into the bar's total now (its ETA
        then covers them; a negative `n` withdraws what will not come); `stage` names what is
        being measured (e.g. "round 2")."""
        self._announced += n
        if stage:
            self.stage = stage
        self.session.grow(n)

    def withdraw_rest(self) -> int:
        """Withdraw what was announced and did not come (the search settled): -> how many."""
        n, self._announced = self._announced, 0
        self.session.grow(-n)
        return n

    @property
    def outstanding(self) -> int:
        """Announced firmwares not measured yet."""
        return self._announced

    def _refresh(self) -> None:
        self.session.refresh()

    def _discard_pool(self) -> None:
        """End the executor's workers at once, with what they started."""
        self.session.discard_workers()

    def abort(self) -> None:
        """Stop at once: queued jobs are cancelled, running workers are ended with what they
        started; a second Ctrl-C or SIGTERM meanwhile waits until that is done."""
        self.session.abort()

    def close(self) -> None:
        self.withdraw_rest()
        if self._own_session:
            self.session.close()

    def __enter__(self) -> "Measurer":
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None:
            self.abort()
        self.close()


_bar_class = bar_class  # the name msfsim.reproduce uses


def _check_backend(backend: str, plat: Platform) -> None:
    from ..sim import get_backend
    try:
        ok, why = get_backend(backend).available(plat)
    except ValueError as exc:
        raise MsfsimError(str(exc)) from None
    if not ok:
        raise ToolMissing(f"backend {backend} cannot run {plat.label}: {why}")

