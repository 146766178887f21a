"""Accuracy of a Program on a data set's test split: overall, per class, under Gaussian input noise and
under FGSM, and the comparison of a sparse model with its dense reference (docs/methods.md §6).

Noise levels and ε are in units of the training data's standard deviation (one scalar over all features),
so σ = 0.1 means noise a tenth as large as the data's spread, whatever the raw scale of the inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from cascc.data import Dataset
from cascc.ir import Program

from .batched import batched
from .seeding import generator

NOISE = (0.1, 0.3)
FGSM = (0.05,)


@dataclass(frozen=True)
class Evaluation:
    """Test accuracy of one model: overall, per class, and under each perturbation."""

    accuracy: float
    per_class: tuple[float, ...]
    noise: Mapping[float, float]
    fgsm: Mapping[float, float]
    samples: int

    def to_json(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "per_class": list(self.per_class),
            "gaussian_noise": {str(k): v for k, v in self.noise.items()},
            "fgsm": {str(k): v for k, v in self.fgsm.items()},
            "samples": self.samples,
        }


@dataclass(frozen=True)
class Comparison:
    """A sparse model's evaluation next to its dense reference."""

    dense: Evaluation
    sparse: Evaluation

    @property
    def class_drops(self) -> tuple[float, ...]:
        """Per class: dense accuracy minus sparse accuracy (positive = the sparse model lost accuracy)."""
        return tuple(d - s for d, s in zip(self.dense.per_class, self.sparse.per_class, strict=True))

    @property
    def worst_class(self) -> tuple[int, float]:
        """The class that lost the most accuracy, and how much."""
        drops = self.class_drops
        worst = max(range(len(drops)), key=drops.__getitem__)
        return worst, drops[worst]

    def to_json(self) -> dict[str, Any]:
        cls, drop = self.worst_class
        return {
            "dense": self.dense.to_json(),
            "sparse": self.sparse.to_json(),
            "accuracy_drop": self.dense.accuracy - self.sparse.accuracy,
            "largest_class_drop": {"class": cls, "drop": drop},
        }


def evaluate(
    program: Program,
    data: Dataset,
    *,
    noise: tuple[float, ...] = NOISE,
    fgsm: tuple[float, ...] = FGSM,
    seed: int = 0,
) -> Evaluation:
    """Evaluate `program` (masks applied) on `data`'s test split, clean and perturbed."""
    module = batched(program).eval().requires_grad_(False)  # FGSM needs ∇ₓ only, not the weights'
    group = module.group
    usable = len(data.x_test) // group * group  # whole groups of the program's static batch
    x, y = data.x_test[:usable], data.y_test[:usable]
    scale = float(data.x_train.std())
    with torch.no_grad():
        clean = _predict(module, x)
        gen = generator(seed, "evaluate.noise")
        noisy = {
            s: _accuracy(_predict(module, x + s * scale * torch.randn(x.shape, generator=gen)), y)
            for s in noise
        }
    attacked = {eps: _accuracy(_predict_no_grad(module, _fgsm(module, x, y, eps * scale)), y) for eps in fgsm}
    classes = data.classes
    per_class = tuple(
        _accuracy(clean[y == c], y[y == c]) if bool((y == c).any()) else float("nan") for c in range(classes)
    )
    return Evaluation(_accuracy(clean, y), per_class, noisy, attacked, usable)


def compare(dense: Program, sparse: Program, data: Dataset, *, seed: int = 0) -> Comparison:
    """Evaluate a sparse model and its dense reference on the same data and perturbations."""
    return Comparison(evaluate(dense, data, seed=seed), evaluate(sparse, data, seed=seed))


def _fgsm(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, step: float) -> torch.Tensor:
    """Fast gradient sign attack (Goodfellow et al. 2015): x + step·sign(∇ₓ loss)."""
    x = x.clone().requires_grad_(True)
    F.cross_entropy(module(x), y).backward()
    return (x + step * x.grad.sign()).detach()


def _predict(module, x: torch.Tensor) -> torch.Tensor:
    chunk = module.group * max(1, 1024 // module.group)
    return torch.cat([module(x[i : i + chunk]).argmax(1) for i in range(0, len(x), chunk)])


def _predict_no_grad(module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return _predict(module, x)


def _accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predicted == labels).float().mean()) if len(labels) else float("nan")
