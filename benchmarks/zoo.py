"""The shared model set: the benchmark models and the small well-formed models the tests compile.

Each factory returns (module, example_inputs), like any cascc model factory, and runs without arguments.
The benchmark factories (`MODELS`) take a batch size and keep untrained weights (latency does not depend on
their values); the small ones are seeded, so a test sees the same weights on every run. tests/models.py
serves the small ones under the names tests reference (`tests/models.py:mlp`) beside its broken factories.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


def relu_mlp(*widths: int, bias: bool = True) -> nn.Sequential:
    """A ReLU MLP with the given layer widths (no activation after the last layer)."""
    mods: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        mods += [nn.Linear(a, b, bias=bias), nn.ReLU()]
    return nn.Sequential(*mods[:-1])


def mlp(batch: int = 1):
    """MLP 784-1024-1024-10."""
    return relu_mlp(784, 1024, 1024, 10), (torch.randn(batch, 784),)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.short is None else self.short(x)))


class ResNet20(nn.Module):
    """ResNet-20 for CIFAR-10 (He et al. 2016): 3 stages of 3 basic blocks, 16/32/64 channels."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        blocks, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def resnet20(batch: int = 1):
    return ResNet20().eval(), (torch.randn(batch, 3, 32, 32),)


class DSCNN(nn.Module):
    """DS-CNN-S keyword spotting (Zhang et al., "Hello Edge", 2017) on 49×10 MFCC frames, 12 classes."""

    def __init__(self, width: int = 64, classes: int = 12):
        super().__init__()
        layers = [nn.Conv2d(1, width, (10, 4), (2, 2), (5, 1), bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        for _ in range(4):
            layers += [
                nn.Conv2d(width, width, 3, 1, 1, groups=width, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        x = self.features(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def dscnn(batch: int = 1):
    return DSCNN().eval(), (torch.randn(batch, 1, 49, 10),)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_res else y


class MobileNetV2Small(nn.Module):
    """A MobileNetV2-style net (Sandler et al. 2018) at width 0.5 on 96×96 inputs, 10 classes."""

    def __init__(self, classes: int = 10):
        super().__init__()
        cfg = [(1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 3, 2), (6, 32, 2, 2), (6, 48, 2, 1), (6, 80, 1, 2)]
        layers = [nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()]
        cin = 16
        for t, c, n, s in cfg:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers += [nn.Conv2d(cin, 320, 1, bias=False), nn.BatchNorm2d(320), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(320, classes)

    def forward(self, x):
        x = self.features(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def mobilenetv2(batch: int = 1):
    return MobileNetV2Small().eval(), (torch.randn(batch, 3, 96, 96),)


class Transformer(nn.Module):
    """A 2-layer transformer encoder: d_model 128, 4 heads, FFN 512, sequence 64, mean-pooled classifier."""

    def __init__(self, d: int = 128, classes: int = 10):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d, 4, 512, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(d, classes)

    def forward(self, x):
        return self.fc(self.encoder(x).mean(dim=1))


def transformer(batch: int = 1):
    return Transformer().eval(), (torch.randn(batch, 64, 128),)


# The small models tests compile: a few seconds each, seeded.


def small_mlp() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """A 20-32-24-5 ReLU MLP with a batch of 3."""
    torch.manual_seed(1)
    return relu_mlp(20, 32, 24, 5), (torch.randn(3, 20),)


def lenet_300_100() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """LeNet-300-100 (784-300-100-10) at batch 1."""
    torch.manual_seed(4)
    return relu_mlp(784, 300, 100, 10), (torch.randn(1, 784),)


def gpu_mlp() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """1024-4096-10: a hidden layer big enough that, sparse, its CSR kernel beats the dense GPU matmul."""
    torch.manual_seed(0)
    return relu_mlp(1024, 4096, 10), (torch.randn(2, 1024),)


class ResidualCNN(nn.Module):
    """conv-BN-ReLU stem, a residual block, a depthwise conv, max-pool and a linear head."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 1)
        self.dw = nn.Conv2d(width, width, 3, padding=1, groups=width)
        self.head = nn.Linear(width * 4 * 4, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.stem(x)))
        y = torch.relu(y + self.conv2(torch.relu(self.bn1(self.conv1(y)))))
        y = nn.functional.max_pool2d(torch.relu(self.dw(y)), 2)
        return self.head(torch.flatten(y, 1))


def cnn() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """ResidualCNN with non-trivial BatchNorm statistics, on a 2×3×8×8 batch."""
    torch.manual_seed(2)
    model = ResidualCNN()
    with torch.no_grad():
        for bn in (model.bn, model.bn1):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    return model, (torch.randn(2, 3, 8, 8),)


class SeparableCNN(nn.Module):
    """Depthwise-separable CNN: stem, two depthwise + pointwise blocks, global average pool, linear head."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        blocks = []
        for _ in range(2):
            blocks += [
                nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks(self.stem(x))
        return self.head(y.mean(dim=(2, 3)))


def separable_cnn() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """SeparableCNN on a 2×3×8×8 batch."""
    torch.manual_seed(3)
    return SeparableCNN(), (torch.randn(2, 3, 8, 8),)


# The benchmark set: each factory takes the batch size.
MODELS = {
    "mlp": mlp,
    "resnet20": resnet20,
    "dscnn": dscnn,
    "mobilenetv2": mobilenetv2,
    "transformer": transformer,
}
