"""Parts of the measured search (msfsim.pipeline.measured_search): the measured act of a
plan, the model digest and the memo of what a search measured (the "search-seed" row: its
blocks, which make a warm run converge at once, and their firmware keys, which spare it
generating code again), what Ctrl-C prints, and the result's parts: plan, baseline and front
summaries, the front plans' firmware and the `measurement` object.
"""
from __future__ import annotations

import functools
import hashlib
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ..fusion import exact
from ..fusion.block import Block, BlockConfig, BlockCost
from ..ir import Model
from ..measure import INPUT_SEED, Measurer, Outcome, valid_row
from ..platforms import Platform
from ..search.api import cost_model_of
from ..search.pareto import Plan, cost_ratio
from ..search.result import FrontPoint, PlanSummary
from ..search.weights import CostModel, EdgeWeights


def _overflow_bytes(detail: str | None) -> int | None:
    """The largest 'overflowed by N bytes' in a link error, if it says."""
    found = [int(n) for n in re.findall(r"overflowed by (\d+) bytes", detail or "")]
    return max(found) if found else None


@dataclass
class _BlockMeasure:
    ram: int             # search weight: arena + stack, network input / output excluded
    instructions: int
    measured_ram: int    # DESIGN §3 figure of the block's own firmware: arena + stack + static
    arena: int = 0       # the block firmware's arena high-water (network I/O included)
    stack: int = 0


def _measured_act(model: Model, plan: Plan, measured: dict[Block, _BlockMeasure],
                  net_io: Callable[[Block], int]) -> dict[str, Any]:
    """The act convention on measurements: the plan's worst block, measured alone, as arena +
    stack high-water minus the network input / output buffers it holds."""
    worst = max(plan.blocks, key=lambda b: measured[b].ram)
    m = measured[worst]
    return {"bytes": m.ram, "block": worst.key, "arena": m.arena, "stack": m.stack,
            "network_io": net_io(worst)}


def model_digest(model: Model) -> str:
    """Digest of everything that defines a model's computation (structure, qparams, weights)."""
    h = hashlib.sha256(model.name.encode())
    for t in model.tensors:
        h.update(repr((t.id, t.shape, t.q.scale, t.q.zero_point)).encode())
    for layer in model.layers:
        h.update(repr((layer.op.value, layer.inputs, layer.output, layer.kernel, layer.stride,
                       layer.pad, layer.act_min, layer.act_max)).encode())
        for a in (layer.weight, layer.bias, layer.multiplier, layer.shift):
            h.update(b"-" if a is None else a.tobytes())
    h.update(repr((model.input, model.output, model.input_in_place,
                   sorted(model.wide_weights))).encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """Digest of msfsim's own files (Python, C, templates, board data): the code generated for
    a block or a plan is a function of them, the model and the measurement input."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".pyc", ".so"):
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class KnownFirmware:
    """Stands for the generated code of a firmware measured before (its measurement key known
    from the search memo and its row in the cache): no code is generated again."""
    key: str
    files: tuple = ()


class KeyedMeasurer(Measurer):
    """A Measurer that takes the key of a `KnownFirmware` as given."""

    def key(self, code: Any) -> str:
        return code.key if isinstance(code, KnownFirmware) else super().key(code)


def plan_signature(blocks: Sequence[Block]) -> str:
    """The search memo's name of a whole-plan firmware."""
    return "plan " + " ".join(b.key for b in blocks)


class FirmwareMemo:
    """The firmware keys the search memo holds (label -> measurement key), valid only when
    msfsim's files and the measurement input are those they were generated from: a warm
    search then reads its measurements without generating any code."""

    def __init__(self, memo: dict | None, source: str):
        self.source = source
        ok = isinstance(memo, dict) and memo.get("source") == source \
            and isinstance(memo.get("firmware"), dict)
        self.old: dict[str, str] = dict(memo["firmware"]) if ok else {}  # type: ignore[index]
        self.new: dict[str, str] = {}

    def known(self, m: Measurer, label: str) -> KnownFirmware | None:
        """The firmware `label` measured before, when its row is still in the cache."""
        key = self.old.get(label)
        if not isinstance(key, str) or m.cache.get(key, check=valid_row) is None:
            return None
        m.cache.hits -= 1  # looked at, not used yet: Measurer.measure counts it
        return KnownFirmware(key)

    def note(self, label: str, key: str) -> None:
        self.new[label] = key

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "firmware": self.new}


