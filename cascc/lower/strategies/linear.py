"""CPU linear layers: narrow kernels (few rows: the cheapest narrow format against packed dense), or the
wide kernel on xᵀ laid out at an odd cache-line pitch (batch ≥ the target's `wide_min_batch`)."""

from __future__ import annotations

from tvm import relax

from .. import cost
from ..context import Candidate
from ..formats import Operand, Work, cheapest, of, priced
from . import LinearLayer
from .wide import emit_wide, operand_pitch, rows_at


class Linear:
    """y = act(x · Wᵀ + b) with a constant weight (see the module docstring)."""

    def lower(self, ctx, layer: LinearLayer) -> relax.Expr:
        if layer.quant is not None:
            from .int8_linear import lower_int8

            return lower_int8(ctx, layer)
        if layer.rows < ctx.costs.wide_min_batch:
            return self._narrow(ctx, layer)
        rows, k, n = layer.rows, layer.k, layer.n
        mpad = operand_pitch(rows, ctx.costs.wide_lanes, ctx.target.line_floats)
        xt = relax.op.permute_dims(layer.x, [1, 0])
        if mpad != rows:
            xt = relax.op.nn.pad(xt, [0, 0, 0, mpad - rows])
        a = relax.op.reshape(xt, (1, k * mpad))
        out = emit_wide(
            ctx, layer.name, a, k * mpad, 1, k, rows, n, layer.ep, "", rows_at(k, mpad)
        )  # (1, n, rows)
        return relax.op.permute_dims(relax.op.reshape(out, (n, rows)), [1, 0])

    def _narrow(self, ctx, layer: LinearLayer) -> relax.Expr:
        batch, k, n, ep = layer.rows, layer.k, layer.n, layer.ep
        work = Work(ctx.costs, batch, k, n, ep.weight, ep.bias, ep.act)
        dense_format = of(Operand.NARROW, sparse=False)[0]
        (dense_option,) = dense_format.options(work)
        best = cheapest(priced(work, Operand.NARROW), lambda o: o.us)
        choice = cost.choose(ctx.costs, dense_option.us, best.us, ep.density, best.label)

        def build(option, us: float) -> Candidate:
            fmt = option.format
            func, consts = fmt.kernel(work, option, fmt.pack(work, option), ctx.parallel(us))
            label = f"{'sparse' if fmt.sparse else 'dense'} {option.label}"
            return Candidate(label, func, consts, (batch, k), (batch, len(consts[-1])))

        sparse = lambda: build(best, best.us)  # noqa: E731
        dense = lambda: build(dense_option, dense_option.us)  # noqa: E731
        chosen = ctx.choose(layer.name, ep, choice, sparse, dense)
        call = ctx.call(chosen, layer.name, choice.sparse, layer.x)
        width = chosen.out_shape[1]
        return call if width == n else relax.op.strided_slice(call, axes=[1], begin=[0], end=[n])
