"""The per-target cost model: predicted time of each linear kernel, and the sparse-or-dense choice."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascc.targets import KernelCosts

from .kernels.formats import TiledEll, padded


@dataclass(frozen=True)
class Choice:
    """The kernel picked for one linear layer, with both predictions (µs) and the reason in words."""

    sparse: bool
    dense_us: float
    sparse_us: float | None
    reason: str


def dense_us(costs: KernelCosts, batch: int, k: int, n: int) -> float:
    passes = -(-batch // batch_tile(costs, batch))
    return costs.dense_ns_per_weight * k * padded(n, costs.dense_tile) * passes / 1e3


def batch_tile(costs: KernelCosts, batch: int) -> int:
    """Largest tile ≤ costs.dense_batch_tile dividing the batch (no tail loop)."""
    return next(t for t in range(min(costs.dense_batch_tile, batch), 0, -1) if batch % t == 0)


def sparse_us(costs: KernelCosts, batch: int, packed: TiledEll) -> float:
    per_lane = costs.broadcast_ns_per_lane if packed.shared else costs.gather_ns_per_lane
    return per_lane * batch * packed.slots * packed.rows / 1e3


def choose(costs: KernelCosts, batch: int, weight: np.ndarray, packed: TiledEll) -> Choice:
    """Sparse when the model predicts it at least `margin` times faster than the packed dense kernel."""
    n, k = weight.shape
    dense = dense_us(costs, batch, k, n)
    sparse = sparse_us(costs, batch, packed)
    density = packed.nnz / weight.size if weight.size else 0.0
    speedup = dense / sparse if sparse > 0 else float("inf")
    fmt = "r×1 blocks, broadcast" if packed.shared else "gather"
    if speedup >= costs.margin:
        return Choice(True, dense, sparse, f"density {density:.3f}: sparse {fmt} predicted {speedup:.1f}× faster")
    return Choice(False, dense, sparse, f"density {density:.3f}: sparse {fmt} predicted only {speedup:.2f}× "
                                        f"(needs {costs.margin}×), dense kernel")
