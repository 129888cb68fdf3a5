"""The buffer plan of a block and of a whole plan: THE source of RAM figures.

`exact.block_cost` sums these buffers and `msfsim.codegen` emits their offsets, so the analytic
RAM and the arena the generated code claims are the same numbers by construction.

Buffers (each 4-byte aligned, see docs/fusion.md):
  input   a tensor produced before the block and read by it, held whole (size 0 for the network
          input of a model deployed with its input in place: it is read where it lies)
  skip    a tensor alive across the block that it neither reads nor produces, held whole
  output  the output tensor of the block's last layer, held whole
  tensor  a (1, 1, C) tensor produced and consumed inside the tail, held whole
  region  an intermediate tensor's rectangle for one tile (recompute; L*'s output tile when
          a tail consumes it)
  cache   an intermediate tensor's column window (hcache): the band's rows x the columns its
          consumers still read, kept columns shifted to the front when it is full
  ring    an intermediate tensor as a ring of full-width rows (stream2d)
  scratch the largest kernel scratch (`*_get_buffer_size`) of the block's spatial layers
  acc     int32 accumulators of the tail (the largest tail layer's)
  slot    memory that hcache's one-column caches of a chain of single-input layers take
          turns in (`slot` of such a cache: the slot it lies in; see `share_transient_caches`)
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import NamedTuple

from msfsim import ops
from msfsim.fusion.block import Block, BlockInfeasible
from msfsim.fusion.geometry import (block_structure, clip_tile, hcache_columns,
                                    pool_in_place, star_axis_regions)
from msfsim.ir import Layer, Model
# The ops' scratch rules (mirrors of the kernels' *_get_buffer_size), also named here.
from msfsim.ops.base import ACC_BYTES  # noqa: F401
from msfsim.ops.conv import IM2COL_BYTES, conv_maxpool_scratch, conv_scratch  # noqa: F401

ALIGN = 4


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


# ------------------------------------------------------------- kernel scratch (mirrors C)

def layer_scratch(model: Model, layer: Layer) -> int:
    """Scratch bytes the kernel that runs `layer` asks for (0 when none; its op's `scratch`,
    e.g. msfsim.ops.conv.conv_scratch)."""
    return ops.get(layer.op).scratch(model, layer)


def tail_acc(model: Model, layer: Layer) -> int:
    """Accumulator bytes of a tail layer (msf_global_avg_pool_s8: per channel,
    msf_fully_connected_s8: per output)."""
    return ops.get(layer.op).tail_acc(model, layer)


# ------------------------------------------------------------------------- block plan

class Buffer(NamedTuple):
    name: str
    kind: str          # see the module docstring
    tensor: int        # tensor id, -1 for scratch / acc
    size: int          # bytes, aligned
    offset: int = 0    # in the arena
    rows: int = 0      # region / cache / ring: rows held (whole tensors: H)
    cols: int = 0      # region / cache / ring: columns held (whole tensors: W)
    col0: int = 0      # ring: first column held
    slot: int = -1     # cache: index of the "slot" buffer it lies in (its bytes are the slot's)


def footprint(buffers) -> int:
    """Bytes a list of buffers takes: a cache inside a slot takes none of its own."""
    return sum(b.size for b in buffers if b.slot < 0)


def place(buffers, base: int) -> list[Buffer]:
    """Buffers laid out contiguously from `base`; a cache inside a slot at its slot's offset."""
    out, off = [], base
    for b in buffers:
        if b.slot < 0:
            out.append(b._replace(offset=off))
            off += b.size
        else:
            out.append(b)
    slots = [b for b in out if b.kind == "slot"]
    return [b._replace(offset=slots[b.slot].offset) if b.slot >= 0 else b for b in out]


@dataclass(frozen=True)
class BlockPlan:
    block: Block
    tile: tuple[int, int]             # clipped output tile of L* ((0, 0) without spatial part)
    buffers: tuple[Buffer, ...]

    @property
    def arena_bytes(self) -> int:
        return max((b.offset + b.size for b in self.buffers), default=0)

    @property
    def total(self) -> int:
        return footprint(self.buffers)

    def by_tensor(self) -> dict[int, Buffer]:
        return {b.tensor: b for b in self.buffers if b.tensor >= 0}

    def get(self, kind: str) -> Buffer | None:
        return next((b for b in self.buffers if b.kind == kind), None)


