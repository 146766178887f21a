"""cascc: sparsify neural networks with cascade-process methods and compile them through Apache TVM.

The public names load on first use (PEP 562), so `import cascc` and `cascc --help` stay fast: torch and
TVM are imported only by what needs them."""

from __future__ import annotations

import importlib
from importlib import metadata as _metadata
from typing import TYPE_CHECKING, Any

# public name -> the module defining it
_EXPORTS = {
    "CasccError": "errors",
    "Layer": "ir",
    "LayerKind": "ir",
    "Program": "ir",
    "layers": "ir",
    "CompileResult": "api",
    "SelfTest": "api",
    "analyze": "api",
    "compile": "api",
    "prune": "api",
    "run": "api",
    "selftest": "api",
    "Recipe": "recipe",
    "TrainPlan": "training.plan",
    "TrainResult": "training.plan",
    "train": "training.plan",
}

try:
    __version__ = _metadata.version("cascc")
except _metadata.PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cascc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from .api import CompileResult, SelfTest, analyze, compile, prune, run, selftest
    from .errors import CasccError
    from .ir import Layer, LayerKind, Program, layers
    from .recipe import Recipe
    from .training.plan import TrainPlan, TrainResult, train

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
