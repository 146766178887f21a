"""Analysis and transformation passes (installed as cascc.passes). Importing registers every pass."""

from . import analysis, density, prune, reparam, shrink  # noqa: F401  (registration side effect)
from .registry import PASSES, Pass, PassWarning, Step, register, run

__all__ = ["PASSES", "Pass", "PassWarning", "Step", "register", "run", "analysis", "density", "prune", "reparam", "shrink"]
