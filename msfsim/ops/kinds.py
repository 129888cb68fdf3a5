"""The kinds of IR layer and the shape arithmetic of their windows.

The IR (`msfsim.ir`) re-exports these: `msfsim.ir.Op` is this enum.
"""
from __future__ import annotations

from enum import Enum

Shape = tuple[int, int, int]  # (H, W, C)


class Op(str, Enum):
    """The kinds of layer (`msfsim.ir.Op`; plan files hold their values). Each has its module
    in this package; tests/test_ops.py checks that none is missing."""
    CONV = "conv"          # standard conv (pointwise when kernel is 1x1)
    DWCONV = "dwconv"      # depthwise conv, channel multiplier 1
    ADD = "add"            # elementwise add, second operand same shape or (1, 1, C)
    SUB = "sub"            # elementwise a - b (TFLite's int8 sub), b as add's second operand
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    GAP = "gap"            # global average pooling -> (1, 1, C)
    DENSE = "dense"        # fully connected over the NHWC-flattened input -> (1, 1, Cout)
    LUT = "lut"            # int8 -> int8 unary activation by a 256-entry table
    MUL = "mul"            # elementwise product, second operand same shape or (1, 1, C)
    CONCAT = "concat"      # two tensors of the same H, W joined along channels
    SOFTMAX = "softmax"    # int8 softmax (TFLM's) over the C values of a (1, 1, C) tensor
    SOFTMAX_MAP = "softmax_map"  # the same over the channels of every pixel of a map


def out_size(n: int, k: int, s: int, p0: int, p1: int) -> int:
    return (n + p0 + p1 - k) // s + 1