_CACHE: "weakref.WeakKeyDictionary[Model, dict]" = weakref.WeakKeyDictionary()


def _model_cache(model: Model) -> dict:
    c = _CACHE.get(model)
    if c is None:
        c = _CACHE[model] = {}
    return c


def block_plan(model: Model, block: Block) -> BlockPlan:
    """Buffers of one block laid out contiguously from offset 0, in the order of
    `block_buffers`: inputs, skips, the block's own buffers, output."""
    tile, bufs = block_buffers(model, block)
    return BlockPlan(block, tile, tuple(place(bufs, 0)))


def _full(model: Model, kind: str, tid: int) -> Buffer:
    c = _model_cache(model)
    key = ("full", kind, tid)
    buf = c.get(key)
    if buf is None:
        t = model.tensor(tid)
        buf = c[key] = Buffer(f"{kind}:{t.name}", kind, tid, align(model.arena_size(tid)), 0,
                              t.shape[0], t.shape[1])
    return buf


def _scratch_table(model: Model) -> list[int]:
    c = _model_cache(model)
    if "scratch" not in c:
        c["scratch"] = [layer_scratch(model, layer) for layer in model.layers]
    return c["scratch"]


def block_buffers(model: Model, block: Block) -> tuple[tuple[int, int], list[Buffer]]:
    """(clipped tile, buffers at offset 0) of a block; raises BlockInfeasible."""
    st = block_structure(model, block.first, block.last)
    scheme = block.config.scheme
    if scheme == "layer" and block.first != block.last:
        if not pool_in_place(model, block.first, block.last):
            prod, pool = model.layers[block.first], model.layers[block.last]
            if ops.get(pool.op).folds_in_place and ops.get(prod.op).pool_fusion() is None:
                # only the conv has a kernel that folds its pixels into the pool as it goes
                raise BlockInfeasible(f"max pool {pool.index} in place after a {prod.op.value}: "
                                      f"no fused kernel (msf_convolve_maxpool_s8 is conv only)")
            raise BlockInfeasible("scheme 'layer' runs a single layer, or a conv with a max pool "
                                  "whose stride covers its window; use a tiled scheme to fuse")
        return _pool_in_place_buffers(model, st)
    if scheme != "layer" and not st.spatial:
        raise BlockInfeasible(f"scheme {scheme!r} needs a spatial layer to tile")
    bufs: list[Buffer] = [_full(model, "input", t) for t in st.inputs]
    bufs += [_full(model, "skip", t) for t in st.skips]
    tile = (0, 0)
    if st.spatial:
        star = st.spatial[-1]
        star_h, star_w, _ = model.tensor(st.star_out).shape
        tile = (star_h, star_w) if scheme == "layer" else clip_tile(model, st, block.config.tile)
        stats = intermediate_buffers(model, star, scheme, tile)
        inner = [stats[t] for t in st.internal]
        bufs += share_transient_caches(model, st, inner) if scheme == "hcache" else inner
        if st.tail:
            bufs.append(stats[st.star_out])
        scratch = max(_scratch_table(model)[st.first:star + 1])
        if scratch:
            bufs.append(Buffer("scratch", "scratch", -1, align(scratch)))
    if st.tail:
        bufs.append(Buffer("acc", "acc", -1,
                           align(max(tail_acc(model, model.layers[i]) for i in st.tail))))
        bufs += [_full(model, "tensor", model.layers[i].output) for i in st.tail[:-1]]
    bufs.append(_full(model, "output", st.output))
    return tile, bufs


