"""Estimated weights of blocks not measured yet, learned from the measured ones.

The measured search weighs every candidate block; those it has not measured carry an estimate
of their measured act and instructions, so that the search can tell which of them are worth
measuring. An estimate never reaches a result as a measurement: a front point with an
estimated block is flagged (`FrontPoint.measured` false).

Instructions. Each layer measured alone (its layer-by-layer block) gives that layer's
instructions; a block over layers first..last is estimated as those layers' instructions scaled
by the block's MACs over theirs (recomputed pixels cost what the layer's own pixels cost), times
a correction learned per scheme and output tile: the geometric mean of measured / this base over
the measured blocks of that scheme and tile, shrunk towards the scheme's and then every block's
mean when few are measured. A layer not measured alone is estimated from its MACs and bytes at
the measured blocks' mean instructions per MAC + byte.

RAM. The analytic act plus an offset (stack, alignment): the median of measured act - analytic
act over the measured blocks of the same scheme and tile (of the scheme, of all blocks, when
fewer than `MIN_RAM_SAMPLES`).
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Mapping

import numpy as np

from ..fusion.block import Block, BlockCost
from ..ir import Model
from .weights import EdgeWeights

SHRINK = 2.0          # pseudo-observations pulling a group's correction towards its parent's
MIN_RAM_SAMPLES = 3   # measured blocks a group needs before its own RAM offset is used


def _mean(values: list[float], prior: float, weight: float = SHRINK) -> float:
    return (sum(values) + weight * prior) / (len(values) + weight)


class BlockEstimates:
    """(ram, instructions) of an unmeasured block from the measured ones (module doc)."""

    def __init__(self, model: Model, measured: Mapping[Block, tuple[int, int]],
                 analytic: EdgeWeights):
        self.analytic = analytic
        costs = {b: c for b in measured if (c := analytic.block_cost(b)) is not None}
        work = sum(c.macs + c.act_io for c in costs.values())
        per_work = sum(measured[b][1] for b in costs) / work if work else 1.0
        n = len(model.layers)
        instr, macs = np.zeros(n), np.zeros(n)
        for i in range(n):
            b, c = Block(i, i), analytic.block_cost(Block(i, i))
            macs[i] = c.macs if c is not None else model.macs(model.layers[i])
            instr[i] = (measured[b][1] if b in measured else
                        per_work * (macs[i] + (c.act_io if c is not None else 0)))
        self._instr = np.concatenate(([0.0], np.cumsum(instr)))
        self._macs = np.concatenate(([0.0], np.cumsum(macs)))
        logs: dict[tuple, list[float]] = defaultdict(list)
        offsets: dict[tuple, list[float]] = defaultdict(list)
        for b, c in costs.items():
            ram, ins = measured[b]
            base = self.base(b, c)
            s, t = b.config.scheme, b.config.tile
            for key in ((), (s,), (s, t)):
                if base > 0 and ins > 0:
                    logs[key].append(math.log(ins / base))
                offsets[key].append(ram - c.act)
        top = _mean(logs[()], 0.0, 0.0) if logs[()] else 0.0
        self._log_k = {(): top}
        for key in sorted(k for k in logs if len(k) == 1):
            self._log_k[key] = _mean(logs[key], top)
        for key in [k for k in logs if len(k) == 2]:
            self._log_k[key] = _mean(logs[key], self._log_k.get(key[:1], top))
        self._offset = {k: float(np.median(v)) for k, v in offsets.items()
                        if v and (len(v) >= MIN_RAM_SAMPLES or k == ())}

    def base(self, block: Block, cost: BlockCost) -> float:
        """The instructions of the block's layers measured alone, scaled by its MACs."""
        ins = self._instr[block.last + 1] - self._instr[block.first]
        macs = self._macs[block.last + 1] - self._macs[block.first]
        return float(ins * cost.macs / macs) if macs > 0 else float(ins)

    def __call__(self, block: Block, cost: BlockCost) -> tuple[int, int]:
        s, t = block.config.scheme, block.config.tile
        log_k = self._log_k.get((s, t), self._log_k.get((s,), self._log_k[()]))
        off = self._offset.get((s, t), self._offset.get((s,), self._offset.get((), 0.0)))
        return int(cost.act + off), int(math.ceil(math.exp(log_k) * self.base(block, cost) - 1e-6))
