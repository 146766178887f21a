"""The ONNX → torch op table: one function per ONNX op, named as the op, its signature the spec's.

Inputs are positional torch tensors (None for an omitted optional input); attributes are keyword-only with
the spec's defaults. A second version of an op exists only where its semantics changed across opsets; it is
registered with the opset it starts at (`@op(since=…)`). Inputs that carry shapes or axes (Reshape's shape,
Slice's starts, …) are constants at import time and are read with `ints()`.
"""

from . import control, elementwise, nn, recurrent, reduce, resize, scatter, shape  # noqa: F401  (registration)
from .registry import (
    CONCRETE,
    OPS,
    Inline,
    concrete,
    constant,
    floats,
    ints,
    numbers,
    op,
    resolve,
    scalar,
    torch_dtype,
)

__all__ = [
    "CONCRETE",
    "OPS",
    "Inline",
    "concrete",
    "constant",
    "floats",
    "ints",
    "numbers",
    "op",
    "resolve",
    "scalar",
    "torch_dtype",
]
