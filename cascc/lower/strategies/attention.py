"""CPU activation × activation matmuls (attention scores and values): cascc's batched kernel, vectorized
over the output width in two or one of the target's kernel vectors, whichever divides it."""

from __future__ import annotations

from tvm import relax

from .. import cost
from ..kernels.linear import batched_matmul
from . import MatmulLayer


class Attention:
    """C[b] = A[b] · B[b] for static fp32 [B, M, K] · [B, K, N] (no weight: no decision is recorded)."""

    def lower(self, ctx, layer: MatmulLayer) -> relax.Expr | None:
        sa, sb = layer.a_shape, layer.b_shape
        if (
            len(sa) != 3
            or len(sb) != 3
            or sa[0] != sb[0]
            or sa[2] != sb[1]
            or str(layer.a.ty.dtype) != "float32"
        ):
            return None
        batch, rows, k = sa
        n = sb[2]
        vector = ctx.target.kernel_lanes
        lanes = next((w for w in (2 * vector, vector) if n % w == 0), None)
        if lanes is None:
            return None
        work_us = cost.batched_matmul(ctx.costs, batch, rows, k, n)
        func = batched_matmul(batch, rows, k, n, ctx.costs.wide_rows, lanes, parallel=ctx.parallel(work_us))
        gv = ctx.add_kernel(func, f"cascc_batched_matmul_{batch}x{rows}x{k}x{n}")
        return relax.call_tir(gv, [layer.a, layer.b], relax.TensorType((batch, rows, n), "float32"))
