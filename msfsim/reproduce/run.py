"""The run: which boards can be measured here, one progress bar over the rows, the rows
written as they complete (marked partial) and the final outputs."""
from __future__ import annotations

import os
import platform as pyplatform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import MsfsimError, __version__, platforms, zoo
from ..measure import INPUT_SEED, MeasureSession, Measurer
from ..measure.session import bar_class as _bar_class
from ..platforms import Platform
from . import outputs, plans
from .plans import BOARDS, METHODS, MODELS, WHAT, Prepared, Row
from .published import PUBLISHED, PUBLISHED_NOTE, PUBLISHED_SLOWDOWN, published_json
from .tables import CONVENTION_LINES, comparison, summary_table


def _unavailable(plat: Platform, backend: str) -> str | None:
    """Why `plat` cannot be measured here (no compiler, no backend), or None."""
    from ..sim import backend_available
    from ..toolchain import ToolchainError, select_compiler
    try:
        select_compiler(plat)
    except ToolchainError as exc:
        return f"no compiler: {exc}"
    ok, why = backend_available(backend, plat)
    return None if ok else f"backend {backend} cannot run it: {why}"


def _boards(names: Sequence[str] | None) -> list[Platform]:
    out: list[Platform] = []
    for name in names or BOARDS:
        p = platforms.load(name)  # unknown name: one-line error listing the known boards
        if p not in out:
            out.append(p)
    return out


def _check_backend(backend: str) -> None:
    from ..sim import backend_names
    if backend not in backend_names():
        raise MsfsimError(f"unknown backend {backend!r}; available: "
                          f"{', '.join(backend_names())}")


def reproduce(what: str, platforms: Sequence[str] | None = None,
              out_dir: str | os.PathLike = "reproduce-msf-cnn", *,
              models: Sequence[str] | None = None, backend: str = "unicorn",
              jobs: int | None = None, cache_dir: str | Path | None = None,
              progress: bool | None = None, scheduler: str | None = None) -> list[Path]:
    """Run the comparison and write it to `out_dir`; returns the paths written. `models`,
    `backend`, `jobs` and `cache_dir` (measurement cache; default: the user cache) narrow or
    redirect the run; `scheduler` (a Dask scheduler address, or $MSFSIM_SCHEDULER) measures on
    that cluster. `progress` (default: when stderr is a terminal) shows one bar over the rows; msf-cnn.md and msf-cnn.json are rewritten, marked partial, after each model and board,
    so an interrupted run leaves the rows it completed."""
    if what not in WHAT:
        raise MsfsimError(f"unknown reproduction {what!r}; available: {', '.join(WHAT)}")
    _check_backend(backend)
    boards = _boards(platforms)
    names = list(dict.fromkeys(models or MODELS))
    for n in names:
        if n not in zoo.NAMES:
            raise MsfsimError(f"unknown zoo model {n!r}; available: {', '.join(zoo.NAMES)}")
    jobs = max(1, jobs or os.cpu_count() or 1)
    out = Path(out_dir)
    t0 = time.perf_counter()
    boards_info: dict[str, dict[str, Any]] = {}
    runnable: list[Platform] = []
    for plat in boards:
        why = _unavailable(plat, backend)
        if why:
            boards_info[plat.name] = {"skipped": why}
            print(f"msfsim: skipping {plat.label}: {why}", file=sys.stderr)
        else:
            runnable.append(plat)
    total = len(names) * len(runnable) * len(METHODS)   # one row per model, board and plan
    show = sys.stderr.isatty() if progress is None else progress
    # The one bar of the run: the searches and measurers below run without theirs.
    bar = _bar_class()(total=total, unit="row", desc="reproduce", file=sys.stderr,
                       disable=not show, leave=False, dynamic_ncols=True)
    # One measurement session for the run: one cache, one dedupe, one executor (local pool or
    # the Dask cluster); its own bar stays off: the bar over the rows is the run's one bar.
    try:
        session = MeasureSession(cache_dir, jobs, progress=False, scheduler=scheduler)
    except BaseException:
        bar.close()
        raise
    prepared: dict[str, Prepared] = {}
    deployed: dict[tuple[str, frozenset[int]], Prepared] = {}  # boards alike share the firmware
    rows: list[Row] = []

    def data(partial: bool = False) -> dict[str, Any]:
        return _data(what, backend, platforms, out_dir, names, boards, boards_info, rows, t0,
                     (len(rows), total) if partial else None)

    try:
        for plat in runnable:
            searches: dict[str, Any] = {}
            whole: dict[str, int] = {}
            for n in names:
                if n not in prepared:
                    bar.set_description(f"analytic plans of {n}")
                    prepared[n] = plans.prepare(zoo.load(n))
                bar.set_description(f"measured search: {n} on {plat.name}")
                prep = plans.on_board(prepared[n], plat, deployed)
                plan, searches[n] = plans.msfsim_plan(prep, plat, backend, jobs, cache_dir,
                                                      session)
                todo = {**prep.plans, "msfsim": plan}
                bar.set_description(f"whole plans: {n} on {plat.name}")
                with Measurer(plat, backend, session=session) as m:
                    outcomes = m.measure([p.item for p in todo.values() if p.item])
                    for k, v in m.stats.to_json().items():
                        whole[k] = whole.get(k, 0) + v
                    boards_info[plat.name] = {"label": plat.label, "compiler": m.compiler_label,
                                              "clock_hz": plat.clock_hz, "sram": plat.sram.size,
                                              "flash": plat.flash.size, "searches": dict(searches),
                                              "whole_plans": dict(whole)}
                model_rows = [plans.make_row(prepared[n], plat, method, p,
                                             outcomes.get(p.item.label) if p.item else None)
                              for method, p in todo.items()]
                plans.set_instructions_ratio(model_rows)
                rows += model_rows
                outputs.write_partial(data(partial=True), out)
                bar.update(len(model_rows))
    except KeyboardInterrupt:
        if rows:
            print(f"msfsim: reproduce interrupted: {len(rows)} of {total} rows are in "
                  f"{out / 'msf-cnn.md'} and msf-cnn.json (marked partial); rerun the same "
                  f"command to finish: the measurement cache serves what was measured",
                  file=sys.stderr)
        raise
    except BaseException:
        session.abort()
        raise
    finally:
        session.close()
        bar.close()
    final = data()
    paths = outputs.write_outputs(final, out)
    print(summary_table(final))
    for p in paths:
        print(f"wrote {p}", file=sys.stderr)
    return paths


