"""Measured search: the analytic front proposes blocks, the emulator weighs them.

The pipeline's loop between the pure search (msfsim.search, on weights), code generation and
the measurement engine (msfsim.measure).

1. The analytic cost model (exact by default) gives every candidate block a weight; the blocks
   of the Pareto plans nearest the P1 / P2 choice and of the baselines are generated, compiled
   and run in the emulator, each on its real input (the host reference's intermediate tensors
   for a deterministic network input), and must reproduce the reference output bit-exactly.
2. Measured (RAM, instructions) become the DAG's edge weights; blocks not yet measured carry
   estimates learned from the measured ones (msfsim.search.estimate: their layers' instructions
   measured alone, scaled by MACs and a correction per scheme and tile; analytic act plus the
   measured offset). The same search runs again, and the blocks of its
   choice, its nearby front plans and its baselines that are still estimates are measured;
   this repeats until they are all measured, and a last search on measured weights alone
   gives the result.
3. The chosen plan (and each baseline) is built as one whole-model firmware and run; its
   measured RAM, instructions and output (bit-exact with `refmodel.run`, or an error) are what
   the result reports.

The front reported is the last search's: on measured weights where measured, estimates
elsewhere; a point with an estimated block says so (`FrontPoint.measured` false). With `front`
(`msfsim search --front`, docs/front.md) the rounds go on until no front plan holds an
unmeasured block: each round measures a batch of the front's unmeasured blocks
(msfsim.search.refine), at most `FRONT_MAX_ROUNDS` rounds; every front plan is then also built
and run as one whole-model firmware.

The RAM weight of a measured block is its arena + stack high-water with the network input and
output buffers excluded (the msf-CNN `act` convention, so P1 / P2 see what the block adds to a
deployment); `--max-ram` caps that figure.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

from .. import platforms, refmodel
from ..codegen import generate_block
from ..fusion.block import Block, BlockCost
from ..fusion.geometry import block_structure
from ..ir import Model
from ..measure import (DEFAULT_TIMEOUT_S, Item, MeasureSession, Measurer, Outcome,
                       measurement_input, output_digest, plan_budget, whole_plan_error)
from ..platforms import Platform
from ..search import baselines as bl
from ..search import refine
from ..search.api import cost_model_of, search
from ..search.estimate import BlockEstimates
from ..search.pareto import Infeasible, Plan, build_dag, pareto_front
from ..search.result import MeasuredSearchResult
from ..search.weights import EdgeWeights
from ..toolchain import MIN_STACK_BYTES
from .measured_parts import (FirmwareMemo, KeyedMeasurer, _BlockMeasure, _Interrupted,
                             _block_json, _memo_blocks, _overflow_bytes, candidates, front_firmware,
                             measurement_json, model_digest, plan_signature, results,
                             source_digest)
from .plan import plan_item
from .progress import RoundProjection, case_estimate

FRONT_PLANS = 8      # front plans around the choice whose blocks must all be measured
MAX_ROUNDS = 25      # measure-and-search rounds before settling on measured weights alone
FRONT_MAX_ROUNDS = 60  # with `front`: rounds before the front is reported as not stable
FRONT_BATCH = 8      # with `front`: unmeasured front blocks measured per round, at least
BASELINE_HEADS = 6   # estimated head blocks of a baseline measured per round

Budget = Callable[[Block, BlockCost], int]
WHOLE_PLANS = ("plan", "vanilla", "mcunetv2", "streamnet")  # labels of whole-model firmware
FRONT_LABEL = "front plan"  # whole-model firmware of front point k: "front plan k"
NO_BUDGET = 1 << 62  # a whole plan read from the cache was within its budget when measured


def _whole(label: str) -> bool:
    return label in WHOLE_PLANS or label.startswith(FRONT_LABEL)


def _default_budget(block: Block, cost: BlockCost) -> int:
    return plan_budget(cost.macs, cost.act_io)


def seed_key(m: Measurer, model: Model, cost_model: str, objective: str,
             max_overhead: float | None, ram_cap: int, front: bool = False) -> str:
    """The cache key of the search memo: the blocks a previous search of the same model, board,
    tools and constraints measured."""
    return m.key_of(kind="search-seed", model=model_digest(model), cost_model=cost_model,
                    objective=objective, max_overhead=max_overhead, max_ram=ram_cap,
                    **({"front": True} if front else {}))


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
                    session: MeasureSession | None = None, front: bool = False,
                    front_batch: int | None = None,
                    max_rounds: int | None = None) -> MeasuredSearchResult:
    """P1 (objective "ram", `max_overhead` on measured instructions) or P2 (objective
    "latency", `max_ram` on measured RAM) with measured edge weights. `budget(block, cost)`
    gives a candidate's instruction budget (a candidate over it is dropped). `session` (cache,
    executor: local pool or Dask, one progress bar) is shared with the caller's other searches;
    without one, the search opens its own of `jobs`, `cache_dir` and `progress`. `front`:
    measure the whole Pareto front (docs/front.md), `front_batch` unmeasured front blocks per
    round (default: max(FRONT_BATCH, 2 x jobs)), at most `max_rounds` rounds (default:
    FRONT_MAX_ROUNDS with `front`, else MAX_ROUNDS)."""
    t0 = time.perf_counter()
    p = plat if isinstance(plat, Platform) else platforms.load(plat)
    cost_fn, _ = cost_model_of(cost_model)
    analytic: EdgeWeights  # the candidates' costs and the blocks the board can hold: below
    blocks: list[Block] = []
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
        if o.status == "overflow" and not _whole(label):
            overflowed[label] = _overflow_bytes(o.detail)  # expected on small boards
            return
        line = (f"msfsim: {label} firmware: {o.cause}" if _whole(label)  # raised later
                else f"msfsim: warning: candidate {label}: {o.detail}; dropped"
                if o.status == "mismatch" else f"msfsim: candidate {label} dropped: {o.cause}")
        if line not in told:  # a candidate met again in a later round is told once
            told.add(line)
            print(line, file=sys.stderr)

    def net_io(b: Block) -> int:
        st = block_structure(model, b.first, b.last)
        n = sum(model.arena_size(t) for t in set(st.inputs) | set(st.skips) if t == net_in)
        return n + (model.arena_size(net_out) if st.output == net_out else 0)

    def measure_blocks(todo: set[Block], m: Measurer, stage: str,
                       pending: int | None = None) -> None:
        items: list[Item] = []
        new = sorted(todo - measured.keys() - dropped.keys())
        projection.round(len(new), stage, pending)
        for b in new:
            cap = budget(b, analytic.block_cost(b))  # type: ignore[arg-type]
            known = firmware.known(m, b.key)  # measured before: no code generated again
            if known is not None:
                out = block_structure(model, b.first, b.last).output
                items.append(Item(b.key, known, output_digest(values[out]), cap))
                continue
            try:
                st = block_structure(model, b.first, b.last)
                code = generate_block(model, b, [values[t] for t in st.inputs])
            except Exception as exc:  # codegen cannot build this block: drop it, say why
                dropped[b] = f"codegen: {type(exc).__name__}: {exc}"
                on_fail(b.key, Outcome("error", dropped[b], *([None] * 7), False))
                continue
            items.append(Item(b.key, code, output_digest(values[code.output]), cap))
        for it in items:
            firmware.note(it.label, m.key(it.code))
        by_key = {b.key: b for b in todo}
        for key, o in m.measure(items).items():
            b = by_key[key]
            if o.ok:
                measured[b] = _BlockMeasure(o.arena_peak + o.stack_peak - net_io(b),  # type: ignore[operator]
                                            o.instructions, o.measured_ram,  # type: ignore[arg-type]
                                            o.arena_peak, o.stack_peak)  # type: ignore[arg-type]
            else:
                dropped[b] = o.cause

    layer_set: list[Block] = []
    too_big: list[Block] = []  # layer blocks the board cannot hold alone

    def weights(estimates: bool) -> EdgeWeights:
        w: dict[Block, tuple[int, int]] = {b: (v.ram, v.instructions) for b, v in measured.items()}
        fit = BlockEstimates(model, dict(w), analytic)
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

    def mixed_search(ew: EdgeWeights) -> tuple[Plan | None, list[Plan]]:
        try:
            plan, front_now, _ = search(model, ew, edges(), objective, max_overhead, ram_cap)
        except Infeasible:
            plan, front_now = None, pareto_front(build_dag(len(model.layers), edges(), ew))
        return plan, front_now

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

    rounds, bound = 0, max_rounds or (FRONT_MAX_ROUNDS if front else MAX_ROUNDS)
    with KeyedMeasurer(p, backend, jobs, cache_dir, timeout_s, compiler=compiler,
                       progress=progress, on_fail=on_fail, session=session) as m:
        batch = front_batch or max(FRONT_BATCH, 2 * m.jobs)
        analytic, blocks, over_sram = candidates(m, model, cost_model, p.sram.size,
                                                 MIN_STACK_BYTES)
        layer_set = bl.layer_blocks(model, analytic)
        too_big = [b for b in layer_set if b not in set(blocks)]
        try:
            # Round 0: what the analytic front proposes, every layer block (vanilla) and what
            # the same search measured last time (cached: a warm run converges at once).
            want = set(bl.layer_blocks(model, analytic)) | {Block(i, i) for i in range(len(model.layers))}
            try:
                plan0, shown, _ = search(model, analytic, blocks, objective, max_overhead, ram_cap)
            except Infeasible:
                plan0, shown = None, pareto_front(build_dag(len(model.layers), blocks, analytic))
            want |= wanted(analytic, plan0, shown)
            memo_key = seed_key(m, model, cost_model, objective, max_overhead, ram_cap, front)
            memo = m.cache.get(memo_key, check=_memo_blocks)  # a damaged row is a miss
            if memo is not None:
                m.cache.hits -= 1  # a hint, not a measurement
                want |= _memo_blocks(memo)
            firmware = FirmwareMemo(memo, f"{source_digest()} {output_digest(x)}")
            want &= set(blocks)
            # The bar's total: this round, the rounds projected after it and the whole-plan
            # firmwares (plan and baselines) that come last (msfsim.pipeline.progress).
            whole_n = memo.get("whole") if memo is not None else None
            projection = RoundProjection(m, whole_n if isinstance(whole_n, int) else
                                         len(WHOLE_PLANS), None if memo is None else len(want))
            pending: int | None = None
            history: list[dict] = []
            while True:
                rounds += 1
                measure_blocks(want, m, f"round {rounds}", pending)
                ew = weights(estimates=True)
                plan, shown = mixed_search(ew)
                known = measured.keys() | dropped.keys()
                state.plan = plan
                state.estimated = {b for b in (plan.blocks if plan else ()) if b not in measured}
                if plan is not None:
                    m.set_best(f"{plan.ram:,} B / {plan.cost:,} instr"
                               + (" (est.)" if state.estimated else ""))
                open_points = refine.estimated_points(shown, known)
                history.append({"round": rounds, "measured": len(measured),
                                "front_points": len(shown), "estimated_points": open_points})
                want = wanted(ew, plan, shown) - known
                if front:
                    projection.whole = len(WHOLE_PLANS) + len(shown)  # the front's firmware too
                    todo = refine.next_batch(shown, known, batch)
                    want |= set(todo)
                    pending = max(0, len(refine.unsettled(shown, known)) - len(todo))
                if not want or rounds >= bound:
                    break

            # Measured weights alone decide the result.
            ew = weights(estimates=False)
            plan, _, vanilla = search(model, ew, edges(), objective, max_overhead, ram_cap)
            state.plan, state.estimated = plan, set()
            base = {"vanilla": vanilla, "mcunetv2": bl.mcunetv2(model, ew),
                    "streamnet": bl.streamnet(model, ew)}
            plans = {"plan": plan, **{k: v for k, v in base.items() if v is not None}}
            if front:  # every front plan measured as one firmware too
                plans.update({f"{FRONT_LABEL} {k}": f for k, f in enumerate(shown)
                              if all(b in measured for b in f.blocks)})
            expect = values[model.output]
            items = []
            for label, pl in plans.items():
                known = firmware.known(m, plan_signature(pl.blocks))
                items.append(plan_item(model, list(pl.blocks), x, expect, label)
                             if known is None else
                             Item(label, known, output_digest(expect), NO_BUDGET))
                firmware.note(plan_signature(pl.blocks), m.key(items[-1].code))
            projection.settle(len(items))  # a baseline may not exist
            whole = m.measure(items)
            m.cache.put(memo_key, {"blocks": [_block_json(b) for b in sorted({*measured, *dropped})],
                                   "whole": len(items), **firmware.to_json()})
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
    open_points = refine.estimated_points(shown, measured.keys())
    if open_points and front:
        print(f"msfsim: warning: the front is not stable after {rounds} rounds (the bound): "
              f"{open_points} of its {len(shown)} points hold blocks not measured and are "
              f"reported as estimates", file=sys.stderr)

    o = whole["plan"]
    error = whole_plan_error(o, backend, "the chosen plan", board=p)
    if error is not None:
        raise error
    for name in list(base) + [k for k in whole if k.startswith(FRONT_LABEL)]:
        # a baseline or a front plan may not fit or run; a wrong output is a bug
        bo = whole.get(name)
        error = None if bo is None else whole_plan_error(bo, backend, f"the {name}",
                                                         check="mismatch")
        if error is not None:
            raise error

    summary, baselines, pareto = results(model, p, cost_fn, measured, plan, vanilla, base, whole,
                                         shown)
    info = {"complete": front, "stable": open_points == 0, "rounds": rounds,
            "max_rounds": bound, "batch": batch if front else None, "points": len(shown),
            "estimated_points": open_points, "history": history}
    if front:
        info["plans"] = front_firmware(model, shown, whole, FRONT_LABEL)
    measurement = measurement_json(model, plan, measured, dropped, net_io, o, stats, rounds,
                                   too_big, layer_set, over_sram, info)
    return MeasuredSearchResult(
        model=model.name, model_fingerprint=model.fingerprint(), platform=p.name,
        objective=objective, cost="measured",
        cost_model=cost_model, plan=summary, baselines=baselines, pareto=pareto,
        backend=backend, compiler=compiler,
        constraints={"max_overhead": max_overhead, "max_ram": max_ram, "sram": p.sram.size},
        search_seconds=time.perf_counter() - t0, measurement=measurement,
        input_in_place=model.input_in_place,
        wide_weights=tuple(sorted(model.wide_weights)))
