"""`msfsim reproduce msf-cnn`: the msf-CNN comparison rebuilt without a board.

For each model and board, five plans are compared: layer by layer (vanilla), an MCUNetV2-style
and a StreamNet-style head block, msf-CNN's own minimum-RAM plan (its cost model and space) and
msfsim's measured minimum-RAM plan. Every plan gets its analytic figures (exact model, and
msf-CNN's model where the plan is expressible in it) and is then built as one firmware and run
in the emulator: instructions, RAM (arena + stack + static), flash, bit-exact output. A plan
that does not fit a board is a row saying why. The figures msf-CNN published are shown beside
ours, labelled as literature values, with the ratio ours / published where the two measure the
same thing.

Output in `out_dir` (each file written atomically): `msf-cnn.md`, `msf-cnn.json` and the
plots `ram_<model>.{png,svg}` (RAM by method and board) and `ram_vs_instructions.{png,svg}`
(SVG only, simplified, without matplotlib).

The run shows one progress bar over its rows (models x boards x plans, with an ETA; the
searches and measurers inside it show none). After each model on each board, msf-cnn.md and
msf-cnn.json are rewritten with the rows so far, marked partial (`"partial": {"rows", "of"}`;
no plots yet), so an interrupted run leaves what it completed; a rerun redoes the rows from the
measurement cache and goes on where the interrupted run stopped. The finished files are the
same as without the partial writes.
"""
from __future__ import annotations

import html
import json
import math
import os
import platform as pyplatform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from . import MsfsimError, NoPlan, __version__, platforms, refmodel, report, zoo
from .deploy import deploy
from .fileio import write_atomic
from .fusion import exact, msfcnn
from .fusion.block import Block, BlockInfeasible
from .fusion.space import candidate_blocks
from .ir import Model
from .measure_plan import (INPUT_SEED, Item, Measurer, Outcome, _bar_class, measurement_input,
                           plan_item)
from .platforms import Platform
from .search import baselines as bl
from .search.api import search_analytic
from .search.measured import search_measured
from .search.pareto import build_dag, pareto_front
from .search.weights import EdgeWeights

WHAT = ("msf-cnn",)
MODELS = ("mbv2-w0.35-r144", "mcunetv2-vww5-r80", "mcunet-320kb-r176")
BOARDS = ("stm32f746", "nucleo-f767zi", "hifive1b", "esp32c3")
LATENCY_BOARD = "nucleo-f767zi"     # the STM32F767 (216 MHz) msf-CNN's latencies were taken on
METHODS = {
    "vanilla": "layer by layer",
    "mcunetv2": "MCUNetV2-style: one patch-based head block (recompute), then layer by layer; "
                "the head with the lowest act under the exact model",
    "streamnet": "StreamNet-style: one stream2d head block (no recompute), then layer by layer; "
                 "the head with the lowest act under the exact model",
    "msf-cnn": "msf-CNN's method: its cost model and space (1x1-tile H-cache blocks, chains), "
               "minimum RAM at any overhead",
    "msfsim": "msfsim: measured search over the exact space, minimum measured RAM at any overhead",
}
METHOD_COLOURS = {**{k: v[0] for k, v in report.BASELINE_STYLE.items()},
                  "msf-cnn": "#4e79a7", "msfsim": "#59a14f"}
BOARD_MARKERS = ("o", "s", "^", "D", "v", "P")
BOARD_COLOURS = ("#4e79a7", "#f28e2b", "#76b7b2", "#e15759", "#b07aa1", "#9c755f")
KB = 1000  # the published MCUNetV2 / StreamNet figures are given in kB, read as 1,000 B


@dataclass(frozen=True)
class Published:
    """Figures published by msf-CNN for one model: literature values, not measured here."""
    vanilla_act: int           # layer-by-layer peak RAM, analytic (B)
    msfcnn_min_act: int        # msf-CNN's analytic minimum peak RAM at F = inf (B)
    msfcnn_overhead: float     # its compute overhead F at that minimum
    workspace: int             # the compiled workspace of that plan (B)
    mcunetv2_kb: int           # MCUNetV2 peak RAM (kB)
    streamnet_kb: int          # StreamNet peak RAM (kB)
    stm32f767_ms: float        # latency of the minimum-RAM plan on an STM32F767 at 216 MHz


PUBLISHED = {
    "mbv2-w0.35-r144": Published(194_400, 7_887, 1.68, 8_560, 63, 66, 1996.8),
    "mcunetv2-vww5-r80": Published(96_000, 12_000, 1.96, 15_368, 45, 44, 1723.0),
    "mcunet-320kb-r176": Published(309_760, 42_643, 2.69, 51_164, 215, 208, 19329.9),
}
# msf-CNN's minimum-RAM plans vs its own layer-by-layer build, range over the three models
PUBLISHED_SLOWDOWN = (2.5, 4.4)
PUBLISHED_NOTE = ("published: figures reported by msf-CNN (literature values, not measured "
                  "here); kB read as 1,000 B")
