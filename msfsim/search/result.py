"""The outcome of a search: the chosen plan, baselines and Pareto front (DESIGN §7 JSON).

JSON schema 2 (`SearchResult.to_json`: `msfsim search --json`, plan files, a report's
result.json). Every RAM figure names its convention (DESIGN §3; bytes):

- top level: ``schema`` (2), ``model``, ``model_fingerprint``, ``layer_count``, ``platform``,
  ``objective`` ("ram" | "latency"), ``cost`` ("measured" | "analytic"), ``cost_model``,
  ``backend``, ``compiler``, ``input_in_place``, ``wide_weight_layers``, ``ram_convention``
  (the convention in which plan, baselines and front are compared: "measured_act" in a measured
  search, "act" in an analytic one), the chosen plan's keys below, ``baselines``
  ({"vanilla" | "mcunetv2" | "streamnet": plan object or null}) and ``pareto`` (front points);
  a measured search adds ``measurement``.
- plan object (the chosen plan and each baseline):
  ``blocks``; ``peak_ram`` = {``act``: analytic act, ``act_io``: analytic act with the network
  input / output, ``measured``: the whole-plan firmware's arena + stack + static RAM (null unless
  it was built and run), ``measured_act``: the act convention on measurements, max over the
  plan's blocks of each block measured alone (arena + stack high-water minus the network input /
  output buffers it holds; null unless every block was measured)};
  ``macs``; ``overhead`` = F = MACs / layer-by-layer MACs (DESIGN §2: C_path / C_vanilla in
  MACs, in every search); ``instructions``: retired by the whole-plan firmware (null unless
  measured); ``block_instructions``: the sum over the plan's blocks, each measured alone (the
  measured search's cost; null unless every block was measured); ``instructions_ratio`` =
  block_instructions / the layer-by-layer plan's, the figure `--max-overhead` bounds in a measured
  search (null in analytic searches); ``latency_ms`` (an estimate: whole-firmware instructions /
  clock); ``flash_bytes``.
- block: ``layers`` [first, last], ``tile`` [h, w], ``scheme``, ``ram`` = {``act``, ``act_io``,
  ``measured`` (the block's own firmware: arena + stack + static), ``measured_act``}, ``macs``,
  ``instructions`` (the block measured alone).
- front point: ``peak_ram_act`` (analytic act), ``peak_ram_measured_act`` (measured searches;
  null in analytic ones), ``measured`` (true when every block of that front plan was measured;
  otherwise its measured-act and instruction figures are estimates), ``macs``, ``overhead`` (F,
  MACs ratio), ``instructions`` (sum over the plan's blocks measured alone; null in analytic
  searches), ``instructions_ratio``, ``chosen`` (the chosen plan's point).
"""
from __future__ import annotations

import json
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .. import MsfsimError
from ..fusion.block import Block, BlockConfig
from . import baselines as bl
from .pareto import Plan
from .weights import EdgeWeights

SCHEMA = 2

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
MEASURED_ACT_CONVENTION = (
    "measured act = the act convention on measurements: the plan's worst block measured alone, "
    "arena + stack high-water minus the network input / output buffers it holds")
F_DEFINITION = "F = MACs / layer-by-layer MACs"
INSTRUCTIONS_RATIO = "x instr vs layer-by-layer"
INSTRUCTIONS_RATIO_DEFINITION = ("x instr = instructions / layer-by-layer instructions, each "
                                 "block measured alone")
RAM_CONVENTIONS = {"act": "act", "measured_act": "measured act"}


def ram_convention(cost: str) -> str:
    """The convention in which a search's plan, baselines and front are compared: the measured
    search's own RAM weight (`measured_act`), or the analytic `act`."""
    return "measured_act" if cost == "measured" else "act"


def point_basis(cost: str, measured: bool) -> str:
    """How a front point was obtained: `measured` (every block of its plan measured),
    `estimate` (a measured search's point with estimated blocks) or `analytic`."""
    if cost != "measured":
        return "analytic"
    return "measured" if measured else "estimate"


def describe_limits(cost: str, constraints: Mapping[str, float | None]) -> list[str]:
    """The search constraints, each named with the figure it bounds."""
    conv = RAM_CONVENTIONS[ram_convention(cost)]
    out = []
    if constraints.get("max_overhead") is not None:
        f = constraints["max_overhead"]
        out.append(f"instructions ratio <= {f:g} (--max-overhead; {INSTRUCTIONS_RATIO_DEFINITION})"
                   if cost == "measured" else f"F <= {f:g} (--max-overhead; {F_DEFINITION})")
    if constraints.get("max_ram") is not None:
        out.append(f"peak {conv} <= {int(constraints['max_ram']):,} B (--max-ram)")
    if constraints.get("sram") is not None:
        out.append(f"board SRAM {int(constraints['sram']):,} B (caps peak {conv})")
    return out


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
        s = cls(tuple(rows), sum(r.macs for r in rows) / vanilla_macs)
        instr = s.block_instructions
        if measured is None or instr is None:
            return s
        ram = _all_or_none([r.measured for r in rows])
        return cls(s.blocks, s.overhead, measured=None if ram is None else max(ram),
                   instructions=instr, instructions_ratio=instr / vanilla_cost)


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


