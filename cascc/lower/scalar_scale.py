"""A constant scalar factor on an attention matmul's operand moves into the matmul's epilogue.

torch's SDPA decomposition scales both q and k by √scale before Q·Kᵀ (HF's ViT, BERT, Wav2Vec2); Whisper
scales q by 1/√d itself, between its head views.
Each multiply is a kernel of its own over a whole activation, reading it through the views around it (ViT-
tiny: 22 µs per layer for the keys, whose views are otherwise free). (q·s)·(k·s) = (q·k)·s², so the
batched kernel scales its accumulator once before the store instead.
"""

from __future__ import annotations

from tvm import relax

from .identity_views import through_views, view_chain


def peel_scale(expr: relax.Expr, var2val) -> tuple[float, relax.Expr]:
    """(s, x) with `expr` = s · x, where `expr` is a chain of views (reshapes, transposes, same-shape
    broadcasts) and multiplies by float32 scalar constants (HF's SDPA: one at the end; Whisper: q · scaling
    between the head views, then SDPA's · 1.0); s is their product and x the same views without them.
    (1.0, expr) where there is none."""
    scales: list[float] = []
    source, ops = view_chain(expr, var2val, scales)
    if not scales:
        return 1.0, expr
    scale = 1.0
    for factor in scales:
        scale *= factor
    return scale, through_views(source, ops)