CONVENTION_LINES = (
    "act (B): block buffers + block input + block output + live skip tensors, network input "
    "and output excluded (msf-CNN convention, comparable with the published figures); the "
    "plan's figure is the maximum over its blocks.",
    "act_io (B): act with the network input and output buffers counted.",
    "measured RAM (B): arena high-water + stack high-water + static RAM (.data + .bss), from "
    "the emulator, for the whole plan built as one firmware; this is what must fit the board.",
    "F: MACs / layer-by-layer MACs under the same cost model; measured F: instructions / "
    "layer-by-layer instructions on the same board.",
    "latency: an estimate, instructions / clock (one instruction per cycle), not a board "
    "measurement.",
)


# ---------------------------------------------------------------------------- rows

@dataclass
class Row:
    """One plan of one model on one board."""
    model: str
    board: str
    method: str
    status: str                          # measured | does not fit | failed | no plan
    reason: str = ""
    blocks: list[str] = field(default_factory=list)
    analytic: dict[str, Any] | None = None
    measured: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "measured"

    def result_text(self) -> str:
        return self.status if self.ok else f"{self.status}: {self.reason}"


@dataclass
class _Plan:
    """A plan to measure, or why there is none (`status`, `reason`)."""
    blocks: list[Block] | None
    analytic: dict[str, Any] | None = None
    item: Item | None = None
    status: str = ""
    reason: str = ""


@dataclass
class _Prepared:
    """What does not depend on the board: the model, its board-independent plans, the
    measurement input and the reference output."""
    model: Model
    plans: dict[str, _Plan]
    x: Any
    expect: Any
    vanilla_macs: int
    msfcnn_vanilla_macs: int | None
    min_act_io: int | None       # lowest peak act_io of any plan in the exact space


def _analytic(model: Model, blocks: list[Block], vanilla_macs: int,
              msfcnn_vanilla_macs: int | None) -> dict[str, Any]:
    """Exact-model figures of a plan, and msf-CNN-model figures when it is expressible there."""
    pc = exact.plan_cost(model, blocks)
    out: dict[str, Any] = {"act": pc.act, "act_io": pc.act_io, "macs": pc.macs,
                           "overhead": pc.macs / vanilla_macs, "arena": pc.buffers["arena"],
                           "msfcnn": None, "msfcnn_reason": ""}
    try:
        costs = [msfcnn.block_cost(model, b) for b in blocks]
    except BlockInfeasible as exc:
        out["msfcnn_reason"] = str(exc)
        return out
    macs = sum(c.macs for c in costs)
    out["msfcnn"] = {"act": max(c.act for c in costs), "act_io": max(c.act_io for c in costs),
                     "macs": macs,
                     "overhead": macs / msfcnn_vanilla_macs if msfcnn_vanilla_macs else None}
    return out


def _make_plan(prep: _Prepared, method: str, blocks: list[Block]) -> _Plan:
    m = prep.model
    try:
        analytic = _analytic(m, blocks, prep.vanilla_macs, prep.msfcnn_vanilla_macs)
        item = plan_item(m, blocks, prep.x, prep.expect, label=f"{m.name}/{method}")
    except Exception as exc:  # codegen or the exact model cannot build it: a row, not a crash
        return _Plan(blocks, status="failed", reason=f"cannot build the plan: "
                                                     f"{type(exc).__name__}: {exc}")
    return _Plan(blocks, analytic, item)


def _prepare(model: Model) -> _Prepared:
    ex = search_analytic(model, "analytic", cost_model="exact")
    vanilla_macs = ex.baselines["vanilla"].macs  # type: ignore[union-attr]
    msf_vanilla = bl.vanilla(model, EdgeWeights(model, msfcnn.block_cost))
    x = measurement_input(model)
    # The generated code claims a block's exact act_io in the arena, so no plan of msfsim's
    # space needs less than the lowest bottleneck act_io: a board below it is out of reach.
    io_front = pareto_front(build_dag(len(model.layers), candidate_blocks(model),
                                      EdgeWeights(model, exact.block_cost, "act_io")))
    prep = _Prepared(model, {}, x, refmodel.run(model, x), vanilla_macs,
                     msf_vanilla.cost if msf_vanilla else None,
                     io_front[0].ram if io_front else None)
    for name in ("vanilla", "mcunetv2", "streamnet"):
        s = ex.baselines.get(name)
        prep.plans[name] = (_make_plan(prep, name, [b.block for b in s.blocks]) if s else
                            _Plan(None, status="no plan",
                                  reason="no head block is feasible under the exact model"))
    try:
        msf = search_analytic(model, "analytic", cost_model="msfcnn")
        prep.plans["msf-cnn"] = _make_plan(prep, "msf-cnn", [b.block for b in msf.plan.blocks])
    except NoPlan as exc:
        prep.plans["msf-cnn"] = _Plan(None, status="no plan", reason=f"msf-CNN's model: {exc}")
    return prep


