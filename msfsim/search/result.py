"""The outcome of a search: the chosen plan, baselines and Pareto front (DESIGN §7 JSON), and
the plan files read back (`load_plan`). Its parts: the plan and front-point figures
(msfsim.search.summary), the text table (msfsim.search.table), the conventions that name every
figure (msfsim.search.conventions).

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
from typing import Any

from .. import MsfsimError
from ..fusion.block import Block, BlockConfig
from . import table
# MEMORY_CONVENTION and deployment_lines are re-exported for the pipeline and codegen, and the
# summaries for every producer of results: this module is where a result's parts are found.
from .conventions import MEMORY_CONVENTION, deployment_lines, ram_convention  # noqa: F401
from .summary import BlockSummary, FrontPoint, PlanSummary  # noqa: F401

SCHEMA = 2


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

    def format_table(self) -> str:
        return table.format_search(self)

@dataclass(frozen=True)
class MeasuredSearchResult(SearchResult):
    """A SearchResult whose plan and baselines carry whole-firmware measurements, plus how the
    search measured (`measurement`: counts, dropped candidates, the plan's RAM breakdown)."""
    measurement: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "measurement": self.measurement}

    def format_table(self) -> str:
        return table.format_measured(self)


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
