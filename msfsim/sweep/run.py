"""The sweep's driver: one measurement session (one cache, one dedupe, one executor, ONE
progress bar) for every case; the outputs rewritten after each row, so that an interrupted
sweep leaves its rows and a rerun measures only what is missing (the measurement cache)."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .. import MsfsimError, NoPlan, __version__, pipeline
from ..measure.jobs import WorkerUnfit
from . import outputs
from .cases import Case, Row, expand, result_values


def _estimate(session: Any, case: Case, model: Any, plat: Any, backend: str,
              compiler: str | None) -> int:
    try:
        return pipeline.search_estimate(model, plat, session, objective=case.objective,
                                        max_overhead=case.max_overhead, max_ram=case.max_ram,
                                        backend=backend, compiler=compiler)
    except MsfsimError:
        return 0  # the case will be a row with the error


def sweep(models: Sequence[str], platforms: Sequence[str], out_dir: str | Path, *,
          objective: str = "ram", max_overheads: Sequence[float | None] = (),
          max_rams: Sequence[int | None] = (), backend: str = "unicorn",
          compiler: str | None = None, jobs: int | None = None,
          cache_dir: str | Path | None = None, scheduler: str | None = None,
          progress: bool | None = None, reports: bool = True,
          command: str = "") -> dict[str, Any]:
    """Measured searches of every model x board x constraint; returns the sweep's JSON document
    (also in out_dir/sweep.json, .csv and index.html). A model that cannot be imported, a board
    where nothing fits or a search that fails is a row with its error; the sweep goes on. A
    cluster worker that cannot measure (msfsim.measure.WorkerUnfit) stops it (exit 4)."""
    cases = expand(models, platforms, objective, max_overheads, max_rams)
    boards = {name: pipeline.load_platform(name) for name in dict.fromkeys(platforms)}
    out = Path(out_dir)
    t0 = time.perf_counter()
    rows: list[Row] = []
    doc: dict[str, Any] = {"msfsim_version": __version__, "command": command,
                           "models": list(dict.fromkeys(models)),
                           "platforms": list(boards), "objective": objective,
                           "backend": backend, "scheduler": pipeline.scheduler_address(scheduler),
                           "latency_is_estimate": True}

    def write(partial: bool) -> None:
        doc["rows"] = [r.to_json() for r in rows]
        doc["wall_seconds"] = round(time.perf_counter() - t0, 2)
        doc["stats"] = session.stats.to_json()
        doc.pop("partial", None)
        if partial:
            doc["partial"] = {"rows": len(rows), "of": len(cases)}
        outputs.write_outputs(doc, out)

    with pipeline.open_session(cache_dir, jobs, progress, scheduler) as session:
        loaded: dict[str, Any] = {}
        deployed: dict[tuple[str, str], Any] = {}
        for spec in dict.fromkeys(models):
            try:
                loaded[spec] = pipeline.load_model(spec)
            except MsfsimError as exc:
                loaded[spec] = exc
                print(f"msfsim: sweep: {exc}", file=sys.stderr)
        # The bar's total from the start: each case's projection (msfsim.pipeline.progress).
        for case in cases:
            model = loaded[case.model]
            if isinstance(model, MsfsimError):
                continue
            key = (case.model, case.platform)
            if key not in deployed:
                deployed[key] = pipeline.deployed(model, boards[case.platform])
            session.reserve(case, _estimate(session, case, deployed[key],
                                            boards[case.platform], backend, compiler))
        try:
            for case in cases:
                rows.append(_run_case(session, case, loaded, deployed, boards, backend,
                                      compiler, jobs, out if reports else None))
                write(partial=len(rows) < len(cases))
        except KeyboardInterrupt:
            if rows:
                print(f"msfsim: sweep interrupted: {len(rows)} of {len(cases)} rows are in "
                      f"{out / 'sweep.csv'} (marked partial in sweep.json); rerun the same "
                      f"command to finish: the measurement cache serves what was measured",
                      file=sys.stderr)
            raise
    write(partial=False)
    return doc


def _run_case(session: Any, case: Case, loaded: dict[str, Any], deployed: dict, boards: dict,
              backend: str, compiler: str | None, jobs: int | None, out: Path | None) -> Row:
    session.release(case)
    model = loaded[case.model]
    if isinstance(model, MsfsimError):
        return Row(case, "error", f"model: {model}")
    plat = boards[case.platform]
    session.label = f"{model.name} on {plat.name}"
    try:
        result = pipeline.search(deployed[(case.model, case.platform)], plat, cost="measured",
                                 objective=case.objective, max_overhead=case.max_overhead,
                                 max_ram=case.max_ram, backend=backend, jobs=jobs,
                                 compiler=compiler, session=session)
    except WorkerUnfit:
        raise
    except NoPlan as exc:
        return Row(case, "no plan", str(exc))
    except MsfsimError as exc:
        return Row(case, "error", str(exc))
    except Exception as exc:  # a bug in one case must not lose the others
        return Row(case, "error", f"internal error: {type(exc).__name__}: {exc}")
    finally:
        session.label = ""
    row = Row(case, values=result_values(result, plat.sram.size))
    if out is not None:
        rel = Path("reports") / case.slug
        try:
            pipeline.write_report(deployed[(case.model, case.platform)], plat, result, out / rel)
            row.values["report"] = f"{rel.as_posix()}/index.html"
        except (OSError, MsfsimError) as exc:
            row.error = f"report not written: {exc}"
    return row
