"""The list of bundled models: each entry's name, description, input shape and IR layer count,
with the network function that builds it."""
from __future__ import annotations

from typing import Callable, NamedTuple

from msfsim import MsfsimError

from . import networks as nets
from .graph import Activation, GraphBuilder
from .proxies import PROXY_SPECS, proxy_builder


class ZooEntry(NamedTuple):
    name: str
    description: str
    input_shape: tuple[int, int, int, int]   # NCHW
    layers: int                              # msfsim IR layers (BN, activations, Flatten folded)


Network = Callable[[GraphBuilder], Activation]

_PROXY_DOC = "msf-CNN proxy (conv1x1-dw-conv1x1 chain, bias, no activation or skip)"
_MODELS: dict[str, tuple[ZooEntry, Network]] = {e.name: (e, f) for e, f in [
    (ZooEntry("mbv2-w0.35-r144", f"MobileNetV2-w0.35 shapes, {_PROXY_DOC}", (1, 3, 144, 144), 53),
     proxy_builder("mbv2-w0.35-r144")),
    (ZooEntry("mcunetv2-vww5-r80", f"MCUNetV2 VWW 5 fps shapes, {_PROXY_DOC}", (1, 3, 80, 80), 45),
     proxy_builder("mcunetv2-vww5-r80")),
    (ZooEntry("mcunet-320kb-r176", f"MCUNet 320 KB ImageNet shapes, {_PROXY_DOC}",
              (1, 3, 176, 176), 54), proxy_builder("mcunet-320kb-r176")),
    (ZooEntry("mobilenetv2-w0.35-r144", "MobileNetV2 width 0.35: Conv+BN+ReLU6, residual adds, "
              f"GAP, Gemm {nets.MBV2_CLASSES} classes", (1, 3, 144, 144), 64), nets.mobilenetv2),
    (ZooEntry("mcunet-res-r96", "MCUNet-style net: kernels 3/5/7, residual adds, ReLU6, GAP, "
              "Gemm 2 classes", (1, 3, 96, 96), 47), nets.mcunet_res),
    (ZooEntry("vww-mbv1-0.25-r96", "MLPerf Tiny VWW MobileNetV1 0.25: Conv+BN+ReLU, SAME pads, "
              "AveragePool, MatMul+Add 2 classes", (1, 3, 96, 96), 29), nets.vww_mbv1),
    (ZooEntry("resnet8-r32", "MLPerf Tiny ResNet-8 (CIFAR-10): residual adds, 1x1 stride-2 "
              "shortcuts, AveragePool, MatMul+Add 10 classes", (1, 3, 32, 32), 14), nets.resnet8),
    (ZooEntry("dscnn-kws", "MLPerf Tiny DS-CNN keyword spotting: 49x10 MFCC, conv 10x4 s2, "
              "4 depthwise-separable blocks, AveragePool, Gemm 12 classes", (1, 1, 49, 10), 11),
     nets.dscnn),
    (ZooEntry("mbv3-small-r96", "MobileNetV3-small-style: HardSwish / ReLU, depthwise 3x3 "
              "and 5x5, squeeze-and-excite (GAP, 1x1 convs, HardSigmoid, Mul), residual adds, "
              "GAP, Gemm 10 classes", (1, 3, 96, 96), 41), nets.mobilenetv3_small),
    (ZooEntry("squeezenet-r96", "SqueezeNet 1.1-style: conv 3x3 s2, max pools, five Fire "
              "modules (squeeze 1x1, expand 1x1 and 3x3 side by side, Concat), conv 1x1 10 "
              "classes, GAP", (1, 3, 96, 96), 26), nets.squeezenet),
    (ZooEntry("lenet5-r28", "LeNet-5: conv5x5, MaxPool, Flatten, Gemm 120/84/10 with Relu",
              (1, 1, 28, 28), 7), nets.lenet5),
]}

NAMES: tuple[str, ...] = tuple(_MODELS)
PROXIES: tuple[str, ...] = tuple(PROXY_SPECS)


def list_models() -> list[ZooEntry]:
    return [entry for entry, _ in _MODELS.values()]


def lookup(name: str) -> tuple[ZooEntry, Network]:
    """The entry and network function of `name` (MsfsimError naming the others if unknown)."""
    if name not in _MODELS:
        raise MsfsimError(f"unknown zoo model {name!r}; available: {', '.join(NAMES)}")
    return _MODELS[name]
