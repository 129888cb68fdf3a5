"""Analytic search: candidate blocks -> weighted DAG -> Pareto front -> P1 / P2 plan."""
from __future__ import annotations

import math
import time
from typing import Callable, Mapping

from ..fusion import msfcnn
from ..fusion.block import Block
from ..fusion.space import candidate_blocks
from ..ir import Model
from . import baselines as bl
from .pareto import (Infeasible, Plan, build_dag, cost_ratio, min_cost_plan, min_ram_plan,
                     pareto_front)
from .result import FrontPoint, PlanSummary, SearchResult
from .weights import CostModel, EdgeWeights, WeightSource

OBJECTIVES = ("ram", "latency")
# The stack the linker keeps at least beside the arena (msfsim.toolchain.MIN_STACK_BYTES): the
# pipeline passes the toolchain's figure as `stack_floor`; this default, for callers that
# search on weights alone, is checked equal to it by tests/test_architecture.py.
DEFAULT_STACK_FLOOR = 1024
COST_MODELS = ("exact", "msfcnn")


def cost_model_of(name: str) -> tuple[CostModel, Callable[[Model], list[Block]]]:
    """(block cost function, candidate space) of a named analytic cost model."""
    if name == "msfcnn":
        return msfcnn.block_cost, msfcnn.candidate_blocks
    if name == "exact":
        from ..fusion import exact  # written alongside codegen; imported only when used
        return exact.block_cost, candidate_blocks
    raise ValueError(f"unknown cost model {name!r}; expected one of {COST_MODELS}")


