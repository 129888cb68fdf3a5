"""A whole plan as one firmware: the firmware item of a plan, the blocks of a plan file, and
`msfsim measure` (one plan built, run in an emulator and checked against the host reference).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import MsfsimError, platforms, refmodel
from ..codegen import generate_plan
from ..fusion import exact
from ..fusion.block import Block, BlockInfeasible
from ..ir import Model
from ..measure import Item, Measurer, Outcome, measurement_input, output_digest, plan_budget
from ..measure import whole_plan_error
from ..platforms import Platform
from ..search.result import MEMORY_CONVENTION, BlockSummary, deployment_lines


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
    from .. import plan as planfile
    if plan is not None:
        return planfile.load(model, plan)
    from ..search.baselines import layer_blocks
    from ..search.weights import EdgeWeights
    return layer_blocks(model, EdgeWeights(model, exact.block_cost))


def measure_plan(model: Model, plat: Platform | str, plan: str | Path | None = None,
                 vanilla: bool = False, backend: str = "unicorn",
                 cache_dir: str | Path | None = None, compiler: str | None = None,
                 session: Any = None) -> PlanMeasurement:
    """Build `plan` (a plan file; layer by layer when None or `vanilla`) into one firmware, run
    it on the measurement input and check its output against the host reference (on the
    `session`'s executor when given: e.g. a Dask cluster)."""
    p = plat if isinstance(plat, Platform) else platforms.load(plat)
    blocks = plan_blocks(model, None if vanilla else plan)
    try:
        costs = tuple(exact.block_cost(model, b) for b in blocks)
    except BlockInfeasible as exc:
        raise MsfsimError(f"the plan cannot be built: {exc}") from None
    o, compiler = measure_blocks(model, p, blocks, backend, cache_dir, compiler, session)
    error = whole_plan_error(o, backend)
    if error is not None:
        raise error
    return PlanMeasurement(model.name, p.name, backend, compiler,
                           "vanilla" if plan is None or vanilla else str(plan), tuple(blocks),
                           costs, exact.plan_cost(model, blocks), o, p.clock_hz, True,
                           input_in_place=model.input_in_place,
                           wide_weights=tuple(sorted(model.wide_weights)))


def measure_blocks(model: Model, plat: Platform, blocks: list[Block], backend: str,
                   cache_dir: str | Path | None = None, compiler: str | None = None,
                   session: Any = None) -> tuple[Outcome, str]:
    """(outcome, compiler label) of `blocks` built into one firmware, run on the measurement
    input and checked against the host reference (cached)."""
    x = measurement_input(model)
    expect = refmodel.run(model, x)
    with Measurer(plat, backend, jobs=1, cache_dir=cache_dir, compiler=compiler,
                  progress=False, session=session) as m:
        o = m.measure([plan_item(model, blocks, x, expect)])["plan"]
        return o, o.compiler or m.compiler_label


def plan_peaks(model: Model, blocks: list[Block]) -> tuple[int, int]:
    """(act, act_io) of a plan under the exact model."""
    total = exact.plan_cost(model, blocks)
    return total.act, total.act_io