def share_transient_caches(model: Model, st, caches: list[Buffer]) -> list[Buffer]:
    """hcache: a one-column cache whose only reader has no other input and reads each column
    once (a 1x1 window: pointwise convs, elementwise ops) holds a column only from its
    producer's run to that reader's, which follows at once (msf_pull_inputs: the producer
    pulls its own inputs before it runs, and the reader has nothing else to pull). Such
    transient caches share two slots: a transient fed by a transient takes the other slot,
    so a layer never writes the slot it reads; any other cache stays apart."""
    readers: dict[int, list[int]] = {}
    for li in st.spatial:
        for t in dict.fromkeys(model.layers[li].inputs):
            readers.setdefault(t, []).append(li)

    def transient(b: Buffer) -> bool:
        rs = readers.get(b.tensor, [])
        if b.kind != "cache" or b.cols != 1 or len(rs) != 1:
            return False
        reader = model.layers[rs[0]]
        k, s, _ = ops.get(reader.op).window(reader, 1)
        return len(set(reader.inputs)) == 1 and k == 1 and s >= 1

    producer = {model.layers[li].output: li for li in st.spatial}
    slot_of: dict[int, int] = {}
    for b in caches:                    # producers run in layer order
        if transient(b):
            feeds = [slot_of[u] for u in model.layers[producer[b.tensor]].inputs if u in slot_of]
            slot_of[b.tensor] = 1 if 0 in feeds else 0
    if len(slot_of) < 2:
        return caches
    sizes = [max((b.size for b in caches if slot_of.get(b.tensor) == k), default=0)
             for k in (0, 1)]
    slots = [Buffer(f"slot:{k}", "slot", -1, size) for k, size in enumerate(sizes) if size]
    index = {k: i for i, k in enumerate(k for k in (0, 1) if sizes[k])}
    shared = [b._replace(slot=index[slot_of[b.tensor]]) if b.tensor in slot_of else b
              for b in caches]
    return slots + shared


def _pool_in_place_buffers(model: Model, st) -> tuple[tuple[int, int], list[Buffer]]:
    prod = model.layers[st.first]
    scratch = ops.get(prod.op).pool_fusion_scratch(model, prod)
    bufs = [_full(model, "input", t) for t in st.inputs]
    bufs += [_full(model, "skip", t) for t in st.skips]
    bufs += [Buffer("scratch", "scratch", -1, scratch), _full(model, "output", st.output)]
    return model.tensor(st.output).shape[:2], bufs


def intermediate_buffers(model: Model, star: int, scheme: str, tile: tuple[int, int]
                         ) -> dict[int, Buffer]:
    """The buffer of every tensor layer `star` depends on, when it is an intermediate of a
    block whose spatial part ends at `star` (cached per model, star, scheme, tile). Layer
    `star`'s own output gets its tile buffer (used when a tail consumes it)."""
    c = _model_cache(model)
    key = ("inter", star, "region" if scheme == "recompute" else scheme, tile)
    res = c.get(key)
    if res is None:
        res = c[key] = _intermediate_buffers(model, star, scheme, tile)
    return res


def _intermediate_buffers(model: Model, star: int, scheme: str, tile: tuple[int, int]
                          ) -> dict[int, Buffer]:
    rows, cols = star_axis_regions(model, star, tile)
    hcols = hcache_columns(model, star, tile[1]) if scheme == "hcache" else None
    star_out = model.layers[star].output
    out = {}
    for tid in rows.lo:
        t = model.tensor(tid)
        c = t.shape[2]
        max_h = int((rows.hi[tid] - rows.lo[tid]).max())
        if hcols is not None and tid != star_out:
            w = hcols.width(tid)
            out[tid] = Buffer(f"cache:{t.name}", "cache", tid, align(max_h * w * c), 0, max_h, w)
        elif scheme == "stream2d" and tid != star_out:
            col0, col1 = int(cols.lo[tid].min()), int(cols.hi[tid].max())
            out[tid] = Buffer(f"ring:{t.name}", "ring", tid, align(max_h * (col1 - col0) * c),
                              0, max_h, col1 - col0, col0)
        else:
            max_w = int((cols.hi[tid] - cols.lo[tid]).max())
            out[tid] = Buffer(f"region:{t.name}", "region", tid, align(max_h * max_w * c),
                              0, max_h, max_w)
    return out


# ------------------------------------------------------------------------- whole plan

@dataclass(frozen=True)
class PlanLayout:
    blocks: tuple[BlockPlan, ...]     # buffers at arena offsets shared by the whole plan
    arena_bytes: int
    input_offset: int                 # where the network input is copied
    output_offset: int