def _data(what: str, backend: str, plats: Sequence[str] | None, out_dir: str | os.PathLike,
          names: list[str], boards: list[Platform], boards_info: dict[str, dict[str, Any]],
          rows: list[Row], t0: float, partial: tuple[int, int] | None) -> dict[str, Any]:
    """The run's JSON document. `partial` (rows done, rows in all) marks a run in progress."""
    data = {
        "what": what, "msfsim_version": __version__, "backend": backend,
        "backend_version": _backend_version(backend), "python": pyplatform.python_version(),
        "command": _command(plats, out_dir), "models": names,
        "boards": [p.name for p in boards],
        "board_info": {p.name: boards_info[p.name] for p in boards if p.name in boards_info},
        "methods": METHODS, "conventions": list(CONVENTION_LINES),
        "measurement_input": f"uniform random int8, seed {INPUT_SEED}; outputs compared with "
                             f"the host reference (refmodel)",
        "published_note": PUBLISHED_NOTE,
        "published": published_json(),
        "published_slowdown_range": list(PUBLISHED_SLOWDOWN),
        "rows": [asdict(r) for r in rows],
        "comparison": {n: comparison(n, rows) for n in names if n in PUBLISHED},
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    if partial is not None:
        data["partial"] = {"rows": partial[0], "of": partial[1]}
    return data


def _backend_version(backend: str) -> str | None:
    if backend == "unicorn":
        try:
            import unicorn
            return f"unicorn {unicorn.__version__}"
        except ImportError:
            return None
    return None


def _command(plats: Sequence[str] | None, out_dir: str | os.PathLike) -> str:
    parts = ["msfsim", "reproduce", "msf-cnn"]
    for p in plats or ():
        parts += ["--platform", p]
    return " ".join(parts + ["--out", str(out_dir)])

