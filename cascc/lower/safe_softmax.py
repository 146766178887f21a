"""torch's safe softmax becomes the plain softmax where cascc's row kernel computes it.

`scaled_dot_product_attention` without a mask (Whisper's encoder, ViT) and `aten._safe_softmax` export as
`where(¬any(x ≠ −inf, −1), 0, softmax(x))`: rows that are entirely −inf give zeros instead of NaN. The row
kernel (kernels/norm.py `softmax`, legalize.py) already scales such rows by zero, so the test is a second
pass over the scores and a select over all of them, for nothing: on Whisper-tiny's 6×1500×1500 scores
the test and select took as long as two softmaxes. Softmaxes that TVM's fast_softmax lowers (not over the
last axis, symbolic shapes) keep the test.
"""

from __future__ import annotations

import math

import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, wildcard

from .legalize import softmax_rows
from .main_rewrite import rewrite_main

X, NEG_INF, ZERO = wildcard(), is_const(), is_const()
SOFTMAX = is_op("relax.nn.softmax")(X)
LIVE = is_op("relax.logical_not")(is_op("relax.equal")(X, NEG_INF))
ROW_MAX = is_op("relax.max")(is_op("relax.astype")(LIVE))
ANY_LIVE = is_op("relax.astype")(ROW_MAX)
SAFE = is_op("relax.where")(
    is_op("relax.logical_not")(ANY_LIVE), is_op("relax.full_like")(SOFTMAX, ZERO), SOFTMAX
)


def _scalar(const) -> float | None:
    value = const.value.numpy()
    return float(value) if value.size == 1 else None


def _as_softmax(expr: relax.Expr, matches) -> relax.Expr:
    softmax, x = matches[SOFTMAX], matches[X]
    axis = int(softmax.attrs.axis)
    reduce = matches[ROW_MAX]
    ndim = len(x.ty.shape) if softmax_rows(x, axis) is not None else None
    if (
        ndim is None
        or axis not in (-1, ndim - 1)
        or [int(a) for a in reduce.attrs.axis] not in ([-1], [ndim - 1])
        or not reduce.attrs.keepdims
        or _scalar(matches[NEG_INF]) != -math.inf
        or _scalar(matches[ZERO]) != 0.0
    ):
        return expr
    return softmax


@tvm.transform.module_pass(opt_level=0, name="CasccSafeSoftmax")
class SafeSoftmaxAsSoftmax:
    """Rewrite `main`'s safe softmaxes as softmaxes where the row kernel runs them (see the module docstring)."""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return rewrite_main(mod, [(SAFE, _as_softmax)], drop_dead=True)
