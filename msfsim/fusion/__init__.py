"""Fusion blocks, the candidate space and the analytic cost models."""
from .block import LAYER, SCHEMES, Block, BlockConfig, BlockCost, BlockInfeasible

__all__ = ["LAYER", "SCHEMES", "Block", "BlockConfig", "BlockCost", "BlockInfeasible"]
