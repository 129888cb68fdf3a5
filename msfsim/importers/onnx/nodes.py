"""Reading ONNX nodes: how messages name them and their values, attributes, window geometry,
and the importer's two kinds of values besides numpy constants (`Act`, `QConst`)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx

from msfsim import UnsupportedModel, ops
from msfsim.importers.onnx.load import MAX_TENSOR_ELEMENTS, node_label, short


@dataclass
class Act:
    """A float activation tensor of the graph being imported, NHWC without batch."""
    name: str
    shape: tuple[int, int, int]
    flat: bool = False  # flattened (Flatten/Reshape) in ONNX's NCHW order


@dataclass
class Padded:
    """The output of a Pad (zero constant padding of H and W): not a tensor of the IR but the
    activation `src` with `pad` (top, left, bottom, right) that the Conv or AveragePool reading
    it folds into its own padding (`Importer.padded_input`). `where` names the Pad node."""
    src: Act
    pad: tuple[int, int, int, int]
    where: str

    @property
    def shape(self) -> tuple[int, int, int]:
        h, w, c = self.src.shape
        t, l, b, r = self.pad
        return h + t + b, w + l + r, c


@dataclass
class Grouped:
    """An activation's channels viewed as (groups, channels per group) by a 5-D Reshape
    [1, g, C / g, H, W]: the first step of a channel shuffle. A Transpose swapping the two
    transposes `index` (input channel of each position); a Reshape back to [1, C, H, W]
    selects the channels in `index`'s order (msfsim.ops.channels). `where` names the Reshape.
    `src` is an activation or a channel selection (`Selected`)."""
    src: "Act | Selected"
    index: np.ndarray
    where: str


@dataclass
class Selected:
    """Channels `index` of activation `src`, in that order (a channel Slice, Split or shuffle),
    not yet a layer: a conv reading it alone folds the selection into its weights; a
    selection of it composes; anything else reading it makes it the one-hot 1x1 conv of
    msfsim.ops.channels (`Importer.act`). `node` is the node (one output) that selected."""
    src: Act
    index: np.ndarray
    node: onnx.NodeProto

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.src.shape[0], self.src.shape[1], int(self.index.size)

    @property
    def flat(self) -> bool:
        return self.src.flat


@dataclass
class QConst:
    """A DequantizeLinear of a constant: keeps the integer values and scale exactly."""
    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int

    def value(self) -> np.ndarray:
        shape = [1] * self.q.ndim
        if self.scale.size > 1:
            shape[self.axis] = -1
        s = self.scale.reshape(shape) if self.scale.size > 1 else self.scale
        z = self.zero_point.reshape(shape) if self.zero_point.size > 1 else self.zero_point
        return (self.q.astype(np.float64) - z) * s


def fail(msg: str) -> UnsupportedModel:
    return UnsupportedModel(msg)


def keeps_input_qparams(layer) -> bool:
    """Whether a float layer's output is quantised as its input: its op's rule (max pool), or
    the layer's own (`attrs["same_qparams"]`: an average pool dividing by the taps it reads)."""
    return bool(ops.get(layer.op).same_qparams or layer.attrs.get("same_qparams"))


def attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def check_act_size(what: str, shape: tuple[int, ...]) -> None:
    """An activation tensor (H, W, C) must fit the bound; checked as shapes are inferred."""
    n = math.prod(shape)
    if n > MAX_TENSOR_ELEMENTS:
        h, w, c = shape
        raise fail(f"{what} has shape 1x{c}x{h}x{w} = {n:,} B as int8, above msfsim's bound of "
                   f"{MAX_TENSOR_ELEMENTS:,} B (16 MiB): no supported board (at most 4 MB flash, "
                   f"520 KB SRAM) can hold it")


def pads_2d(node: onnx.NodeProto, a: dict, hw: tuple[int, int], k: tuple[int, int],
            s: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from `pads` or `auto_pad`."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for n, kk, ss in zip(hw, k, s):
            o = -(-n // ss)
            total = max((o - 1) * ss + kk - n, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return pads[0][0], pads[1][0], pads[0][1], pads[1][1]
    if auto == "VALID":
        return 0, 0, 0, 0
    p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
    if len(p) != 4:
        raise fail(f"{node_label(node)}: expected 2-D pads, got {short(p)}")
    if min(p) < 0:
        raise fail(f"{node_label(node)}: negative pads {p} are not supported")
    return p[0], p[1], p[2], p[3]


def kernel_stride(node: onnx.NodeProto, k, s) -> tuple[tuple[int, int], tuple[int, int]]:
    """Kernel and strides as 2-tuples of positive ints (checked before any arithmetic)."""
    k, s = tuple(int(v) for v in k), tuple(int(v) for v in s)
    if len(k) != 2 or min(k) < 1:
        raise fail(f"{node_label(node)}: kernel {short(list(k))} is not a 2-D kernel of "
                   f"positive sizes")
    if len(s) != 2 or min(s) < 1:
        raise fail(f"{node_label(node)}: strides {short(list(s))} are not 2 positive integers")
    return k, s  # type: ignore[return-value]


def check_padded(node: onnx.NodeProto, shape: tuple[int, int, int], k, pad,
                 pool: bool = False) -> None:
    """The padded input a window op reads must fit the size bound (calibration allocates it),
    and a pooling window must overlap the input (ONNX: pads smaller than the kernel)."""
    h, w, c = shape
    t, l, b, r = pad
    if pool and max(t, b) >= k[0] or pool and max(l, r) >= k[1]:
        raise fail(f"{node_label(node)}: pads {[t, l, b, r]} are not smaller than the kernel "
                   f"{list(k)}")
    check_act_size(f"{node_label(node)}: its padded input", (h + t + b, w + l + r, c))
