"""Reference plans under the same edge weights as the search (DESIGN §2).

- vanilla: layer by layer; a max-pool whose stride covers its window is reduced in place as its
  producer emits pixels, so producer + pool form one "layer" block with no extra buffer.
- mcunetv2: one patch-based head block [0, split] (scheme recompute), then layer by layer; the
  split and the patch (output tile) are the best under the weights: lowest plan RAM, then cost.
- streamnet: the same with a stream2d head block (line / column buffers, no recompute).
"""
from __future__ import annotations

from ..fusion.block import LAYER, Block, BlockConfig
from ..fusion.space import range_reason, is_pool_in_place, last_spatial, tile_options
from ..ir import Model
from .pareto import Plan
from .weights import EdgeWeights


def _plan(blocks: list[Block], weights: EdgeWeights) -> Plan | None:
    ws = [weights(b) for b in blocks]
    if any(w is None for w in ws):
        return None
    return Plan(tuple(blocks), max(w[0] for w in ws), sum(w[1] for w in ws))  # type: ignore[index]


def layer_blocks(model: Model, weights: EdgeWeights, start: int = 0) -> list[Block]:
    """Layer-by-layer blocks of layers start..N-1, with in-place max-pools fused when the
    weights accept the pair."""
    n, i, out = len(model.layers), start, []
    while i < n:
        if i + 1 < n and is_pool_in_place(model, i, i + 1) \
                and range_reason(model, i, i + 1) is None and weights(Block(i, i + 1)) is not None:
            out.append(Block(i, i + 1, LAYER))
            i += 2
        else:
            out.append(Block(i, i, LAYER))
            i += 1
    return out


def vanilla(model: Model, weights: EdgeWeights) -> Plan | None:
    """Layer-by-layer plan (None when the weights miss a layer)."""
    return _plan(layer_blocks(model, weights), weights)


def head_fused(model: Model, weights: EdgeWeights, scheme: str) -> Plan | None:
    """Best plan made of one `scheme` head block [0, split] followed by layer-by-layer."""
    n = len(model.layers)
    best: Plan | None = None
    for split in range(1, n):
        if range_reason(model, 0, split):
            continue
        ho, wo, _ = model.out_shape(model.layers[last_spatial(model, Block(0, split))])
        tail = _plan(layer_blocks(model, weights, split + 1), weights) if split + 1 < n else None
        if split + 1 < n and tail is None:
            continue
        for tile in tile_options(ho, wo)[scheme]:
            head = weights(Block(0, split, BlockConfig(tile, scheme)))
            if head is None:
                continue
            blocks = (Block(0, split, BlockConfig(tile, scheme)),) + (tail.blocks if tail else ())
            ram = max(head[0], tail.ram if tail else 0)
            cost = head[1] + (tail.cost if tail else 0)
            if best is None or (ram, cost) < (best.ram, best.cost):
                best = Plan(blocks, ram, cost)
    return best


def mcunetv2(model: Model, weights: EdgeWeights) -> Plan | None:
    return head_fused(model, weights, "recompute")


def streamnet(model: Model, weights: EdgeWeights) -> Plan | None:
    return head_fused(model, weights, "stream2d")


BASELINES = {"vanilla": vanilla, "mcunetv2": mcunetv2, "streamnet": streamnet}
