"""The bundled real networks, each written with the idioms of the exporter it stands for
(PyTorch, Keras / tf2onnx), so that the importer meets them all: Conv followed by an unfused
BatchNormalization, Relu and Clip with min/max as inputs (ReLU6), explicit asymmetric TF-"SAME"
pads, Flatten or Reshape, Gemm (transB=1) or MatMul + Add, MaxPool, AveragePool and
GlobalAveragePool."""
from __future__ import annotations

from .graph import OUTPUT, Activation, GraphBuilder


def _inverted_residual(g: GraphBuilder, x: Activation, name: str, cout: int, stride: int,
                       expand: int, k: int, act: str, bn: bool) -> Activation:
    """MobileNetV2 block: [1x1 expand] -> dw kxk -> 1x1 project (linear), + input if shapes allow."""
    hidden = int(round(x.c * expand))
    y = x
    if expand != 1:
        y = g.conv(y, f"{name}.expand", hidden, 1, bias=not bn, bn=bn, act=act)
    y = g.conv(y, f"{name}.dw", hidden, k, stride=stride, groups=hidden, bias=not bn, bn=bn, act=act)
    y = g.conv(y, f"{name}.project", cout, 1, bias=not bn, bn=bn)
    if stride == 1 and x.c == cout:
        y = g.add(x, y, name)
    return y


def _make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: nearest multiple of 8, never more than 10 % below v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


MBV2_CLASSES = 100  # 1000 would not fit 1 MB of flash in int8 with this backbone


def mobilenetv2(g: GraphBuilder) -> Activation:
    """torchvision MobileNetV2(width_mult=0.35) at 144x144, PyTorch export idioms."""
    wm = 0.35
    x = g.image(3, 144, 144)
    x = g.conv(x, "features.0", _make_divisible(32 * wm), 3, stride=2, bias=False, bn=True,
               act="relu6")
    i = 1
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]:
        for r in range(n):
            x = _inverted_residual(g, x, f"features.{i}", _make_divisible(c * wm),
                                   s if r == 0 else 1, t, 3, "relu6", bn=True)
            i += 1
    x = g.conv(x, f"features.{i}", _make_divisible(1280 * max(1.0, wm)), 1, bias=False, bn=True,
               act="relu6")
    x = g.gap(x, "avgpool")
    x = g.flatten(x, "flatten")
    return g.dense(x, "classifier", MBV2_CLASSES, out=OUTPUT)


def mcunet_res(g: GraphBuilder) -> Activation:
    """MCUNet-style searched net: kernels 3/5/7, mixed expansions, residuals, ReLU6; BN already
    folded into conv biases (a deploy-time export)."""
    x = g.image(3, 96, 96)
    x = g.conv(x, "stem", 16, 3, stride=2, act="relu6")
    blocks = [(8, 1, 1, 3), (16, 3, 2, 7), (16, 3, 1, 3), (24, 4, 2, 5), (24, 4, 1, 3),
              (24, 3, 1, 5), (40, 4, 2, 7), (40, 4, 1, 5), (48, 4, 1, 3), (48, 3, 1, 5),
              (96, 5, 2, 7), (96, 4, 1, 3), (160, 4, 1, 5)]  # (cout, expand, stride, kernel)
    for i, (cout, e, s, k) in enumerate(blocks):
        x = _inverted_residual(g, x, f"blocks.{i}", cout, s, e, k, "relu6", bn=False)
    x = g.gap(x, "pool")
    x = g.flatten(x, "reshape", reshape=True)
    return g.dense(x, "classifier", 2, out=OUTPUT)


def vww_mbv1(g: GraphBuilder) -> Activation:
    """MLPerf Tiny visual wake words: MobileNetV1 alpha 0.25, Keras/tf2onnx idioms."""
    x = g.image(3, 96, 96)
    x = g.conv(x, "conv1", 8, 3, stride=2, pad="same", bn=True, act="relu")
    spec = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)] + [(128, 1)] * 5 \
        + [(256, 2), (256, 1)]
    for i, (c, s) in enumerate(spec, 1):
        x = g.conv(x, f"dw{i}", x.c, 3, stride=s, pad="same", groups=x.c, bn=True, act="relu")
        x = g.conv(x, f"pw{i}", c, 1, bn=True, act="relu")
    x = g.avgpool(x, "pool", (x.h, x.w))
    x = g.flatten(x, "reshape", reshape=True)
    return g.dense(x, "dense", 2, matmul=True, out=OUTPUT)


def resnet8(g: GraphBuilder) -> Activation:
    """MLPerf Tiny image classification: ResNet-8 on CIFAR-10, Keras/tf2onnx idioms."""
    x = g.image(3, 32, 32)
    x = g.conv(x, "conv1", 16, 3, pad="same", bn=True, act="relu")
    for stack, (c, s) in enumerate([(16, 1), (32, 2), (64, 2)], 1):
        y = g.conv(x, f"stack{stack}.conv1", c, 3, stride=s, pad="same", bn=True, act="relu")
        y = g.conv(y, f"stack{stack}.conv2", c, 3, pad="same", bn=True)
        if s != 1:  # projection shortcut, no BatchNorm in the reference model
            x = g.conv(x, f"stack{stack}.shortcut", c, 1, stride=s, pad="same")
        x = g.add(x, y, f"stack{stack}", act="relu")
    x = g.avgpool(x, "pool", (x.h, x.w))
    x = g.flatten(x, "flatten")
    return g.dense(x, "dense", 10, matmul=True, out=OUTPUT)


