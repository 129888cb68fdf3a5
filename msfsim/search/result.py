"""The outcome of a search: the chosen plan, baselines and Pareto front (DESIGN §7 JSON)."""
from __future__ import annotations

import json
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Mapping

from .. import MsfsimError
from ..fusion.block import Block, BlockConfig
from .pareto import Plan
from .weights import EdgeWeights

INPUT_IN_PLACE_NOTE = ("network input read in place (flash or a sensor buffer), never copied into "
                       "the arena: act_io and measured RAM hold the network output only")


def deployment_lines(input_in_place: bool, wide_weights: tuple[int, ...]) -> list[str]:
    """Notes on how the model is deployed (msfsim.deploy), printed under the figures."""
    lines = [INPUT_IN_PLACE_NOTE] if input_in_place else []
    if wide_weights:
        lines.append(f"weights: {len(wide_weights)} layers stored pre-widened to int16 in flash "
                     f"for the DSP loops (--weights int8 to turn off); RAM and output unchanged")
    return lines


MEMORY_CONVENTION = (
    "memory: act = block buffers + block input + block output + live skip tensors, network "
    "input and output excluded (msf-CNN convention); act_io = the same with them counted; "
    "measured = emulator arena + stack high-water + static RAM")


@dataclass(frozen=True)
class BlockSummary:
    block: Block
    act: int
    act_io: int
    macs: int
    measured: int | None = None
    instructions: int | None = None

    def to_json(self) -> dict[str, Any]:
        b = self.block
        return {"layers": [b.first, b.last], "tile": list(b.config.tile),
                "scheme": b.config.scheme,
                "ram": {"act": self.act, "act_io": self.act_io, "measured": self.measured},
                "macs": self.macs, "instructions": self.instructions}


@dataclass(frozen=True)
class PlanSummary:
    """A plan with its per-block figures; `overhead` = cost / vanilla cost under the weights the
    plan was searched with."""
    blocks: tuple[BlockSummary, ...]
    overhead: float
    measured: int | None = None
    instructions: int | None = None
    latency_ms: float | None = None
    flash_bytes: int | None = None

    @property
    def act(self) -> int:
        return max(b.act for b in self.blocks)

    @property
    def act_io(self) -> int:
        return max(b.act_io for b in self.blocks)

    @property
    def macs(self) -> int:
        return sum(b.macs for b in self.blocks)

    def to_json(self) -> dict[str, Any]:
        return {"blocks": [b.to_json() for b in self.blocks],
                "peak_ram": {"act": self.act, "act_io": self.act_io, "measured": self.measured},
                "macs": self.macs, "overhead": self.overhead, "instructions": self.instructions,
                "latency_ms": self.latency_ms, "flash_bytes": self.flash_bytes}

    @classmethod
    def of(cls, plan: Plan, analytic: EdgeWeights, vanilla_cost: int,
           measured: Mapping[Block, tuple[int, int]] | None = None) -> PlanSummary:
        """Summarise `plan` with the analytic BlockCost of each block (act, act_io, MACs) and,
        when given, the measured (ram, instructions) of each block."""
        rows = []
        for b in plan.blocks:
            bc = analytic.block_cost(b)
            if bc is None:
                raise ValueError(f"no analytic cost for block {b.key}: "
                                 f"{analytic.rejected.get(b, 'unknown')}")
            ram, instr = measured.get(b, (None, None)) if measured is not None else (None, None)
            rows.append(BlockSummary(b, bc.act, bc.act_io, bc.macs, ram, instr))
        if measured is None or any(r.measured is None for r in rows):
            return cls(tuple(rows), plan.cost / vanilla_cost)
        return cls(tuple(rows), plan.cost / vanilla_cost,
                   measured=max(r.measured for r in rows),  # type: ignore[type-var]
                   instructions=sum(r.instructions for r in rows))  # type: ignore[misc]


@dataclass(frozen=True)
class FrontPoint:
    peak_ram_act: int
    macs: int
    overhead: float
    instructions: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"peak_ram_act": self.peak_ram_act, "macs": self.macs, "overhead": self.overhead,
                "instructions": self.instructions}