def _on_board(prep: _Prepared, plat: Platform,
              deployed: dict[tuple[str, frozenset[int]], _Prepared]) -> _Prepared:
    """`prep` with the model as deployed on `plat` (pre-widened weights, msfsim.deploy; the
    input stays in the arena on every board so that rows compare) and its plans' firmware
    rebuilt for it; `deployed` keeps what an earlier board with the same deployment built."""
    m = deploy(prep.model, plat, input_in_place=prep.model.input_in_place)
    if m is prep.model:
        return prep
    key = (m.name, m.wide_weights)
    if key not in deployed:
        board = replace(prep, model=m, plans={})
        board.plans = {name: _make_plan(board, name, p.blocks) if p.item and p.blocks else p
                       for name, p in prep.plans.items()}
        deployed[key] = board
    return deployed[key]


def _msfsim_plan(prep: _Prepared, plat: Platform, backend: str, jobs: int,
                 cache_dir: str | Path | None) -> tuple[_Plan, dict]:
    """msfsim's measured minimum-RAM plan on `plat` (or why there is none) and search facts."""
    m = prep.model
    if prep.min_act_io is not None and prep.min_act_io > plat.sram.size:
        return _Plan(None, status="does not fit",
                     reason=f"every plan in msfsim's space needs at least {prep.min_act_io:,} B "
                            f"of arena (exact act_io of its largest block), more than the "
                            f"{plat.sram.size:,} B of SRAM"), {}
    t0 = time.perf_counter()
    try:
        r = search_measured(m, plat, objective="ram", backend=backend, jobs=jobs,
                            cache_dir=cache_dir, progress=False)  # reproduce shows one bar
    except NoPlan as exc:
        return _Plan(None, status="does not fit", reason=f"no plan fits: {exc}"), {}
    except MsfsimError as exc:  # e.g. the chosen plan's firmware failed: this row only
        return _Plan(None, status="failed", reason=str(exc)), {}
    info = {"seconds": round(time.perf_counter() - t0, 2), **r.measurement.get("stats", {})}
    return _make_plan(prep, "msfsim", [b.block for b in r.plan.blocks]), info


def _measured(o: Outcome, clock_hz: int) -> dict[str, Any]:
    return {"instructions": o.instructions, "ram": o.measured_ram, "arena": o.arena_peak,
            "stack": o.stack_peak, "static": o.static_ram,
            "latency_ms_estimate": 1e3 * o.instructions / clock_hz,  # type: ignore[operator]
            "flash_bytes": o.flash_bytes, "bit_exact": o.status == "ok", "cached": o.cached,
            "overhead": None}


def _row(prep: _Prepared, plat: Platform, method: str, plan: _Plan, o: Outcome | None) -> Row:
    row = Row(prep.model.name, plat.name, method, plan.status, plan.reason,
              [b.key for b in plan.blocks or ()], plan.analytic)
    if o is None:
        return row
    if o.status in ("ok", "mismatch"):
        row.status, row.measured = "measured", _measured(o, plat.clock_hz)
        if o.status == "mismatch":
            row.reason = o.detail
            print(f"msfsim: warning: {prep.model.name} {method} on {plat.name}: {o.detail}",
                  file=sys.stderr)
    elif o.status == "overflow":
        row.status, row.reason = "does not fit", o.detail
    else:
        row.status, row.reason = "failed", o.cause
    return row


def _unavailable(plat: Platform, backend: str) -> str | None:
    """Why `plat` cannot be measured here (no compiler, no backend), or None."""
    from .sim import backend_available
    from .toolchain import ToolchainError, select_compiler
    try:
        select_compiler(plat)
    except ToolchainError as exc:
        return f"no compiler: {exc}"
    try:
        ok, why = backend_available(backend, plat)
    except ValueError as exc:
        raise MsfsimError(str(exc)) from None
    return None if ok else f"backend {backend} cannot run it: {why}"


def _boards(names: Sequence[str] | None) -> list[Platform]:
    out: list[Platform] = []
    for name in names or BOARDS:
        p = platforms.load(name)  # unknown name: one-line error listing the known boards
        if p not in out:
            out.append(p)
    return out


# ---------------------------------------------------------------------------- entry point

