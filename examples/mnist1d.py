"""MNIST-1D models (Greydanus 2020, "Scaling down deep learning"): the paper's 1-D CNN and the 40-500-500-10
MLP of its lottery-ticket experiment. Factories return untrained models, for `cascc train --data mnist1d`.

`cascc train --model examples/mnist1d.py:cnn --data mnist1d --sparsity 0.9 --allocator erk -o cnn.pt2`
"""

from __future__ import annotations

import torch
from torch import nn

LENGTH = 40  # samples per signal in the frozen MNIST-1D data set


class ConvNet(nn.Module):
    """Three stride-2 1-D convolutions (kernel 5, 3, 3) with ReLU and a linear head, as in the paper (which
    uses 25 channels); `channels` widens it."""

    def __init__(self, channels: int = 25, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.linear = nn.Linear(channels * 5, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x.view(-1, 1, LENGTH)).relu()
        h = self.conv2(h).relu()
        h = self.conv3(h).relu()
        return self.linear(h.flatten(1))


class MLP(nn.Module):
    """40-500-500-10 ReLU MLP (the MNIST-1D lottery-ticket experiment)."""

    def __init__(self, hidden: int = 500, classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(LENGTH, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.fc2(self.fc1(x).relu()).relu())


def cnn() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The paper's CNN (25 channels), untrained."""
    return ConvNet(), (torch.zeros(1, LENGTH),)


def wide_cnn() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The paper's CNN shape at 64 channels (more weights to prune), untrained."""
    return ConvNet(channels=64), (torch.zeros(1, LENGTH),)


def mlp() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The 40-500-500-10 MLP, untrained."""
    return MLP(), (torch.zeros(1, LENGTH),)
