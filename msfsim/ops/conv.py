"""conv: standard 2-D convolution, pointwise when the kernel is 1x1.

Weights (Cout, kh, kw, Cin), per-output-channel requantisation. Kernels: `msf_convolve_s8`
(im2col column of int16 as scratch), `msf_convolve_1x1_s8` (no scratch), and
`msf_convolve_maxpool_s8`, which folds a following max pool into the conv as it computes it
(the conv output is never stored). ONNX: Conv with group 1 (and a BatchNormalization after it),
and a grouped Conv that is not depthwise with multiplier 1 (1 < group < C, or group = C with
Cout = m * C, m > 1): a conv whose weights are block-diagonal, zero outside each output
channel's group (`convbase.block_diagonal`). The int8 arithmetic is the grouped conv's exactly;
it costs `group` times its MACs (and weights in flash), as the cost models count.
"""
from __future__ import annotations

import numpy as np

from msfsim.names import shown
from msfsim.ops import fixedpoint as fx
from msfsim.ops.base import (CKernel, LayerLike, ModelLike, clamp, float_weight, float_windows,
                             register, zero_points)
from msfsim.ops.convbase import ConvLike, lower_batchnorm, lower_conv
from msfsim.ops.kinds import Op

IM2COL_BYTES = 2     # int16 im2col element of msf_convolve_s8


def conv(x: np.ndarray, weight: np.ndarray, bias, multiplier, shift, stride=(1, 1),
         pad=(0, 0, 0, 0), zp_in: int = 0, zp_out: int = 0, act_min: int = -128,
         act_max: int = 127) -> np.ndarray:
    """Standard conv; weight (Cout, kh, kw, Cin); pad (top, left, bottom, right)."""
    cout, kh, kw, cin = weight.shape
    ho, wo = fx.out_hw(x, (kh, kw), stride, pad)
    xo = x.astype(np.float64) - zp_in  # padding with 0 == a zero-point input
    win = fx.windows(xo, (kh, kw), stride, pad, 0, (ho, wo))          # (Ho, Wo, C, kh, kw)
    cols = win.transpose(0, 1, 3, 4, 2).reshape(ho * wo, kh * kw * cin)
    acc = cols @ weight.reshape(cout, -1).astype(np.float64).T
    acc = acc.astype(np.int64).reshape(ho, wo, cout)
    if bias is not None:
        acc += np.asarray(bias, np.int64)
    return fx.to_int8(acc, multiplier, shift, zp_out, act_min, act_max)


def conv_scratch(kh: int, kw: int, cin: int) -> int:
    """msf_convolve_s8_get_buffer_size: one int16 im2col column; the 1x1 path needs none."""
    return 0 if kh == 1 and kw == 1 else IM2COL_BYTES * kh * kw * cin


def conv_maxpool_scratch(kh: int, kw: int, cin: int, cout: int) -> int:
    """msf_convolve_maxpool_s8_get_buffer_size: the im2col column (also for 1x1) and one
    output pixel."""
    return _align4(IM2COL_BYTES * kh * kw * cin) + _align4(cout)


def _align4(n: int) -> int:
    return (n + 3) // 4 * 4


_PARAMS = "(const msf_conv_params *)l->params"
_MACS = "(uint64_t)oh * ow * l->kernel_h * l->kernel_w * cin * cout"

CONV = CKernel(
    "MSF_OP_CONV", 0, "msf_convolve_s8",
    spatial=f"msf_convolve_s8(in, {_PARAMS}, out, oy, ox, oh, ow, scratch);", macs=_MACS)
CONV_1X1 = CKernel(
    "MSF_OP_CONV_1X1", 1, "msf_convolve_1x1_s8 (1x1 kernels)",
    spatial=f"msf_convolve_1x1_s8(in, {_PARAMS}, out, oy, ox, oh, ow);", macs=_MACS)
CONV_MAXPOOL = CKernel(
    "MSF_OP_CONV_MAXPOOL", 8, "msf_convolve_maxpool_s8 (+ max pool, conv output unstored)",
    spatial=f"""msf_convolve_maxpool_s8(in, {_PARAMS}, l->pool, l->conv_out_h,
                        l->conv_out_w, out, oy, ox, oh, ow, scratch);""",
    # the conv pixels inside the pooled rows and columns (pool windows never overlap)
    macs=f"""(uint64_t)msf_pooled_span(oy, oh, l->pool->kernel_h, l->pool->stride_h, l->pool->pad_top, l->conv_out_h)
* (uint64_t)msf_pooled_span(ox, ow, l->pool->kernel_w, l->pool->stride_w, l->pool->pad_left, l->conv_out_w)
* ({_PARAMS})->kernel_h * ({_PARAMS})->kernel_w * cin * cout""")  # noqa: E501


