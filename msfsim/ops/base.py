"""What one IR op owns, and the registry the generic stages dispatch through.

An op module defines an `OpDef` subclass and registers one instance with `register`. The
generic stages never test an op's kind: they ask its `OpDef`
- the IR (`msfsim.ir`): `spatial`, `tail`, `windowed`, `macs`;
- the importers: `onnx` (ONNX op type -> lowering), `float_eval` (calibration), `quantize`
  (float layer -> IR layer through `IRBuilder`), `same_qparams`, `weight_axis`;
- the reference (`msfsim.refmodel`): `reference`;
- fusion: `window` (receptive-field rule), `elementwise`, `follows_tail`, `folds_in_place`,
  `pool_fusion`, `macs_per_pixel`, `window_macs` (msf-CNN), `scratch`, `tail_acc`;
- code generation: `c_op`, `c_params` (declarations as data, written by msfsim.codegen), and
  `c_kernels`, the executor op codes, from which `msfsim.ops.ctable` generates
  kernels_c/msf_op_table.h (the executor's dispatch, and the include of each `c_header`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Protocol, Sequence, Union

import numpy as np

from msfsim.ops.fixedpoint import quantize_multiplier
from msfsim.ops.kinds import Op, Shape, out_size

ACC_BYTES = 4  # an int32 accumulator


# ------------------------------------------------------------------ the IR, as ops see it
# msfsim.ir builds on this package, so ops name the IR types they read instead of importing
# them: msfsim.ir's Layer, Model, QParams and IRBuilder have (at least) these members.

class QParamsLike(Protocol):
    scale: float
    zero_point: int


class TensorLike(Protocol):
    shape: Shape
    q: QParamsLike
    size: int


class LayerLike(Protocol):
    index: int
    name: str
    op: Op
    inputs: tuple[int, ...]
    output: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int, int, int]
    weight: np.ndarray | None
    bias: np.ndarray | None
    multiplier: np.ndarray | None
    shift: np.ndarray | None
    act_min: int
    act_max: int


class ModelLike(Protocol):
    wide_weights: frozenset[int]

    def tensor(self, tid: int) -> TensorLike: ...
    def in_shape(self, layer: LayerLike, k: int = 0) -> Shape: ...
    def out_shape(self, layer: LayerLike) -> Shape: ...


class BuilderLike(Protocol):
    """msfsim.ir.IRBuilder: op modules add their layers with it (`OpDef.build`)."""
    tensors: list[TensorLike]

    def new_tensor(self, name: str, shape: Shape, q: QParamsLike) -> int: ...
    def new_layer(self, **fields: Any) -> int: ...
    def clamp_range(self, activation: str, q: QParamsLike,
                    clip: tuple[float, float] | None = None) -> tuple[int, int]: ...


# ------------------------------------------------------------------ C side, as data

@dataclass(frozen=True)
class CKernel:
    """One executor op code (`MSF_OP_*` in kernels_c/msf_op_table.h) and its C dispatch.

    The C fragments are expanded by msf_executor.c; the names they may use:
    - `spatial` (a statement, in msf_run_spatial): `l` (const msf_layer_desc *), `in`, `in1`
      (input windows), `out` (output window), `oy, ox, oh, ow` (output rectangle), `scratch`;
    - `macs` (an expression of uint64_t, host builds counting MACs): `l`, `cin`, `cout`,
      `oy, ox, oh, ow`;
    - `tail_init` / `tail_finish` (statements): `l`, `acc` (int32_t *), `out` (int8_t *);
      `tail_feed`: `l`, `in` (window), `y0, x0, h, w` (input rectangle), `acc`, and
      `MSF_EXEC_ADD_MACS(n)`.
    """
    code: str
    value: int
    doc: str
    spatial: str = ""
    macs: str = ""
    tail_init: str = ""
    tail_feed: str = ""
    tail_finish: str = ""


@dataclass(frozen=True)
class CArray:
    """`static const ctype name[N] = {...};` (aligned to `align` bytes when given)."""
    ctype: str
    name: str
    values: Any
    align: int | None = None


@dataclass(frozen=True)
class CStruct:
    """`static const ctype name = { .field = value, ... };`"""
    ctype: str
    name: str
    fields: Mapping[str, object]


@dataclass(frozen=True)
class CTable:
    """`static const ctype name[N] = { {a, b, ...}, ... };` rows of positional values."""
    ctype: str
    name: str
    rows: Sequence[Sequence[str]]


@dataclass(frozen=True)
class CIf:
    """`#if cond /* comment */ then... #else otherwise... #endif`."""
    cond: str
    comment: str
    then: tuple["CDecl", ...]
    otherwise: tuple["CDecl", ...]


CDecl = Union[CArray, CStruct, CTable, CIf]


# ------------------------------------------------------------------ importer side

@dataclass
class FloatLayer:
    """A layer before quantisation, as importers build it: float weights in the IR layout
    (or their exact int8 values from QDQ models), with BatchNorm, bias-adds and the activation
    already folded in. Its op evaluates it in float (calibration) and quantises it."""
    op: Op
    name: str
    inputs: list[str]
    output: str
    out_shape: Shape
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    weight: np.ndarray | None = None        # float, IR layout
    weight_q: tuple[np.ndarray, np.ndarray] | None = None  # (int8, per-channel scale) from QDQ
    bias: np.ndarray | None = None
    activation: str = "none"
    clip: tuple[float, float] | None = None
    where: str = ""                          # the source node, for messages
    attrs: dict = field(default_factory=dict)  # op-specific (lut: the function and its attributes)


class OnnxContext(Protocol):
    """What an ONNX lowering may use of the importer walking the graph
    (msfsim.importers.onnx.walk.Importer)."""

    def where(self, node) -> str: ...            # the node, as error messages name it
    def attrs(self, node) -> dict: ...
    def short(self, value: object, limit: int = 60) -> str: ...
    def act(self, node, k: int = 0): ...         # input k as an activation (.name .shape .flat)
    def padded_input(self, node) -> tuple[Any, tuple[int, int, int, int]]: ...  # input 0 and the
    # zero padding (top, left, bottom, right) of a Pad folded into its reader
    def is_act(self, name: str) -> bool: ...
    def const(self, node, k: int, what: str) -> np.ndarray: ...
    def qconst(self, name: str): ...             # a DequantizeLinear'd constant or None
    def canon(self, name: str) -> str: ...
    def define(self, name: str, shape: Shape, flat: bool = False) -> None: ...
    def default_qparams(self, name: str, q: QParamsLike) -> None: ...  # instead of calibrating
    def new_layer(self, node, layer: FloatLayer) -> None: ...
    def same_as(self, node, k: int = 0) -> None: ...  # node's output is its input k
    def view(self, node, k: int = 0): ...        # input k: an activation or a channel selection
    def select(self, node, k: int, index, src=None) -> None: ...  # output k: channels of input 0
    def selection(self, node, k: int = 0): ...   # input k if a selection only node reads
    def foldable(self, node) -> FloatLayer | None: ...
    def rename_output(self, layer: FloatLayer, node, carry_q: bool = False) -> None: ...
    def kernel_stride(self, node, k, s) -> tuple[tuple[int, int], tuple[int, int]]: ...
    def pads(self, node, a: dict, hw, k, s) -> tuple[int, int, int, int]: ...
    def check_padded(self, node, shape, k, pad, pool: bool = False) -> None: ...


Lowering = Callable[[OnnxContext, Any], None]


# ------------------------------------------------------------------ the op protocol

class OpDef:
    """Defaults are those of an op without weights, window or tail role."""
    op: ClassVar[Op]
    spatial: ClassVar[bool] = False      # an output pixel reads a bounded input window: tileable
    tail: ClassVar[bool] = False         # consumes its input element by element (block tail)
    windowed: ClassVar[bool] = False     # has a kernel, strides and padding
    elementwise: ClassVar[bool] = False  # reads, of every input, the rectangle it writes
    follows_tail: ClassVar[bool] = False  # may follow another tail layer of a block
    same_qparams: ClassVar[bool] = False  # output quantised as its input
    folds_in_place: ClassVar[bool] = False  # foldable into its producer as it emits pixels
    weight_axis: ClassVar[int | None] = None  # output-channel axis of the weights
    c_kernels: ClassVar[tuple[CKernel, ...]] = ()
    # The op's own C header in kernels_c (its parameter struct and kernel prototypes), included
    # by the generated msf_op_table.h; "" for the ops declared in msf_kernels.h.
    c_header: ClassVar[str] = ""
    onnx: ClassVar[Mapping[str, Lowering]] = {}

    # -- shape and semantics
    def out_shape(self, layer: LayerLike | FloatLayer, in_shapes: Sequence[Shape]) -> Shape:
        raise NotImplementedError

    def reference(self, model: ModelLike, layer: LayerLike, xs: Sequence[np.ndarray]
                  ) -> np.ndarray:
        """The int8 output (numpy, bit-exact with the C kernels) from the int8 inputs."""
        raise NotImplementedError

    def float_eval(self, layer: FloatLayer, xs: Sequence[np.ndarray]) -> np.ndarray:
        """Float output over a batch (B, H, W, C) before bias and activation (calibration)."""
        raise NotImplementedError

    def quantize(self, b: BuilderLike, layer: FloatLayer, ins: Sequence[int],
                 out_q: QParamsLike) -> int:
        """Add `layer` to the IRBuilder `b`, quantised; returns its output tensor id."""
        raise NotImplementedError

    # -- geometry and cost
    def window(self, layer: LayerLike, axis: int) -> tuple[int, int, int]:
        """(kernel, stride, leading pad) of the input window one output position reads on
        `axis` (0 rows, 1 columns)."""
        if self.elementwise:
            return 1, 1, 0
        return layer.kernel[axis], layer.stride[axis], layer.pad[axis]

    def macs_per_pixel(self, model: ModelLike, layer: LayerLike) -> int:
        """Multiply-accumulates per output pixel, all channels."""
        return 0

    def macs(self, model: ModelLike, layer: LayerLike) -> int:
        ho, wo, _ = model.out_shape(layer)
        return ho * wo * self.macs_per_pixel(model, layer)

    def window_macs(self, model: ModelLike, layer: LayerLike) -> int:
        """msf-CNN's MACs per output element: the window's taps (pooling counts them too)."""
        return layer.kernel[0] * layer.kernel[1]

    def scratch(self, model: ModelLike, layer: LayerLike) -> int:
        """Bytes of scratch its kernel asks for (`*_get_buffer_size`), 0 when none."""
        return 0

    def tail_acc(self, model: ModelLike, layer: LayerLike) -> int:
        """Accumulator bytes of a tail layer."""
        return ACC_BYTES * model.out_shape(layer)[2]

    # -- a pool folded into this op's kernel (scheme "layer" on the pair; see fusion.space)
    def pool_fusion(self) -> CKernel | None:
        """The kernel that computes this op and folds each output pixel into a following
        `folds_in_place` pool as it goes (None: no such kernel)."""
        return None

    def pool_fusion_scratch(self, model: ModelLike, layer: LayerLike) -> int:
        raise NotImplementedError

    def pool_fusion_desc(self, model: ModelLike, layer: LayerLike, pool: LayerLike
                         ) -> dict[str, object]:
        """msf_layer_desc fields after `out` of the fused pair (region geometry, params)."""
        raise NotImplementedError

    # -- C
    def c_op(self, layer: LayerLike) -> str:
        """The executor op code (`MSF_OP_*`) that runs `layer`."""
        return self.c_kernels[0].code

    def c_params(self, model: ModelLike, layer: LayerLike) -> list[CDecl]:
        """Constant data and the kernel parameter struct `l<index>_params` of `layer`."""
        raise NotImplementedError


REGISTRY: dict[Op, OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    if opdef.op in REGISTRY:
        raise ValueError(f"op {opdef.op.value} registered twice")
    REGISTRY[opdef.op] = opdef
    return opdef


def get(op: Op) -> OpDef:
    """The definition of IR op `op` (KeyError for an op no module defines)."""
    return REGISTRY[op]


# ------------------------------------------------------------------ shared helpers

def window_shape(shape: Shape, kernel, stride, pad, c: int | None = None) -> Shape:
    """Output shape of a window op (conv, pooling) on an (H, W, C) input."""
    h, w, cin = shape
    return (out_size(h, kernel[0], stride[0], pad[0], pad[2]),
            out_size(w, kernel[1], stride[1], pad[1], pad[3]), cin if c is None else c)


def clamp(layer: LayerLike) -> dict[str, int]:
    return {"act_min": layer.act_min, "act_max": layer.act_max}


def zero_points(model: ModelLike, layer: LayerLike) -> tuple[list[int], int]:
    """Zero points of the layer's inputs and of its output."""
    return ([model.tensor(t).q.zero_point for t in layer.inputs],
            model.tensor(layer.output).q.zero_point)


