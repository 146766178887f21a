"""Analysis and transformation passes (installed as cascc.passes). Importing registers every pass."""

from . import (
    analysis,
    density,
    evaluate,
    finetune,
    init,
    iterative,
    prune,
    quantize,
    repair,
    reparam,
    shrink,
    signs,
    train,
)
from .registry import PASSES, Pass, PassWarning, Step, register, run

__all__ = [
    "PASSES",
    "Pass",
    "PassWarning",
    "Step",
    "analysis",
    "density",
    "evaluate",
    "finetune",
    "init",
    "iterative",
    "prune",
    "quantize",
    "register",
    "repair",
    "reparam",
    "run",
    "shrink",
    "signs",
    "train",
]
