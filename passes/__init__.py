"""Analysis and transformation passes (installed as cascc.passes). Importing registers every pass."""

from . import analysis, density, prune  # noqa: F401  (registration side effect)
from .registry import PASSES, Pass, Step, register, run

__all__ = ["PASSES", "Pass", "Step", "register", "run", "analysis", "density", "prune"]