def reproduce(what: str, platforms: Sequence[str] | None = None,
              out_dir: str | os.PathLike = "reproduce-msf-cnn", *,
              models: Sequence[str] | None = None, backend: str = "unicorn",
              jobs: int | None = None, cache_dir: str | Path | None = None,
              progress: bool | None = None) -> list[Path]:
    """Run the comparison and write it to `out_dir`; returns the paths written. `models`,
    `backend`, `jobs` and `cache_dir` (measurement cache; default: the user cache) narrow or
    redirect the run. `progress` (default: when stderr is a terminal) shows one bar over the
    rows; msf-cnn.md and msf-cnn.json are rewritten, marked partial, after each model and board,
    so an interrupted run leaves the rows it completed."""
    if what not in WHAT:
        raise MsfsimError(f"unknown reproduction {what!r}; available: {', '.join(WHAT)}")
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
    prepared: dict[str, _Prepared] = {}
    deployed: dict[tuple[str, frozenset[int]], _Prepared] = {}  # boards alike share the firmware
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
                    prepared[n] = _prepare(zoo.load(n))
                bar.set_description(f"measured search: {n} on {plat.name}")
                prep = _on_board(prepared[n], plat, deployed)
                plan, searches[n] = _msfsim_plan(prep, plat, backend, jobs, cache_dir)
                plans = {**prep.plans, "msfsim": plan}
                bar.set_description(f"whole plans: {n} on {plat.name}")
                with Measurer(plat, backend, jobs, cache_dir, progress=False) as m:
                    outcomes = m.measure([p.item for p in plans.values() if p.item])
                    for k, v in m.stats.to_json().items():
                        whole[k] = whole.get(k, 0) + v
                    boards_info[plat.name] = {"label": plat.label, "compiler": m.compiler_label,
                                              "clock_hz": plat.clock_hz, "sram": plat.sram.size,
                                              "flash": plat.flash.size, "searches": dict(searches),
                                              "whole_plans": dict(whole)}
                model_rows = [_row(prepared[n], plat, method, p,
                                   outcomes.get(p.item.label) if p.item else None)
                              for method, p in plans.items()]
                _measured_overhead(model_rows)
                rows += model_rows
                _write_partial(data(partial=True), out)
                bar.update(len(model_rows))
    except KeyboardInterrupt:
        if rows:
            print(f"msfsim: reproduce interrupted: {len(rows)} of {total} rows are in "
                  f"{out / 'msf-cnn.md'} and msf-cnn.json (marked partial); rerun the same "
                  f"command to finish: the measurement cache serves what was measured",
                  file=sys.stderr)
        raise
    finally:
        bar.close()
    final = data()
    paths = write_outputs(final, out)
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
        "published": {k: {**asdict(v), "source": "published"} for k, v in PUBLISHED.items()},
        "published_slowdown_range": list(PUBLISHED_SLOWDOWN),
        "rows": [asdict(r) for r in rows],
        "comparison": {n: _comparison(n, rows) for n in names if n in PUBLISHED},
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    if partial is not None:
        data["partial"] = {"rows": partial[0], "of": partial[1]}
    return data


def _write_partial(data: dict[str, Any], out: Path) -> None:
    """msf-cnn.json and msf-cnn.md of the rows so far (no plots: they come at the end)."""
    write_atomic(out / "msf-cnn.json", json.dumps(data, indent=1) + "\n")
    write_atomic(out / "msf-cnn.md", render_markdown(data, {}))


def _measured_overhead(rows: list[Row]) -> None:
    van = next((r for r in rows if r.method == "vanilla" and r.ok), None)
    for r in rows:
        if van and r.ok:
            r.measured["overhead"] = (r.measured["instructions"]  # type: ignore[index]
                                      / van.measured["instructions"])  # type: ignore[index]


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


# ---------------------------------------------------------------------------- comparison

def _find(rows: list[Row], model: str, method: str, board: str | None = None) -> Row | None:
    return next((r for r in rows if r.model == model and r.method == method
                 and (board is None or r.board == board)), None)


def _analytic_row(rows: list[Row], model: str, method: str) -> Row | None:
    """Any row of a board-independent plan (its analytic figures are the same on every board)."""
    return next((r for r in rows if r.model == model and r.method == method and r.analytic), None)