class _KnownCosts:
    """A cost model whose block costs were computed before (else computed now)."""

    def __init__(self, costs: dict[Block, BlockCost], cost_fn: CostModel):
        self.costs, self.cost_fn = costs, cost_fn

    def __call__(self, model: Model, block: Block) -> BlockCost:
        c = self.costs.get(block)
        return c if c is not None else self.cost_fn(model, block)


def _costs_row(row: dict) -> bool:
    return isinstance(row.get("costs"), list) and isinstance(row.get("fits"), list) \
        and len(row["costs"]) == len(row["fits"])


def candidates(m: Measurer, model: Model, cost_model: str, sram: int,
               stack_floor: int) -> tuple[EdgeWeights, list[Block], int]:
    """(analytic weights, the candidate blocks the board can hold, how many it cannot). The
    generated code claims exactly the exact model's act_io bytes of arena: a block over the
    board's SRAM (with `stack_floor` bytes of stack) is not worth a build. Read from the cache
    when the model, the board and msfsim's files are those they were computed from: a warm
    search computes no block cost."""
    cost_fn, space = cost_model_of(cost_model)
    key = m.key_of(kind="candidate-costs", model=model_digest(model), cost_model=cost_model,
                   source=source_digest())
    row = m.cache.get(key, check=_costs_row)
    if row is not None:
        costs = {_block_of(r[:5]): BlockCost(int(r[5]), int(r[6]), int(r[7]))
                 for r in row["costs"]}
        blocks = [b for b, fits in zip(costs, row["fits"]) if fits]
        return EdgeWeights(model, _KnownCosts(costs, cost_fn)), blocks, len(costs) - len(blocks)
    analytic = EdgeWeights(model, cost_fn)
    exact_w = analytic if cost_model == "exact" else EdgeWeights(model, exact.block_cost)
    space_blocks = [b for b in space(model) if analytic(b) is not None]
    fits = [(c := exact_w.block_cost(b)) is not None and c.act_io + stack_floor <= sram
            for b in space_blocks]
    rows = []
    for b in space_blocks:
        c = analytic.block_cost(b)
        rows.append([*_block_json(b), c.act, c.act_io, c.macs])  # type: ignore[union-attr]
    m.cache.put(key, {"costs": rows, "fits": fits})
    blocks = [b for b, f in zip(space_blocks, fits) if f]
    return analytic, blocks, len(space_blocks) - len(blocks)


def _block_json(b: Block) -> list:
    return [b.first, b.last, b.config.scheme, *b.config.tile]


def _block_of(d: list) -> Block:
    return Block(int(d[0]), int(d[1]), BlockConfig((int(d[3]), int(d[4])), str(d[2])))


def _memo_blocks(memo: dict) -> set[Block]:
    return {_block_of(d) for d in memo["blocks"]}


class _Interrupted:
    """What to print when Ctrl-C stops the search."""

    def __init__(self) -> None:
        self.plan: Plan | None = None
        self.estimated: set[Block] = set()

    def report(self) -> None:
        if self.plan is None:
            print("msfsim: interrupted before any plan was found", file=sys.stderr)
            return
        p = self.plan
        print(f"msfsim: interrupted; best plan so far: RAM {p.ram:,} B, {p.cost:,} instructions"
              f" ({'measured' if not self.estimated else 'some blocks estimated'})",
              file=sys.stderr)
        for b in p.blocks:
            print(f"  {b.key}{'  (estimate)' if b in self.estimated else ''}", file=sys.stderr)


