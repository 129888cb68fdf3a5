"""Regenerate tests/data/onnx/*.onnx: small float PyTorch models exported by torch.onnx, with
the TorchScript exporter (dynamo=False, file names ending in _ts) and the dynamo exporter
(dynamo=True, _dynamo), as users bring them. msfsim calibrates them itself.

The fixtures are inputs to tests/test_torch_exports.py; they are committed so the tests need no
PyTorch. Run it with a PyTorch install outside the project venv, e.g.

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch torchvision onnx onnxscript
    /tmp/torchvenv/bin/python scripts/make_onnx_fixtures.py [NAME ...] [--full DIR]

The models are torchvision's own architectures (weights=None: no download), shrunk so that each
file stays well under 1 MB (DenseNet with its input normalisation, ShuffleNetV2, too); `--full DIR` also writes the unshrunk MobileNetV3-small and
SqueezeNet 1.1 there (10 MB and 5 MB: not for the repository). Weights come from fixed seeds;
the exporters' versions are printed (the files were last written with torch 2.14.1,
torchvision 0.29.1).
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch
import torchvision
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "onnx"
SEED = 1234


def mobilenet_v3_small() -> nn.Module:
    """torchvision's MobileNetV3-small at width 0.25 with the reduced tail, 10 classes:
    HardSwish, SE blocks (AdaptiveAvgPool -> conv1x1 -> ReLU -> conv1x1 -> Hardsigmoid ->
    broadcast Mul), residual adds, Linear -> Hardswish -> Dropout -> Linear."""
    return torchvision.models.mobilenet_v3_small(weights=None, width_mult=0.25,
                                                 reduced_tail=True, num_classes=10)


class SqueezeNetFront(nn.Module):
    """torchvision's SqueezeNet 1.1 up to its third ceil_mode max pool (conv, three MaxPool
    ceil_mode=True, four Fire modules: squeeze 1x1 -> ReLU -> expand 1x1 / 3x3 -> ReLU ->
    Concat), then its classifier (Dropout, conv1x1 -> ReLU, AdaptiveAvgPool) for 10 classes."""

    def __init__(self):
        super().__init__()
        full = torchvision.models.squeezenet1_1(weights=None, num_classes=10)
        self.features = full.features[:9]
        head = nn.Conv2d(256, 10, kernel_size=1)
        nn.init.normal_(head.weight, mean=0.0, std=0.01)
        nn.init.zeros_(head.bias)
        self.classifier = nn.Sequential(nn.Dropout(p=0.5), head, nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


class LeNetPad(nn.Module):
    """LeNet-5 on 28x28 with an asymmetric nn.ZeroPad2d before its first conv (the TorchScript
    exporter writes the pads as ConstantOfShape / Concat / Reshape / Slice / Transpose / Cast
    arithmetic, then Pad)."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 2, 2, 1))  # left, right, top, bottom
        self.c1 = nn.Conv2d(1, 6, 5)
        self.c2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.c1(self.pad(x))), 2)
        x = torch.max_pool2d(torch.relu(self.c2(x)), 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class Pools(nn.Module):
    """Pooling as PyTorch nets write it, on odd and even sizes: ZeroPad2d -> AvgPool2d (the
    pad folds into the pool); MaxPool2d ceil_mode with padding; AvgPool2d ceil_mode (windows
    cut at the border: the divisor counts the taps inside); AvgPool2d count_include_pad=False;
    an nn.Conv2d in between so that the pools read calibrated tensors."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.pad = nn.ZeroPad2d((0, 1, 1, 0))
        self.avg1 = nn.AvgPool2d(2, stride=1)
        self.max1 = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.c2 = nn.Conv2d(8, 8, 2)
        self.avg2 = nn.AvgPool2d(3, stride=2, ceil_mode=True)
        self.avg3 = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.c3 = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = self.max1(self.avg1(self.pad(x)))
        x = torch.relu(self.c2(x))
        return self.c3(self.avg3(self.avg2(x)))


class Grouped(nn.Module):
    """Grouped convolutions as torchvision builds them (Conv2dNormActivation): groups=4 on 8
    channels, a depthwise conv with channel multiplier 2 (groups=16, 32 outputs), and a plain
    depthwise conv, each with BatchNorm and ReLU; then global pooling and a Linear."""

    def __init__(self):
        super().__init__()
        block = torchvision.ops.misc.Conv2dNormActivation
        self.features = nn.Sequential(
            block(3, 8, 3, stride=2),
            block(8, 16, 3, groups=4),
            block(16, 32, 3, stride=2, groups=16),
            block(32, 32, 3, groups=32),
            block(32, 16, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class DenseNetNormalized(nn.Module):
    """torchvision's DenseNet (two dense blocks of two layers, growth 8) behind the input
    normalisation many PyTorch models carry inside: (x - mean) / std with (1, 3, 1, 1)
    constants. Its BatchNorms read concatenations (BN -> ReLU -> conv, pre-activation), so
    they cannot fold into a conv; the TorchScript exporter writes each block's first
    torch.cat of one tensor as a Concat of one input."""

    def __init__(self):
        super().__init__()
        self.net = torchvision.models.DenseNet(growth_rate=8, block_config=(2, 2),
                                               num_init_features=16, bn_size=2, num_classes=10)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def shufflenet_v2() -> nn.Module:
    """torchvision's ShuffleNetV2, shrunk (stages of 2 units, 8 to 32 channels, 10 classes):
    channel splits (torch.chunk: Split, or TorchScript's Slice with shape arithmetic) and
    channel shuffles (view to [1, 2, C / 2, H, W], transpose, view back)."""
    return torchvision.models.ShuffleNetV2(stages_repeats=[2, 2, 2],
                                           stages_out_channels=[8, 16, 24, 32, 64],
                                           num_classes=10)


class Conv1dKws(nn.Module):
    """A keyword-spotting Conv1d net on 49 frames of 10 MFCCs (N x C x L): BatchNorm1d,
    MaxPool1d, a dilated and a depthwise Conv1d, a per-channel scale of shape (C, 1), a
    residual add, adaptive_avg_pool1d (dynamo: Unsqueeze, ReduceMean, Squeeze), Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv1d(10, 16, 3, padding=1), nn.BatchNorm1d(16)
        self.pool = nn.MaxPool1d(2)
        self.c2 = nn.Conv1d(16, 16, 3, dilation=2, padding=2)
        self.dw = nn.Conv1d(16, 16, 3, groups=16, padding=1)
        self.scale = nn.Parameter(torch.rand(16, 1) + 0.5)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.b1(self.c1(x))))
        y = torch.relu(self.c2(x))
        x = torch.relu(self.dw(y) * self.scale + x)
        return self.fc(nn.functional.adaptive_avg_pool1d(x, 1).flatten(1))