def _comparison(model: str, rows: list[Row]) -> list[dict[str, Any]]:
    """Ours beside the published figures; the ratio only where both measure the same thing."""
    pub = PUBLISHED[model]
    out: list[dict[str, Any]] = []

    def add(quantity: str, published: Any, ours: Any, how: str, ratio: bool = True) -> None:
        r = (ours / published if ratio and isinstance(published, (int, float)) and ours is not None
             else None)
        out.append({"quantity": quantity, "published": published, "ours": ours, "ratio": r,
                    "ours_from": how})

    def msf(method: str, key: str) -> Any:
        r = _analytic_row(rows, model, method)
        return r.analytic["msfcnn"][key] if r and r.analytic and r.analytic["msfcnn"] else None

    def ex(method: str, key: str) -> Any:
        r = _analytic_row(rows, model, method)
        return r.analytic[key] if r and r.analytic else None

    add("layer-by-layer peak RAM, analytic (B)", pub.vanilla_act, msf("vanilla", "act"),
        "msf-CNN's cost model, act")
    add("msf-CNN minimum peak RAM, analytic (B)", pub.msfcnn_min_act, msf("msf-cnn", "act"),
        "msf-CNN's cost model and space, act")
    add("msf-CNN overhead F at that minimum", pub.msfcnn_overhead, msf("msf-cnn", "overhead"),
        "msf-CNN's cost model (MACs / layer-by-layer MACs)")
    add("msf-CNN minimum-RAM plan, compiled workspace (B)", pub.workspace, ex("msf-cnn", "act"),
        "what msfsim's generated code allocates for the same plan, network input and output "
        "excluded (exact act)")
    add("MCUNetV2 peak RAM (B)", pub.mcunetv2_kb * KB, ex("mcunetv2", "act"),
        "msfsim's MCUNetV2-style plan, exact act (head chosen for the lowest act)")
    add("StreamNet peak RAM (B)", pub.streamnet_kb * KB, ex("streamnet", "act"),
        "msfsim's StreamNet-style plan, exact act (head chosen for the lowest act)")
    r = _find(rows, model, "msf-cnn", LATENCY_BOARD)
    lat = r.measured["latency_ms_estimate"] if r and r.ok else None
    why = "" if lat is not None else (f" (not measured: {r.result_text()})" if r else
                                      f" (board {LATENCY_BOARD} not in this run)")
    add("msf-CNN minimum-RAM plan latency on STM32F767 (ms)", pub.stm32f767_ms, lat,
        f"estimate on {LATENCY_BOARD}: emulated instructions / 216 MHz, msfsim's kernels{why}")
    slow = r.measured["overhead"] if r and r.ok else None
    add("msf-CNN minimum-RAM plan slowdown vs layer by layer",
        f"{PUBLISHED_SLOWDOWN[0]}-{PUBLISHED_SLOWDOWN[1]} (range over the three models)", slow,
        f"measured instructions / layer-by-layer instructions on {LATENCY_BOARD}{why}",
        ratio=False)
    return out


# ---------------------------------------------------------------------------- text

def _i(v: Any) -> str:
    return "—" if v is None else f"{int(v):,}"


def _f(v: Any, digits: int = 3) -> str:
    return "—" if v is None else f"{float(v):,.{digits}f}"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(r) + " |" for r in esc])


def _method_label(r: Row, per_board: bool) -> str:
    return f"{r.method} ({r.board})" if per_board else r.method


def _analytic_table(rows: list[Row]) -> str:
    """One line per board-independent plan, one per board for msfsim's measured plan."""
    lines, seen = [], set()
    for r in rows:
        key = (r.method, r.board if r.method == "msfsim" else "")
        if key in seen:
            continue
        seen.add(key)
        a = r.analytic
        if a is None:
            lines.append([_method_label(r, r.method == "msfsim"), "—", "—", "—", "—", "—",
                          "—", "—", f"{r.status}: {r.reason}"])
            continue
        m = a["msfcnn"]
        lines.append([_method_label(r, r.method == "msfsim"), str(len(r.blocks)), _i(a["act"]),
                      _i(a["act_io"]), _i(m["act"]) if m else "not expressible",
                      _i(a["macs"]), _f(a["overhead"]), _f(m["overhead"]) if m else "—", ""])
    return _md_table(["plan", "blocks", "act B", "act_io B", "act B (msf-CNN model)", "MACs",
                      "F", "F (msf-CNN model)", "note"], lines)


def _measured_table(rows: list[Row]) -> str:
    lines = []
    for r in rows:
        m = r.measured
        if m is None:
            lines.append([r.board, r.method] + ["—"] * 6 + [r.result_text()])
            continue
        lines.append([r.board, r.method, _i(m["instructions"]),
                      f"{m['ram']:,} = {m['arena']:,} + {m['stack']:,} + {m['static']:,}",
                      _f(m["latency_ms_estimate"], 1), _i(m["flash_bytes"]),
                      _f(m["overhead"]), "yes" if m["bit_exact"] else "NO",
                      "" if m["bit_exact"] else r.reason])
    return _md_table(["board", "plan", "instructions", "RAM B = arena + stack + static",
                      "latency estimate ms", "flash B", "measured F", "bit-exact", "note"],
                     lines)


