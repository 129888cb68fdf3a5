"""What a reproduction runs: the models, boards and plans compared, and one row per plan of a
model on a board (its analytic figures, then its whole-plan firmware measured in the emulator)."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import MsfsimError, NoPlan, refmodel
from ..deploy import deploy
from ..fusion import exact, msfcnn
from ..fusion.block import Block, BlockInfeasible
from ..fusion.space import candidate_blocks
from ..ir import Model
from ..measure import Item, Outcome, measurement_input
from ..measure.jobs import WorkerUnfit
from ..platforms import Platform
from ..search import baselines as bl
from ..search.api import search_analytic
from ..pipeline.measured_search import search_measured
from ..pipeline.plan import plan_item
from ..search.pareto import build_dag, pareto_front
from ..search.weights import EdgeWeights

WHAT = ("msf-cnn",)
MODELS = ("mbv2-w0.35-r144", "mcunetv2-vww5-r80", "mcunet-320kb-r176")
BOARDS = ("stm32f746", "nucleo-f767zi", "hifive1b", "esp32c3")
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
class Plan:
    """A plan to measure, or why there is none (`status`, `reason`)."""
    blocks: list[Block] | None
    analytic: dict[str, Any] | None = None
    item: Item | None = None
    status: str = ""
    reason: str = ""


@dataclass
class Prepared:
    """What does not depend on the board: the model, its board-independent plans, the
    measurement input and the reference output."""
    model: Model
    plans: dict[str, Plan]
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


def make_plan(prep: Prepared, method: str, blocks: list[Block]) -> Plan:
    m = prep.model
    try:
        analytic = _analytic(m, blocks, prep.vanilla_macs, prep.msfcnn_vanilla_macs)
        item = plan_item(m, blocks, prep.x, prep.expect, label=f"{m.name}/{method}")
    except Exception as exc:  # codegen or the exact model cannot build it: a row, not a crash
        return Plan(blocks, status="failed", reason=f"cannot build the plan: "
                                                     f"{type(exc).__name__}: {exc}")
    return Plan(blocks, analytic, item)


def prepare(model: Model) -> Prepared:
    ex = search_analytic(model, "analytic", cost_model="exact")
    vanilla_macs = ex.baselines["vanilla"].macs  # type: ignore[union-attr]
    msf_vanilla = bl.vanilla(model, EdgeWeights(model, msfcnn.block_cost))
    x = measurement_input(model)
    # The generated code claims a block's exact act_io in the arena, so no plan of msfsim's
    # space needs less than the lowest bottleneck act_io: a board below it is out of reach.
    io_front = pareto_front(build_dag(len(model.layers), candidate_blocks(model),
                                      EdgeWeights(model, exact.block_cost, "act_io")))
    prep = Prepared(model, {}, x, refmodel.run(model, x), vanilla_macs,
                     msf_vanilla.cost if msf_vanilla else None,
                     io_front[0].ram if io_front else None)
    for name in ("vanilla", "mcunetv2", "streamnet"):
        s = ex.baselines.get(name)
        prep.plans[name] = (make_plan(prep, name, [b.block for b in s.blocks]) if s else
                            Plan(None, status="no plan",
                                  reason="no head block is feasible under the exact model"))
    try:
        msf = search_analytic(model, "analytic", cost_model="msfcnn")
        prep.plans["msf-cnn"] = make_plan(prep, "msf-cnn", [b.block for b in msf.plan.blocks])
    except NoPlan as exc:
        prep.plans["msf-cnn"] = Plan(None, status="no plan", reason=f"msf-CNN's model: {exc}")
    return prep


def on_board(prep: Prepared, plat: Platform,
              deployed: dict[tuple[str, frozenset[int]], Prepared]) -> Prepared:
    """`prep` with the model as deployed on `plat` (pre-widened weights, msfsim.deploy; the
    input stays in the arena on every board so that rows compare) and its plans' firmware
    rebuilt for it; `deployed` keeps what an earlier board with the same deployment built."""
    m = deploy(prep.model, plat, input_in_place=prep.model.input_in_place)
    if m is prep.model:
        return prep
    key = (m.name, m.wide_weights)
    if key not in deployed:
        board = replace(prep, model=m, plans={})
        board.plans = {name: make_plan(board, name, p.blocks) if p.item and p.blocks else p
                       for name, p in prep.plans.items()}
        deployed[key] = board
    return deployed[key]


def msfsim_plan(prep: Prepared, plat: Platform, backend: str, jobs: int,
                cache_dir: str | Path | None, session: Any = None) -> tuple[Plan, dict]:
    """msfsim's measured minimum-RAM plan on `plat` (or why there is none) and search facts."""
    m = prep.model
    if prep.min_act_io is not None and prep.min_act_io > plat.sram.size:
        return Plan(None, status="does not fit",
                     reason=f"every plan in msfsim's space needs at least {prep.min_act_io:,} B "
                            f"of arena (exact act_io of its largest block), more than the "
                            f"{plat.sram.size:,} B of SRAM"), {}
    t0 = time.perf_counter()
    try:
        r = search_measured(m, plat, objective="ram", backend=backend, jobs=jobs,
                            cache_dir=cache_dir, progress=False,  # reproduce shows one bar
                            session=session)
    except NoPlan as exc:
        return Plan(None, status="does not fit", reason=f"no plan fits: {exc}"), {}
    except WorkerUnfit:  # a cluster worker cannot measure: the run stops (exit 4)
        raise
    except MsfsimError as exc:  # e.g. the chosen plan's firmware failed: this row only
        return Plan(None, status="failed", reason=str(exc)), {}
    info = {"seconds": round(time.perf_counter() - t0, 2), **r.measurement.get("stats", {})}
    return make_plan(prep, "msfsim", [b.block for b in r.plan.blocks]), info


def _measured(o: Outcome, clock_hz: int) -> dict[str, Any]:
    return {"instructions": o.instructions, "ram": o.measured_ram, "arena": o.arena_peak,
            "stack": o.stack_peak, "static": o.static_ram,
            "latency_ms_estimate": 1e3 * o.instructions / clock_hz,  # type: ignore[operator]
            "flash_bytes": o.flash_bytes, "bit_exact": o.status == "ok", "cached": o.cached,
            "instructions_ratio": None}


def make_row(prep: Prepared, plat: Platform, method: str, plan: Plan, o: Outcome | None) -> Row:
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


def set_instructions_ratio(rows: list[Row]) -> None:
    """Each measured row's instructions / the layer-by-layer plan's, of one model on one board
    (`x instr vs layer-by-layer`; F is the MACs ratio, in `analytic`)."""
    van = next((r for r in rows if r.method == "vanilla" and r.ok), None)
    for r in rows:
        if van and r.ok:
            r.measured["instructions_ratio"] = (  # type: ignore[index]
                r.measured["instructions"] / van.measured["instructions"])  # type: ignore[index]

