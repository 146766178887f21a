"""Views sink below elementwise activations, so a layer's activation follows its core op and folds into the
layer's kernel (`patterns.py`).

torch decomposes a Linear on a [B, T, C] input into a view to [B·T, C], the matmul with its bias and a view
back, and the activation comes after that view (ViT's and BERT's FFN GELU). `act(reshape(z, s))` is
`reshape(act(z), s)` for any elementwise `act`, and `z₁ · z₂` of two views to the same shape is the view of
`z₁ · z₂` where both have one shape (SiLU: `p · sigmoid(p)` once the sigmoid has sunk).
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from .context import static_shape
from .main_rewrite import rewrite_main

UNARY = ("relax.nn.relu", "relax.sigmoid", "relax.nn.gelu", "relax.nn.gelu_tanh", "relax.clip")
Z, A, B = wildcard(), wildcard(), wildcard()
VIEW = is_op("relax.reshape")(Z, wildcard())
ACTIVATED = [
    is_op(op)(VIEW) if op != "relax.clip" else is_op(op)(VIEW, wildcard(), wildcard()) for op in UNARY
]
PRODUCT = is_op("relax.multiply")(
    is_op("relax.reshape")(A, wildcard()), is_op("relax.reshape")(B, wildcard())
)


def _sink_unary(expr: relax.Expr, matches) -> relax.Expr:
    inner = relax.Call(expr.op, [matches[Z], *expr.args[1:]], expr.attrs)
    return relax.op.reshape(inner, expr.ty.shape)


def _sink_product(expr: relax.Expr, matches) -> relax.Expr:
    a, b = matches[A], matches[B]
    shape_a, shape_b = static_shape(a), static_shape(b)
    if shape_a is None or shape_a != shape_b or str(a.ty.dtype) != str(b.ty.dtype):
        return expr
    return relax.op.reshape(relax.op.multiply(a, b), expr.ty.shape)


@tvm.transform.module_pass(opt_level=0, name="CasccSinkViews")
class SinkViews:
    """Sink `main`'s views below elementwise activations (see the module docstring)."""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return rewrite_main(mod, [(p, _sink_unary) for p in ACTIVATED] + [(PRODUCT, _sink_product)])
