"""The one graph IR: the `Program` record (program.py) and its layer view (layers.py)."""

from .exported import replace_state
from .layers import Layer, LayerKind, layers
from .program import PassRecord, Program, TensorSpec, density, from_exported, verify

__all__ = [
    "Layer",
    "LayerKind",
    "PassRecord",
    "Program",
    "TensorSpec",
    "density",
    "from_exported",
    "layers",
    "replace_state",
    "verify",
]