class Conv1dFlat(nn.Module):
    """Conv1d stride 2, AvgPool1d, then Flatten into a Linear (the channels-first flatten
    order of N x C x L)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(6, 8, 5, stride=2)
        self.pool = nn.AvgPool1d(3, stride=2, padding=1)
        self.fc = nn.Linear(8 * 15, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(torch.relu(self.c1(x))).flatten(1))


class Conv1dTcn(nn.Module):
    """A temporal convolutional net: causal dilated Conv1d (F.pad on the left: TorchScript
    computes the pads from constants), residual adds, a 1-D squeeze-and-excite
    (x.mean(-1, keepdim=True), 1x1 Conv1d, sigmoid, multiply), then the mean and the max over
    time concatenated (torch.cat of flat vectors) into a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(6 if i == 0 else 8, 8, 3, dilation=2 ** i)
                                    for i in range(3)])
        self.se1, self.se2 = nn.Conv1d(8, 4, 1), nn.Conv1d(4, 8, 1)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            y = torch.relu(conv(nn.functional.pad(x, (2 * 2 ** i, 0))))
            x = y + x if i else y
        x = x * torch.sigmoid(self.se2(torch.relu(self.se1(x.mean(-1, keepdim=True)))))
        z = torch.cat([x.mean(-1), nn.functional.adaptive_max_pool1d(x, 1).squeeze(-1)], 1)
        return self.fc(z)


