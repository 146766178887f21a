"""Analysis and transformation passes (installed as cascc.passes). Importing registers every pass."""

from . import analysis, density, prune, reparam, shrink
from .registry import PASSES, Pass, PassWarning, Step, register, run

__all__ = [
    "PASSES",
    "Pass",
    "PassWarning",
    "Step",
    "analysis",
    "density",
    "prune",
    "register",
    "reparam",
    "run",
    "shrink",
]
