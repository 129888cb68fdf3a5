"""Parts of the measured search (msfsim.pipeline.measured_search): the estimates of blocks not
measured yet, the measured act of a plan, the model digest and the memo of blocks a search
measured (the "search-seed" row that makes a warm run converge at once), and what Ctrl-C prints.
"""
from __future__ import annotations

import hashlib
import math
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..fusion.block import Block, BlockConfig, BlockCost
from ..ir import Model
from ..search.pareto import Plan
from ..search.weights import EdgeWeights


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


class _Fit:
    """Estimates for blocks not measured yet, fitted per scheme on the measured ones:
    instructions = ratio x (MACs + act_io bytes), RAM = act + offset (stack, alignment)."""

    def __init__(self, measured: dict[Block, _BlockMeasure], analytic: EdgeWeights):
        by: dict[str, list[tuple[float, float, float]]] = {}
        for b, m in measured.items():
            c = analytic.block_cost(b)
            if c is not None:
                by.setdefault(b.config.scheme, []).append(
                    (m.instructions, c.macs + c.act_io, m.ram - c.act))
        every = [r for rows in by.values() for r in rows]
        self.ratio: dict[str, float] = {}
        self.offset: dict[str, float] = {}
        for key, rows in [("*", every), *by.items()]:
            if rows:
                a = np.array(rows, dtype=np.float64)
                self.ratio[key] = float(a[:, 0].sum() / max(a[:, 1].sum(), 1.0))
                self.offset[key] = float(np.median(a[:, 2]))

    def __call__(self, block: Block, cost: BlockCost) -> tuple[int, int]:
        s = block.config.scheme
        ratio = self.ratio.get(s, self.ratio.get("*", 1.0))
        off = self.offset.get(s, self.offset.get("*", 0.0))
        return int(cost.act + off), int(math.ceil(ratio * (cost.macs + cost.act_io)))


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
