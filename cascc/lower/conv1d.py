"""Conv1d as conv2d over a 1-pixel-high image, so 1-D layers take the conv strategies and their kernels.

`conv1d(x[N, C, L], W[O, C/g, K])` becomes `conv2d(x[N, C, 1, L], W[O, C/g, 1, K])` viewed back as
[N, O, L']; stride, padding and dilation act on the width only. The view back is then sunk below the bias
add and the ReLU/ReLU6 that follow, so the conv2d patterns (`patterns.py`) fold them as they do for 2-D
layers. Only NCW/OIW convs with a constant weight are rewritten: every other conv1d stays as it was.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, wildcard

from .context import static_shape
from .main_rewrite import rewrite_main

X, W = wildcard(), is_const()
CONV1D = is_op("relax.nn.conv1d")(X, W)


def _to_conv2d(expr: relax.Expr, matches) -> relax.Expr:
    attrs = expr.attrs
    x, w = matches[X], matches[W].value.numpy()
    x_shape = static_shape(x)
    if (
        attrs.data_layout != "NCW"
        or attrs.kernel_layout != "OIW"
        or attrs.out_layout != "NCW"
        or x_shape is None
        or w.ndim != 3
    ):
        return expr
    n, c, length = x_shape
    o, per_group, k = w.shape
    weight = relax.const(w.reshape(o, per_group, 1, k))
    pad = [int(p) for p in attrs.padding]
    y4 = relax.op.nn.conv2d(
        relax.op.reshape(x, (n, c, 1, length)),
        weight,
        strides=(1, int(attrs.strides[0])),
        padding=(0, pad[0], 0, pad[1]),
        dilation=(1, int(attrs.dilation[0])),
        groups=int(attrs.groups),
        out_dtype=str(attrs.out_dtype) or "float32",
    )
    return relax.op.reshape(y4, expr.ty.shape)


INNER, LO, HI, BIAS = wildcard(), wildcard(), wildcard(), is_const()
VIEW = is_op("relax.reshape")(INNER, wildcard())
BIAS_ADD = is_op("relax.add")(VIEW, is_op("relax.reshape")(BIAS, wildcard()))
RELU = is_op("relax.nn.relu")(VIEW)
CLIP = is_op("relax.clip")(VIEW, LO, HI)


def _sink(expr: relax.Expr, matches) -> relax.Expr:
    """`op(reshape(z, s), …)` → `reshape(op(z, …), s)` where z is a conv2d result over a 1-high image."""
    inner, view = matches[INNER], matches[VIEW]
    if not _one_high(inner, view):
        return expr
    if BIAS in matches:
        bias = matches[BIAS].value.numpy().reshape(-1)
        if bias.shape != (static_shape(inner)[1],):
            return expr
        out = relax.op.add(inner, relax.op.reshape(relax.const(bias), (1, bias.shape[0], 1, 1)))
    elif LO in matches:
        out = relax.op.clip(inner, matches[LO], matches[HI])
    else:
        out = relax.op.nn.relu(inner)
    return relax.op.reshape(out, view.ty.shape)


def _one_high(inner: relax.Expr, view: relax.Expr) -> bool:
    """Whether `view` is [N, O, 1, L] `inner` viewed as [N, O, L] (a 1-high conv2d result, or one with an
    epilogue already sunk), so a per-channel bias or an activation commutes with the view."""
    four, three = static_shape(inner), static_shape(view)
    return (
        four is not None
        and three is not None
        and len(four) == 4
        and four[2] == 1
        and three
        == [
            four[0],
            four[1],
            four[3],
        ]
    )


@tvm.transform.module_pass(opt_level=0, name="CasccConv1dAsConv2d")
class Conv1dAsConv2d:
    """Rewrite `main`'s NCW conv1d layers as 1-high conv2d layers with their epilogues below the view."""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        # the epilogues in the order they follow a conv
        return rewrite_main(mod, [(CONV1D, _to_conv2d)] + [(e, _sink) for e in (BIAS_ADD, RELU, CLIP)])
