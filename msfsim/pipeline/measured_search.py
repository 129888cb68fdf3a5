"""Measured search: the analytic front proposes blocks, the emulator weighs them.

The pipeline's loop between the pure search (msfsim.search, on weights), code generation and
the measurement engine (msfsim.measure).

1. The analytic cost model (exact by default) gives every candidate block a weight; the blocks
   of the Pareto plans nearest the P1 / P2 choice and of the baselines are generated, compiled
   and run in the emulator, each on its real input (the host reference's intermediate tensors
   for a deterministic network input), and must reproduce the reference output bit-exactly.
2. Measured (RAM, instructions) become the DAG's edge weights; blocks not yet measured carry
   estimates: analytic weights scaled by instructions-per-work and RAM offsets fitted on the
   measured blocks of the same scheme. The same search runs again, and the blocks of its
   choice, its nearby front plans and its baselines that are still estimates are measured;
   this repeats until they are all measured, and a last search on measured weights alone
   gives the result.
3. The chosen plan (and each baseline) is built as one whole-model firmware and run; its
   measured RAM, instructions and output (bit-exact with `refmodel.run`, or an error) are what
   the result reports.

The RAM weight of a measured block is its arena + stack high-water with the network input and
output buffers excluded (the msf-CNN `act` convention, so P1 / P2 see what the block adds to a
deployment); `--max-ram` caps that figure.
"""
from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from .. import platforms, refmodel
from ..codegen import generate_block
from ..fusion import exact
from ..fusion.block import Block, BlockCost
from ..fusion.geometry import block_structure
from ..ir import Model
from ..measure import (DEFAULT_TIMEOUT_S, INPUT_SEED, Item, MeasureSession, Measurer, Outcome,
                       measurement_input, output_digest, plan_budget, whole_plan_error)
from ..platforms import Platform
from ..search import baselines as bl
from ..search.api import cost_model_of, search
from ..search.pareto import Infeasible, Plan, build_dag, pareto_front
from ..search.result import FrontPoint, MeasuredSearchResult, PlanSummary
from ..search.weights import EdgeWeights
from ..toolchain import MIN_STACK_BYTES
from .measured_parts import (_BlockMeasure, _Fit, _Interrupted, _block_json, _measured_act,
                             _memo_blocks, _overflow_bytes, model_digest)
from .plan import plan_item
from .progress import RoundProjection, case_estimate

FRONT_PLANS = 8      # front plans around the choice whose blocks must all be measured
MAX_ROUNDS = 25      # measure-and-search rounds before settling on measured weights alone
BASELINE_HEADS = 6   # estimated head blocks of a baseline measured per round

Budget = Callable[[Block, BlockCost], int]
WHOLE_PLANS = ("plan", "vanilla", "mcunetv2", "streamnet")  # labels of whole-model firmware


def _default_budget(block: Block, cost: BlockCost) -> int:
    return plan_budget(cost.macs, cost.act_io)


def seed_key(m: Measurer, model: Model, cost_model: str, objective: str,
             max_overhead: float | None, ram_cap: int) -> str:
    """The cache key of the search memo: the blocks a previous search of the same model, board,
    tools and constraints measured."""
    return m.key_of(kind="search-seed", model=model_digest(model), cost_model=cost_model,
                    objective=objective, max_overhead=max_overhead, max_ram=ram_cap)


def memo_size(m: Measurer, model: Model, cost_model: str, objective: str,
              max_overhead: float | None, max_ram: int | None) -> int | None:
    """How many blocks the search memo of a previous run holds (None: no memo): a sweep's bar
    counts on it before the search starts."""
    caps = [c for c in (max_ram, m.platform.sram.size) if c is not None]
    memo = m.cache.get(seed_key(m, model, cost_model, objective, max_overhead, min(caps)),
                       check=_memo_blocks)
    if memo is None:
        return None
    m.cache.hits -= 1
    return len(memo["blocks"])


def search_estimate(model: Model, plat: Platform, session: MeasureSession, *,
                    objective: str = "ram", max_overhead: float | None = None,
                    max_ram: int | None = None, cost_model: str = "exact",
                    backend: str = "unicorn", compiler: str | None = None) -> int:
    """Firmwares a measured search of `model` on `plat` is expected to measure (the memo of a
    previous run, else a projection per layer): a sweep's bar counts them before it starts."""
    m = Measurer(plat, backend, compiler=compiler, session=session)
    size = memo_size(m, model, cost_model, objective, max_overhead, max_ram)
    return case_estimate(len(model.layers), size, len(WHOLE_PLANS))


