"""Small hand-written ONNX graphs for importer and CLI tests (real exporter idioms)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _init(name: str, a) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


def residual_net(input_dims=(1, 3, 16, 16), extra_nodes=(), outputs=None, seed: int = 0) -> onnx.ModelProto:
    """conv3x3 s2 + BN + ReLU6 -> dw3x3 + Relu -> conv1x1 -> Add(skip) -> MaxPool -> Flatten -> MatMul + Add."""
    rng = np.random.default_rng(seed)
    inits = [_init("w1", rng.normal(0, 0.3, (8, 3, 3, 3))), _init("b1", rng.normal(0, 0.1, 8)),
             _init("g", rng.uniform(0.5, 1.5, 8)), _init("bb", rng.normal(0, 0.1, 8)),
             _init("m", rng.normal(0, 0.1, 8)), _init("v", rng.uniform(0.5, 1.5, 8)),
             _init("wd", rng.normal(0, 0.3, (8, 1, 3, 3))), _init("w2", rng.normal(0, 0.3, (8, 8, 1, 1))),
             _init("fc", rng.normal(0, 0.1, (8 * 4 * 4, 10))), _init("fcb", rng.normal(0, 0.1, 10)),
             _init("lo", 0.0), _init("hi", 6.0)]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("BatchNormalization", ["c1", "g", "bb", "m", "v"], ["bn1"], name="bn1"),
        helper.make_node("Clip", ["bn1", "lo", "hi"], ["r1"], name="relu6"),
        helper.make_node("Conv", ["r1", "wd"], ["d1"], group=8, pads=[1, 1, 1, 1], name="dw"),
        helper.make_node("Relu", ["d1"], ["r2"], name="relu"),
        helper.make_node("Conv", ["r2", "w2"], ["p1"], name="pw"),
        helper.make_node("Add", ["p1", "r1"], ["a1"], name="res"),
        helper.make_node("MaxPool", ["a1"], ["mp"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Flatten", ["mp"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fc"], ["mm"], name="fc"),
        helper.make_node("Add", ["mm", "fcb"], ["out"], name="fc_bias"),
        *extra_nodes,
    ]
    outs = outputs or [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 10])]
    g = helper.make_graph(nodes, "residual_net",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(input_dims))],
                          outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _qdq_weight(name: str, w: np.ndarray) -> tuple[list, list]:
    """int8 per-output-channel weights and their DequantizeLinear: (initializers, nodes)."""
    amax = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scale.reshape(-1, *[1] * (w.ndim - 1))), -127, 127).astype(np.int8)
    inits = [numpy_helper.from_array(q, f"{name}_q"), numpy_helper.from_array(scale, f"{name}_s"),
             numpy_helper.from_array(np.zeros(w.shape[0], np.int8), f"{name}_z")]
    return inits, [helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"],
                                    [name], axis=0, name=f"{name}_dq")]


def _toposort(nodes: list, known: set[str]) -> list:
    out, todo = [], list(nodes)
    while todo:
        n = next(n for n in todo if all(i in known for i in n.input if i))
        todo.remove(n)
        out.append(n)
        known.update(n.output)
    return out


def se_net(seed: int = 0, qparams: dict | None = None) -> onnx.ModelProto:
    """MobileNetV3-like ops, torch-free: conv -> HardSwish -> squeeze-and-excite (GlobalAveragePool
    -> 1x1 conv + Relu -> 1x1 conv -> HardSigmoid -> Mul broadcasting the (1, C, 1, 1) scale) ->
    1x1 conv -> Sigmoid, then hard-swish written as y * HardSigmoid(y) (a same-shape Mul),
    concatenated along channels with the conv's output (differently quantised).
    Weights are int8 with DequantizeLinear (exact for msfsim and onnxruntime alike);
    `qparams` (activation name -> (scale, int8 zero point)) adds a QuantizeLinear /
    DequantizeLinear pair after each named activation, input included: a QDQ model."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    for name, shape in (("w1", (8, 3, 3, 3)), ("w2", (4, 8, 1, 1)), ("w3", (8, 4, 1, 1)),
                        ("w4", (6, 8, 1, 1))):
        i, n = _qdq_weight(name, rng.normal(0, 0.4, shape))
        inits += i
        nodes += n
    inits += [_init("b1", rng.normal(0, 0.1, 8)), _init("b3", rng.normal(0, 0.5, 8))]
    nodes += [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("HardSwish", ["c1"], ["hs1"], name="hswish"),
        helper.make_node("GlobalAveragePool", ["hs1"], ["sq"], name="squeeze"),
        helper.make_node("Conv", ["sq", "w2"], ["e1"], name="fc1"),
        helper.make_node("Relu", ["e1"], ["r1"], name="fc1_relu"),
        helper.make_node("Conv", ["r1", "w3", "b3"], ["e2"], name="fc2"),
        helper.make_node("HardSigmoid", ["e2"], ["gate"], alpha=1.0 / 6.0, name="hsig"),
        helper.make_node("Mul", ["hs1", "gate"], ["se"], name="excite"),
        helper.make_node("Conv", ["se", "w4"], ["c4"], name="conv4"),
        helper.make_node("Sigmoid", ["c4"], ["sg"], name="sigmoid"),
        helper.make_node("HardSigmoid", ["sg"], ["hsg"], name="hsig2"),
        helper.make_node("Mul", ["sg", "hsg"], ["hsw"], name="hswish2"),
        helper.make_node("Concat", ["hsw", "c4"], ["out"], axis=1, name="concat"),
    ]
    if qparams:
        for name, (scale, zp) in qparams.items():
            inits += [numpy_helper.from_array(np.array(scale, np.float32), f"{name}_qs"),
                      numpy_helper.from_array(np.array(zp, np.int8), f"{name}_qz")]
            for n in nodes:
                for k, v in enumerate(n.input):
                    if v == name:
                        n.input[k] = f"{name}_dq"
            nodes += [helper.make_node("QuantizeLinear", [name, f"{name}_qs", f"{name}_qz"],
                                       [f"{name}_q"], name=f"{name}_quant"),
                      helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_qs", f"{name}_qz"],
                                       [f"{name}_dq"], name=f"{name}_dequant")]
        if "out" in qparams:  # the graph output is the dequantised value
            nodes.append(helper.make_node("Identity", ["out_dq"], ["y"], name="y"))
        nodes = _toposort(nodes, {"input", *(i.name for i in inits)})
    outs = [helper.make_tensor_value_info("y" if qparams and "out" in qparams else "out",
                                          TensorProto.FLOAT, [1, 12, 12, 12])]
    g = helper.make_graph(nodes, "se_net",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 12, 12])],
                          outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