def select(front: list[Plan], vanilla_cost: int, objective: str, max_overhead: float | None,
           max_ram: float | None) -> Plan:
    """P1 (objective ram: min RAM s.t. F <= max_overhead) or P2 (objective latency: min cost
    s.t. RAM <= max_ram); the other constraint, when given, must hold too."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
    if not front:
        raise Infeasible("plan", math.inf, math.inf, "no complete plan exists under this cost model")
    f_max = math.inf if max_overhead is None else max_overhead
    r_max = math.inf if max_ram is None else max_ram
    # A relative tolerance keeps F_max = 1.0 reachable for plans that cost exactly vanilla
    # (no cap without --max-overhead: inf * 0 would be NaN for a model without MACs).
    cost_cap = math.inf if max_overhead is None else f_max * vanilla_cost * (1 + 1e-12)
    best_f = cost_ratio(front[-1].cost, vanilla_cost)
    best_ram = front[0].ram
    try:
        plan = (min_ram_plan(front, cost_cap) if objective == "ram"
                else min_cost_plan(front, r_max))
    except LookupError:
        if objective == "ram":
            raise Infeasible("max-overhead", f_max, best_f,
                             f"no plan within --max-overhead {f_max:g}; the lowest achievable "
                             f"overhead is {best_f:.4f}") from None
        raise Infeasible("max-ram", r_max, best_ram,
                         f"no plan within {r_max:,.0f} B of RAM; the lowest achievable peak is "
                         f"{best_ram:,} B") from None
    if plan.ram > r_max:
        raise Infeasible("max-ram", r_max, plan.ram,
                         f"no plan within {r_max:,.0f} B of RAM at overhead <= {f_max:g}; the lowest "
                         f"peak there is {plan.ram:,} B")
    if plan.cost > cost_cap:
        raise Infeasible("max-overhead", f_max, cost_ratio(plan.cost, vanilla_cost),
                         f"no plan within --max-overhead {f_max:g} at {r_max:,.0f} B; the lowest "
                         f"overhead there is {cost_ratio(plan.cost, vanilla_cost):.4f}")
    return plan


def search(model: Model, weights: EdgeWeights, blocks: list[Block], objective: str = "ram",
           max_overhead: float | None = None, max_ram: float | None = None,
           ) -> tuple[Plan, list[Plan], Plan]:
    """(chosen plan, Pareto front, vanilla plan) under `weights`; the same code path for
    analytic and measured weights."""
    vanilla = bl.vanilla(model, weights)
    if vanilla is None:
        missing = [b for b in bl.layer_blocks(model, weights) if weights(b) is None]
        raise Infeasible("plan", math.inf, math.inf,
                         f"the layer-by-layer plan has no weight for {missing[0].key}: "
                         f"{weights.rejected.get(missing[0], '')}")
    front = pareto_front(build_dag(len(model.layers), blocks, weights))
    return select(front, vanilla.cost, objective, max_overhead, max_ram), front, vanilla


def search_analytic(model: Model, platform: str, objective: str = "ram",
                    max_overhead: float | None = None, max_ram: int | None = None,
                    cost_model: str = "exact", sram_bytes: int | None = None,
                    weights: WeightSource | None = None,
                    stack_floor: int = DEFAULT_STACK_FLOOR) -> SearchResult:
    """Search with analytic weights (act bytes, MACs). `sram_bytes` (the board's SRAM) caps
    the RAM like `max_ram` does, and drops blocks whose act_io exceeds it. `weights` replaces the named cost model's block weights
    (same candidate space): a cost function, or a mapping block -> (ram, cost) such as
    measured weights, in which case the named cost model still supplies the per-block act,
    act_io and MACs of the report. `stack_floor`: the bytes of stack a firmware keeps at least
    beside its arena (with `sram_bytes`)."""
    t0 = time.perf_counter()
    cost_fn, space = cost_model_of(cost_model)
    w = EdgeWeights(model, weights if weights is not None else cost_fn)
    analytic = EdgeWeights(model, cost_fn) if isinstance(weights, Mapping) else w
    caps = [c for c in (max_ram, sram_bytes) if c is not None]
    blocks = space(model)
    if sram_bytes is not None:
        # A block whose buffers, I/O included, leave no room for the linker's stack floor
        # cannot be built for the board: no edge.
        blocks = [b for b in blocks if (c := analytic.block_cost(b)) is None
                  or c.act_io + stack_floor <= sram_bytes]
    try:
        plan, front, vanilla = search(model, w, blocks, objective, max_overhead,
                                      min(caps) if caps else None)
    except Infeasible as exc:
        if exc.constraint != "plan" or sram_bytes is None:
            raise
        # every complete path was cut by the board filter, which counts the network I/O
        # (act_io): say what the best plan would need in that same measure
        io = model.arena_size(model.input) + model.tensor(model.output).size
        if io + stack_floor > sram_bytes:
            raise Infeasible("max-ram", sram_bytes, io,
                             f"no plan fits the board's {sram_bytes:,} B of SRAM: the network "
                             f"input and output alone take {io:,} B in the arena"
                             + ("" if model.input_in_place else " (try --input-in-place)")
                             ) from None
        best = pareto_front(build_dag(len(model.layers), space(model),
                                      EdgeWeights(model, cost_fn, ram_metric="act_io")))
        lowest = best[0].ram if best else math.inf
        raise Infeasible("max-ram", sram_bytes, lowest,
                         f"no plan fits the board's {sram_bytes:,} B of SRAM; the lowest peak "
                         f"any plan reaches is {lowest:,} B (act_io) + {stack_floor:,} B "
                         f"of stack") from None
    base = {"vanilla": vanilla, "mcunetv2": bl.mcunetv2(model, w),
            "streamnet": bl.streamnet(model, w)}
    seconds = time.perf_counter() - t0
    return SearchResult(
        model=model.name, model_fingerprint=model.fingerprint(), platform=platform,
        objective=objective, cost="analytic",
        cost_model=cost_model, plan=PlanSummary.of(plan, analytic, vanilla.cost),
        baselines={k: (PlanSummary.of(p, analytic, vanilla.cost) if p else None)
                   for k, p in base.items()},
        pareto=tuple(FrontPoint(p.ram, p.cost, cost_ratio(p.cost, vanilla.cost)) for p in front),
        constraints={"max_overhead": max_overhead, "max_ram": max_ram, "sram": sram_bytes},
        search_seconds=seconds, input_in_place=model.input_in_place,
        wide_weights=tuple(sorted(model.wide_weights)))