def plan_layout(model: Model, blocks: list[Block] | tuple[Block, ...]) -> PlanLayout:
    """Arena offsets for a whole plan. Whole tensors live from the block that produces them
    (or the start) to the last block that reads them (or the end for the network output); each
    block's own buffers live during that block only. Placement: the smaller arena of TFLM's
    greedy planner and, for chains, ping-pong (which reaches the plan's peak act_io)."""
    plans = [block_plan(model, b) for b in blocks]
    _check_chain(model, blocks)
    n = len(plans)
    span: dict[int, list[int]] = {}      # tensor -> [first block, last block]
    for k, p in enumerate(plans):
        for b in p.buffers:
            if b.kind in ("input", "skip", "output"):
                s = span.setdefault(b.tensor, [k, k])
                s[0], s[1] = min(s[0], k), max(s[1], k)
    span.setdefault(model.input, [0, 0])[0] = 0
    span.setdefault(model.output, [n - 1, n - 1])[1] = n - 1
    local = {k: footprint(b for b in p.buffers if b.kind not in ("input", "skip", "output"))
             for k, p in enumerate(plans)}
    where, arena = _greedy(model, span, local)
    pp = _ping_pong(model, plans, local)
    if pp is not None and pp[1] < arena:
        where, arena = pp
    out = []
    for k, p in enumerate(plans):
        whole = ("input", "skip", "output")
        own = iter(place([b for b in p.buffers if b.kind not in whole], where.get(f"b{k}", 0)))
        bufs = [b._replace(offset=where[f"t{b.tensor}"]) if b.kind in whole else next(own)
                for b in p.buffers]
        out.append(BlockPlan(p.block, p.tile, tuple(bufs)))
    return PlanLayout(tuple(out), arena, where[f"t{model.input}"], where[f"t{model.output}"])


def _greedy(model: Model, span: dict[int, list[int]], local: dict[int, int]
            ) -> tuple[dict[str, int], int]:
    """TFLM's greedy planner: largest first, at the lowest offset that overlaps nothing alive
    at the same time. Keys: "t<tensor>" for whole tensors, "b<block>" for a block's own."""
    items = [(model.arena_size(t), f"t{t}", lo, hi) for t, (lo, hi) in span.items()]
    items += [(sz, f"b{k}", k, k) for k, sz in local.items() if sz]
    items.sort(key=lambda it: (-align(it[0]), it[1]))
    placed: list[tuple[int, int, int, int]] = []  # offset, size, lo, hi
    where: dict[str, int] = {}
    for size, key, lo, hi in items:
        size = align(size)
        off = 0
        for o, s, l2, h2 in sorted(placed):
            if l2 <= hi and lo <= h2 and off < o + s and o < off + size:
                off = o + s
        placed.append((off, size, lo, hi))
        where[key] = off
    return where, max((o + s for o, s, _, _ in placed), default=0)


def _ping_pong(model: Model, plans: list[BlockPlan], local: dict[int, int]
               ) -> tuple[dict[str, int], int] | None:
    """For a chain (every block reads only the previous block's output, no skip tensors):
    block inputs and outputs alternate between the two ends of an arena of the largest
    block's size, each block's own buffers next to its input, so the arena equals the peak
    act_io. None when the plan is not such a chain."""
    prev = model.input
    for p in plans:
        whole = [b for b in p.buffers if b.kind in ("input", "skip")]
        if len(whole) != 1 or whole[0].kind != "input" or whole[0].tensor != prev:
            return None
        prev = next(b.tensor for b in p.buffers if b.kind == "output")
    arena = max(p.total for p in plans)
    where: dict[str, int] = {f"t{model.input}": 0}
    for k, p in enumerate(plans):
        src = next(b for b in p.buffers if b.kind == "input")
        out = next(b for b in p.buffers if b.kind == "output")
        if where[f"t{src.tensor}"] == 0:      # input at the bottom: own buffers above it
            where[f"b{k}"] = src.size
            where[f"t{out.tensor}"] = arena - out.size
        else:                                 # input at the top: own buffers below it
            where[f"b{k}"] = arena - src.size - local[k]
            where[f"t{out.tensor}"] = 0
    return where, arena


def _check_chain(model: Model, blocks) -> None:
    """A plan covers layers 0..N-1 once, in order."""
    nxt = 0
    for b in blocks:
        if b.first != nxt:
            raise BlockInfeasible(f"plan block {b.key} starts at {b.first}, expected {nxt}")
        nxt = b.last + 1
    if nxt != len(model.layers):
        raise BlockInfeasible(f"plan ends at layer {nxt - 1}, model has {len(model.layers)}")