def search_measured(model: Model, plat: Platform | str, objective: str = "ram",
                    max_overhead: float | None = None, max_ram: int | None = None,
                    cost_model: str = "exact", backend: str = "unicorn",
                    jobs: int | None = None, cache_dir: str | Path | None = None, *,
                    timeout_s: float = DEFAULT_TIMEOUT_S, budget: Budget | None = None,
                    compiler: str | None = None,
                    front_plans: int = FRONT_PLANS, progress: bool | None = None,
                    session: MeasureSession | None = None) -> MeasuredSearchResult:
    """P1 (objective "ram", `max_overhead` on measured instructions) or P2 (objective
    "latency", `max_ram` on measured RAM) with measured edge weights. `budget(block, cost)`
    gives a candidate's instruction budget (a candidate over it is dropped). `session` (cache,
    executor: local pool or Dask, one progress bar) is shared with the caller's other searches;
    without one, the search opens its own of `jobs`, `cache_dir` and `progress`."""
    t0 = time.perf_counter()
    p = plat if isinstance(plat, Platform) else platforms.load(plat)
    cost_fn, space = cost_model_of(cost_model)
    analytic = EdgeWeights(model, cost_fn)
    # The generated code claims exactly the exact model's act_io bytes of arena: a block over
    # the board's SRAM (or one codegen cannot build) is not worth a build.
    exact_w = analytic if cost_model == "exact" else EdgeWeights(model, exact.block_cost)
    space_blocks = [b for b in space(model) if analytic(b) is not None]
    blocks = [b for b in space_blocks if (c := exact_w.block_cost(b)) is not None
              and c.act_io + MIN_STACK_BYTES <= p.sram.size]
    budget = budget or _default_budget
    x = measurement_input(model)
    values = refmodel.run_layers(model, x)
    caps = [c for c in (max_ram, p.sram.size) if c is not None]
    ram_cap = min(caps)
    net_in, net_out = model.input, model.output

    measured: dict[Block, _BlockMeasure] = {}
    dropped: dict[Block, str] = {}
    state = _Interrupted()

    overflowed: dict[str, int | None] = {}  # candidates too big for the board: one summary line
    told: set[str] = set()

    def on_fail(label: str, o: Outcome) -> None:
        if o.status == "overflow" and label not in WHOLE_PLANS:
            overflowed[label] = _overflow_bytes(o.detail)  # expected on small boards
            return
        line = (f"msfsim: {label} firmware: {o.cause}" if label in WHOLE_PLANS  # raised later
                else f"msfsim: warning: candidate {label}: {o.detail}; dropped"
                if o.status == "mismatch" else f"msfsim: candidate {label} dropped: {o.cause}")
        if line not in told:  # a candidate met again in a later round is told once
            told.add(line)
            print(line, file=sys.stderr)

    def net_io(b: Block) -> int:
        st = block_structure(model, b.first, b.last)
        n = sum(model.arena_size(t) for t in set(st.inputs) | set(st.skips) if t == net_in)
        return n + (model.arena_size(net_out) if st.output == net_out else 0)

    def measure_blocks(todo: set[Block], m: Measurer, stage: str) -> None:
        items: list[Item] = []
        new = sorted(todo - measured.keys() - dropped.keys())
        projection.round(len(new), stage)
        for b in new:
            try:
                st = block_structure(model, b.first, b.last)
                code = generate_block(model, b, [values[t] for t in st.inputs])
            except Exception as exc:  # codegen cannot build this block: drop it, say why
                dropped[b] = f"codegen: {type(exc).__name__}: {exc}"
                on_fail(b.key, Outcome("error", dropped[b], *([None] * 7), False))
                continue
            items.append(Item(b.key, code, output_digest(values[code.output]),
                              budget(b, analytic.block_cost(b))))  # type: ignore[arg-type]
        by_key = {b.key: b for b in todo}
        for key, o in m.measure(items).items():
            b = by_key[key]
            if o.ok:
                measured[b] = _BlockMeasure(o.arena_peak + o.stack_peak - net_io(b),  # type: ignore[operator]
                                            o.instructions, o.measured_ram,  # type: ignore[arg-type]
                                            o.arena_peak, o.stack_peak)  # type: ignore[arg-type]
            else:
                dropped[b] = o.cause

    in_space = set(blocks)
    layer_set = bl.layer_blocks(model, analytic)
    too_big = [b for b in layer_set if b not in in_space]

    def weights(estimates: bool) -> EdgeWeights:
        fit = _Fit(measured, analytic)
        w: dict[Block, tuple[int, int]] = {b: (v.ram, v.instructions) for b, v in measured.items()}
        if estimates:
            for b in blocks:
                if b not in w and b not in dropped:
                    w[b] = fit(b, analytic.block_cost(b))  # type: ignore[arg-type]
        # Layers the board cannot hold alone: estimated, only so that the layer-by-layer cost
        # (the reference of F) exists; they are not edges of the DAG (see edges()).
        for b in too_big + [b for b in layer_set if dropped.get(b, "").startswith("overflow")]:
            w[b] = fit(b, analytic.block_cost(b))  # type: ignore[arg-type]
        return EdgeWeights(model, w)

    def edges() -> list[Block]:
        """The DAG's blocks: the candidates not dropped."""
        return [b for b in blocks if b not in dropped]

    def wanted(ew: EdgeWeights, plan: Plan | None, front: list[Plan]) -> set[Block]:
        """Blocks of the choice, the front plans nearest it and the baselines."""
        want: set[Block] = set()
        k = next((i for i, f in enumerate(front) if plan is not None and f == plan), 0)
        lo = max(0, k - front_plans // 2)
        for f in front[lo:lo + front_plans]:
            want.update(f.blocks)
        van = bl.vanilla(model, ew)
        want.update(van.blocks if van else ())
        for head_fused in (bl.mcunetv2, bl.streamnet):
            # The best head blocks under the current weights, until a measured one leads:
            # estimated heads are tried several per round instead of one.
            w = dict(ew.source) if isinstance(ew.source, dict) else None
            for _ in range(BASELINE_HEADS):
                base = head_fused(model, ew if w is None else EdgeWeights(model, w))
                if base is None:
                    break
                want.update(base.blocks)
                if w is None or base.blocks[0] in measured:
                    break
                del w[base.blocks[0]]
        if plan is not None:
            want.update(plan.blocks)
        return want

    rounds = 0
    with Measurer(p, backend, jobs, cache_dir, timeout_s, compiler=compiler, progress=progress,
                  on_fail=on_fail, session=session) as m:
        try:
            # Round 0: what the analytic front proposes, every layer block (vanilla) and what
            # the same search measured last time (cached: a warm run converges at once).
            want = set(bl.layer_blocks(model, analytic)) | {Block(i, i) for i in range(len(model.layers))}
            try:
                plan0, front, _ = search(model, analytic, blocks, objective, max_overhead, ram_cap)
            except Infeasible:
                plan0, front = None, pareto_front(build_dag(len(model.layers), blocks, analytic))
            want |= wanted(analytic, plan0, front)
            memo_key = seed_key(m, model, cost_model, objective, max_overhead, ram_cap)
            memo = m.cache.get(memo_key, check=_memo_blocks)  # a damaged row is a miss
            if memo is not None:
                m.cache.hits -= 1  # a hint, not a measurement
                want |= _memo_blocks(memo)
            want &= set(blocks)
            # The bar's total: this round, the rounds projected after it and the whole-plan
            # firmwares (plan and baselines) that come last (msfsim.pipeline.progress).
            projection = RoundProjection(m, len(WHOLE_PLANS),
                                         None if memo is None else len(want))
            while True:
                rounds += 1
                measure_blocks(want, m, f"round {rounds}")
                ew = weights(estimates=True)
                try:
                    plan, front, _ = search(model, ew, edges(), objective, max_overhead, ram_cap)
                except Infeasible:
                    plan = None
                    front = pareto_front(build_dag(len(model.layers), edges(), ew))
                state.plan = plan
                state.estimated = {b for b in (plan.blocks if plan else ()) if b not in measured}
                if plan is not None:
                    m.set_best(f"{plan.ram:,} B / {plan.cost:,} instr"
                               + (" (est.)" if state.estimated else ""))
                want = wanted(ew, plan, front) - measured.keys() - dropped.keys()
                if not want or rounds >= MAX_ROUNDS:
                    break

            m.cache.put(memo_key, {"blocks": [_block_json(b) for b in sorted({*measured, *dropped})]})
            # Measured weights alone decide the result.
            ew = weights(estimates=False)
            plan, front, vanilla = search(model, ew, edges(), objective, max_overhead, ram_cap)
            state.plan, state.estimated = plan, set()
            base = {"vanilla": vanilla, "mcunetv2": bl.mcunetv2(model, ew),
                    "streamnet": bl.streamnet(model, ew)}
            expect = values[model.output]
            items = [plan_item(model, list(plan.blocks), x, expect, "plan")] + \
                    [plan_item(model, list(bp.blocks), x, expect, name)
                     for name, bp in base.items() if bp is not None]
            projection.settle(len(items))  # a baseline may not exist
            whole = m.measure(items)
        except KeyboardInterrupt:
            state.report()
            raise
        stats = m.stats.to_json()
        compiler = m.compiler_label
    if overflowed:
        over = [v for v in overflowed.values() if v is not None]
        span = f" (by {min(over):,} to {max(over):,} B)" if over else ""
        print(f"msfsim: {len(overflowed)} candidate blocks do not fit {p.label}'s memory alone"
              f"{span} and were left out (--json: measurement.dropped)", file=sys.stderr)

    o = whole["plan"]
    error = whole_plan_error(o, backend, "the chosen plan", board=p)
    if error is not None:
        raise error
    for name in base:  # a baseline may not fit or run; a wrong output is a bug
        bo = whole.get(name)
        error = None if bo is None else whole_plan_error(bo, backend, f"the {name} baseline",
                                                         check="mismatch")
        if error is not None:
            raise error

    # Per block: its own firmware's RAM, its instructions and its measured act (the search's
    # RAM weight), so that plan, baselines and front all carry the measured act convention.
    per_block = {b: (v.measured_ram, v.instructions, v.ram) for b, v in measured.items()}
    summary_analytic = EdgeWeights(model, cost_fn)
    # F = MACs / layer-by-layer MACs (DESIGN §2); instruction ratios are relative to
    # vanilla.cost, the layer-by-layer instructions the search used (blocks measured alone).
    vanilla_macs = sum(summary_analytic.block_cost(b).macs  # type: ignore[union-attr]
                       for b in vanilla.blocks)

    def summary(pl: Plan, out: Outcome | None) -> PlanSummary:
        s = PlanSummary.of(pl, summary_analytic, vanilla.cost, measured=per_block,
                           vanilla_macs=vanilla_macs)
        if out is None or not out.ok:
            return replace(s, measured=None, instructions=None)
        return replace(s, measured=out.measured_ram, instructions=out.instructions,
                       latency_ms=1e3 * out.instructions / p.clock_hz,  # type: ignore[operator]
                       flash_bytes=out.flash_bytes)

    baselines = {k: (summary(v, whole.get(k)) if v is not None else None) for k, v in base.items()}

    def point(f: Plan) -> FrontPoint:
        """A front plan in both conventions: measured act and instructions of its blocks
        measured alone (the search's weights; estimates unless every block was measured)
        beside analytic act and MACs."""
        costs = [summary_analytic.block_cost(b) for b in f.blocks]
        macs = sum(c.macs for c in costs)  # type: ignore[union-attr]
        return FrontPoint(peak_ram_act=max(c.act for c in costs),  # type: ignore[union-attr]
                          macs=macs, overhead=macs / vanilla_macs, instructions=f.cost,
                          peak_ram_measured_act=f.ram,
                          measured=all(b in measured for b in f.blocks),
                          instructions_ratio=f.cost / vanilla.cost, chosen=f == plan)

    pareto = tuple(point(f) for f in front)
    measurement = {
        "input": f"uniform random int8, seed {INPUT_SEED}",
        "front_ram": "measured act: arena + stack high-water of the plan's worst block "
                     "measured alone, network input and output excluded (act convention); "
                     "front points, plan and baselines carry it as peak_ram_measured_act / "
                     "peak_ram.measured_act beside analytic act; overhead = F = MACs / "
                     "layer-by-layer MACs; instructions_ratio = instructions of the blocks "
                     "measured alone / layer-by-layer instructions, the figure --max-overhead "
                     "bounds" + (" (layers too large for the board estimated from the measured "
                                 "blocks' instructions per work)" if too_big else ""),
        "latency_is_estimate": True,
        "plan_firmware": {"arena": o.arena_peak, "stack": o.stack_peak, "static": o.static_ram,
                          "output_matches_reference": True, "ram_weight": plan.ram},
        "measured_act": _measured_act(model, plan, measured, net_io),
        "blocks_measured": len(measured), "rounds": rounds, "stats": stats,
        "blocks_over_sram": len(space_blocks) - len(blocks),
        "vanilla_layers_estimated": [b.key for b in layer_set if b not in measured],
        "dropped": [{"block": b.key, "cause": c} for b, c in sorted(dropped.items())],
    }
    return MeasuredSearchResult(
        model=model.name, model_fingerprint=model.fingerprint(), platform=p.name,
        objective=objective, cost="measured",
        cost_model=cost_model, plan=summary(plan, o), baselines=baselines, pareto=pareto,
        backend=backend, compiler=compiler,
        constraints={"max_overhead": max_overhead, "max_ram": max_ram, "sram": p.sram.size},
        search_seconds=time.perf_counter() - t0, measurement=measurement,
        input_in_place=model.input_in_place,
        wide_weights=tuple(sorted(model.wide_weights)))
