"""erf and tanh as vectorizable float32 arithmetic for the fused GELU epilogues (`linear._activate`).

TVM lowers `T.erf` to a scalar call per element, which made a fused GELU cost more than the layer's matmul
(ViT-tiny's FFN: 45.7 against 10.6 µs); these polynomials vectorize with the kernel's accumulators.
"""

from __future__ import annotations

from tvm.script import tirx as T

from .norm import fast_exp

# Abramowitz & Stegun 7.1.26: erf(x) = 1 − t·(a₁ + t·(a₂ + …))·e^(−x²), t = 1 / (1 + p·x), x ≥ 0; absolute
# error below 1.5·10⁻⁷.
_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def fast_erf(x):
    """erf(x) in float32 arithmetic (see the module docstring)."""
    ax = T.abs(x)
    t = T.float32(1) / (T.float32(1) + T.float32(_P) * ax)
    poly = T.float32(_A[-1])
    for a in reversed(_A[:-1]):
        poly = poly * t + T.float32(a)
    y = T.float32(1) - poly * t * fast_exp(T.float32(0) - ax * ax)
    return T.if_then_else(x < T.float32(0), T.float32(0) - y, y)


def fast_tanh(x):
    """tanh(x) = 1 − 2 / (e^(2x) + 1), exact to float32 rounding away from 0 and within 10⁻⁷ absolute."""
    return T.float32(1) - T.float32(2) / (fast_exp(T.float32(2) * x) + T.float32(1))
