"""A wide layer fed by another wide layer reads its output rows as they are.

The wide kernel computes a linear layer transposed, C = W · xᵀ, and the layer's result is Cᵀ; the next
wide layer transposes it back into its operand (`strategies/linear.py` `_operand`). Between ViT's fc1 and
fc2 that was a transpose by TVM's generic schedule (84 µs per layer) and the layout kernel's (34 µs) for
no change of layout. After the layer rewrite, each operand built from such a double transpose (through any
views: the element map of `identity_views.py` decides) is built from C directly: its rows copied at the
operand's pitch (`kernels/layout.py` pitched_rows). Attention computed transposed hands its Oᵀ over the
same way.
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from .context import static_shape
from .identity_views import element_map, is_transposed
from .kernels.layout import pitched_rows
from .schedules.generic import MIN_PARALLEL_WORK

CALL = is_op("relax.call_tir")(wildcard(), wildcard())
TRANSPOSED = "cascc_transposed_rows"


def chain_wide_operands(ctx, main: relax.Function) -> relax.Function:
    """`main` with each layout kernel call whose input is a transposed view of another tensor (a wide
    output, attention's Oᵀ) reading that tensor's rows."""
    from tvm.relax.dpl import rewrite_call

    var2val = relax.analysis.get_var2val(main)

    def chain(expr: relax.Call, _matches) -> relax.Expr:
        gv, args = expr.args[0], expr.args[1]
        if not gv.name_hint.startswith(TRANSPOSED) or not isinstance(args, relax.Tuple):
            return expr
        x, fill = args.fields
        shape, out = static_shape(x), static_shape(expr)
        mapped = element_map(x, var2val)
        if shape is None or out is None or mapped is None or not is_transposed(mapped[1]):
            return expr
        rows, k = shape
        pitch = out[1] // k
        lanes = ctx.target.vector_lanes
        func = pitched_rows(k, rows, pitch, lanes, parallel=k * pitch >= MIN_PARALLEL_WORK)
        kernel = ctx.add_kernel(func, f"cascc_pitched_rows_{k}x{rows}_{pitch}")
        rows_of_c = relax.op.reshape(mapped[0], (k, rows))
        return relax.call_tir(kernel, [rows_of_c, fill], relax.TensorType(tuple(out), "float32"))

    return rewrite_call(CALL, chain, main)
