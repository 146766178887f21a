"""The m⊙w reparameterization of masked weights (Mask in the Mirror / PILoT, ICLR 2025; Sign-In, 2025).

Each masked weight θ is trained as the product of two factors, θ = m ⊙ w, started balanced (m = √|θ|,
w = sign(θ)·√|θ|). Weight decay α_t on both factors drives m² − w² to 0 at rate exp(−2∫α) and moves the
implicit bias from L2 towards L1 (sparsifying); without decay m² − w² is conserved and a θ at zero cannot
change sign, so Sign-In periodically re-creates the imbalance. The papers' exact schedules were not found in
code, so cascc states its own, as hyperparameters (TrainConfig):

- `mw_decay` α₀ (default 1e-4): decoupled decay m ← m − lr·α_t·m (and w) after each step, α_t cosine-decayed
  from α₀ to 0 over training (PILoT's decaying weight decay);
- `mw_rebalance_every` (default 0 = off): every that many steps, Sign-In's rebalancing m = s·√(|θ| + ε),
  w = θ / m with `mw_rebalance_scale` s = 2 and ε = 1e-8, which leaves θ unchanged and makes |m| > |w|.

`fold` turns the factors back into one tensor before lowering; outputs are identical (tested).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch.nn.utils import parametrize

EPS = 1e-8


class Product(torch.nn.Module):
    """θ = m ⊙ w; assigning θ sets balanced factors."""

    def forward(self, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return m * w

    def right_inverse(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        root = theta.abs().sqrt()
        return root, torch.sign(theta) * root


def attach(module: torch.nn.Module, names: Iterable[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Reparameterize each named weight of `module` as m ⊙ w; returns the (m, w) parameters by name."""
    factors = {}
    for name in names:
        owner, _, attribute = name.rpartition(".")
        holder = module.get_submodule(owner)
        parametrize.register_parametrization(holder, attribute, Product(), unsafe=True)
        original = holder.parametrizations[attribute]
        factors[name] = (original.original0, original.original1)
    return factors


def fold(module: torch.nn.Module, names: Iterable[str]) -> None:
    """Replace each reparameterized weight by its value m ⊙ w, a plain parameter again."""
    for name in names:
        owner, _, attribute = name.rpartition(".")
        parametrize.remove_parametrizations(module.get_submodule(owner), attribute, leave_parametrized=True)


def decay_rate(alpha: float, step: int, total: int) -> float:
    """α_t: cosine-decayed from α₀ at step 0 to 0 at the end of training."""
    return alpha * 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1)))


@torch.no_grad()
def decay(factors: Mapping[str, tuple[torch.Tensor, torch.Tensor]], lr: float, rate: float) -> None:
    for m, w in factors.values():
        m.mul_(1 - lr * rate)
        w.mul_(1 - lr * rate)


@torch.no_grad()
def rebalance(factors: Mapping[str, tuple[torch.Tensor, torch.Tensor]], scale: float = 2.0) -> None:
    """Sign-In: same θ, but |m| > |w|, so w (and with it θ) can cross zero again."""
    for m, w in factors.values():
        theta = m * w
        m.copy_(scale * (theta.abs() + EPS).sqrt())
        w.copy_(theta / m)