def dscnn(g: GraphBuilder) -> Activation:
    """MLPerf Tiny keyword spotting: DS-CNN on 49x10 MFCC features, Keras/tf2onnx idioms."""
    x = g.image(1, 49, 10)
    x = g.conv(x, "conv1", 64, (10, 4), stride=2, pad="same", bn=True, act="relu")
    for i in range(1, 5):
        x = g.conv(x, f"dw{i}", 64, 3, pad="same", groups=64, bn=True, act="relu")
        x = g.conv(x, f"pw{i}", 64, 1, bn=True, act="relu")
    x = g.avgpool(x, "pool", (x.h, x.w))
    x = g.flatten(x, "flatten")
    return g.dense(x, "dense", 12, out=OUTPUT)


def lenet5(g: GraphBuilder) -> Activation:
    """LeNet-5 on 28x28 digits (first conv padded to keep 28x28, as for MNIST)."""
    x = g.image(1, 28, 28)
    x = g.conv(x, "conv1", 6, 5, pad=2, act="relu")
    x = g.maxpool(x, "pool1", 2, 2)
    x = g.conv(x, "conv2", 16, 5, pad=0, act="relu")
    x = g.maxpool(x, "pool2", 2, 2)
    x = g.flatten(x, "flatten")
    x = g.dense(x, "fc1", 120, act="relu")
    x = g.dense(x, "fc2", 84, act="relu")
    return g.dense(x, "fc3", 10, out=OUTPUT)


def _hswish(g: GraphBuilder, x: Activation, name: str) -> Activation:
    return g.unary(x, "HardSwish", f"{name}.hardswish")


def _squeeze_excite(g: GraphBuilder, x: Activation, name: str) -> Activation:
    """torchvision's SqueezeExcitation: GlobalAveragePool -> 1x1 conv + ReLU -> 1x1 conv ->
    HardSigmoid (PyTorch's: alpha 1/6) -> Mul, the scale broadcast over H and W."""
    s = g.gap(x, f"{name}.avgpool")
    s = g.conv(s, f"{name}.fc1", _make_divisible(x.c / 4), 1, act="relu")
    s = g.conv(s, f"{name}.fc2", x.c, 1)
    s = g.unary(s, "HardSigmoid", f"{name}.hardsigmoid", alpha=1.0 / 6.0, beta=0.5)
    return g.mul(x, s, f"{name}.scale")


def mobilenetv3_small(g: GraphBuilder) -> Activation:
    """MobileNetV3-small-style net at 96x96, PyTorch export idioms: Conv + BN, HardSwish and
    ReLU, depthwise 3x3 / 5x5, squeeze-and-excite, residual adds; five blocks of torchvision's
    mobilenet_v3_small at width 1, then 1x1 conv + HardSwish, GAP, Gemm 10 classes."""
    x = g.image(3, 96, 96)
    x = _hswish(g, g.conv(x, "features.0", 16, 3, stride=2, bias=False, bn=True), "features.0")
    # (kernel, expanded, out, squeeze-excite, activation, stride)
    spec = [(3, 16, 16, True, "relu", 2), (3, 48, 24, False, "relu", 2),
            (3, 72, 24, False, "relu", 1), (5, 72, 40, True, "hardswish", 2),
            (5, 120, 40, True, "hardswish", 1)]
    for i, (k, hidden, cout, se, act, s) in enumerate(spec, 1):
        name = f"features.{i}"
        y = x
        relu = "relu" if act == "relu" else None
        if hidden != x.c:
            y = g.conv(y, f"{name}.expand", hidden, 1, bias=False, bn=True, act=relu)
            y = y if relu else _hswish(g, y, f"{name}.expand")
        y = g.conv(y, f"{name}.dw", hidden, k, stride=s, groups=hidden, bias=False, bn=True,
                   act=relu)
        y = y if relu else _hswish(g, y, f"{name}.dw")
        if se:
            y = _squeeze_excite(g, y, f"{name}.se")
        y = g.conv(y, f"{name}.project", cout, 1, bias=False, bn=True)
        x = g.add(x, y, name) if s == 1 and x.c == cout else y
    x = _hswish(g, g.conv(x, "features.6", 160, 1, bias=False, bn=True), "features.6")
    x = g.gap(x, "avgpool")
    x = g.flatten(x, "flatten")
    return g.dense(x, "classifier", 10, out=OUTPUT)


def _fire(g: GraphBuilder, x: Activation, name: str, squeeze: int, expand: int) -> Activation:
    """SqueezeNet's Fire module: squeeze 1x1 + ReLU, then expand 1x1 and expand 3x3 (each + ReLU)
    side by side, concatenated along channels."""
    s = g.conv(x, f"{name}.squeeze", squeeze, 1, act="relu")
    a = g.conv(s, f"{name}.expand1x1", expand, 1, act="relu")
    b = g.conv(s, f"{name}.expand3x3", expand, 3, act="relu")
    return g.concat([a, b], f"{name}.cat")


def squeezenet(g: GraphBuilder) -> Activation:
    """SqueezeNet 1.1-style net at 96x96, PyTorch export idioms: conv 3x3 s2, max pools 3 s2
    (ceil_mode 0) between stages, five Fire modules, final 1x1 conv + ReLU, GAP, Flatten."""
    x = g.image(3, 96, 96)
    x = g.conv(x, "features.0", 24, 3, stride=2, act="relu")
    x = g.maxpool(x, "features.2", 3, 2)
    x = _fire(g, x, "features.3", 8, 32)
    x = _fire(g, x, "features.4", 8, 32)
    x = g.maxpool(x, "features.5", 3, 2)
    x = _fire(g, x, "features.6", 16, 48)
    x = _fire(g, x, "features.7", 16, 48)
    x = g.maxpool(x, "features.8", 3, 2)
    x = _fire(g, x, "features.9", 24, 64)
    x = g.conv(x, "classifier.1", 10, 1, act="relu")
    x = g.gap(x, "classifier.3")
    return g.flatten(x, OUTPUT)
