"""Digits classifiers (scikit-learn's 8×8 handwritten digits) that train in about a second on a CPU.

`cascc compile examples/digits.py:mlp --sparsity 0.9 -o out/digits` compiles a real, trained classifier.
Each factory returns (module, example_inputs); the example input is a real test digit.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn


def data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed 80/20 split of load_digits as float tensors in [0, 16] and int64 labels."""
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    as_x = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    as_y = lambda a: torch.tensor(a, dtype=torch.int64)  # noqa: E731
    return as_x(xtr), as_y(ytr), as_x(xte), as_y(yte)


class DigitsMLP(nn.Module):
    """64-256-256-10 ReLU MLP; pixels are scaled to [0, 1] inside the model so raw digits go in."""

    def __init__(self, hidden: int = 256):
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x / 16.0
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class DigitsCNN(nn.Module):
    """A small residual CNN on 1×8×8 images: conv-BN-ReLU, a residual block, pooling, linear head."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.block = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )
        self.head = nn.Linear(width * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x.view(-1, 1, 8, 8) / 16.0)
        x = torch.relu(x + self.block(x))
        x = nn.functional.max_pool2d(x, 2)
        return self.head(torch.flatten(x, 1))


def train(model: nn.Module, steps: int = 150, lr: float = 1e-2, seed: int = 0) -> float:
    """Full-batch Adam on the training split; returns test accuracy."""
    torch.manual_seed(seed)
    xtr, ytr, xte, yte = data()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xtr), ytr).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return float((model(xte).argmax(1) == yte).float().mean())


def accuracy(module: nn.Module) -> float:
    """Test accuracy of any module taking raw digits (N, 64)."""
    _, _, xte, yte = data()
    with torch.no_grad():
        return float((module(xte).argmax(1) == yte).float().mean())


def _example() -> tuple[torch.Tensor]:
    return (data()[2][:1].clone(),)


def mlp() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """A trained digits MLP (≈97% test accuracy) and one test digit."""
    torch.manual_seed(0)
    model = DigitsMLP()
    train(model)
    return model, _example()


def cnn() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """A trained residual digits CNN with BatchNorm and one test digit."""
    torch.manual_seed(0)
    model = DigitsCNN()
    train(model, steps=60)
    return model, _example()


def untrained_mlp() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The digits MLP freshly initialized (from cascc's --seed), for `cascc train` (de novo sparse training)."""
    return DigitsMLP(), _example()


def untrained_cnn() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The digits CNN freshly initialized (from cascc's --seed), for `cascc train`."""
    return DigitsCNN(), _example()


if __name__ == "__main__":
    for name, factory in (("mlp", mlp), ("cnn", cnn)):
        module, _ = factory()
        print(f"{name}: test accuracy {accuracy(module):.3f}")
