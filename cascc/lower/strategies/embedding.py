"""CPU embedding lookups: a gather from the table's CSR rows where that stores fewer bytes than the dense
table (a pruned table shrinks the artifact), else from the dense table; both clamp token ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tvm import relax

from ..context import Candidate
from ..decision import Decision, DecisionKind, Decline
from ..kernels.embedding import dense_gather, pack_rows, sparse_bytes, sparse_gather


@dataclass(frozen=True, eq=False)
class EmbeddingLayer:
    """Y = W[ids] for int32 token ids of static shape (flattened to `tokens`) and a [vocab, dim] table."""

    name: str
    ids: Any  # relax.Expr, 1-D int32
    tokens: int
    weight: np.ndarray
    density: float


class Embedding:
    """See the module docstring."""

    def lower(self, ctx, layer: EmbeddingLayer) -> relax.Expr:
        vocab, dim = layer.weight.shape
        dense_b, sparse_b = layer.weight.nbytes, sparse_bytes(layer.weight)
        if sparse_b < dense_b:
            vals, cols, ptr = pack_rows(layer.weight)
            func = sparse_gather(layer.tokens, vocab, dim, len(vals), str(cols.dtype))
            cand = Candidate(
                "sparse gather (CSR rows)", func, (vals, cols, ptr), (layer.tokens,), (layer.tokens, dim)
            )
            kind, decline = DecisionKind.SPARSE, None
            reason = f"density {layer.density:.3f}: CSR rows take {sparse_b / dense_b:.2f}× the dense table's bytes"
        else:
            func = dense_gather(layer.tokens, vocab, dim)
            cand = Candidate("dense gather", func, (layer.weight,), (layer.tokens,), (layer.tokens, dim))
            kind, decline = DecisionKind.DENSE_CASCC, Decline.COST_MODEL
            reason = (
                f"density {layer.density:.3f}: CSR rows would take {sparse_b / dense_b:.2f}× the dense "
                "table's bytes, dense table"
            )
        ctx.record(Decision(layer.name, layer.density, cand.kernel, reason, kind=kind, decline=decline))
        return ctx.call(cand, layer.name, kind is DecisionKind.SPARSE, layer.ids)