class MlpAutoencoder(nn.Module):
    """An anomaly-detection autoencoder of Linear, BatchNorm1d and ReLU layers (MLPerf Tiny's
    AD model's shape, smaller) on an N x F feature vector."""

    def __init__(self) -> None:
        super().__init__()
        dims = [64, 32, 32, 8, 32, 32, 64]
        self.fcs = nn.ModuleList([nn.Linear(a, b) for a, b in zip(dims, dims[1:])])
        self.bns = nn.ModuleList([nn.BatchNorm1d(b) for b in dims[1:-1]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fc, bn in zip(self.fcs, self.bns):
            x = torch.relu(bn(fc(x)))
        return self.fcs[-1](x)


# name: (model factory, input shape N x C x H x W (N x C x L for Conv1d), exporters)
FIXTURES = {
    "mbv3_small": (mobilenet_v3_small, (1, 3, 32, 32), ("ts", "dynamo")),
    "squeezenet11": (SqueezeNetFront, (1, 3, 34, 34), ("ts", "dynamo")),
    "lenet_pad": (LeNetPad, (1, 1, 28, 28), ("ts", "dynamo")),
    "pools": (Pools, (1, 3, 13, 12), ("ts", "dynamo")),
    "grouped": (Grouped, (1, 3, 24, 24), ("ts", "dynamo")),
    "densenet": (DenseNetNormalized, (1, 3, 32, 32), ("ts", "dynamo")),
    "shufflenet_v2": (shufflenet_v2, (1, 3, 32, 32), ("ts", "dynamo")),
    "conv1d_kws": (Conv1dKws, (1, 10, 49), ("ts", "dynamo")),
    "conv1d_flat": (Conv1dFlat, (1, 6, 64), ("ts", "dynamo")),
    "conv1d_tcn": (Conv1dTcn, (1, 6, 64), ("ts", "dynamo")),
    "mlp_autoencoder": (MlpAutoencoder, (1, 64), ("ts", "dynamo")),
}
FULL = {
    "mobilenet_v3_small_full": (lambda: torchvision.models.mobilenet_v3_small(weights=None),
                                (1, 3, 64, 64)),
    "squeezenet1_1_full": (lambda: torchvision.models.squeezenet1_1(weights=None),
                           (1, 3, 66, 66)),
}


def randomize_batchnorm(model: nn.Module) -> None:
    """Give BatchNorm layers non-trivial statistics (a fresh torchvision model has mean 0,
    variance 1, scale 1, which would hide folding mistakes)."""
    g = torch.Generator().manual_seed(SEED)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def export(model: nn.Module, shape: tuple[int, ...], path: Path, exporter: str) -> None:
    model.eval()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(SEED))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "ts":
            torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17,
                              input_names=["input"], output_names=["output"])
        else:
            torch.onnx.export(model, (x,), str(path), dynamo=True, opset_version=18,
                              input_names=["input"], output_names=["output"],
                              external_data=False, verbose=False)
    print(f"{path}: {path.stat().st_size:,} B")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="only these fixtures (default: all)")
    ap.add_argument("--full", type=Path, help="also write the unshrunk models to this folder")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (factory, shape, exporters) in FIXTURES.items():
        if args.names and name not in args.names:
            continue
        for exporter in exporters:
            torch.manual_seed(SEED)
            model = factory()
            randomize_batchnorm(model)
            export(model, shape, OUT / f"{name}_{exporter}.onnx", exporter)
    if args.full:
        args.full.mkdir(parents=True, exist_ok=True)
        for name, (factory, shape) in FULL.items():
            for exporter in ("ts", "dynamo"):
                torch.manual_seed(SEED)
                export(factory(), shape, args.full / f"{name}_{exporter}.onnx", exporter)


if __name__ == "__main__":
    main()
