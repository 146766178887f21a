"""Chains of views and transposes that leave every element where it was become one reshape.

A wide layer writes its output channel-major, C[n, tokens] (`strategies/wide.py`), and HF attention builds
its keys from it as x.view(B, T, H, D).transpose(1, 2).transpose(-1, -2) after the linear's own transpose
back: four layout ops whose composition is Kᵀ[h, d, t] = C[h·D + d, t], C's memory as it is. TVM fuses
such a chain into one copy kernel with a div/mod per element (ViT-tiny: 23 µs per layer, 2% of the 90%
build). Each chain of reshape, permute_dims and same-shape broadcast_to is composed on element indices at
compile time; where the composition is the identity on memory order, the chain's end reads its source
through a reshape, which costs nothing.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_op, rewrite_call, wildcard

from .context import static_shape

MOST_ELEMENTS = 1 << 24  # index arrays composed at compile time stay under 128 MiB
PERMUTE = is_op("relax.permute_dims")(wildcard())


def fold_identity_views(main: relax.Function) -> relax.Function:
    """`main` with each transpose that ends a memory-identity view chain replaced by a reshape of the
    chain's source."""
    var2val = relax.analysis.get_var2val(main)

    def fold(expr: relax.Call, _matches) -> relax.Expr:
        mapped = element_map(expr, var2val)
        if mapped is None or not is_identity(mapped[1]):
            return expr
        return relax.op.reshape(mapped[0], static_shape(expr))

    return rewrite_call(PERMUTE, fold, main)


def element_map(expr: relax.Expr, var2val) -> tuple[relax.Expr, np.ndarray] | None:
    """(source, index): the first non-view value under `expr`, and for each element of `expr` its flat
    position in `source` (an array of `expr`'s shape); None for symbolic or very large tensors."""
    mapped = scaled_element_map(expr, var2val, through_scales=False)
    return None if mapped is None else mapped[1:]


def scaled_element_map(
    expr: relax.Expr, var2val, *, through_scales: bool = True
) -> tuple[float, relax.Expr, np.ndarray] | None:
    """(s, source, index) as `element_map`, reading through multiplies by float32 scalar constants as
    views (their product is s): `expr` = s · source viewed by `index`."""
    scales: list[float] | None = [] if through_scales else None
    source, ops = view_chain(expr, var2val, scales)
    shape = static_shape(source)
    if shape is None or static_shape(expr) is None or int(np.prod(shape)) > MOST_ELEMENTS:
        return None
    index = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    for kind, arg in ops:
        index = index.transpose(arg) if kind == "permute" else index.reshape(arg)
    return float(np.prod(scales or [1.0])), source, index


def through_views(x: relax.Expr, ops: list[tuple[str, list[int]]]) -> relax.Expr:
    """`x` through the view ops of `view_chain`, in their order."""
    for kind, arg in ops:
        x = relax.op.permute_dims(x, arg) if kind == "permute" else relax.op.reshape(x, arg)
    return x


def is_identity(index: np.ndarray) -> bool:
    """Whether an element map leaves every element where it was in memory."""
    return bool((index.ravel() == np.arange(index.size)).all())


def is_transposed(index: np.ndarray) -> bool:
    """Whether an element map of shape [..., m, n] reads its source as [..., n, m], transposed."""
    if index.ndim < 2:
        return False
    stored = np.arange(index.size, dtype=np.int32).reshape(*index.shape[:-2], *index.shape[:-3:-1])
    return bool((index == np.swapaxes(stored, -1, -2)).all())


def view_chain(expr: relax.Expr, var2val, scales: list | None = None) -> tuple[relax.Expr, list]:
    """The first non-view value under `expr` and the view ops from it to `expr`, as (kind, shape or
    axes) in application order; with a `scales` list, multiplies by scalar constants count as views and
    their factors are appended to it."""
    ops: list[tuple[str, list[int]]] = []
    while True:
        call = var2val.get(expr, expr) if isinstance(expr, relax.Var) else expr
        op = getattr(call, "op", None) if isinstance(call, relax.Call) else None
        name = getattr(op, "name", "")
        shape = static_shape(call) if isinstance(call, relax.Call) else None
        if name == "relax.permute_dims" and call.attrs.axes is not None:
            ops.append(("permute", [int(a) for a in call.attrs.axes]))
        elif shape is not None and (
            name == "relax.reshape" or (name == "relax.broadcast_to" and shape == static_shape(call.args[0]))
        ):
            ops.append(("reshape", shape))  # a broadcast to its own shape is a view too
        elif scales is not None and name == "relax.multiply" and (scaled := scaled_operand(call)):
            scales.append(scaled[0])
            expr = scaled[1]
            continue
        else:
            return expr, ops[::-1]
        expr = call.args[0]


def scaled_operand(call: relax.Call) -> tuple[float, relax.Expr] | None:
    """(s, x) of a multiply x · s by a float32 scalar constant that keeps x's static shape, else None."""
    shape = static_shape(call)
    for factor, other in (call.args, call.args[::-1]):
        value = _scalar(factor)
        if value is not None and shape is not None and static_shape(other) == shape:
            return value, other
    return None


def _scalar(expr) -> float | None:
    """The value of a float32 tensor constant with one element, else None."""
    data = getattr(expr, "value", None) if isinstance(expr, tvm.ir.expr.Constant) else None
    if not hasattr(data, "numpy"):
        return None  # an immediate (IntImm and FloatImm are Constants too), not a tensor
    value = data.numpy()
    return float(value.reshape(())) if value.size == 1 and value.dtype == np.float32 else None
