"""Analysis and transformation passes (installed as cascc.passes). Importing registers every pass."""

from . import analysis, density, evaluate, finetune, prune, reparam, shrink, train
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
    "prune",
    "register",
    "reparam",
    "run",
    "shrink",
    "train",
]
