"""dwconv: depthwise 2-D convolution, channel multiplier 1.

Weights (kh, kw, C), per-channel requantisation. Kernel: `msf_depthwise_conv_s8` (no scratch).
ONNX: Conv with group = C input = C output channels (lowered in msfsim.ops.convbase).
"""
from __future__ import annotations

import numpy as np

from msfsim.names import shown
from msfsim.ops import fixedpoint as fx
from msfsim.ops.base import (CKernel, LayerLike, ModelLike, clamp, float_weight, float_windows,
                             register, zero_points)
from msfsim.ops.convbase import ConvLike
from msfsim.ops.kinds import Op


def dwconv(x: np.ndarray, weight: np.ndarray, bias, multiplier, shift, stride=(1, 1),
           pad=(0, 0, 0, 0), zp_in: int = 0, zp_out: int = 0, act_min: int = -128,
           act_max: int = 127) -> np.ndarray:
    """Depthwise conv, channel multiplier 1; weight (kh, kw, C)."""
    kh, kw, c = weight.shape
    ho, wo = fx.out_hw(x, (kh, kw), stride, pad)
    xo = x.astype(np.int64) - zp_in
    win = fx.windows(xo, (kh, kw), stride, pad, 0, (ho, wo))
    acc = np.einsum("hwckl,klc->hwc", win, weight.astype(np.int64))
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    return fx.to_int8(acc, multiplier, shift, zp_out, act_min, act_max)


DWCONV = CKernel(
    "MSF_OP_DWCONV", 2, "msf_depthwise_conv_s8",
    spatial=("msf_depthwise_conv_s8(in, (const msf_conv_params *)l->params, out, oy, ox, oh, "
             "ow);"),
    macs="(uint64_t)oh * ow * l->kernel_h * l->kernel_w * cout")


class DwConvOp(ConvLike):
    op = Op.DWCONV
    weight_axis = 2
    wide_keeps_int8 = True  # the border loops read the int8 weights
    c_kernels = (DWCONV,)

    def check_weights(self, w_q, cin, name):
        _, _, cout = w_q.shape
        if cout != cin:
            raise ValueError(f"depthwise conv {shown(name)}: {cout} channels for a "
                             f"{cin}-channel input")

    def kernel_of(self, w_q):
        return int(w_q.shape[0]), int(w_q.shape[1])

    def reference(self, model, layer, xs):
        zin, zout = zero_points(model, layer)
        return dwconv(xs[0], layer.weight, layer.bias, layer.multiplier, layer.shift,
                      layer.stride, layer.pad, zin[0], zout, **clamp(layer))

    def float_eval(self, layer, xs):
        win = float_windows(xs[0], layer.kernel, layer.stride, layer.pad)
        return np.einsum("bhwcij,ijc->bhwc", win, float_weight(layer, 2), optimize=True)

    def macs_per_pixel(self, model: ModelLike, layer: LayerLike) -> int:
        kh, kw = layer.kernel
        return kh * kw * model.out_shape(layer)[2]

    # -- pre-widened weights: at least 4 channels (the DSP loops' lanes), any kernel
    def wide_shape_ok(self, layer: LayerLike) -> bool:
        return layer.weight.shape[-1] >= 4

    def wide_weights(self, layer: LayerLike) -> np.ndarray:
        """(kh, kw, C) -> per group of four channels c..c+3 (c = 0, 4, ..., then C - 4 if
        C % 4) the kh * kw taps as c c+2 c+1 c+3."""
        kh, kw = layer.kernel
        w = layer.weight.reshape(kh * kw, -1).astype(np.int16)
        ch = w.shape[1]
        starts = list(range(0, ch - 3, 4)) + ([ch - 4] if ch % 4 else [])
        return np.stack([w[:, [c, c + 2, c + 1, c + 3]] for c in starts])


register(DwConvOp())
