"""The IR ops: one module per op kind (`msfsim.ir.Op`), each registering an `OpDef`.

`get(op)` / `REGISTRY` give an op's definition: its ONNX lowerings, shape rule, int8
reference, float evaluation and quantisation, window geometry, costs (MACs, kernel scratch,
tail accumulators), and its C side (parameter declarations, executor op codes). The IR, the
reference, fusion, code generation and the importers dispatch through it and never test an
op's kind (`msfsim.ops.base` lists which stage uses what).

| op | module | executor op codes (kernels_c/msf_op_table.h) |
|---|---|---|
| conv (standard, pointwise) | conv.py (+ convbase.py) | MSF_OP_CONV, MSF_OP_CONV_1X1, MSF_OP_CONV_MAXPOOL |
| dwconv | dwconv.py (+ convbase.py) | MSF_OP_DWCONV |
| add (same shape, (1, 1, C) broadcast) | add.py | MSF_OP_ADD |
| sub (add's shapes, the second operand subtracted) | sub.py | MSF_OP_SUB |
| maxpool, avgpool | pool.py | MSF_OP_MAXPOOL, MSF_OP_AVGPOOL |
| gap | gap.py | MSF_OP_GAP |
| dense | dense.py | MSF_OP_DENSE |
| lut (HardSwish, sigmoid, ..., a table per channel) | lut.py | MSF_OP_LUT, MSF_OP_LUT_CHANNELS |
| mul (same shape, (1, 1, C) broadcast) | mul.py | MSF_OP_MUL |
| concat (channels, two inputs) | concat.py | MSF_OP_CONCAT |
| softmax (int8, TFLM's fixed point; softmax_map: every pixel of a map) | softmax.py | MSF_OP_SOFTMAX, MSF_OP_SOFTMAX_MAP |

Beside them: base.py (the `OpDef` protocol, the registry, C declarations as data, the IR types
as ops see them), affine.py (per-channel affine maps of ONNX graphs: folded into the layer
before, or a 1x1 dwconv), channels.py (ONNX channel slices and splits: one-hot 1x1
convs), kinds.py (the `Op` enum), fixedpoint.py (quantisation and requantisation
arithmetic), ctable.py (generates the executor's dispatch table).

How to add an op, end to end
----------------------------
1. `msfsim/ops/kinds.py`: a member of the `Op` enum (its value is the op's name in plan files;
   `msfsim.ir.Op` is this enum).
2. `msfsim/ops/<op>.py`: an `OpDef` subclass registered with `register(...)` (every module of
   this package but the helpers in `HELPERS` is imported here, so nothing else names it):
   - flags: `spatial` (tileable window op) or `tail` (consumes its input element by element),
     `windowed`, `elementwise`, `follows_tail`, `same_qparams`, `folds_in_place`,
     `weight_axis`;
   - `out_shape`; `reference`, numpy bit-exact with the C kernel (built on
     `msfsim.ops.fixedpoint`); `build(b, ...)`, which adds the layer to an `IRBuilder`
     (`b.new_tensor`, `b.new_layer`) with its parameters quantised; `quantize` and
     `float_eval` for the importers;
   - costs: `macs_per_pixel` (or `macs`), `scratch` (the mirror of its `*_get_buffer_size`),
     `tail_acc`; `window` when its receptive field is not (kernel, stride, pad);
   - `onnx = {"OnnxOpType": lowering}`; a lowering gets the importer as an `OnnxContext`;
   - `c_kernels`: one `CKernel` per executor op code (a new `value`), with the kernel call in
     `spatial` (or `tail_init` / `tail_feed` / `tail_finish`) and its MACs for host counting in
     `macs`; `c_params`: its constant data and parameter struct `l<index>_params` as
     `CArray` / `CStruct` / `CTable` declarations; `c_op` when it has several op codes.
   An op module imports nothing of msfsim outside this package (and `msfsim.names` and the
   error classes): the IR, the reference and every stage build on it, never the reverse.
3. The C kernel: `msfsim/kernels_c/kernels/msf_<op>_s8.c` with `msf_<op>_s8_get_buffer_size()`,
   declared (with its parameter struct) in its own header `msfsim/kernels_c/msf_<op>_s8.h`,
   named by the op's `c_header` (the generated op table includes it; the older ops are
   declared in msf_kernels.h).
4. `python -m msfsim.ops.ctable` regenerates `msfsim/kernels_c/msf_op_table.h` (the executor's
   op codes and dispatch, and the includes of the ops' headers; tests/test_ops.py fails while
   it is stale).
5. Tests: tests/test_ops.py (registry complete; shape, reference and MACs of every op agree with
   the IR, refmodel, exact cost model, generated C and executor; float evaluation agrees with
   onnxruntime): add a layer of the op to `all_ops_net` and `all_ops_onnx`; kernel tests beside
   the others in tests/test_kernels.py.
Files a new op touches: ops/kinds.py (one line), ops/<op>.py, kernels_c/msf_<op>_s8.h,
kernels_c/kernels/msf_<op>_s8.c, kernels_c/msf_op_table.h (generated), tests. The IR,
reference, fusion space and cost models, memory plan, code generation, executor and ONNX
importer find the op through this registry (a .tflite operator also needs its handler in
importers/tflite/layers.py).
"""
from __future__ import annotations

import importlib
import pkgutil

from msfsim.ops.base import REGISTRY, CKernel, FloatLayer, Lowering, OpDef, get, register
from msfsim.ops.kinds import Op

# The modules of this package that define no op; every other one is an op module and
# registers itself when imported.
HELPERS = frozenset({"affine", "base", "channels", "convbase", "ctable", "fixedpoint",
                     "kinds"})
for _m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _m not in HELPERS:
        importlib.import_module(f"{__name__}.{_m}")

__all__ = ["REGISTRY", "CKernel", "FloatLayer", "Op", "OpDef", "c_kernels", "get",
           "onnx_lowerings", "register"]


def onnx_lowerings() -> dict[str, Lowering]:
    """ONNX op type -> the lowering that some op module registered for it."""
    out: dict[str, Lowering] = {}
    for opdef in REGISTRY.values():
        for op_type, fn in opdef.onnx.items():
            if op_type in out and out[op_type] is not fn:
                raise ValueError(f"ONNX op {op_type} lowered by two op modules")
            out[op_type] = fn
    return out


def c_kernels() -> list[CKernel]:
    """Every executor op code, by value (they must be unique)."""
    ks = sorted((k for opdef in REGISTRY.values() for k in opdef.c_kernels), key=lambda k: k.value)
    if len({k.value for k in ks}) < len(ks) or len({k.code for k in ks}) < len(ks):
        raise ValueError(f"executor op codes collide: {[(k.code, k.value) for k in ks]}")
    return ks
