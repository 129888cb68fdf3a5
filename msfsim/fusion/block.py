"""Candidate fused blocks: the edges of the fusion DAG.

A `Block` runs layers first..last (inclusive, topological order) as one unit with a `BlockConfig`.
Single-layer blocks with scheme "layer" are plain layer-by-layer execution. Every cost model
returns a `BlockCost` for a block, or raises `BlockInfeasible` with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SCHEMES = ("layer", "recompute", "hcache", "stream2d")


@dataclass(frozen=True, order=True)
class BlockConfig:
    tile: tuple[int, int] = (1, 1)  # output tile (rows, cols) of the block's last spatial layer
    scheme: str = "layer"            # one of SCHEMES

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {self.scheme!r}; expected one of {SCHEMES}")


LAYER = BlockConfig((1, 1), "layer")


@dataclass(frozen=True, order=True)
class Block:
    first: int
    last: int
    config: BlockConfig = LAYER

    @property
    def layers(self) -> range:
        return range(self.first, self.last + 1)

    @property
    def key(self) -> str:
        t = self.config.tile
        return f"L{self.first}-{self.last}:{self.config.scheme}:{t[0]}x{t[1]}"


@dataclass(frozen=True)
class BlockCost:
    """RAM in bytes (DESIGN §3) and compute of one block.

    act: block buffers + block input + block output + live skip tensors, with the network input
    and output excluded; act_io: the same with them counted. buffers names each allocation the
    block makes (for reports), scratch included.
    """
    act: int
    act_io: int
    macs: int
    buffers: dict[str, int] = field(default_factory=dict)


class BlockInfeasible(Exception):
    """A block that cannot be formed; str(exc) says why (kept for debugging)."""
