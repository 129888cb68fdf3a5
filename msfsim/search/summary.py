"""The figures of one plan (`PlanSummary`, per block `BlockSummary`) and of one point of the
Pareto front (`FrontPoint`), analytic and, in a measured search, measured; each with its JSON
object (schema: msfsim.search.result)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..fusion.block import Block
from . import baselines as bl
from .pareto import Plan, cost_ratio
from .weights import EdgeWeights


@dataclass(frozen=True)
class BlockSummary:
    block: Block
    act: int
    act_io: int
    macs: int
    measured: int | None = None       # the block's own firmware: arena + stack + static
    instructions: int | None = None   # the block measured alone
    measured_act: int | None = None   # arena + stack of the block alone - network I/O it holds

    def to_json(self) -> dict[str, Any]:
        b = self.block
        return {"layers": [b.first, b.last], "tile": list(b.config.tile),
                "scheme": b.config.scheme,
                "ram": {"act": self.act, "act_io": self.act_io, "measured": self.measured,
                        "measured_act": self.measured_act},
                "macs": self.macs, "instructions": self.instructions}


def _all_or_none(values: Sequence[int | None]) -> list[int] | None:
    """The values when there are some and none is missing, else None."""
    if not values or any(v is None for v in values):
        return None
    return [int(v) for v in values]  # type: ignore[arg-type]


@dataclass(frozen=True)
class PlanSummary:
    """A plan with its per-block figures. `overhead` is F = MACs / layer-by-layer MACs;
    `instructions_ratio` the instructions of the blocks (each measured alone) / those of the
    layer-by-layer plan, in measured searches. `measured`, `instructions`, `latency_ms` and
    `flash_bytes` are those of the whole-plan firmware."""
    blocks: tuple[BlockSummary, ...]
    overhead: float
    measured: int | None = None
    instructions: int | None = None
    latency_ms: float | None = None
    flash_bytes: int | None = None
    instructions_ratio: float | None = None

    @property
    def act(self) -> int:
        return max(b.act for b in self.blocks)

    @property
    def act_io(self) -> int:
        return max(b.act_io for b in self.blocks)

    @property
    def macs(self) -> int:
        return sum(b.macs for b in self.blocks)

    @property
    def measured_act(self) -> int | None:
        """Peak measured act: the worst block measured alone (None unless all were)."""
        v = _all_or_none([b.measured_act for b in self.blocks])
        return None if v is None else max(v)

    @property
    def block_instructions(self) -> int | None:
        """Instructions of the blocks, each measured alone (None unless all were)."""
        v = _all_or_none([b.instructions for b in self.blocks])
        return None if v is None else sum(v)

    def to_json(self) -> dict[str, Any]:
        return {"blocks": [b.to_json() for b in self.blocks],
                "peak_ram": {"act": self.act, "act_io": self.act_io, "measured": self.measured,
                             "measured_act": self.measured_act},
                "macs": self.macs, "overhead": self.overhead, "instructions": self.instructions,
                "block_instructions": self.block_instructions,
                "instructions_ratio": self.instructions_ratio,
                "latency_ms": self.latency_ms, "flash_bytes": self.flash_bytes}

    @classmethod
    def of(cls, plan: Plan, analytic: EdgeWeights, vanilla_cost: int,
           measured: Mapping[Block, tuple[int, ...]] | None = None,
           vanilla_macs: int | None = None) -> PlanSummary:
        """Summarise `plan` with the analytic BlockCost of each block (act, act_io, MACs) and,
        when given, the measurements of each block: (RAM of its own firmware, instructions[,
        measured act]).

        F (`overhead`) = MACs / `vanilla_macs` (default: the layer-by-layer plan's MACs under
        `analytic`). When every block has measured instructions, `instructions_ratio` = their
        sum / `vanilla_cost`, the layer-by-layer plan's cost under the (instruction) weights the
        plan was searched with."""
        rows = []
        for b in plan.blocks:
            bc = analytic.block_cost(b)
            if bc is None:
                raise ValueError(f"no analytic cost for block {b.key}: "
                                 f"{analytic.rejected.get(b, 'unknown')}")
            m = tuple(measured.get(b, ())) if measured is not None else ()
            m = m + (None,) * (3 - len(m))
            rows.append(BlockSummary(b, bc.act, bc.act_io, bc.macs, m[0], m[1], m[2]))
        if vanilla_macs is None:
            van = bl.vanilla(analytic.model, analytic)
            if van is None:
                raise ValueError("no analytic layer-by-layer plan: F is undefined")
            vanilla_macs = van.cost
        s = cls(tuple(rows), cost_ratio(sum(r.macs for r in rows), vanilla_macs))
        instr = s.block_instructions
        if measured is None or instr is None:
            return s
        ram = _all_or_none([r.measured for r in rows])
        return cls(s.blocks, s.overhead, measured=None if ram is None else max(ram),
                   instructions=instr, instructions_ratio=cost_ratio(instr, vanilla_cost))


@dataclass(frozen=True)
class FrontPoint:
    """A plan of the Pareto front. In a measured search the front is over measured act and
    instructions (blocks measured alone); `measured` says whether every block of the plan was
    measured, else those two figures are estimates."""
    peak_ram_act: int                       # analytic act
    macs: int
    overhead: float                         # F = MACs / layer-by-layer MACs
    instructions: int | None = None         # sum over blocks measured alone
    peak_ram_measured_act: int | None = None
    measured: bool = False
    instructions_ratio: float | None = None
    chosen: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"peak_ram_act": self.peak_ram_act,
                "peak_ram_measured_act": self.peak_ram_measured_act, "measured": self.measured,
                "macs": self.macs, "overhead": self.overhead, "instructions": self.instructions,
                "instructions_ratio": self.instructions_ratio, "chosen": self.chosen}