def results(model: Model, p: Platform, cost_fn: CostModel, measured: dict[Block, _BlockMeasure],
            plan: Plan, vanilla: Plan, base: dict[str, Plan | None], whole: dict[str, Outcome],
            front: list[Plan]) -> tuple[PlanSummary, dict[str, PlanSummary | None],
                                        tuple[FrontPoint, ...]]:
    """(chosen plan, baselines, front points) with their figures: per block its own firmware's
    RAM, its instructions and its measured act (the search's RAM weight), so that plan,
    baselines and front all carry the measured act convention; the whole-plan firmware's
    figures where it was built and run."""
    per_block = {b: (v.measured_ram, v.instructions, v.ram) for b, v in measured.items()}
    analytic = EdgeWeights(model, cost_fn)
    # F = MACs / layer-by-layer MACs (DESIGN §2); instruction ratios are relative to
    # vanilla.cost, the layer-by-layer instructions the search used (blocks measured alone).
    vanilla_macs = sum(analytic.block_cost(b).macs  # type: ignore[union-attr]
                       for b in vanilla.blocks)

    def summary(pl: Plan, out: Outcome | None) -> PlanSummary:
        s = PlanSummary.of(pl, analytic, vanilla.cost, measured=per_block,
                           vanilla_macs=vanilla_macs)
        if out is None or not out.ok:
            return replace(s, measured=None, instructions=None)
        return replace(s, measured=out.measured_ram, instructions=out.instructions,
                       latency_ms=1e3 * out.instructions / p.clock_hz,  # type: ignore[operator]
                       flash_bytes=out.flash_bytes)

    chosen = next((k for k, f in enumerate(front) if (f.ram, f.cost) == (plan.ram, plan.cost)),
                  None)

    def point(k: int, f: Plan) -> FrontPoint:
        """A front plan in both conventions: measured act and instructions of its blocks
        measured alone (the search's weights; estimates unless every block was measured)
        beside analytic act and MACs."""
        costs = [analytic.block_cost(b) for b in f.blocks]
        macs = sum(c.macs for c in costs)  # type: ignore[union-attr]
        return FrontPoint(peak_ram_act=max(c.act for c in costs),  # type: ignore[union-attr]
                          macs=macs, overhead=cost_ratio(macs, vanilla_macs), instructions=f.cost,
                          peak_ram_measured_act=f.ram,
                          measured=all(b in measured for b in f.blocks),
                          instructions_ratio=cost_ratio(f.cost, vanilla.cost), chosen=k == chosen)

    baselines = {k: (summary(v, whole.get(k)) if v is not None else None) for k, v in base.items()}
    return (summary(plan, whole["plan"]), baselines,
            tuple(point(k, f) for k, f in enumerate(front)))


def front_firmware(model: Model, front: list[Plan], whole: dict[str, Outcome],
                   label: str) -> list[dict[str, Any]]:
    """Per front point (`point`: its index in `pareto`): its blocks (a plan file's `blocks`)
    and its whole-model firmware as `msfsim measure --plan` reports it (null when the point
    holds an estimated block and was not built)."""
    out = []
    for k, f in enumerate(front):
        o = whole.get(f"{label} {k}")
        fw = None if o is None else {
            "status": o.status, "instructions": o.instructions, "measured_ram": o.measured_ram,
            "arena": o.arena_peak, "stack": o.stack_peak, "static": o.static_ram,
            "flash_bytes": o.flash_bytes, "detail": None if o.ok else o.cause}
        out.append({"point": k, "blocks": [{"layers": [b.first, b.last],
                                            "tile": list(b.config.tile),
                                            "scheme": b.config.scheme} for b in f.blocks],
                    "layer_count": len(model.layers), "firmware": fw})
    return out


def measurement_json(model: Model, plan: Plan, measured: dict[Block, _BlockMeasure],
                     dropped: dict[Block, str], net_io: Callable[[Block], int], o: Outcome,
                     stats: dict[str, int], rounds: int, too_big: list[Block],
                     layer_set: list[Block], over_sram: int,
                     front: dict[str, Any]) -> dict[str, Any]:
    """The result's `measurement` object: how the search measured (DESIGN §7)."""
    return {
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
        # every block measured alone: the search's edge weights (measured_act = its `ram`)
        "blocks": [{"layers": [b.first, b.last], "scheme": b.config.scheme,
                    "tile": list(b.config.tile), "measured_act": v.ram,
                    "instructions": v.instructions, "measured_ram": v.measured_ram,
                    "arena": v.arena, "stack": v.stack} for b, v in sorted(measured.items())],
        "blocks_over_sram": over_sram,
        "vanilla_layers_estimated": [b.key for b in layer_set if b not in measured],
        "dropped": [{"block": b.key, "cause": c} for b, c in sorted(dropped.items())],
        "front": front,
    }
