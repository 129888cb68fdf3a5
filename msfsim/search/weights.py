"""Edge weights of the fusion DAG: one (ram, cost) pair per block, from any source.

The search never looks at where a weight comes from: an analytic cost model (a callable
`(model, block) -> BlockCost`, e.g. `msfcnn.block_cost` or `exact.block_cost`) or measured
weights injected as a mapping `block -> (ram, instructions)` go through the same code path.
"""
from __future__ import annotations

from typing import Callable, Mapping, Union

from ..fusion.block import Block, BlockCost, BlockInfeasible
from ..ir import Model

CostModel = Callable[[Model, Block], BlockCost]
WeightSource = Union[CostModel, Mapping[Block, tuple[int, int]]]

RAM_METRICS = ("act", "act_io")


class EdgeWeights:
    """Cached (ram, cost) per block; None when the source cannot run the block.

    With a cost model, ram is `BlockCost.<ram_metric>` and cost is `BlockCost.macs`; with a
    mapping, both come from it as given (e.g. measured bytes and retired instructions).
    """

    def __init__(self, model: Model, source: WeightSource, ram_metric: str = "act"):
        if ram_metric not in RAM_METRICS:
            raise ValueError(f"ram metric {ram_metric!r}; expected one of {RAM_METRICS}")
        self.model = model
        self.source = source
        self.ram_metric = ram_metric
        self._weights: dict[Block, tuple[int, int] | None] = {}
        self._costs: dict[Block, BlockCost] = {}
        self.rejected: dict[Block, str] = {}  # why a block has no weight (for debugging)

    def block_cost(self, block: Block) -> BlockCost | None:
        """The analytic `BlockCost` of a block (None for mapping sources or infeasible blocks)."""
        if isinstance(self.source, Mapping):
            return None
        if block not in self._costs and block not in self.rejected:
            try:
                self._costs[block] = self.source(self.model, block)
            except BlockInfeasible as exc:
                self.rejected[block] = str(exc)
        return self._costs.get(block)

    def __call__(self, block: Block) -> tuple[int, int] | None:
        if block in self._weights:
            return self._weights[block]
        if isinstance(self.source, Mapping):
            w = self.source.get(block)
            if w is None:
                self.rejected[block] = "no weight given for this block"
            else:
                w = (int(w[0]), int(w[1]))
        else:
            bc = self.block_cost(block)
            w = None if bc is None else (int(getattr(bc, self.ram_metric)), int(bc.macs))
        self._weights[block] = w
        return w
