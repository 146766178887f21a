"""Training budgets in FLOPs: what one training step of a sparse program costs against the same step dense,
and how many epochs a sparse run gets for the dense run's FLOPs (equal-FLOPs training, as RigL's 5× runs).

A layer's multiply-adds per sample are its kept weights times the positions each weight is applied at (1 for
a linear layer, the output length/area for a convolution); a training step costs about 3× the forward pass
(forward, gradient to inputs, gradient to weights). Layers outside the prunable set (biases, activations) are
left out: they are a small and equal share of dense and sparse steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from cascc.errors import OptionError
from cascc.ir import Program, layers
from cascc.training.config import BUDGETS

from . import probe
from .connectivity import full_masks


@dataclass(frozen=True)
class StepCost:
    """Forward multiply-adds per sample of the prunable layers, dense and at the program's masks."""

    dense: float
    sparse: float

    @property
    def ratio(self) -> float:
        """Sparse step FLOPs over dense step FLOPs (≈ the density, weighted by each layer's positions)."""
        return self.sparse / self.dense if self.dense else 1.0


def positions(program: Program) -> dict[str, int]:
    """Positions each prunable layer's weights are applied at, per sample (one forward probe)."""
    prunable = layers(program)
    (inputs,) = probe.batches(program, None, 1)
    values = probe.capture(program, program.module(), inputs, {layer.node for layer in prunable})
    batch = program.inputs[0].shape[0]
    return {layer.name: max(1, values[layer.node].numel() // (batch * layer.fan_out)) for layer in prunable}


def step_cost(program: Program, masks: Mapping[str, torch.Tensor] | None = None) -> StepCost:
    """The forward cost of one sample through `program`'s prunable layers, dense and under `masks`."""
    prunable = layers(program)
    where = positions(program)
    full = full_masks(prunable, program.masks if masks is None else masks)
    dense = sum(layer.size * where[layer.name] for layer in prunable)
    sparse = sum(int(full[layer.name].sum()) * where[layer.name] for layer in prunable)
    return StepCost(float(dense), float(sparse))


def regrowth_overhead(every: int, stop: float) -> float:
    """RigL's extra cost per step as a fraction of a dense step: one dense weight gradient (⅓ of a dense
    training step) every `every` steps during the first `stop` of training (Evci et al. 2020, appendix H)."""
    return stop / (3.0 * every)


def equal_flops_epochs(
    epochs: int, cost: StepCost, *, overhead: float = 0.0, cap: float | None = None
) -> int:
    """Epochs of a sparse run whose training FLOPs do not exceed `epochs` of the dense run: epochs × dense /
    sparse step cost (`overhead`: extra per-step cost as a fraction of a dense step), at most `cap`× epochs."""
    per_step = cost.ratio + overhead
    factor = 1.0 / max(per_step, 1e-12)
    if cap is not None:
        factor = min(factor, cap)
    return max(epochs, math.floor(epochs * factor))


def check_budget(budget: str) -> str:
    """Reject a budget other than equal steps or equal FLOPs."""
    if budget not in BUDGETS:
        raise OptionError(None, f"unknown training budget {budget!r}", f"use one of {', '.join(BUDGETS)}")
    return budget
