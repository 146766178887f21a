"""The op registry and the helpers op functions use to read constant inputs as numbers."""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch

# name -> [(since opset, function)], newest last
OPS: dict[str, list[tuple[int, Callable]]] = {}


def op(since: int = 1, name: str | None = None):
    """Register an op function under its ONNX name (the function name up to a `_v` suffix)."""

    def add(fn: Callable) -> Callable:
        key = name or fn.__name__.split("_v")[0]
        versions = OPS.setdefault(key, [])
        if any(s == since for s, _ in versions):
            raise ValueError(f"ONNX op {key} since opset {since} registered twice")
        versions.append((since, fn))
        versions.sort(key=lambda v: v[0])
        return fn

    return add


def resolve(name: str, opset: int) -> Callable | None:
    """The version of op `name` in effect at `opset`, or None."""
    chosen = None
    for since, fn in OPS.get(name, ()):
        if since <= opset:
            chosen = fn
    return chosen


@dataclasses.dataclass(frozen=True)
class Inline:
    """An op's result that is a subgraph to run in the node's place (the taken branch of an If): the importer
    splices its nodes into the graph instead of binding outputs."""

    graph: Any  # onnx.GraphProto


# While tracing, an initializer reaches an op as a parameter (a fake tensor); the importer lists the real
# values here (by tensor identity) so that inputs read as numbers resolve to them.
CONCRETE: contextvars.ContextVar[dict[int, torch.Tensor] | None] = contextvars.ContextVar(
    "concrete", default=None
)


def concrete(t: torch.Tensor) -> torch.Tensor:
    """The real value behind an input read as numbers (shape, axes, scales, scalars)."""
    return (CONCRETE.get() or {}).get(id(t), t)


def numbers(t: torch.Tensor) -> list:
    """A constant input's values as a flat Python list. `tolist` only: under tracing, any torch op on the
    value (even a view) would turn it into a fake tensor."""
    values = concrete(t).tolist()
    flat: list = []
    stack = [values]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            flat.append(item)
    return flat


def constant(t: torch.Tensor, what: str) -> torch.Tensor:
    """`t`, which an op reads as numbers, checked to be known at import time: a value computed from the
    model's inputs while tracing cannot be (its numbers would decide the output's shape)."""
    from torch._subclasses.fake_tensor import is_fake

    if is_fake(concrete(t)):
        raise NotImplementedError(
            f"{what} is computed from the model's inputs (cascc needs it constant: an initializer, a Constant, "
            "or folded from shapes)"
        )
    return t


def ints(t: torch.Tensor | Sequence[int] | None) -> list[int] | None:
    """A constant shape/axes input as a Python list."""
    if t is None:
        return None
    return [int(v) for v in (numbers(t) if isinstance(t, torch.Tensor) else t)]


def floats(t: torch.Tensor | None) -> list[float] | None:
    """A constant float input (Resize scales) as a Python list."""
    return None if t is None else [float(v) for v in numbers(t)]


def scalar(t: torch.Tensor):
    """A constant one-element input as a Python number."""
    return numbers(t)[0]


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def torch_dtype(onnx_type: int) -> torch.dtype:
    """The torch dtype of an ONNX TensorProto element type."""
    import numpy as np
    import onnx.helper

    try:
        return torch.from_numpy(np.zeros(0, dtype=onnx.helper.tensor_dtype_to_np_dtype(onnx_type))).dtype
    except (TypeError, ValueError, KeyError):
        name = onnx.helper.tensor_dtype_to_string(onnx_type).removeprefix("TensorProto.")
        raise NotImplementedError(f"element type {name}") from None
