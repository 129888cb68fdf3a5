"""msf-CNN's published analytic cost model (DESIGN §2), kept as a compatibility mode.

msf-CNN's space is chains only, fused blocks computed one output pixel at a time (1x1 output
tile) with an H-cache (a k-column cache per layer, rows recomputed). Its RAM and MAC figures are
reproduced exactly, quirks included:

- a fused block's buffers are sized from the *last* tile row of the block input (the bottom
  one), walked through the layers with msf-CNN's padding rule: a tile row gains the layer's top
  padding when its position (input row // cumulative stride, the cumulative stride including
  the current layer) is 0 and the bottom padding when it reaches the layer's last input row;
- a single layer costs |in| + |out| (plus live skip tensors in residual nets);
- MACs count a pooling window as k*k MACs per output, fused or not;
- the network input is left out of a block starting at layer 0 and the network output out of a
  block ending at the last layer (`act`); `act_io` counts them.
"""
from __future__ import annotations

from .. import ops
from ..ir import Layer, Model
from .block import LAYER, Block, BlockConfig, BlockCost, BlockInfeasible
from .space import graph_info, live_skips, why_not

HCACHE_1x1 = BlockConfig((1, 1), "hcache")


def _tiled(layer: Layer) -> bool:
    """msf-CNN fuses window ops (conv, depthwise conv, pooling) only."""
    return ops.get(layer.op).windowed


def _macs_per_output(model: Model, layer: Layer) -> int:
    """MACs per output element in msf-CNN's accounting (pooling counts its window)."""
    return ops.get(layer.op).window_macs(model, layer)


def block_tile(layers: list[Layer]) -> tuple[int, int]:
    """Input tile height and vertical stride of a block computing a 1x1 output."""
    t, s = 1, 1
    for layer in reversed(layers):
        t = (t - 1) * layer.stride[0] + layer.kernel[0]
        s *= layer.stride[0]
    return t, s


def _check_chain(model: Model, block: Block) -> list[Layer]:
    layers = [model.layers[i] for i in block.layers]
    for prev, layer in zip(layers, layers[1:]):
        if not _tiled(layer) or layer.inputs != (prev.output,):
            raise BlockInfeasible(f"msf-CNN fuses plain chains of conv/pool layers only "
                                  f"(layer {layer.index} is {layer.op.value})")
    if not _tiled(layers[0]):
        raise BlockInfeasible(f"msf-CNN fuses plain chains of conv/pool layers only "
                              f"(layer {layers[0].index} is {layers[0].op.value})")
    if any(l.kernel[0] != l.kernel[1] or l.stride[0] != l.stride[1] for l in layers):
        raise BlockInfeasible("msf-CNN handles square kernels and strides only")
    # Its tile and MAC formulas assume one padding value on every side; asymmetric (SAME on
    # even sizes) padding would make them count fewer MACs than the layers execute.
    if any(len(set(l.pad)) > 1 for l in layers):
        raise BlockInfeasible("msf-CNN's model assumes symmetric padding")
    return layers


def fused_buffers(model: Model, layers: list[Layer]) -> tuple[list[int], int]:
    """Per-layer H-cache bytes (k * t * cin for the last tile row) and the block's MACs."""
    t_full, s_full = block_tile(layers)
    h_in, w_in, _ = model.in_shape(layers[0])
    if t_full > h_in or t_full > w_in:
        raise BlockInfeasible(f"input tile {t_full} exceeds the block input {h_in}x{w_in}")
    row = (h_in - t_full) // s_full * s_full  # last tile position in the block input
    t, cum = t_full, 1
    buffers = []
    for layer in layers:
        k, s = layer.kernel[0], layer.stride[0]
        p_top, p_bot = layer.pad[0], layer.pad[2]
        h_l, _, cin = model.in_shape(layer)
        buffers.append(k * t * cin)
        cum *= s
        pos = row // cum
        grown = t - k + (p_top if pos == 0 else 0) + (p_bot if pos + t >= h_l else 0)
        t = grown // s + 1
    # MACs: rows of tiles x full output width x tile output rows, per layer.
    macs, tt, ss = 0, t_full, s_full
    for layer in layers:
        k, s = layer.kernel[0], layer.stride[0]
        h_l = model.in_shape(layer)[0]
        pads = layer.pad[0] + layer.pad[2]
        rows_of_tiles = (h_l + pads - tt) // ss + 1
        out_w = model.out_shape(layer)[1]
        tile_out_h = (tt - k) // s + 1
        macs += (rows_of_tiles * out_w * tile_out_h * model.out_shape(layer)[2]
                 * _macs_per_output(model, layer))
        tt = (tt - k) // s + 1
        ss //= s
    return buffers, macs


def block_cost(model: Model, block: Block) -> BlockCost:
    """msf-CNN's RAM (bytes) and MACs for a single layer or a 1x1-tile H-cache block."""
    reason = why_not(model, block)
    if reason:
        raise BlockInfeasible(reason)
    info = graph_info(model)
    first, last = model.layers[block.first], model.layers[block.last]
    ins = sum(model.tensor(t).size for t in info.block_inputs(block.first, block.last))
    out = model.tensor(last.output).size
    skips = sum(model.tensor(t).size for t in live_skips(model, block))
    if block.first == block.last:
        if block.config.scheme != "layer":
            raise BlockInfeasible("msf-CNN runs single layers unfused")
        buffers = {}
        if _tiled(first):  # pooling counts its window, as in fused blocks
            ho, wo, co = model.out_shape(first)
            macs = ho * wo * co * _macs_per_output(model, first)
        else:
            macs = model.macs(first)
    else:
        if block.config != HCACHE_1x1:
            raise BlockInfeasible("msf-CNN fuses with 1x1 output tiles and an H-cache only")
        layers = _check_chain(model, block)
        per_layer, macs = fused_buffers(model, layers)
        buffers = {f"hcache_L{l.index}": b for l, b in zip(layers, per_layer)}
    io = ins + out + skips + sum(buffers.values())
    act = io
    if block.first == 0:
        act -= model.tensor(model.input).size
    if block.last == len(model.layers) - 1:
        act -= model.tensor(model.output).size
    return BlockCost(act=act, act_io=io, macs=macs,
                     buffers={"input": ins, "output": out, **({"skips": skips} if skips else {}),
                              **buffers})


def candidate_blocks(model: Model) -> list[Block]:
    """msf-CNN's search space: every layer alone, every fusible chain range as a 1x1 H-cache block."""
    n = len(model.layers)
    blocks = []
    for i in range(n):
        if why_not(model, Block(i, i, LAYER)) is None:
            blocks.append(Block(i, i, LAYER))
        for j in range(i + 1, n):
            b = Block(i, j, HCACHE_1x1)
            if why_not(model, b) is not None:
                if not _tiled(model.layers[j]):
                    break
                continue
            try:
                _check_chain(model, b)
            except BlockInfeasible:
                break
            blocks.append(b)
    return blocks
