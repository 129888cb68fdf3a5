"""sub: elementwise a - b of two int8 tensors (TFLite's int8 sub).

The add's arithmetic (msfsim.ops.add: both inputs pre-shifted, requantised to a common scale
by their own multipliers, combined, requantised to the output) with the second operand's scaled
value subtracted, as TFLM's SubElementwise does; the same parameters, shapes (b is a's shape
or (1, 1, C), broadcast over H and W) and fusion rules. Kernel: `msf_elementwise_sub_s8`.
TFLite: SUB of two activations (keras.layers.Subtract). ONNX Sub keeps its lowering (a
negating table and an add, msfsim.ops.add), as ONNX's reference is float.
"""
from __future__ import annotations

from msfsim.ops.add import AddOp
from msfsim.ops.base import CKernel, register
from msfsim.ops.kinds import Op

SUB = CKernel(
    "MSF_OP_SUB", 14, "msf_elementwise_sub_s8",
    spatial=("msf_elementwise_sub_s8(in, in1, (const msf_add_params *)l->params, out, oy, ox, "
             "oh, ow);"))


class SubOp(AddOp):
    op = Op.SUB
    c_kernels = (SUB,)
    onnx = {}

    def float_eval(self, layer, xs):
        return xs[0] - xs[1]


register(SubOp())
