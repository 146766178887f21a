"""Tiny models for tests. Each factory returns (module, example_inputs); some are broken on purpose."""

from __future__ import annotations

import torch
from torch import nn


def mlp() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """A 20-32-24-5 ReLU MLP with a batch of 3."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU(), nn.Linear(24, 5))
    return model, (torch.randn(3, 20),)


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


def only_module() -> nn.Module:
    """Broken: returns the module without example inputs."""
    return nn.Linear(4, 2)


def wrong_inputs() -> tuple[nn.Module, list]:
    """Broken: example inputs are a list of floats."""
    return nn.Linear(4, 2), [1.0, 2.0]


def raises() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """Broken: the factory itself fails."""
    raise RuntimeError("dataset not found at /nowhere")


class DataDependent(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent Python control flow: torch.export rejects it
            return x * 2
        return x


def untraceable() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """Broken: torch.export cannot trace data-dependent control flow."""
    return DataDependent(), (torch.randn(2, 3),)


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


def relu_mlp(*widths: int, bias: bool = True) -> nn.Sequential:
    """A ReLU MLP with the given layer widths (no activation after the last layer)."""
    mods: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        mods += [nn.Linear(a, b, bias=bias), nn.ReLU()]
    return nn.Sequential(*mods[:-1])


def lenet_300_100() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """LeNet-300-100 (784-300-100-10) at batch 1."""
    torch.manual_seed(4)
    return relu_mlp(784, 300, 100, 10), (torch.randn(1, 784),)


def gpu_mlp() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """1024-4096-10: a hidden layer big enough that, sparse, its CSR kernel beats the dense GPU matmul."""
    torch.manual_seed(0)
    return relu_mlp(1024, 4096, 10), (torch.randn(2, 1024),)


class Conv1D(nn.Module):
    """A linear layer stored [in, out] and applied as addmm(b, x, W), as transformers' GPT-2 `Conv1D`."""

    def __init__(self, out_features: int, in_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features) / in_features**0.5)
        self.bias = nn.Parameter(torch.randn(out_features) * 0.1)

    def forward(self, x):
        y = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
        return y.view(*x.shape[:-1], self.weight.shape[-1])


class InOutMLP(nn.Module):
    """Two [in, out] linears (one through Conv1D, one through a plain x @ W) and a standard nn.Linear."""

    def __init__(self):
        super().__init__()
        self.up = Conv1D(64, 32)
        self.down = nn.Parameter(torch.randn(64, 48) / 8)
        self.head = nn.Linear(48, 10)

    def forward(self, x):
        return self.head(torch.relu(torch.relu(self.up(x)) @ self.down))


class TiedLM(nn.Module):
    """A token embedding whose weight is also the output projection (tied, as in GPT-2)."""

    def __init__(self, vocab: int = 64, dim: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.mix = nn.Linear(dim, dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.embed.weight

    def forward(self, ids):
        return self.lm_head(torch.relu(self.mix(self.embed(ids))))
