"""Iterative pruning schedules around the training loop (docs/methods.md §4–5): IMP with weight rewinding, LRR
(learning-rate rewinding) and SCULPT (cyclic training, one magnitude step, cyclic training)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from cascc.data import load
from cascc.errors import OptionError
from cascc.ir import Program, layers

from .connectivity import full_masks
from .density import allocate, check_sparsity
from .registry import register
from .schedules import magnitude_step
from .signs import flipped
from .train import TrainConfig, diagnostics, train, trained_program


@register("train.iterative")
def iterative(
    program: Program,
    *,
    data: str,
    sparsity: float,
    rewind: str = "lr",
    rounds: int | None = None,
    rewind_epochs: float = 0.5,
    allocator: str = "uniform",
    allocator_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> Program:
    """Iterative magnitude pruning: train, prune to the next level by magnitude under `allocator`, then
    rewind the weights to those after `rewind_epochs` of the first run (`rewind="weights"`, Frankle et al.
    2020; 0 rewinds to the initialization) or keep them and restart only the learning-rate schedule
    (`rewind="lr"`, LRR, Renda et al. 2020); a last run trains at the final sparsity. By default each round
    prunes 20% of the remaining weights."""
    check_sparsity(sparsity)
    if rewind not in ("weights", "lr"):
        raise OptionError(None, f"unknown rewind {rewind!r}", "use 'weights' (IMP) or 'lr' (LRR)")
    config = TrainConfig.of(options)
    data_set = load(data)
    rounds = rounds or max(1, math.ceil(math.log(1 - sparsity) / math.log(0.8)))
    prunable = layers(program)
    masks = full_masks(prunable, program.masks)
    current, rewind_to, previous = program, None, None
    agreements = []
    for level in range(1, rounds + 1):
        snapshot_step = None
        if rewind == "weights" and rewind_to is None:
            steps_per_epoch = max(1, len(data_set.x_train) // config.batch_size)
            snapshot_step = round(rewind_epochs * steps_per_epoch)
        result = train(
            current, data_set, config, masks=masks, snapshot_step=snapshot_step, stream=f"level{level}"
        )
        if snapshot_step is not None:
            rewind_to = result.snapshot
        if previous is not None:  # sign agreement of this level's trained weights with the last level's
            agreements.append(_sign_agreement(previous, result.weights, masks))
        previous = result.weights
        target = 1 - (1 - sparsity) ** (level / rounds)
        counts = allocate(allocator, prunable, target, **dict(allocator_options or {}))
        masks = magnitude_step(result.weights, masks, counts)
        base = rewind_to if rewind == "weights" else result.weights
        current = dataclasses.replace(program.with_weights(base), masks=masks)
    final = train(current, data_set, config, masks=masks, stream="final")
    agreements.append(_sign_agreement(previous, final.weights, masks))
    sink = diagnostics.get()
    if sink is not None:
        sink["level_sign_agreement"] = agreements
    return trained_program(current, final)


def _sign_agreement(before, after, masks) -> float:
    return 1.0 - flipped(before, after, masks)


@register("train.sculpt")
def sculpt(
    program: Program,
    *,
    data: str,
    sparsity: float,
    allocator: str = "uniform",
    allocator_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> Program:
    """SCULPT (Gadhikar & Burkholz, "Cyclic Sparse Training: Is it Enough?"): cyclic training of the current
    mask (dense if none), one magnitude-pruning step to `sparsity` under `allocator`, cyclic training again;
    each phase takes the config's epochs with a cyclic learning rate."""
    check_sparsity(sparsity)
    config = TrainConfig.of({**options, "lr_schedule": "cyclic"})
    data_set = load(data)
    prunable = layers(program)
    masks = full_masks(prunable, program.masks)
    first = train(program, data_set, config, masks=masks, stream="sculpt-1")
    counts = allocate(allocator, prunable, sparsity, **dict(allocator_options or {}))
    masks = magnitude_step(first.weights, masks, counts)
    pruned = dataclasses.replace(program.with_weights(first.weights), masks=masks)
    return trained_program(pruned, train(pruned, data_set, config, masks=masks, stream="sculpt-2"))
