"""The per-target cost model: predicted time of each kernel, and the sparse-or-dense choice.

Every formula of the lowering is here, except a weight format's own price, which its record in `formats/`
holds (stored lanes × ns per lane for the narrow formats, bytes for CSR). Constants come from the target's
`KernelCosts`.
"""

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


def parallel(costs: KernelCosts, cores: int, predicted_us: float) -> bool:
    """Parallel only where the kernel's work repays the thread-pool launch."""
    return cores > 1 and predicted_us >= costs.parallel_min_us


def batch_tile(costs: KernelCosts, batch: int) -> int:
    """Largest tile ≤ costs.dense_batch_tile dividing the batch (no tail loop)."""
    return next(t for t in range(min(costs.dense_batch_tile, batch), 0, -1) if batch % t == 0)


def narrow_dense(costs: KernelCosts, batch: int, k: int, n: int) -> float:
    """µs of the packed dense kernel on a narrow operand: weights streamed once per batch tile."""
    passes = -(-batch // batch_tile(costs, batch))
    return costs.dense_ns_per_weight * k * padded(n, costs.dense_tile) * passes / 1e3


def wide_dense(costs: KernelCosts, m: int, k: int, n: int) -> float:
    """µs of the dense wide GEMM on an operand of m columns (pixels × images, tokens)."""
    return costs.wide_dense_ns_per_mac * m * k * padded(n, costs.wide_rows) / 1e3


def wide_sparse(ns_per_lane: float, m: int, packed: TiledEll) -> float:
    """µs of a wide tiled-ELL kernel: each stored lane (padding included) once per operand column."""
    return ns_per_lane * m * packed.slots * packed.rows / 1e3


def copy_us(costs: KernelCosts, floats: int) -> float:
    """µs to write `floats` fp32 values (im2col, pad, crop): at cache speed, or memory speed past the cache."""
    size = 4 * floats
    return size * (costs.copy_ns_per_byte if size <= costs.cache_bytes else costs.memory_ns_per_byte) / 1e3


def spill_us(costs: KernelCosts, floats: int, tiles: int) -> float:
    """µs a wide kernel streaming an operand of `floats` values once per row tile pays when the operand
    is larger than the cache: each pass reads it from memory (on ResNet-18's 7×7 stem, 7.4 MB of im2col
    operand read by four 16-row tiles made the GEMM 2.1× slower per MAC than on the phases of its input)."""
    size = 4 * floats
    return tiles * size * costs.memory_ns_per_byte / 1e3 if size > costs.cache_bytes else 0.0


def depthwise_dense(costs: KernelCosts, batch: int, channels: int, out_hw, kernel) -> float:
    """µs of a dense depthwise conv: every tap of every output pixel."""
    return costs.depthwise_ns_per_mac * batch * channels * out_hw[0] * out_hw[1] * kernel[0] * kernel[1] / 1e3


def depthwise_sparse(
    costs: KernelCosts, batch: int, channels: int, height: int, width: int, nnz: int
) -> float:
    """µs of the sparse depthwise kernel in dense-tap units: each stored tap, plus per channel the tile and
    store work (fitted)."""
    taps = costs.depthwise_sparse_tap * nnz + costs.depthwise_sparse_channel * channels
    return costs.depthwise_ns_per_mac * batch * height * width * taps / 1e3


def batched_matmul(costs: KernelCosts, batch: int, rows: int, k: int, n: int) -> float:
    """µs of the activation × activation kernel, at the dense wide GEMM's rate."""
    return costs.wide_dense_ns_per_mac * batch * rows * k * n / 1e3


def gpu_us(costs: KernelCosts, moved_bytes: float) -> float:
    """µs of a GPU kernel: bytes over the effective bandwidth, plus one launch."""
    return moved_bytes / costs.gpu_bytes_per_ns / 1000 + costs.gpu_launch_us


def gpu_dense(costs: KernelCosts, batch: int, k: int, n: int) -> float:
    """µs of the dense GPU matmul: the weight and the activations in, the output out."""
    return gpu_us(costs, 4 * (n * k + batch * (k + n)))
