"""Sign diagnostics for sparse training (docs/methods.md §4; Gadhikar & Burkholz, ICLR 2024): how many kept
weights changed sign, how two runs agree, and the `perturb_signs` ablation."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from cascc.ir import Program

from .registry import register
from .seeding import generator


def flipped(before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor], masks) -> float:
    """Fraction of weights kept by `masks` and nonzero in both states whose sign differs."""
    changed = total = 0
    for name, mask in masks.items():
        live = mask & (before[name] != 0) & (after[name] != 0)
        changed += int((torch.sign(before[name]) != torch.sign(after[name]))[live].sum())
        total += int(live.sum())
    return changed / max(total, 1)


def agreement(a: Program, b: Program) -> float:
    """Fraction of weights kept and nonzero in both programs that have the same sign (e.g. two IMP levels)."""
    same = total = 0
    for name, mask in a.masks.items():
        other = b.masks.get(name, torch.ones_like(mask))
        live = mask & other & (a.weights[name] != 0) & (b.weights[name] != 0)
        same += int((torch.sign(a.weights[name]) == torch.sign(b.weights[name]))[live].sum())
        total += int(live.sum())
    return same / max(total, 1)


@register("signs.perturb")
def perturb(program: Program, *, ratio: float, seed: int | None = None) -> Program:
    """Flip the sign of a random `ratio` of each masked layer's kept weights (the perturb_signs ablation)."""
    gen = generator(program.seed if seed is None else seed, "signs.perturb")
    updates = {}
    for name, mask in sorted(program.masks.items()):
        kept = torch.nonzero(mask.flatten()).flatten()
        chosen = kept[torch.randperm(len(kept), generator=gen)[: round(ratio * len(kept))]]
        weight = program.weights[name].detach().clone().flatten()
        weight[chosen] = -weight[chosen]
        updates[name] = weight.view(mask.shape)
    return program.with_weights(updates)
