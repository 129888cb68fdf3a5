"""dense: fully connected over the NHWC-flattened input -> (1, 1, Cout), a block tail.

Weights (Cout, H * W * Cin) in NHWC flatten order, per-output-channel requantisation. As a
tail it keeps Cout int32 accumulators that each tile row of its input feeds as a run of the
flattened input. Kernels: `msf_fully_connected_{init,accumulate,finish}_s8`.
ONNX: Gemm, MatMul (a bias Add after them folds in), on a flattened or 1x1 input.
"""
from __future__ import annotations

import math

import numpy as np

from msfsim import UnsupportedModel
from msfsim.names import shown
from msfsim.ops import fixedpoint as fx
from msfsim.ops.base import (BuilderLike, CArray, CKernel, CStruct, FloatLayer, LayerLike,
                             ModelLike, OpDef, QParamsLike, clamp, float_weight, named,
                             quantize_channels, register, zero_points)
from msfsim.ops.fixedpoint import quantize_weights
from msfsim.ops.kinds import Op


def dense(x: np.ndarray, weight: np.ndarray, bias, multiplier, shift, zp_in: int = 0,
          zp_out: int = 0, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """weight (Cout, H*W*C) over the NHWC-flattened input."""
    xo = x.reshape(-1).astype(np.float64) - zp_in
    acc = (weight.astype(np.float64) @ xo).astype(np.int64)
    if bias is not None:
        acc += np.asarray(bias, np.int64)
    return fx.to_int8(acc, multiplier, shift, zp_out, act_min, act_max).reshape(1, 1, -1)


def lower_gemm(ctx, node) -> None:
    x = ctx.act(node)
    where = ctx.where(node)
    a = ctx.attrs(node) if node.op_type == "Gemm" else {}
    if a.get("transA", 0):
        raise UnsupportedModel(f"{where}: transA=1 is not supported")
    if not x.flat and x.shape[:2] != (1, 1):
        raise UnsupportedModel(f"{where}: input must be flattened (Flatten/Reshape) before a "
                               f"dense layer, got an {x.shape[0]}x{x.shape[1]}x{x.shape[2]} map")
    wv = ctx.qconst(node.input[1])
    w = ctx.const(node, 1, "weights").astype(np.float64)
    if w.ndim != 2:
        raise UnsupportedModel(f"{where}: weights must be 2-D, got {ctx.short(list(w.shape))}")
    trans = bool(a.get("transB", 0))
    wmat = w if trans else w.T  # (Cout, K), K in ONNX's NCHW flatten order
    h, wd, c = x.shape
    k = h * wd * c
    if wmat.shape[1] != k:
        raise UnsupportedModel(f"{where}: weights expect {wmat.shape[1]} inputs, "
                               f"the input has {k}")
    cout = wmat.shape[0]
    # ONNX flattens NCHW: column index c*H*W + y*W + x; msfsim's tensors are NHWC.
    perm = np.arange(k).reshape(c, h, wd).transpose(1, 2, 0).ravel()
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if not (math.isfinite(alpha) and math.isfinite(beta)):
        raise UnsupportedModel(f"{where}: alpha {alpha} and beta {beta} must be finite")
    wq = None
    if (wv is not None and np.all(wv.zero_point == 0) and wv.q.dtype == np.int8
            and alpha == 1.0):
        qm = wv.q if trans else wv.q.T
        sc = np.broadcast_to(wv.scale.astype(np.float64).ravel(), (cout,)).copy()
        wq = (np.ascontiguousarray(qm[:, perm]), sc)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = np.broadcast_to(ctx.const(node, 2, "bias").astype(np.float64).ravel() * beta,
                               (cout,)).copy()
    ctx.new_layer(node, FloatLayer(Op.DENSE, node.name or node.output[0], [ctx.canon(x.name)],
                                   node.output[0], (1, 1, cout), weight=alpha * wmat[:, perm],
                                   weight_q=wq, bias=bias))
    ctx.define(node.output[0], (1, 1, cout), flat=True)


_PARAMS = "(const msf_fc_params *)l->params"
DENSE = CKernel(
    "MSF_OP_DENSE", 7, "tail, running accumulators over the flattened input",
    tail_init=f"msf_fully_connected_init_s8({_PARAMS}, acc);",
    tail_feed=f"""const msf_fc_params *p = {_PARAMS};
MSF_EXEC_ADD_MACS((uint64_t)h * w * in->c * p->out_size);
for (int32_t y = y0; y < y0 + h; ++y) {{
    const int32_t offset = (y * in->tensor_w + x0) * in->c;
    msf_fully_connected_accumulate_s8(p, msf_window_pixel(in, y, x0), offset, w * in->c, acc);
}}""",
    tail_finish=f"msf_fully_connected_finish_s8({_PARAMS}, acc, out);")


class DenseOp(OpDef):
    op = Op.DENSE
    tail = True
    follows_tail = True
    weight_axis = 0
    c_kernels = (DENSE,)
    onnx = {"Gemm": lower_gemm, "MatMul": lower_gemm}

    def out_shape(self, layer, in_shapes):
        return (1, 1, layer.weight.shape[0])

    def build(self, b, x: int, w_q, w_scale, bias, out_q: QParamsLike, activation: str = "none",
              clip=None, name: str | None = None, out_name: str | None = None) -> int:
        """w_q: (Cout, H*W*C) int8 in NHWC flatten order."""
        xt = b.tensors[x]
        cout, cin = w_q.shape
        if cin != xt.size:
            raise ValueError(f"dense {shown(name)}: weights expect {cin} inputs, input has "
                             f"{xt.size}")
        qc = quantize_channels(xt.q.scale, w_scale, bias, out_q.scale, cout)
        y = b.new_tensor(out_name or f"t{len(b.tensors)}", (1, 1, cout), out_q)
        lo, hi = b.clamp_range(activation, out_q, clip)
        return b.new_layer(op=Op.DENSE, inputs=(x,), output=y, weight=np.asarray(w_q, np.int8),
                           **qc, act_min=lo, act_max=hi, activation=activation, **named(name))

    def quantize(self, b, layer: FloatLayer, ins, out_q):
        wq, ws = layer.weight_q or quantize_weights(layer.weight, 0)
        return self.build(b, ins[0], wq, ws, layer.bias, out_q, activation=layer.activation,
                          clip=layer.clip, name=layer.name, out_name=layer.output)

    def reference(self, model, layer, xs):
        zin, zout = zero_points(model, layer)
        return dense(xs[0], layer.weight, layer.bias, layer.multiplier, layer.shift, zin[0],
                     zout, **clamp(layer))

    def float_eval(self, layer, xs):
        x = xs[0]
        return (x.reshape(x.shape[0], -1) @ float_weight(layer, 0).T).reshape(x.shape[0], 1, 1, -1)

    def macs(self, model: ModelLike, layer: LayerLike) -> int:
        return model.tensor(layer.inputs[0]).size * model.out_shape(layer)[2]

    def c_params(self, model: ModelLike, layer: LayerLike):
        i = layer.index
        zin, zout = zero_points(model, layer)
        c = model.out_shape(layer)[2]
        bias = layer.bias if layer.bias is not None else np.zeros(c, np.int32)
        fields = {"in_size": model.tensor(layer.inputs[0]).size, "out_size": c,
                  "input_offset": -zin[0], "output_offset": zout,
                  "act_min": layer.act_min, "act_max": layer.act_max,
                  "weights": f"l{i}_weights", "bias": f"l{i}_bias",
                  "multiplier": f"l{i}_multiplier", "shift": f"l{i}_shift"}
        return [CArray("int32_t", f"l{i}_bias", bias),
                CArray("int32_t", f"l{i}_multiplier", layer.multiplier),
                CArray("int32_t", f"l{i}_shift", layer.shift),
                CArray("int8_t", f"l{i}_weights", layer.weight),
                CStruct("msf_fc_params", f"l{i}_params", fields)]


register(DenseOp())
