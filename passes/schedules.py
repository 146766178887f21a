"""Mask schedules applied during training (docs/methods.md §5): which weights are active at each step.

A schedule is called after the backward pass and before the optimizer step, sees the weights and their dense
gradients, and may change masks in place; the training loop then masks gradients and weights, so inactive
weights stay exactly zero. Counts are exact: GMP reaches each layer's allocated count on its last pruning
step, RigL and SET keep each layer's count constant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from cascc.errors import OptionError

from .prune import keep_top
from .seeding import generator

Tensors = Mapping[str, torch.Tensor]


class Static:
    """Masks never change (fine-tuning, de novo training on a fixed mask)."""

    name = "static"

    def start(self, masks: dict[str, torch.Tensor], total_steps: int) -> None:
        pass

    def update(self, step: int, weights: Tensors, masks: dict[str, torch.Tensor]) -> bool:
        return False


@dataclass
class GradualMagnitude:
    """Zhu & Gupta (2017): per layer, sparsity s_t = s_f + (s_i − s_f)(1 − (t − t₀)/(nΔt))³, pruning the
    smallest active |w| every Δt steps from `begin` to `end` (fractions of training; the second half of
    training recovers at the final sparsity); `final` holds each layer's kept count (from an allocator)."""

    final: Mapping[str, int]
    begin: float = 0.1
    end: float = 0.5
    pruning_steps: int = 20
    name = "gmp"

    def start(self, masks: dict[str, torch.Tensor], total_steps: int) -> None:
        self._initial = {name: int(masks[name].sum()) for name in self.final}
        self._t0 = int(self.begin * total_steps)
        self._every = max(1, (int(self.end * total_steps) - self._t0) // self.pruning_steps)
        self._n = max(1, (int(self.end * total_steps) - self._t0) // self._every)
        for name, keep in self.final.items():
            if keep > self._initial[name]:
                raise OptionError(
                    None,
                    f"GMP target keeps {keep} weights of {name} but only {self._initial[name]} are active",
                    "start GMP from a denser model",
                )

    @property
    def last_step(self) -> int:
        """The step whose update reaches the final counts."""
        return self._t0 + self._n * self._every

    def kept(self, name: str, step: int) -> int:
        """Kept count of layer `name` after the pruning event at `step`."""
        progress = min(1.0, max(0.0, (step - self._t0) / (self._n * self._every)))
        initial, final = self._initial[name], self.final[name]
        return final + round((initial - final) * (1.0 - progress) ** 3)

    def update(self, step: int, weights: Tensors, masks: dict[str, torch.Tensor]) -> bool:
        if step < self._t0 or step > self.last_step or (step - self._t0) % self._every:
            return False
        changed = False
        for name in self.final:
            keep = self.kept(name, step)
            if keep < int(masks[name].sum()):
                masks[name] = _top_active(weights[name].abs(), masks[name], keep)
                changed = True
        return changed


@dataclass
class DropGrow:
    """Dynamic sparse training: every `every` steps until `stop` (fraction of training), drop the fraction
    α_t = α/2·(1 + cos(π t / T_end)) of each layer's smallest active |w| and regrow as many inactive weights,
    at zero — where |∂L/∂w| is largest (RigL, Evci et al. 2020), uniformly at random (SET, Mocanu et al.
    2018), or `cascade`: into starved units first (`starved_units`, grown at the He scale), then by |∂L/∂w|.
    Each layer's active count never changes."""

    grow: str = "gradient"
    alpha: float = 0.3
    every: int | None = None
    stop: float = 0.75
    seed: int = 0
    DEFAULT_EVERY = 100  # RigL's ΔT, the most `every` defaults to

    @property
    def name(self) -> str:
        return {"gradient": "rigl", "random": "set", "cascade": "rigl-cascade"}[self.grow]

    def start(self, masks: dict[str, torch.Tensor], total_steps: int) -> None:
        self.revived = 0  # starved rows grown into (cascade growth)
        self._end = max(1, int(self.stop * total_steps))
        self._every = self.every or max(1, min(self.DEFAULT_EVERY, total_steps // 25))
        self._gen = generator(self.seed, "schedule.set")

    def fraction(self, step: int) -> float:
        return self.alpha / 2 * (1 + math.cos(math.pi * step / self._end))

    def update(self, step: int, weights: Tensors, masks: dict[str, torch.Tensor]) -> bool:
        if step == 0 or step >= self._end or step % self._every:
            return False
        changed = False
        for name, mask in masks.items():
            active = int(mask.sum())
            moved = min(round(self.fraction(step) * active), mask.numel() - active)
            if moved == 0:
                continue
            survivors = _top_active(weights[name].abs(), mask, active - moved)
            grad = weights[name].grad
            if self.grow == "random":
                score = torch.rand(mask.shape, generator=self._gen)
            else:
                score = torch.zeros_like(weights[name]) if grad is None else grad.detach().abs().float()
            if self.grow == "cascade":
                starved = starved_units(survivors, grad)
                score = cascade_score(score, starved, survivors, self._gen)
                self.revived += int(starved.sum())
            # Grow among weights inactive after the drop (just-dropped ones may come back, as in RigL).
            grown = keep_top(torch.where(survivors, -1.0, score), moved) & ~survivors
            if self.grow == "cascade":
                _seed_starved(weights[name], grown, starved, self._gen)
            masks[name] = survivors | grown
            changed = True
        return changed


def starved_units(mask: torch.Tensor, grad: torch.Tensor | None, floor: float = 0.25) -> torch.Tensor:
    """Output units (rows) a gradient criterion cannot grow into: no gradient reaches any of their weights
    (a ReLU silent on the whole batch, or a unit no output reads: ∂L/∂w_ij = δ_i·a_j is zero for every j), or
    an in-degree below `floor` × the layer's mean (the cascade's dead-unit side, docs/methods.md §1)."""
    rows = mask.reshape(mask.shape[0], -1)
    degree = rows.sum(dim=1).float()
    low = degree < floor * degree.mean()
    if grad is None:
        return low
    silent = grad.detach().reshape(mask.shape[0], -1).abs().amax(dim=1) == 0
    return low | silent


def cascade_score(
    score: torch.Tensor, starved: torch.Tensor, survivors: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """Growth scores that give every starved row one inactive weight (at random within the row) ranked above
    every |∇| score, so each update feeds each starved unit once; the rest of the budget follows |∇| as in
    RigL (whose scores are zero on a silent row, so it never grows there)."""
    if not starved.any():
        return score
    rows = score.reshape(score.shape[0], -1).clone()
    top = float(rows.max()) + 1.0
    jitter = torch.rand(rows.shape, generator=gen)
    free = ~survivors.reshape(rows.shape)
    lead = torch.where(free, jitter, -1.0).argmax(dim=1)
    index = starved.nonzero().flatten()
    rows[index, lead[index]] = top + jitter[index, lead[index]]
    return rows.reshape(score.shape)


def _seed_starved(
    weight: torch.Tensor, grown: torch.Tensor, starved: torch.Tensor, gen: torch.Generator
) -> None:
    """Weights grown into starved rows start at the sparse-aware He scale √(2/k) instead of zero: a zero
    weight into a silent ReLU gets no gradient and would leave it silent."""
    rows = grown.reshape(grown.shape[0], -1) & starved[:, None]
    if not rows.any():
        return
    k = rows.sum(dim=1, keepdim=True).clamp(min=1).float()
    fresh = torch.randn(rows.shape, generator=gen) * (2.0 / k).sqrt()
    with torch.no_grad():
        flat = weight.view(weight.shape[0], -1)
        flat.copy_(torch.where(rows, fresh.to(weight.dtype), flat))


def magnitude_step(
    weights: Tensors, masks: Mapping[str, torch.Tensor], counts: Mapping[str, int]
) -> dict[str, torch.Tensor]:
    """One magnitude-pruning step: each layer keeps its `counts[name]` largest active |w| (never regrowing)."""
    return {
        name: _top_active(weights[name].abs(), masks[name], min(keep, int(masks[name].sum())))
        for name, keep in counts.items()
    }


def _top_active(score: torch.Tensor, mask: torch.Tensor, keep: int) -> torch.Tensor:
    """The `keep` highest-scored weights among the active ones of `mask`."""
    return keep_top(torch.where(mask, score.detach().float(), -1.0), keep) & mask