def _comparison_table(comp: list[dict[str, Any]]) -> str:
    def num(v: Any) -> str:
        if v is None:
            return "—"
        if isinstance(v, str):
            return v
        return f"{v:,}" if isinstance(v, int) else f"{v:,.3f}" if v < 100 else f"{v:,.1f}"
    return _md_table(["quantity", "published", "ours", "ours / published", "ours from"],
                     [[c["quantity"], num(c["published"]), num(c["ours"]),
                       _f(c["ratio"]), c["ours_from"]] for c in comp])


def _published_table() -> str:
    return _md_table(
        ["model (published)", "layer by layer B", "msf-CNN min B", "F", "workspace B",
         "MCUNetV2 kB", "StreamNet kB", "STM32F767 ms"],
        [[n, _i(p.vanilla_act), _i(p.msfcnn_min_act), f"{p.msfcnn_overhead:.2f}",
          _i(p.workspace), str(p.mcunetv2_kb), str(p.streamnet_kb), f"{p.stm32f767_ms:,.1f}"]
         for n, p in PUBLISHED.items()])


def render_markdown(data: dict[str, Any], plots: dict[str, list[str]]) -> str:
    rows = [Row(**r) for r in data["rows"]]
    info = data["board_info"]
    out = ["# msf-CNN comparison, reproduced without a board", "",
           f"Command: `{data['command']}` — msfsim {data['msfsim_version']}, backend "
           f"{data['backend']}" + (f" ({data['backend_version']})" if data["backend_version"]
                                   else "") + f", Python {data['python']}; wall time "
           f"{data['wall_seconds']:,.1f} s.", ""]
    if data.get("partial"):
        done, total = data["partial"]["rows"], data["partial"]["of"]
        out += [f"**Partial: {done} of {total} rows.** The run is in progress or was "
                f"interrupted; rerun the command to complete it (the measurement cache serves "
                f"what was already measured). Plots are written when the run completes.", ""]
    out += ["Boards:"]
    for b in data["boards"]:
        i = info.get(b, {})
        if not i:
            out.append(f"- {b}: not measured yet")
            continue
        if "skipped" in i:
            out.append(f"- {b}: skipped — {i['skipped']}")
            continue
        wp = i["whole_plans"]
        out.append(f"- {i['label']}: {i['sram']:,} B SRAM, {i['flash']:,} B flash, "
                   f"{i['clock_hz'] / 1e6:g} MHz; compiler {i['compiler']}; whole-plan "
                   f"firmware: {wp['measured']} built and run, {wp['cache_hits']} from the cache")
    out += ["", "## Memory convention", ""] + [f"- {c}" for c in data["conventions"]]
    out += [f"- {data['published_note']}.", f"- Measurement input: {data['measurement_input']}.",
            "", "## Plans", ""] + [f"- **{k}**: {v}" for k, v in data["methods"].items()]
    out += ["", "## Published figures (literature values, not measured here)", "",
            _published_table(), "",
            f"msf-CNN also reported its minimum-RAM plans {PUBLISHED_SLOWDOWN[0]}–"
            f"{PUBLISHED_SLOWDOWN[1]}× slower than its own layer-by-layer build (published)."]
    for n in data["models"]:
        mrows = [r for r in rows if r.model == n]
        out += ["", f"## {n}", "", "### Analytic (bytes and MACs, not measured)", "",
                _analytic_table(mrows) if mrows else "(no board measured)", "",
                "### Measured (whole plan as one firmware, emulated)", "",
                _measured_table(mrows) if mrows else "(no board measured)"]
        if n in data["comparison"]:
            out += ["", "### Ours beside the published figures", "",
                    _comparison_table(data["comparison"][n])]
        for f in plots.get(n, []):
            out += ["", f"![RAM by plan and board: {n}]({f})"]
    for f in plots.get("*", []):
        out += ["", f"![measured RAM vs instructions]({f})"]
    return "\n".join(out) + "\n"


def summary_table(data: dict[str, Any]) -> str:
    """The short stdout version: one line per model, board and plan."""
    lines = []
    for r in data["rows"]:
        m = r["measured"]
        act = r["analytic"]["act"] if r["analytic"] else None
        res = (("bit-exact" if m["bit_exact"] else "OUTPUT DIFFERS") if m
               else f"{r['status']}: {r['reason']}")
        lines.append([r["model"], r["board"], r["method"], _i(act), _i(m and m["ram"]),
                      _i(m and m["instructions"]),
                      _f(m and m["latency_ms_estimate"], 1), res])
    skipped = [f"{b}: skipped — {i['skipped']}" for b, i in data["board_info"].items()
               if "skipped" in i]
    return "\n".join([_md_table(["model", "board", "plan", "act B", "measured RAM B",
                                 "instructions", "est. ms", "result"], lines), *skipped])


