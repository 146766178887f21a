"""Fine-tuning a pruned model with its masks fixed: the accuracy recovery step after one-shot pruning."""

from __future__ import annotations

from typing import Any

from cascc.data import load
from cascc.ir import Program

from .registry import register
from .train import TrainConfig, train, trained_program

# A pruned model starts near a good solution: half the training step size and a shorter run.
DEFAULTS = {"epochs": 10, "lr": 0.05}


@register("train.finetune")
def finetune(program: Program, *, data: str, **options: Any) -> Program:
    """Train the surviving weights on data set `data` with every mask fixed (masked weights stay exactly
    zero); options as TrainConfig, defaulting to 10 epochs of SGD at lr 0.05 with a cosine schedule."""
    config = TrainConfig.of({**DEFAULTS, **options})
    return trained_program(program, train(program, load(data), config))
