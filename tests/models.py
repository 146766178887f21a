"""The model references tests compile (`tests/models.py:NAME`, see support.model_ref).

The well-formed models are the shared model set's (benchmarks/zoo.py, which the benchmarks use too), served
here under the names tests reference, so a factory lives in one place. What stays here is test-specific: the
factories broken on purpose and the odd weight layouts (GPT-2 style [in, out] linears, a tied embedding).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

# cascc also loads this file by path (`cascc compile tests/models.py:mlp`, a subprocess, any directory), where
# pytest's pythonpath is not set up: the shared set is found next to the tests either way
_SHARED = str(Path(__file__).resolve().parents[1] / "benchmarks")
if _SHARED not in sys.path:
    sys.path.append(_SHARED)

import zoo  # noqa: E402
from zoo import ResidualCNN, SeparableCNN, relu_mlp  # noqa: E402, F401 (re-exported for tests)

# Factories defined here (not imported) so that cascc lists them among the file's factories.


def mlp() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The shared 20-32-24-5 ReLU MLP, batch 3."""
    return zoo.small_mlp()


def cnn() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The shared ResidualCNN with non-trivial BatchNorm statistics, on a 2×3×8×8 batch."""
    return zoo.cnn()


def separable_cnn() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The shared depthwise-separable CNN on a 2×3×8×8 batch."""
    return zoo.separable_cnn()


def lenet_300_100() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """LeNet-300-100 (784-300-100-10) at batch 1."""
    return zoo.lenet_300_100()


def gpu_mlp() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """1024-4096-10, big enough that its sparse hidden layer takes the CSR kernel on CUDA."""
    return zoo.gpu_mlp()


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
