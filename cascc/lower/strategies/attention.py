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
        vector = ctx.target.kernel_lanes
        lanes = next((w for w in (2 * vector, vector) if n % w == 0), vector)
        b, width = layer.b, n
        if n < vector:  # narrower than one vector: zero columns up to it, sliced off after
            width = vector
            b = relax.op.nn.pad(layer.b, [0, 0, 0, 0, 0, width - n])
        work_us = cost.batched_matmul(ctx.costs, batch, rows, k, width)
        func = batched_matmul(
            batch, rows, k, width, ctx.costs.wide_rows, lanes, ctx.parallel(work_us), layer.scale
        )
        scaled = "" if layer.scale == 1.0 else "_scaled"
        gv = ctx.add_kernel(func, f"cascc_batched_matmul_{batch}x{rows}x{k}x{width}{scaled}")
        out = relax.call_tir(gv, [layer.a, b], relax.TensorType((batch, rows, width), "float32"))
        return out if width == n else relax.op.strided_slice(out, axes=[2], begin=[0], end=[n])
