"""CPU linear layers: narrow kernels (few rows: the cheapest narrow format against packed dense), or the
wide kernel on xᵀ laid out at an odd cache-line pitch (batch ≥ the target's `wide_min_batch`)."""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm_ffi import StructuralKey

from .. import cost
from ..context import Candidate
from ..formats import Operand, Work, cheapest, of, priced
from ..kernels.layout import transposed_rows
from ..schedules.generic import MIN_PARALLEL_WORK
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
        a = _operand(ctx, layer.x, rows, k, mpad)
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


def _operand(ctx, x, rows: int, k: int, pitch: int) -> relax.Expr:
    """xᵀ flat, row c at c · pitch, zero past the tokens: the layout kernel's register tiles
    (`kernels/layout.py`)."""
    key = (StructuralKey(x), pitch)  # q, k and v read one activation (each through its own view): one operand
    if key not in ctx.operands:
        ctx.operands[key] = _transposed(ctx, x, rows, k, pitch)
    return ctx.operands[key]


def _transposed(ctx, x, rows: int, k: int, pitch: int) -> relax.Expr:
    lanes = ctx.target.vector_lanes
    func = transposed_rows(rows, k, pitch, lanes, parallel=k * pitch >= MIN_PARALLEL_WORK)
    gv = ctx.add_kernel(func, f"cascc_transposed_rows_{rows}x{k}_{pitch}")
    zero = relax.const(np.zeros(1, "float32"))
    return relax.call_tir(gv, [x, zero], relax.TensorType((1, k * pitch), "float32"))
