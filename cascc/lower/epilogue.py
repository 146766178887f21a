"""Epilogue folding: what follows a layer's core op (bias, BatchNorm, ReLU/ReLU6, see `patterns.py`) becomes
the kernel's effective weight, per-output bias and activation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .patterns import Chain, LayerPatterns


@dataclass(frozen=True, eq=False)
class Epilogue:
    """What follows the layer's core op, folded: effective weight, per-output bias and activation."""

    weight: np.ndarray
    bias: np.ndarray | None
    act: str | None
    groups: int = 1  # > 1: `weight` is a grouped conv's block-diagonal expansion
    inflation: float = 1.0  # `weight` ÷ the layer's own, in taps (the zero taps a polyphase conv adds)

    @property
    def density(self) -> float:
        """The layer's density (of its own weight, not of a block-diagonal or polyphase expansion)."""
        return min(1.0, density_of(self.weight) * self.groups * self.inflation)


def fold(pats: LayerPatterns, chain: Chain, m, weight: np.ndarray) -> Epilogue | None:
    """Fold bias and BatchNorm into (weight, bias) and read the activation; None if the match is not foldable."""
    n = weight.shape[0]
    bias = None
    if chain.bias:
        bias = m[pats.bias].value.numpy().astype(np.float32).reshape(-1)
        if bias.shape != (n,):
            return None
    if chain.batch_norm:
        gamma, beta, mean, var = (m[c].value.numpy().astype(np.float64) for c in pats.bn_consts)
        eps = float(m[chain.bn_call].attrs.epsilon)
        scale = gamma / np.sqrt(var + eps)
        weight = (weight * scale.reshape((n,) + (1,) * (weight.ndim - 1))).astype(np.float32)
        bias = ((bias if bias is not None else 0.0) - mean) * scale + beta
        bias = bias.astype(np.float32)
    if chain.act == "relu6":
        lo, hi = (_prim_value(m[p]) for p in (pats.clip_lo, pats.clip_hi))
        if (lo, hi) != (0.0, 6.0):
            return None
    return Epilogue(weight, bias, chain.act)


def _prim_value(expr) -> float | None:
    """The number a clip bound holds: a FloatImm/IntImm (TVM's torch importer) or a PrimValue wrapping one."""
    value = getattr(expr, "value", None)
    if isinstance(value, (int, float)):
        return float(value)
    return float(value.value) if hasattr(value, "value") else None


def density_of(weight: np.ndarray) -> float:
    """Share of nonzero entries."""
    return float(np.count_nonzero(weight)) / weight.size if weight.size else 0.0


def block_diagonal(weight: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv's weight [O, C/G, kh, kw] as the equivalent full weight [O, C, kh, kw]: group g's
    outputs see only its own input channels, every other entry is zero (and skipped by the sparse kernel)."""
    out_c, per_group = weight.shape[:2]
    full = np.zeros((out_c, per_group * groups, *weight.shape[2:]), np.float32)
    step = out_c // groups
    for g in range(groups):
        full[g * step : (g + 1) * step, g * per_group : (g + 1) * per_group] = weight[
            g * step : (g + 1) * step
        ]
    return full