def float_weight(layer: FloatLayer, axis: int) -> np.ndarray:
    """The float weights: given, or the QDQ model's int8 values times their scales."""
    if layer.weight_q is None:
        return layer.weight
    q, s = layer.weight_q
    shape = [1] * q.ndim
    shape[axis] = -1
    return q * s.reshape(shape)


def quantize_channels(in_scale: float, w_scale, bias, out_scale: float, cout: int
                      ) -> dict[str, np.ndarray]:
    """int32 bias in the accumulator's scale and the per-channel requantisation."""
    w_scale = np.broadcast_to(np.asarray(w_scale, dtype=np.float64), (cout,))
    acc_scale = in_scale * w_scale
    b = np.zeros(cout) if bias is None else np.asarray(bias, dtype=np.float64)
    bias_q = np.clip(np.round(b / acc_scale), -2**31, 2**31 - 1).astype(np.int32)
    mult, shift = zip(*(quantize_multiplier(s / out_scale) for s in acc_scale))
    return {"bias": bias_q, "multiplier": np.array(mult, np.int32),
            "shift": np.array(shift, np.int32)}


def float_windows(x: np.ndarray, k, s, pad, value: float = 0.0) -> np.ndarray:
    """x (B, H, W, C) -> (B, Ho, Wo, C, kh, kw) sliding windows over the padded input."""
    t, left, b, r = pad
    xp = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)
    v = np.lib.stride_tricks.sliding_window_view(xp, k, axis=(1, 2))
    return v[:, ::s[0], ::s[1]]


def named(name: str | None) -> dict[str, str]:
    return {"name": name} if name else {}


__all__ = ["ACC_BYTES", "BuilderLike", "CArray", "CDecl", "CIf", "CKernel", "CStruct", "CTable", "FloatLayer",
           "LayerLike", "Lowering", "ModelLike", "OnnxContext", "OpDef", "QParamsLike", "REGISTRY", "clamp", "float_weight",
           "float_windows", "get", "named", "quantize_channels", "register", "window_shape", "zero_points"]
