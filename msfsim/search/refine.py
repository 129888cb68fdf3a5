"""Which blocks of a Pareto front to measure next, so that the front becomes one of measured
plans (`msfsim search --front`; docs/front.md).

A front searched on mixed weights (measured blocks, estimates for the others) is stable when
none of its plans holds a block that is not measured yet. Until then, the pipeline measures a
batch of the front's unmeasured blocks and searches again. A batch takes first the blocks that
most front plans share (one measurement settles several points), then those of the plans with
the fewest unmeasured blocks (a plan is settled sooner), then the lower-RAM plans first. Small
batches waste less: a block measured worse than its estimate drops the plans that hold it, and
their other blocks need no measurement any more.
"""
from __future__ import annotations

from collections import Counter
from typing import Collection, Sequence

from ..fusion.block import Block
from .pareto import Plan


def unsettled(front: Sequence[Plan], known: Collection[Block]) -> list[Block]:
    """The blocks of front plans not in `known` (measured or dropped), each once, in front
    order."""
    out: dict[Block, None] = {}
    for p in front:
        for b in p.blocks:
            if b not in known:
                out.setdefault(b)
    return list(out)


def estimated_points(front: Sequence[Plan], known: Collection[Block]) -> int:
    """How many front plans hold a block not in `known`."""
    return sum(any(b not in known for b in p.blocks) for p in front)


def next_batch(front: Sequence[Plan], known: Collection[Block], size: int) -> list[Block]:
    """Up to `size` unmeasured blocks of the front to measure next (see the module doc); an
    empty list when the front is stable."""
    todo = unsettled(front, known)
    if len(todo) <= size:
        return todo
    shared = Counter(b for p in front for b in set(p.blocks) if b not in known)
    # per block: the fewest unmeasured blocks of a plan holding it, and that plan's position
    nearest: dict[Block, tuple[int, int]] = {}
    for k, p in enumerate(front):
        left = sum(b not in known for b in p.blocks)
        for b in p.blocks:
            if b not in known:
                nearest[b] = min(nearest.get(b, (left, k)), (left, k))
    order = sorted(todo, key=lambda b: (-shared[b], nearest[b], b))
    return order[:size]