# ---------------------------------------------------------------------------- plots

def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in name)


def write_outputs(data: dict[str, Any], out: Path) -> list[Path]:
    """msf-cnn.md, msf-cnn.json and the plots, each written atomically."""
    paths: list[Path] = []
    plots: dict[str, list[str]] = {}
    mpl = report._matplotlib()
    rows = [Row(**r) for r in data["rows"]]
    figs: list[tuple[str, str, Any]] = [
        (n, f"ram_{_slug(n)}", lambda fig, n=n: _draw_ram(fig, n, rows, data["boards"]))
        for n in data["models"] if any(r.model == n for r in rows)]
    if any(r.ok for r in rows):
        figs.append(("*", "ram_vs_instructions",
                     lambda fig: _draw_scatter(fig, rows, data["models"], data["boards"])))
    for key, stem, draw in figs:
        if mpl is not None:
            png, svg = _figure(mpl, draw, key)
            paths += [write_atomic(out / f"{stem}.png", png),
                      write_atomic(out / f"{stem}.svg", svg)]
            plots.setdefault(key, []).append(f"{stem}.png")
        else:
            text = (_fallback_bars(key, rows) if key != "*" else _fallback_scatter(rows))
            paths.append(write_atomic(out / f"{stem}.svg", text))
            plots.setdefault(key, []).append(f"{stem}.svg")
    data["plots"] = {k: v for k, v in plots.items()}
    paths.insert(0, write_atomic(out / "msf-cnn.json", json.dumps(data, indent=1) + "\n"))
    paths.insert(0, write_atomic(out / "msf-cnn.md", render_markdown(data, plots)))
    return paths


def _figure(mpl: Any, draw: Any, key: str) -> tuple[bytes, bytes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 6) if key != "*" else (15, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    draw(fig)
    return report._save(mpl, fig)


def _log_range(values: list[float]) -> bool:
    v = [x for x in values if x and x > 0]
    return bool(v) and max(v) / min(v) > report.LOG_SCALE_RATIO


def _draw_ram(fig: Any, model: str, rows: list[Row], boards: list[str]) -> None:
    """Grouped bars: measured RAM per plan, one bar per board; exact act and the published
    figure as markers; a cross at the board's SRAM for a plan that does not fit."""
    ax = fig.subplots()
    methods = list(METHODS)
    width = 0.8 / max(1, len(boards))
    values: list[float] = []
    acts: list[tuple[float, int]] = []
    nofit_done = False
    for k, board in enumerate(boards):
        xs, ys = [], []
        for i, method in enumerate(methods):
            r = _find(rows, model, method, board)
            x = i - 0.4 + width * (k + 0.5)
            if r is None:
                continue
            if r.analytic:
                acts.append((x, r.analytic["act"]))
            if r.ok:
                xs.append(x)
                ys.append(r.measured["ram"])  # type: ignore[index]
            elif r.status == "does not fit":
                sram = platforms.load(board).sram.size
                ax.plot([x], [sram], marker="x", color=BOARD_COLOURS[k % len(BOARD_COLOURS)],
                        markersize=9, mew=2, linestyle="none",
                        label=None if nofit_done else "does not fit (× at the board's SRAM)")
                nofit_done = True
                values.append(sram)
        ax.bar(xs, ys, width, color=BOARD_COLOURS[k % len(BOARD_COLOURS)],
               label=f"{board}: measured RAM" if xs else None, zorder=2)
        values += ys
    if acts:
        ax.plot(*zip(*acts), marker="_", markersize=70 * width, mew=2, color="black",
                linestyle="none", label="analytic act (exact model)", zorder=4)
        values += [a[1] for a in acts]
    pub = PUBLISHED.get(model)
    if pub:
        ppts = [(0, pub.vanilla_act), (1, pub.mcunetv2_kb * KB), (2, pub.streamnet_kb * KB),
                (3, pub.msfcnn_min_act)]
        ax.plot(*zip(*ppts), marker="D", color="#d4a017", markeredgecolor="black",
                linestyle="none", label="published (literature, analytic)", zorder=5)
        values += [p[1] for p in ppts]
    log = _log_range(values)
    if log:
        ax.set_yscale("log")
    report._bytes_axis(ax.yaxis, log)
    ax.set_xticks(range(len(methods)), methods)
    ax.set_ylabel(f"RAM (bytes{', log scale' if log else ''})")
    ax.set_title(f"RAM by plan and board: {model}\nmeasured = arena + stack + static, whole plan "
                 f"as one firmware; act excludes the network input and output", fontsize=10)
    ax.grid(axis="y", alpha=0.3, zorder=0)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _draw_scatter(fig: Any, rows: list[Row], models: list[str], boards: list[str]) -> None:
    """Measured RAM against instructions, one panel per model; colour = plan, marker = board."""
    measured_models = [n for n in models if any(r.model == n and r.ok for r in rows)]
    axes = fig.subplots(1, len(measured_models), squeeze=False)[0]
    for ax, n in zip(axes, measured_models):
        xs, ys = [], []
        for r in rows:
            if r.model != n or not r.ok:
                continue
            k = boards.index(r.board) if r.board in boards else 0
            x, y = r.measured["ram"], r.measured["instructions"]  # type: ignore[index]
            # Later plans and boards are drawn smaller on top, so equal figures stay visible.
            rank = list(METHODS).index(r.method) if r.method in METHODS else 2
            size = (150 - 20 * rank) * 0.75 ** k
            ax.scatter([x], [y], color=METHOD_COLOURS.get(r.method, "#333333"),
                       marker=BOARD_MARKERS[k % len(BOARD_MARKERS)], s=size, zorder=3,
                       edgecolors="black", linewidths=0.5)
            xs.append(x)
            ys.append(y)
        for axis, vals, name in ((ax.xaxis, xs, "x"), (ax.yaxis, ys, "y")):
            log = _log_range(vals)
            if log:
                getattr(ax, f"set_{name}scale")("log")
            report._bytes_axis(axis, log)
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_xlabel("measured RAM (bytes)")
        ax.set_ylabel("instructions (measured, whole plan)")
        ax.set_title(n, fontsize=10)
        ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], marker="o", linestyle="none", color=c, label=m)
               for m, c in METHOD_COLOURS.items() if any(r.method == m and r.ok for r in rows)]
    handles += [Line2D([], [], marker=BOARD_MARKERS[k % len(BOARD_MARKERS)], linestyle="none",
                       color="#777777", label=b) for k, b in enumerate(boards)
                if any(r.board == b and r.ok for r in rows)]
    axes[-1].legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                    borderaxespad=0)
    fig.suptitle("Measured RAM vs instructions (emulated; latency = instructions / clock)",
                 fontsize=11)


