"""The per-target cost model: predicted time of each kernel, and the sparse-or-dense choice."""

from __future__ import annotations

from dataclasses import dataclass

from cascc.targets import KernelCosts

from .kernels.formats import TiledEll, padded


@dataclass(frozen=True)
class Choice:
    """Sparse or dense for one layer, with both predictions (µs) and the reason in words."""

    sparse: bool
    dense_us: float
    sparse_us: float
    reason: str


def batch_tile(costs: KernelCosts, batch: int) -> int:
    """Largest tile ≤ costs.dense_batch_tile dividing the batch (no tail loop)."""
    return next(t for t in range(min(costs.dense_batch_tile, batch), 0, -1) if batch % t == 0)


def narrow(costs: KernelCosts, batch: int, k: int, n: int, packed: TiledEll) -> tuple[float, float]:
    """(dense, sparse) µs for a narrow operand: weights streamed once per batch tile vs per-row tiled ELL."""
    passes = -(-batch // batch_tile(costs, batch))
    dense = costs.dense_ns_per_weight * k * padded(n, costs.dense_tile) * passes / 1e3
    per_lane = costs.broadcast_ns_per_lane if packed.shared else costs.gather_ns_per_lane
    return dense, per_lane * batch * packed.slots * packed.rows / 1e3


def wide(costs: KernelCosts, m: int, k: int, n: int, packed: TiledEll) -> tuple[float, float]:
    """(dense, sparse) µs for a wide operand of m columns (pixels × images, tokens)."""
    dense = costs.wide_dense_ns_per_mac * m * k * padded(n, costs.wide_rows) / 1e3
    return dense, costs.wide_sparse_ns_per_mac * m * packed.slots * packed.rows / 1e3


def choose(costs: KernelCosts, dense_us: float, sparse_us: float, density: float, fmt: str) -> Choice:
    """Sparse when predicted at least `margin` times faster than dense."""
    speedup = dense_us / sparse_us if sparse_us > 0 else float("inf")
    if speedup >= costs.margin:
        return Choice(
            True, dense_us, sparse_us, f"density {density:.3f}: sparse {fmt} predicted {speedup:.1f}× faster"
        )
    return Choice(
        False,
        dense_us,
        sparse_us,
        f"density {density:.3f}: sparse {fmt} predicted only {speedup:.2f}× "
        f"(needs {costs.margin}×), dense kernel",
    )