def _n(v: float | None) -> str:
    return "—" if v is None else f"{int(v):,}"


def _r(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


MAX_FRONT_LINES = 40   # a longer front is printed as its first and last points


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

    @property
    def measured_search(self) -> bool:
        return self.cost == "measured"

    def chosen_index(self) -> int | None:
        """Index of the chosen plan's front point: the one flagged `chosen`, else the one with
        the plan's figures in the search's convention."""
        for k, p in enumerate(self.pareto):
            if p.chosen:
                return k
        if self.measured_search:
            key = (self.plan.measured_act, self.plan.block_instructions)
            keys = [(p.peak_ram_measured_act, p.instructions) for p in self.pareto]
        else:
            key = (self.plan.act, self.plan.macs)
            keys = [(p.peak_ram_act, p.macs) for p in self.pareto]
        return keys.index(key) if None not in key and key in keys else None

    def to_json(self) -> dict[str, Any]:
        """The `--json` object of DESIGN §7, schema 2 (module docstring; measured fields are
        null in analytic mode)."""
        chosen = self.chosen_index()
        return {"schema": SCHEMA, "model": self.model, "model_fingerprint": self.model_fingerprint,
                "layer_count": sum(b.block.last - b.block.first + 1 for b in self.plan.blocks),
                "platform": self.platform, "objective": self.objective,
                "cost": self.cost, "cost_model": self.cost_model, "backend": self.backend,
                "compiler": self.compiler, "input_in_place": self.input_in_place,
                "wide_weight_layers": list(self.wide_weights),
                "ram_convention": ram_convention(self.cost),
                **self.plan.to_json(),
                "baselines": {k: (v.to_json() if v else None) for k, v in self.baselines.items()},
                "pareto": [{**p.to_json(), "chosen": k == chosen}
                           for k, p in enumerate(self.pareto)]}

    def to_plan_json(self) -> dict[str, Any]:
        """The plan file (`search -o plan.json`): the same object; `load_plan` reads its blocks."""
        return self.to_json()

    def dumps(self) -> str:
        return json.dumps(self.to_json())

    # ------------------------------------------------------------------ text

    def _block_lines(self) -> list[str]:
        meas = self.measured_search
        head = f"{'#':>3} {'layers':>9} {'tile':>7} {'scheme':>9} "
        if meas:
            head += f"{'meas.act B':>10} "
        head += f"{'act B':>9} {'act_io B':>9} "
        if meas:
            head += f"{'measured B':>10} "
        head += f"{'MACs':>13}"
        if meas:
            head += f" {'instructions':>13}"
        lines = [head]
        for k, b in enumerate(self.plan.blocks):
            t = b.block.config.tile
            row = (f"{k:>3} {b.block.first:>4}-{b.block.last:<4} {t[0]:>3}x{t[1]:<3} "
                   f"{b.block.config.scheme:>9} ")
            if meas:
                row += f"{_n(b.measured_act):>10} "
            row += f"{b.act:>9,} {b.act_io:>9,} "
            if meas:
                row += f"{_n(b.measured):>10} "
            row += f"{b.macs:>13,}"
            if meas:
                row += f" {_n(b.instructions):>13}"
            lines.append(row)
        if meas:
            lines.append("    (per block: meas.act and instructions of the block measured alone; "
                         "measured = its own firmware's arena + stack + static)")
        return lines

    def _plan_figures(self, s: PlanSummary) -> str:
        """One plan's RAM and cost, in the search's convention first."""
        if self.measured_search:
            return (f"peak measured act {_n(s.measured_act)} B (act {s.act:,} B, act_io "
                    f"{s.act_io:,} B), {s.macs:,} MACs, F {s.overhead:.3f}, "
                    f"{_n(s.block_instructions)} instructions (blocks measured alone), "
                    f"{_r(s.instructions_ratio)} {INSTRUCTIONS_RATIO}")
        return (f"peak act {s.act:,} B (act_io {s.act_io:,} B), {s.macs:,} MACs, "
                f"F {s.overhead:.3f}")

    def _front_lines(self) -> list[str]:
        if not self.pareto:
            return []
        meas = self.measured_search
        chosen = self.chosen_index()
        bases = [point_basis(self.cost, p.measured) for p in self.pareto]
        counts = ", ".join(f"{bases.count(b)} {b}" for b in dict.fromkeys(bases))
        what = ("peak RAM in measured act (act beside), instructions = sum of the blocks "
                "measured alone" if meas else "peak RAM in act, cost in MACs (analytic)")
        lines = [f"pareto front: {len(self.pareto)} points ({counts}); {what}"]
        if meas:
            lines.append("  (plans of the blocks measured, those near the chosen plan and of "
                         "the baselines: far from the chosen plan, unmeasured plans may do better)")
        head = "  " + (f"{'meas.act B':>10} " if meas else "") + f"{'act B':>9} {'MACs':>13} " \
            f"{'F':>6}" + (f" {'instructions':>13} {'x instr':>7}" if meas else "") + "  basis"
        lines.append(head)
        idx = list(range(len(self.pareto)))
        if len(idx) > MAX_FRONT_LINES:
            half = MAX_FRONT_LINES // 2
            idx = idx[:half] + [-1] + idx[-half:]
        for k in idx:
            if k < 0:
                lines.append(f"  ... {len(self.pareto) - 2 * (MAX_FRONT_LINES // 2)} more points")
                continue
            p = self.pareto[k]
            row = "  " + (f"{_n(p.peak_ram_measured_act):>10} " if meas else "")
            row += f"{p.peak_ram_act:>9,} {p.macs:>13,} {p.overhead:>6.3f}"
            if meas:
                row += f" {_n(p.instructions):>13} {_r(p.instructions_ratio):>7}"
            row += f"  {bases[k]}" + ("  <- chosen plan" if k == chosen else "")
            lines.append(row)
        return lines

    def format_table(self) -> str:
        lines = [f"msfsim search: model {self.model}, platform {self.platform}, objective "
                 f"{self.objective}, cost {self.cost} ({self.cost_model})"]
        lim = describe_limits(self.cost, self.constraints)
        if lim:
            lines.append("constraints: " + "; ".join(lim))
        conv = RAM_CONVENTIONS[ram_convention(self.cost)]
        lines.append(f"RAM convention: plan, baselines and front compared in {conv}"
                     + (" (analytic act beside it)" if self.measured_search else "")
                     + f"; {F_DEFINITION}"
                     + (f"; {INSTRUCTIONS_RATIO_DEFINITION}" if self.measured_search else ""))
        lines += self._block_lines()
        p = self.plan
        lines.append(f"total: {len(p.blocks)} blocks, {self._plan_figures(p)}")
        lines.append("baselines:")
        for name, s in self.baselines.items():
            if s is None:
                why = (f"not expressible under cost model {self.cost_model}"
                       if self.cost_model == "msfcnn" else "no plan of this kind fits the board")
                lines.append(f"  {name:<10} {why}")
            else:
                lines.append(f"  {name:<10} {self._plan_figures(s)} ({len(s.blocks)} blocks)")
        lines += self._front_lines()
        if self.search_seconds is not None:
            lines.append(f"search time: {self.search_seconds:.3f} s")
        lines.append(MEMORY_CONVENTION)
        if self.measured_search:
            lines.append(MEASURED_ACT_CONVENTION)
        lines += deployment_lines(self.input_in_place, self.wide_weights)
        return "\n".join(lines)


@dataclass(frozen=True)
class MeasuredSearchResult(SearchResult):
    """A SearchResult whose plan and baselines carry whole-firmware measurements, plus how the
    search measured (`measurement`: counts, dropped candidates, the plan's RAM breakdown)."""
    measurement: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "measurement": self.measurement}

    def format_table(self) -> str:
        lines = [super().format_table()]
        m, p = self.measurement, self.plan
        w = m.get("plan_firmware", {})
        if p.instructions is not None:
            lines.append(f"measured (one whole-plan firmware, {self.backend}, {self.compiler}): "
                         f"{p.instructions:,} instructions, RAM {p.measured:,} B = arena "
                         f"{w.get('arena'):,} + stack {w.get('stack'):,} + static "
                         f"{w.get('static'):,}, flash {p.flash_bytes:,} B, output bit-exact "
                         f"with the host reference")
            lines.append(f"latency estimate: {p.latency_ms:.2f} ms (instructions / clock)")
        a = m.get("measured_act")
        if a:
            lines.append(f"measured act: {a['bytes']:,} B = worst block {a['block']} measured alone: "
                         f"arena {a['arena']:,} + stack {a['stack']:,} - network I/O "
                         f"{a['network_io']:,}")
        for name, s in self.baselines.items():
            if s is not None and s.instructions is not None:
                lines.append(f"  {name:<10} whole-plan firmware: {s.instructions:,} instructions, "
                             f"RAM {s.measured:,} B (measured)")
        st = m.get("stats", {})
        lines.append(f"candidates: {m.get('blocks_measured', 0)} blocks measured in "
                     f"{m.get('rounds', 0)} rounds ({st.get('measured', 0)} firmware built and "
                     f"run, {st.get('cache_hits', 0)} from the cache), "
                     f"{len(m.get('dropped', []))} dropped")
        for d in m.get("dropped", [])[:10]:
            lines.append(f"  dropped {d['block']}: {d['cause']}")
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
