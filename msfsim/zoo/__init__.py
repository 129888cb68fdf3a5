"""Model zoo: deterministic float32 ONNX models (opset 13) built with `onnx.helper`.

Every model has one NCHW input named `input` with a static [1, C, H, W] shape and one output named
`output`. Weights come from `numpy.random.default_rng` seeded by the model name, scaled He-like
(std = sqrt(gain / fan_in), gain 2 before a ReLU, 1 otherwise) so that activations stay within a
few units through the whole network. Two builds of a model serialise to identical bytes.

The models mix the idioms real exporters produce, so the importer meets them all: Conv followed by
an unfused BatchNormalization (PyTorch, Keras), Relu and Clip with min/max as inputs (ReLU6),
explicit asymmetric TF-"SAME" pads (tf2onnx), Flatten or Reshape, Gemm (transB=1) or MatMul + Add,
MaxPool, AveragePool and GlobalAveragePool.

`build_onnx(name, qdq=True)` gives the QDQ-int8 form of the same network, as static QDQ exporters
write it: BatchNorm folded into the conv, weights symmetric per-output-channel int8 + DequantizeLinear,
int32 biases in the accumulator scale (s_in * s_w) + DequantizeLinear, and a QuantizeLinear /
DequantizeLinear pair on the graph input and on every layer output (after its activation).

- `graph`: the builder that writes either form, and the weights' random draws
- `networks`: the real networks; `proxies`: the msf-CNN proxies (published shapes)
- `catalog`: the list of models (`NAMES`, `list_models`); `build`: ONNX, files and IR
"""
from .build import build_onnx, export, load
from .catalog import NAMES, PROXIES, ZooEntry, list_models
from .graph import BIAS_STD, BN_EPS, INPUT, IR_VERSION, OPSET, OUTPUT, QParamsMap
from .networks import MBV2_CLASSES
from .proxies import PROXY_SPECS

__all__ = ["build_onnx", "export", "load", "NAMES", "PROXIES", "ZooEntry", "list_models",
           "BIAS_STD", "BN_EPS", "INPUT", "IR_VERSION", "OPSET", "OUTPUT", "QParamsMap",
           "MBV2_CLASSES", "PROXY_SPECS"]