@dataclass(frozen=True)
class SearchResult:
    model: str
    platform: str
    objective: str
    cost: str                      # "analytic" | "measured"
    cost_model: str
    plan: PlanSummary
    baselines: dict[str, PlanSummary | None]
    pareto: tuple[FrontPoint, ...]
    backend: str | None = None
    compiler: str | None = None
    constraints: dict[str, float | None] = field(default_factory=dict)
    search_seconds: float | None = None
    input_in_place: bool = False   # the network input is read where it lies, not in the arena
    wide_weights: tuple[int, ...] = ()  # layers whose weights are pre-widened (msfsim.deploy)
    model_fingerprint: str | None = None  # Model.fingerprint(): plan files name their model

    def to_json(self) -> dict[str, Any]:
        """The `--json` object of DESIGN §7 (measured fields are null in analytic mode)."""
        return {"model": self.model, "model_fingerprint": self.model_fingerprint,
                "layer_count": sum(b.block.last - b.block.first + 1 for b in self.plan.blocks),
                "platform": self.platform, "objective": self.objective,
                "cost": self.cost, "cost_model": self.cost_model, "backend": self.backend,
                "compiler": self.compiler, "input_in_place": self.input_in_place,
                "wide_weight_layers": list(self.wide_weights),
                **self.plan.to_json(),
                "baselines": {k: (v.to_json() if v else None) for k, v in self.baselines.items()},
                "pareto": [p.to_json() for p in self.pareto]}

    def to_plan_json(self) -> dict[str, Any]:
        """The plan file (`search -o plan.json`): the same object; `load_plan` reads its blocks."""
        return self.to_json()

    def dumps(self) -> str:
        return json.dumps(self.to_json())

    def format_table(self) -> str:
        lines = [f"msfsim search: model {self.model}, platform {self.platform}, objective "
                 f"{self.objective}, cost {self.cost} ({self.cost_model})"]
        lim = ", ".join(f"{k} {v:g}" for k, v in self.constraints.items() if v is not None)
        if lim:
            lines.append(f"constraints: {lim}")
        lines.append(f"{'#':>3} {'layers':>9} {'tile':>7} {'scheme':>9} {'act B':>9} "
                     f"{'act_io B':>9} {'MACs':>13}")
        for k, b in enumerate(self.plan.blocks):
            t = b.block.config.tile
            lines.append(f"{k:>3} {b.block.first:>4}-{b.block.last:<4} {t[0]:>3}x{t[1]:<3} "
                         f"{b.block.config.scheme:>9} {b.act:>9,} {b.act_io:>9,} {b.macs:>13,}")
        p = self.plan
        lines.append(f"total: {len(p.blocks)} blocks, peak act {p.act:,} B, peak act_io "
                     f"{p.act_io:,} B, {p.macs:,} MACs, overhead F {p.overhead:.3f}")
        lines.append("baselines:")
        for name, s in self.baselines.items():
            if s is None:
                why = (f"not expressible under cost model {self.cost_model}"
                       if self.cost_model == "msfcnn" else "no plan of this kind fits the board")
                lines.append(f"  {name:<10} {why}")
            else:
                lines.append(f"  {name:<10} peak act {s.act:>9,} B  act_io {s.act_io:>9,} B  "
                             f"{s.macs:>13,} MACs  F {s.overhead:.3f}  ({len(s.blocks)} blocks)")
        if self.pareto:
            lo, hi = self.pareto[0], self.pareto[-1]
            lines.append(f"pareto front: {len(self.pareto)} points, from {lo.peak_ram_act:,} B at "
                         f"F {lo.overhead:.3f} to {hi.peak_ram_act:,} B at F {hi.overhead:.3f}")
        if self.search_seconds is not None:
            lines.append(f"search time: {self.search_seconds:.3f} s")
        lines.append(MEMORY_CONVENTION)
        lines += deployment_lines(self.input_in_place, self.wide_weights)
        return "\n".join(lines)


def load_plan(plan: str | Path | dict[str, Any], n_layers: int | None = None) -> list[Block]:
    """Blocks of a plan file (or its parsed object); checks that they tile layers 0..N-1."""
    if not isinstance(plan, dict):
        try:
            plan = json.loads(Path(plan).read_text())
        except (OSError, ValueError) as exc:
            raise MsfsimError(f"cannot read plan {plan}: {exc}") from None
    try:
        blocks = [Block(int(b["layers"][0]), int(b["layers"][1]),
                        BlockConfig((int(b["tile"][0]), int(b["tile"][1])), str(b["scheme"])))
                  for b in plan["blocks"]]
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise MsfsimError(f"malformed plan: {exc}") from None
    nxt = 0
    for b in blocks:
        if b.first != nxt or b.last < b.first:
            raise MsfsimError(f"plan block {b.key} does not start at layer {nxt}")
        nxt = b.last + 1
    if not blocks or (n_layers is not None and nxt != n_layers):
        raise MsfsimError(f"plan covers layers 0..{nxt - 1}, the model has {n_layers}")
    return blocks
