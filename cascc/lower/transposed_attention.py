"""Attention over channel-major q, k and v runs transposed, with no layout copy.

A wide linear layer writes its output channel-major, C[h·D + d, t] (`strategies/wide.py`), and attention
reads it token-major: Q[h, t, d] and V[h, s, d] are transposes of C's heads, each a copy kernel, and the
result O[h, t, d] is transposed back into the next wide layer's operand (ViT-tiny at 90%: ~20 µs per
layer in four copies). The same attention computed transposed reads every operand where it lies:

    Sᵀ[h, s, t] = Σ_d Kᵀ[h, d, s] · Qᵀ[h, d, t]    (the batched kernel, A given transposed)
    Pᵀ = softmax of Sᵀ down its columns             (kernels/norm.py column_softmax)
    Oᵀ[h, d, t] = Σ_s Vᵀ[h, d, s] · Pᵀ[h, s, t]     (the batched kernel)

and Oᵀ is what the output projection reads (`operand_chain.py` copies its rows at the operand's pitch).
An additive mask is added transposed. Runs after the layer rewrite and before the matmul strategy; an
attention whose operands are not channel-major views (narrow layers, other layouts), or whose scores
outgrow the cache (below), is left to it.
"""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_op, rewrite_call, wildcard

from .context import static_shape
from .identity_views import element_map, is_identity, is_transposed, scaled_element_map
from .kernels.norm import column_softmax
from .schedules.generic import MIN_PARALLEL_WORK
from .strategies.attention import batched_matmul_call

MATMUL = is_op("relax.matmul")(wildcard(), wildcard())
# The transposed value matmul streams one head's Pᵀ once per row tile of Oᵀ, where the token-major one
# streams V: past a core's L2 that is memory traffic. Whisper-tiny's 1500 × 1500 scores (9 MB a head) ran
# 2.2× slower transposed; ViT's 197 × 197 (155 KB) 5% faster.
MOST_SCORE_BYTES = 512 << 10


def transpose_attention(ctx, main: relax.Function) -> relax.Function:
    """`main` with each softmax(Q·Kᵀ)·V over channel-major operands computed transposed."""
    var2val = relax.analysis.get_var2val(main)

    def value(expr):
        return var2val.get(expr, expr) if isinstance(expr, relax.Var) else expr

    def op_name(expr) -> str:
        call = value(expr)
        return getattr(call.op, "name", "") if isinstance(call, relax.Call) else ""

    def viewed(expr, want):
        """The source `expr` views, if its element map passes `want`."""
        mapped = element_map(expr, var2val)
        return mapped[0] if mapped is not None and want(mapped[1]) else None

    def scores_of(x4):
        """(matmul call, additive mask or None) of the softmax input x4 = view(Q·Kᵀ) [+ mask]."""
        source = viewed(x4, is_identity)
        if source is not None and op_name(source) == "relax.matmul":
            return value(source), None
        if op_name(x4) != "relax.add":
            return None, None
        for scores, mask in (value(x4).args, value(x4).args[::-1]):
            source = viewed(scores, is_identity)
            if source is not None and op_name(source) == "relax.matmul" and static_shape(mask) is not None:
                return value(source), mask
        return None, None

    def rewrite(expr: relax.Call, _matches) -> relax.Expr:
        p, v = expr.args
        sp, sv = static_shape(p), static_shape(v)
        if sp is None or sv is None or len(sp) != 3 or str(expr.ty.dtype) != "float32":
            return expr
        batch, tokens, keys = sp
        probs = viewed(p, is_identity)
        if probs is None or op_name(probs) != "relax.nn.softmax":
            return expr
        softmax = value(probs)
        x4 = softmax.args[0]
        rank = len(static_shape(x4) or [])
        if int(softmax.attrs.axis) not in (-1, rank - 1) or rank < 3:
            return expr
        scores, mask = scores_of(x4)
        if scores is None:
            return expr
        q, k = scores.args
        depth = sv[2]
        if static_shape(q) != [batch, tokens, depth] or static_shape(k) != [batch, depth, keys]:
            return expr
        mapped_q, mapped_k = scaled_element_map(q, var2val), scaled_element_map(k, var2val)
        src_v = viewed(v, is_transposed)
        if mapped_q is None or mapped_k is None or src_v is None or tokens < ctx.target.kernel_lanes:
            return expr
        if 4 * tokens * keys > MOST_SCORE_BYTES:
            return expr
        (scale_q, src_q, index_q), (scale_k, src_k, index_k) = mapped_q, mapped_k
        if not is_transposed(index_q) or not is_identity(index_k):
            return expr
        if mask is not None and len(static_shape(mask)) > rank:
            return expr
        q_t = relax.op.reshape(src_q, (batch, depth, tokens))
        k_t = relax.op.reshape(src_k, (batch, depth, keys))
        v_t = relax.op.reshape(src_v, (batch, depth, keys))
        s_t = batched_matmul_call(
            ctx, k_t, q_t, batch, keys, depth, tokens, scale_q * scale_k, a_transposed=True
        )
        if mask is not None:
            s_t = _add_transposed(s_t, mask, static_shape(x4))
        p_t = _column_softmax(ctx, s_t, batch, keys, tokens)
        o_t = batched_matmul_call(ctx, v_t, p_t, batch, depth, keys, tokens)
        return relax.op.permute_dims(o_t, [0, 2, 1])

    return rewrite_call(MATMUL, rewrite, main)


def _add_transposed(s_t, mask, shape):
    """Sᵀ + maskᵀ: the mask (broadcast against the scores' view `shape` [..., t, s]) with its last two axes
    swapped, added to Sᵀ viewed as [..., s, t]."""
    mask_shape = static_shape(mask)
    lead = [1] * (len(shape) - len(mask_shape))
    mask = relax.op.reshape(mask, lead + mask_shape) if lead else mask
    axes = [*range(len(shape) - 2), len(shape) - 1, len(shape) - 2]
    view = [*shape[:-2], shape[-1], shape[-2]]
    batch, keys, tokens = (int(np.prod(shape[:-2])), shape[-1], shape[-2])
    added = relax.op.add(relax.op.reshape(s_t, view), relax.op.permute_dims(mask, axes))
    return relax.op.reshape(added, (batch, keys, tokens))


def _column_softmax(ctx, s_t, batch, keys, tokens):
    lanes = ctx.target.kernel_lanes
    func = column_softmax(batch, keys, tokens, batch * keys * tokens >= MIN_PARALLEL_WORK, lanes=lanes)
    gv = ctx.add_kernel(func, f"cascc_column_softmax_{batch}x{keys}x{tokens}")
    fill = relax.const(np.zeros(1, np.float32))  # a fully masked column gives zeros, as the row kernel does
    return relax.call_tir(gv, [s_t, fill], relax.TensorType((batch, keys, tokens), "float32"))
