"""cascc: sparsify neural networks with cascade-process methods and compile them through Apache TVM."""

from importlib import metadata as _metadata

from .errors import CasccError
from .ir import Layer, LayerKind, Program, layers
from .pipeline import CompileResult, SelfTest, analyze, compile, prune, run, selftest
from .recipe import Recipe
from .training import TrainPlan, TrainResult, train

try:
    __version__ = _metadata.version("cascc")
except _metadata.PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = [
    "CasccError",
    "CompileResult",
    "Layer",
    "LayerKind",
    "Program",
    "Recipe",
    "SelfTest",
    "TrainPlan",
    "TrainResult",
    "__version__",
    "analyze",
    "compile",
    "layers",
    "prune",
    "run",
    "selftest",
    "train",
]
