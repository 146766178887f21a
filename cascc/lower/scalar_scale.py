"""A constant scalar factor on an attention matmul's operand moves into the matmul's epilogue.

torch's SDPA decomposition scales both q and k by √scale before Q·Kᵀ (HF's ViT, BERT, Wav2Vec2); Whisper
scales q by 1/√d itself, between its head views.
Each multiply is a kernel of its own over a whole activation, reading it through the views around it (ViT-
tiny: 22 µs per layer for the keys, whose views are otherwise free). (q·s)·(k·s) = (q·k)·s², so the
batched kernel scales its accumulator once before the store instead.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from .context import static_shape


def peel_scale(expr: relax.Expr, var2val) -> tuple[float, relax.Expr]:
    """(s, x) with `expr` = s · x, where `expr` is a chain of views (reshapes, transposes, same-shape
    broadcasts) and multiplies by float32 scalar constants (HF's SDPA: one at the end; Whisper: q · scaling
    between the head views, then SDPA's · 1.0); s is their product and x the same views without them.
    (1.0, expr) where there is none."""
    views: list[tuple[str, list[int]]] = []  # from `expr` down
    scale, node, found = 1.0, expr, False
    while True:
        call = var2val.get(node, node) if isinstance(node, relax.Var) else node
        name = getattr(getattr(call, "op", None), "name", "") if isinstance(call, relax.Call) else ""
        shape = static_shape(call) if name else None
        factor = scaled_operand(call) if name == "relax.multiply" and shape is not None else None
        if name == "relax.permute_dims" and call.attrs.axes is not None:
            views.append(("permute", [int(a) for a in call.attrs.axes]))
            node = call.args[0]
        elif shape is not None and (
            name == "relax.reshape" or (name == "relax.broadcast_to" and shape == static_shape(call.args[0]))
        ):
            views.append(("reshape", shape))
            node = call.args[0]
        elif factor is not None:
            scale, node, found = scale * factor[0], factor[1], True
        else:
            return (scale, _viewed(node, views)) if found else (1.0, expr)


def scaled_operand(call: relax.Call) -> tuple[float, relax.Expr] | None:
    """(s, x) of a multiply x · s by a float32 scalar constant that keeps x's shape, else None."""
    for factor, other in (call.args, call.args[::-1]):
        value = scalar(factor)
        if value is not None and static_shape(other) == static_shape(call):
            return value, other
    return None


def _viewed(x: relax.Expr, views: list[tuple[str, list[int]]]) -> relax.Expr:
    """`x` through `views` (listed from the outermost in)."""
    for kind, arg in reversed(views):
        x = relax.op.permute_dims(x, arg) if kind == "permute" else relax.op.reshape(x, arg)
    return x


def scalar(expr) -> float | None:
    """The value of a float32 tensor constant with one element, else None."""
    data = getattr(expr, "value", None) if isinstance(expr, tvm.ir.expr.Constant) else None
    if not hasattr(data, "numpy"):
        return None  # an immediate (IntImm and FloatImm are Constants too), not a tensor
    value = data.numpy()
    return float(value.reshape(())) if value.size == 1 and value.dtype == np.float32 else None
