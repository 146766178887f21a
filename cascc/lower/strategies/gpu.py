"""GPU strategies: sparse linear layers whose CSR form is predicted faster than the dense matmul under the
target's bandwidth model become `call_tir` to the CSR kernel (`formats/csr.py`); every other layer stays a
Relax op for dlight's GPU schedules, and its decision says why. Convolutions (depthwise too) have no GPU
sparse kernel yet: their zeros run dense."""

from __future__ import annotations

from tvm import relax

from .. import cost
from ..decision import Decision, DecisionKind, Decline, declined
from ..epilogue import density_of
from ..formats import Operand, Work, of
from . import ConvLayer, LinearLayer

GENERIC = "dense (dlight GPU schedule)"


class GpuLinear:
    """A linear layer as the CSR kernel where it pays, else dlight's dense matmul."""

    def lower(self, ctx, layer: LinearLayer) -> relax.Expr | None:
        name, ep = layer.name, layer.ep
        if ctx.decided(name):
            return None
        batch, k, n = layer.rows, layer.k, layer.n
        density = density_of(layer.weight)
        work = Work(ctx.costs, batch, k, n, ep.weight, ep.bias, ep.act)
        fmt = of(Operand.GPU, sparse=True)[0]
        (option,) = fmt.options(work)
        dense_us, sparse_us = cost.gpu_dense(ctx.costs, batch, k, n), option.us
        if sparse_us * ctx.costs.margin > dense_us:
            reason = f"dense: CSR predicted {dense_us / sparse_us:.2f}× (needs {ctx.costs.margin}×)"
            ctx.record(
                Decision(
                    name,
                    density,
                    GENERIC,
                    reason,
                    dense_us,
                    sparse_us,
                    kind=DecisionKind.DENSE_GENERIC,
                    decline=Decline.COST_MODEL,
                )
            )
            return None
        func, consts = fmt.kernel(work, option, fmt.pack(work, option), False)
        gvar = ctx.bb.add_func(func.with_attr("global_symbol", f"cascc_csr_{ctx.index}"), "csr_linear")
        reason = f"sparse: predicted {dense_us / sparse_us:.1f}× faster"
        ctx.record(
            Decision(
                name, density, f"sparse {option.label}", reason, dense_us, sparse_us, kind=DecisionKind.SPARSE
            )
        )
        consts = [relax.const(a) for a in consts]
        return relax.call_tir(gvar, [layer.x, *consts], relax.TensorType((batch, n), "float32"))


class GpuConv:
    """Convolutions stay with dlight; the decision says so."""

    def lower(self, ctx, layer: ConvLayer) -> None:
        if not ctx.decided(layer.name):
            ctx.record(declined(layer.name, density_of(layer.weight), Decline.NO_GPU_SPARSE_CONV, GENERIC))
        return None
