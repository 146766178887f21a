"""The per-target cost model: predicted time of each kernel, and the sparse-or-dense choice."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascc.targets import KernelCosts

from .kernels.formats import TiledEll, block_lanes, ell_lanes, padded


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


def narrow_dense(costs: KernelCosts, batch: int, k: int, n: int) -> float:
    """µs of the packed dense kernel on a narrow operand: weights streamed once per batch tile."""
    passes = -(-batch // batch_tile(costs, batch))
    return costs.dense_ns_per_weight * k * padded(n, costs.dense_tile) * passes / 1e3


@dataclass(frozen=True)
class NarrowFormat:
    """One sparse packing of a narrow layer: "gather" or "broadcast" tiled ELL, or 1×`width` "block" rows."""

    kind: str
    rows: int
    width: int
    us: float

    @property
    def label(self) -> str:
        if self.kind == "block":
            return f"BSR 1×{self.width} ({self.rows}-row tiles)"
        return f"tiled-ELL {self.rows}-row {'r×1 broadcast' if self.kind == 'broadcast' else 'gather'}"


def narrow_formats(costs: KernelCosts, batch: int, weight: np.ndarray) -> list[NarrowFormat]:
    """Every sparse format the target offers for a narrow layer, with its predicted µs (stored weights,
    padding included, counted without packing), fastest first."""
    u, rows, us = costs.sparse_unroll, costs.sparse_rows, batch / 1e3  # ns per row of x → µs per batch
    formats = [
        NarrowFormat("gather", rows, 1, us * costs.gather_ns_per_lane * ell_lanes(weight, rows, u, False))
    ]
    formats += [
        NarrowFormat("broadcast", r, 1, us * ns * ell_lanes(weight, r, u, True))
        for r, ns in costs.broadcast_ns_per_lane
    ]
    formats += [
        NarrowFormat("block", r, c, us * ns * block_lanes(weight, r, c))
        for c, r, ns in costs.block_ns_per_lane
        if c <= weight.shape[1]
    ]
    return sorted(formats, key=lambda f: f.us)


def wide(costs: KernelCosts, m: int, k: int, n: int, packed: TiledEll) -> tuple[float, float]:
    """(dense, sparse) µs for a wide operand of m columns (pixels × images, tokens)."""
    dense = costs.wide_dense_ns_per_mac * m * k * padded(n, costs.wide_rows) / 1e3
    per_lane = costs.wide_shared_ns_per_mac if packed.shared else costs.wide_sparse_ns_per_mac
    return dense, per_lane * m * packed.slots * packed.rows / 1e3


def wide_shared_pays(costs: KernelCosts, weight: np.ndarray) -> bool:
    """Whether the wide tiled ELL should share a column per tile: cheaper per stored weight, but a tile then
    stores the union of its rows' columns (r×1 blocks: no more than per row; unstructured: far more)."""
    rows = costs.wide_rows
    per_row = costs.wide_sparse_ns_per_mac * ell_lanes(weight, rows, 1, False)
    return costs.wide_shared_ns_per_mac * ell_lanes(weight, rows, 1, True) < per_row


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
