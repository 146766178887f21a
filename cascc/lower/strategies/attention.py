"""CPU activation × activation matmuls (attention scores and values): cascc's batched kernel, vectorized
over the output width in two or one of the target's kernel vectors, whichever divides it. A width neither
divides (ViT's 197 tokens, Whisper's 1500) runs in single vectors whose last one overlaps the one before; only
a width under one vector is padded with zero columns (and sliced after)."""

from __future__ import annotations

from tvm import relax

from .. import cost
from ..kernels.linear import batched_matmul
from . import MatmulLayer


class Attention:
    """C[b] = A[b] · B[b] for static fp32 [B, M, K] · [B, K, N] (no weight: no decision is recorded)."""

    def lower(self, ctx, layer: MatmulLayer) -> relax.Expr | None:
        sa, sb = layer.a_shape, layer.b_shape
        if len(sa) != 3 or len(sb) != 3 or sa[0] != sb[0] or sa[2] != sb[1] or layer.dtype != "float32":
            return None
        batch, rows, k = sa
        n = sb[2]
        b, width = layer.b, n
        if n < ctx.target.kernel_lanes:  # narrower than one vector: zero columns up to it, sliced off after
            width = ctx.target.kernel_lanes
            b = relax.op.nn.pad(layer.b, [0, 0, 0, 0, 0, width - n])
        out = batched_matmul_call(ctx, layer.a, b, batch, rows, k, width, layer.scale)
        return out if width == n else relax.op.strided_slice(out, axes=[2], begin=[0], end=[n])


def batched_matmul_call(ctx, a, b, batch, m, k, n, scale=1.0, *, a_transposed=False) -> relax.Expr:
    """call_tir of the batched kernel C[b] = scale · A[b] · B[b] ([batch, m, n], n ≥ one vector), A given as
    [batch, m, k] or, `a_transposed`, as [batch, k, m]: vectors of two kernel vectors where they divide n."""
    vector = ctx.target.kernel_lanes
    lanes = next((w for w in (2 * vector, vector) if n % w == 0), vector)
    parallel = ctx.parallel(cost.batched_matmul(ctx.costs, batch, m, k, n))
    func = batched_matmul(batch, m, k, n, ctx.costs.wide_rows, lanes, parallel, scale, a_transposed)
    suffix = ("_scaled" if scale != 1.0 else "") + ("_at" if a_transposed else "")
    gv = ctx.add_kernel(func, f"cascc_batched_matmul_{batch}x{m}x{k}x{n}{suffix}")
    return relax.call_tir(gv, [a, b], relax.TensorType((batch, m, n), "float32"))
