"""The benchmark models (untrained weights; latency does not depend on their values).

Each factory returns (module, example_inputs) for a batch size, like any cascc model factory.
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(batch: int = 1):
    """MLP 784-1024-1024-10."""
    model = nn.Sequential(
        nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10)
    )
    return model, (torch.randn(batch, 784),)


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


MODELS = {
    "mlp": mlp,
    "resnet20": resnet20,
    "dscnn": dscnn,
    "mobilenetv2": mobilenetv2,
    "transformer": transformer,
}