class ConvOp(ConvLike):
    op = Op.CONV
    weight_axis = 0
    c_kernels = (CONV, CONV_1X1, CONV_MAXPOOL)
    onnx = {"Conv": lower_conv, "BatchNormalization": lower_batchnorm}

    def check_weights(self, w_q, cin, name):
        _, _, _, wcin = w_q.shape
        if wcin != cin:
            raise ValueError(f"conv {shown(name)}: weights expect {wcin} input channels, "
                             f"input has {cin}")

    def kernel_of(self, w_q):
        return int(w_q.shape[1]), int(w_q.shape[2])

    def reference(self, model, layer, xs):
        zin, zout = zero_points(model, layer)
        return conv(xs[0], layer.weight, layer.bias, layer.multiplier, layer.shift,
                    layer.stride, layer.pad, zin[0], zout, **clamp(layer))

    def float_eval(self, layer, xs):
        win = float_windows(xs[0], layer.kernel, layer.stride, layer.pad)  # B,Ho,Wo,Cin,kh,kw
        return np.einsum("bhwcij,oijc->bhwo", win, float_weight(layer, 0), optimize=True)

    def macs_per_pixel(self, model: ModelLike, layer: LayerLike) -> int:
        kh, kw = layer.kernel
        return kh * kw * model.in_shape(layer)[2] * model.out_shape(layer)[2]

    def window_macs(self, model: ModelLike, layer: LayerLike) -> int:
        return layer.kernel[0] * layer.kernel[1] * model.in_shape(layer)[2]

    def scratch(self, model: ModelLike, layer: LayerLike) -> int:
        return conv_scratch(*layer.kernel, model.in_shape(layer)[2])

    def c_op(self, layer: LayerLike) -> str:
        return (CONV_1X1 if layer.kernel == (1, 1) else CONV).code

    # -- max pool folded in (msf_convolve_maxpool_s8)
    def pool_fusion(self) -> CKernel:
        return CONV_MAXPOOL

    def pool_fusion_scratch(self, model: ModelLike, layer: LayerLike) -> int:
        kh, kw = layer.kernel
        return conv_maxpool_scratch(kh, kw, model.in_shape(layer)[2], model.out_shape(layer)[2])

    def pool_fusion_desc(self, model: ModelLike, layer: LayerLike, pool: LayerLike) -> dict[str, object]:
        """The pair's region geometry is the composition of the two windows."""
        ch, cw, _ = model.out_shape(layer)
        geo: dict[str, object] = {}
        for axis, (k, s, p) in enumerate((("kernel_h", "stride_h", "pad_top"),
                                          ("kernel_w", "stride_w", "pad_left"))):
            geo[k] = (pool.kernel[axis] - 1) * layer.stride[axis] + layer.kernel[axis]
            geo[s] = pool.stride[axis] * layer.stride[axis]
            geo[p] = pool.pad[axis] * layer.stride[axis] + layer.pad[axis]
        return {**geo, "params": f"&l{layer.index}_params", "pool": f"&l{pool.index}_params",
                "conv_out_h": ch, "conv_out_w": cw}

    # -- pre-widened weights: every output takes the DSP loops (k >= 4, Cout >= 4)
    def wide_shape_ok(self, layer: LayerLike) -> bool:
        return layer.weight[0].size >= 4 and layer.weight.shape[0] >= 4

    def wide_weights(self, layer: LayerLike) -> np.ndarray:
        """(Cout, ...) -> (Cout, 4 * ceil(k / 4)) rows, k = the rest of the shape: each group of
        four as w0 w2 w1 w3 (SXTB16's lane order), the k % 4 tail in order, zeros."""
        w = layer.weight.reshape(layer.weight.shape[0], -1).astype(np.int16)
        cout, k = w.shape
        body = k // 4 * 4
        out = np.zeros((cout, (k + 3) // 4 * 4), np.int16)
        out[:, :body] = w[:, :body].reshape(cout, -1, 4)[:, :, [0, 2, 1, 3]].reshape(cout, body)
        out[:, body:k] = w[:, body:]
        return out


register(ConvOp())
