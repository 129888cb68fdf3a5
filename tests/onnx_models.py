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
