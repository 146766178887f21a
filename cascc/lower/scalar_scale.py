"""A constant scalar factor on an attention matmul's operand moves into the matmul's epilogue.

torch's SDPA decomposition scales both q and k by √scale before Q·Kᵀ (HF's ViT, BERT, Whisper, Wav2Vec2).
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
    """(s, x) with `expr` = s · x, where `expr` is a chain of reshapes and same-shape broadcasts over a
    multiply by a float32 scalar constant; (1.0, expr) when it is not."""
    shape, node = static_shape(expr), expr
    while True:
        call = var2val.get(node, node) if isinstance(node, relax.Var) else node
        name = getattr(getattr(call, "op", None), "name", "") if isinstance(call, relax.Call) else ""
        if name == "relax.reshape" or (
            name == "relax.broadcast_to" and static_shape(call) == static_shape(call.args[0])
        ):
            node = call.args[0]
            continue
        if name != "relax.multiply" or shape is None:
            return 1.0, expr
        for factor, other in (call.args, call.args[::-1]):
            scale, inner = _scalar(factor), static_shape(other)
            if scale is not None and inner is not None and int(np.prod(inner)) == int(np.prod(shape)):
                return scale, relax.op.reshape(other, shape)
        return 1.0, expr


def _scalar(expr) -> float | None:
    """The value of a float32 tensor constant with one element, else None."""
    data = getattr(expr, "value", None) if isinstance(expr, tvm.ir.expr.Constant) else None
    if not hasattr(data, "numpy"):
        return None  # an immediate (IntImm and FloatImm are Constants too), not a tensor
    value = data.numpy()
    return float(value.reshape(())) if value.size == 1 and value.dtype == np.float32 else None
