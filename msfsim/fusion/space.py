"""The fusion space: which blocks (layer range x config) are candidate edges of the DAG.

A block [first, last] is structurally valid when
- every tensor it produces, except the output of `last`, is read only inside it (DESIGN §2),
- a multi-layer block is a run of spatial (tileable) layers, optionally ending with an
  iterative tail: global pooling and/or dense layers whose input is consumed element by element
  and never materialised (a dense reading a spatial tensor directly flattens it),
- the scheme "layer" on two layers is the in-place fusion of a max-pool whose stride covers its
  window into its producer (each output pixel of the pool is reduced as the producer emits it).
Configurations are output tiles of the block's last spatial layer x a scheme (recompute,
hcache, stream2d). Cost models may still reject a valid block (`BlockInfeasible`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .. import ops
from ..ir import Model
from .block import LAYER, SCHEMES, Block, BlockConfig

__all__ = ["LAYER", "GraphInfo", "graph_info", "why_not", "live_skips", "tile_options",
           "candidate_blocks", "TILED_SCHEMES", "range_reason", "is_pool_in_place",
           "last_spatial"]

TILED_SCHEMES = tuple(s for s in SCHEMES if s != "layer")


@dataclass(frozen=True)
class GraphInfo:
    """Producer / consumer facts of a model, computed once (Model's own lookups are O(N))."""
    n: int
    producer: tuple[int, ...]     # per tensor: producing layer, -1 for the network input
    last_use: tuple[int, ...]     # per tensor: last reading layer, n for the network output
    inputs: tuple[tuple[int, ...], ...]  # per layer: input tensor ids

    def block_inputs(self, first: int, last: int) -> tuple[int, ...]:
        """Tensors read inside [first, last] that were produced before it, in first-use order."""
        seen: dict[int, None] = {}
        for i in range(first, last + 1):
            for t in self.inputs[i]:
                if self.producer[t] < first:
                    seen.setdefault(t)
        return tuple(seen)


@lru_cache(maxsize=64)
def graph_info(model: Model) -> GraphInfo:
    n = len(model.layers)
    producer = [-1] * len(model.tensors)
    last_use = [-1] * len(model.tensors)
    for layer in model.layers:
        producer[layer.output] = layer.index
        for t in layer.inputs:
            last_use[t] = max(last_use[t], layer.index)
    last_use[model.output] = n
    return GraphInfo(n, tuple(producer), tuple(last_use),
                     tuple(layer.inputs for layer in model.layers))


def live_skips(model: Model, block: Block) -> tuple[int, ...]:
    """Tensors alive at the cut before `first` and after `last` that the block neither reads
    nor produces: they stay in RAM while the block runs."""
    info = graph_info(model)
    ins = set(info.block_inputs(block.first, block.last))
    return tuple(t for t in range(len(model.tensors))
                 if info.producer[t] < block.first and info.last_use[t] > block.last
                 and t not in ins)


def is_pool_in_place(model: Model, first: int, last: int) -> bool:
    """A spatial layer and a pool that folds into it in place (a max pool without padding
    whose stride covers its window): a candidate for scheme "layer" on the pair."""
    prod, pool = model.layers[first], model.layers[last]
    return (last == first + 1 and ops.get(pool.op).folds_in_place
            and pool.inputs == (prod.output,)
            and prod.is_spatial and pool.pad == (0, 0, 0, 0)
            and all(s >= k for s, k in zip(pool.stride, pool.kernel)))


@lru_cache(maxsize=65536)
def range_reason(model: Model, first: int, last: int) -> str | None:
    """Why layers first..last cannot form one block, independent of its config."""
    info = graph_info(model)
    if not 0 <= first <= last < info.n:
        return f"layer range [{first}, {last}] outside the model's {info.n} layers"
    for i in range(first, last):
        t = model.layers[i].output
        if info.last_use[t] > last:
            return (f"tensor {model.tensor(t).name!r} of layer {i} is read after the block "
                    f"(by layer {info.last_use[t] if info.last_use[t] < info.n else 'output'})")
    if first == last:
        return None
    for i in range(first, last + 1):  # a broadcast operand must be whole before the block
        out_hw = model.out_shape(model.layers[i])[:2]
        for t in model.layers[i].inputs[1:]:
            if (first <= info.producer[t] <= last
                    and model.tensor(t).shape[:2] == (1, 1) != out_hw):
                return (f"layer {i} broadcasts tensor {model.tensor(t).name!r}, produced in the "
                        f"block (it must be computed before the block)")
    tail = None  # op of the first tail layer once the tail has started
    for i in range(first, last + 1):
        layer = model.layers[i]
        if layer.is_spatial:
            if tail is not None:
                return f"layer {i} ({layer.op.value}) follows the iterative tail of the block"
            continue
        opdef = ops.get(layer.op)
        if not opdef.tail:
            return f"layer {i} ({layer.op.value}) cannot be fused"
        if i == first:
            return f"a fused block must start with a spatial layer (layer {i} is {layer.op.value})"
        if layer.inputs != (model.layers[i - 1].output,):
            return f"tail layer {i} does not read the previous layer's output"
        if tail is not None and not opdef.follows_tail:  # e.g. global pooling after a dense
            return (f"{layer.op.value} at layer {i} cannot follow the tail layer "
                    f"{tail.value} (it reads a spatial tensor)")
        tail = tail or layer.op
    return None


def last_spatial(model: Model, block: Block) -> int:
    """Index of the block's last spatial layer (where the output tile is defined)."""
    for i in range(block.last, block.first - 1, -1):
        if model.layers[i].is_spatial:
            return i
    return block.first


def why_not(model: Model, block: Block) -> str | None:
    """None when `block` is a valid candidate, otherwise the reason it is not."""
    reason = range_reason(model, block.first, block.last)
    if reason:
        return reason
    scheme, (th, tw) = block.config.scheme, block.config.tile
    if scheme == "layer":
        if block.first == block.last or is_pool_in_place(model, block.first, block.last):
            return None
        return "scheme 'layer' runs one layer (or a producer with an in-place max-pool)"
    if not model.layers[block.first].is_spatial:
        return f"layer {block.first} ({model.layers[block.first].op.value}) cannot be tiled"
    ho, wo, _ = model.out_shape(model.layers[last_spatial(model, block)])
    if not (1 <= th <= ho and 1 <= tw <= wo):
        return f"output tile {th}x{tw} outside the block's {ho}x{wo} output"
    return None


def _pow2_upto(n: int) -> list[int]:
    """1, 2, 4, ... up to n // 2 (a tile covering more than half the output saves nothing)."""
    out, v = [1], 2
    while v <= n // 2:
        out.append(v)
        v *= 2
    return out


def tile_options(ho: int, wo: int) -> dict[str, list[tuple[int, int]]]:
    """Output tiles per scheme for an ho x wo block output: squares, full-width rows where a
    scheme benefits (recompute patches of whole rows; stream2d line buffers), and for hcache
    tiles two and three times as tall as wide."""
    squares = [(s, s) for s in _pow2_upto(min(ho, wo))]
    rows = [(h, wo) for h in _pow2_upto(ho) if wo > 1 and (h, wo) not in squares]
    # hcache recomputes the rows a band shares with the next and caches columns: tiles two and
    # three times as tall as wide cut that recompute for less RAM than the next square
    tall = [(k * s, s) for s, _ in squares for k in (2, 3) if k * s <= ho and s < wo]
    return {"recompute": squares + rows,
            "hcache": ([t for t in squares if t[1] < wo] or squares) + tall,
            "stream2d": squares + rows}


def candidate_blocks(model: Model, schemes: tuple[str, ...] = TILED_SCHEMES,
                     max_layers: int | None = None) -> list[Block]:
    """All candidate blocks: every layer alone ("layer"), in-place producer+max-pool pairs,
    and every valid multi-layer range x its tile options x `schemes`."""
    n = len(model.layers)
    blocks: list[Block] = []
    for i in range(n):
        blocks.append(Block(i, i, LAYER))
        if i + 1 < n and is_pool_in_place(model, i, i + 1) \
                and range_reason(model, i, i + 1) is None:
            blocks.append(Block(i, i + 1, LAYER))
        if not model.layers[i].is_spatial:
            continue
        for j in range(i + 1, n if max_layers is None else min(n, i + max_layers)):
            if range_reason(model, i, j):
                if not model.layers[j].is_spatial and not ops.get(model.layers[j].op).tail:
                    break
                continue
            ho, wo, _ = model.out_shape(model.layers[last_spatial(model, Block(i, j))])
            opts = tile_options(ho, wo)
            for scheme in schemes:
                blocks.extend(Block(i, j, BlockConfig(t, scheme)) for t in opts[scheme])
    return blocks
