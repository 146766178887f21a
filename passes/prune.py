"""Pruning criteria: which weights of each layer survive, given an allocation of kept counts."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch

from cascc.ir import Program, layers

from .density import allocate, check_sparsity
from .registry import register


def keep_top(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Bool mask of the `keep` highest scores; ties broken by position so the mask is deterministic."""
    flat = scores.detach().flatten()
    order = torch.argsort(flat, descending=True, stable=True)
    mask = torch.zeros(flat.numel(), dtype=torch.bool)
    mask[order[:keep]] = True
    return mask.view(scores.shape)


def masks_from_scores(
    scores: Mapping[str, torch.Tensor], allocation: Mapping[str, int]
) -> dict[str, torch.Tensor]:
    """Per-layer masks keeping exactly `allocation[name]` top-scored weights."""
    return {name: keep_top(scores[name], keep) for name, keep in allocation.items()}


@register("prune.magnitude")
def magnitude(program: Program, *, sparsity: float, allocator: str = "uniform") -> Program:
    """Keep the largest-|w| weights of each layer at its allocated density (Han et al., 2015)."""
    check_sparsity(sparsity)
    prunable = layers(program)
    allocation = allocate(allocator, prunable, sparsity)
    weights = program.masked_weights()
    masks = masks_from_scores({layer.name: weights[layer.name].abs() for layer in prunable}, allocation)
    return dataclasses.replace(program, masks={**program.masks, **masks})