def _fallback_bars(model: str, rows: list[Row]) -> str:
    """Plain SVG (no matplotlib): one horizontal bar of measured RAM per plan and board."""
    items = [(f"{r.method} @ {r.board}", r.measured["ram"] if r.ok else None,  # type: ignore[index]
              r.result_text()) for r in rows if r.model == model]
    top = max([v for _, v, _ in items if v] or [1])
    w, left, bar_h = 760, 230, 16
    h = 40 + bar_h * len(items)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
             f'font-family="sans-serif" font-size="10">',
             f'<text x="4" y="14" font-size="12">Measured RAM (bytes): {html.escape(model)}</text>']
    for k, (label, v, text) in enumerate(items):
        y = 28 + k * bar_h
        parts.append(f'<text x="{left - 6}" y="{y + 11}" text-anchor="end">'
                     f'{html.escape(label)}</text>')
        if v:
            bw = (w - left - 120) * v / top
            parts.append(f'<rect x="{left}" y="{y}" width="{bw:.1f}" height="{bar_h - 3}" '
                         f'fill="#4e79a7"/><text x="{left + bw + 4:.1f}" y="{y + 11}">{v:,}</text>')
        else:
            parts.append(f'<text x="{left}" y="{y + 11}" fill="#e15759">'
                         f'{html.escape(text[:90])}</text>')
    return "\n".join(parts + ["</svg>"]) + "\n"


def _fallback_scatter(rows: list[Row]) -> str:
    """Plain SVG (no matplotlib): measured RAM vs instructions, log-log, all models."""
    pts = [(r.measured["ram"], r.measured["instructions"], r)  # type: ignore[index]
           for r in rows if r.ok]
    w, h, pad = 760, 420, 60
    lx = [math.log10(p[0]) for p in pts]
    ly = [math.log10(p[1]) for p in pts]
    x0, x1 = min(lx) - 0.1, max(lx) + 0.1
    y0, y1 = min(ly) - 0.1, max(ly) + 0.1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
             f'font-family="sans-serif" font-size="10">',
             '<text x="4" y="14" font-size="12">Measured RAM (x, log) vs instructions '
             '(y, log)</text>']
    for (ram, instr, r), a, b in zip(pts, lx, ly):
        cx = pad + (w - 2 * pad) * (a - x0) / (x1 - x0)
        cy = h - pad - (h - 2 * pad) * (b - y0) / (y1 - y0)
        tip = html.escape(f"{r.model} {r.method} @ {r.board}: {ram:,} B, {instr:,} instructions")
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" '
                     f'fill="{METHOD_COLOURS.get(r.method, "#333")}"><title>{tip}</title></circle>')
    return "\n".join(parts + ["</svg>"]) + "\n"
