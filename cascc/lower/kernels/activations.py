"""erf and tanh as vectorizable float32 arithmetic for the fused GELU epilogues (`linear._activate`).

TVM lowers `T.erf` to a scalar call per element, which made a fused GELU cost more than the layer's matmul
(ViT-tiny's FFN: 45.7 against 10.6 µs); these polynomials vectorize with the kernel's accumulators.
"""

from __future__ import annotations

from tvm.script import tirx as T

from .norm import fast_exp

# erf(x) ≈ x·P(x²) / Q(x²) on x clamped to ±4 (where erf is 1 to float32 precision): a rational fit of our
# own, least squares on [0, 4] reweighted by 1/Q until it settled (Sanathanan–Koerner); 3·10⁻⁹ in exact
# arithmetic, about 2 ulp in float32. One divide and no exp: the A&S 7.1.26 form it replaced (one divide
# plus an exp) made ViT-tiny's fused fc1 + GELU twice the cost of the layer alone.
_ERF_CLAMP = 4.0
_ERF_P = (
    1.1283791828664613,
    0.18464218085091466,
    0.05432957883721864,
    0.003837558269471315,
    0.000382898632608071,
    4.78731765467156e-06,
    -1.3695023348745084e-08,
)
_ERF_Q = (
    1.0,
    0.4969684267034933,
    0.11380346548554382,
    0.015450254739108712,
    0.0013094628387212536,
    6.407477199920257e-05,
)


def _horner(coefficients, z):
    acc = T.float32(coefficients[-1])
    for c in reversed(coefficients[:-1]):
        acc = acc * z + T.float32(c)
    return acc


def fast_erf(x):
    """erf(x) in float32 arithmetic (see the comment above)."""
    x = T.max(T.min(x, T.float32(_ERF_CLAMP)), T.float32(-_ERF_CLAMP))
    z = x * x
    return x * _horner(_ERF_P, z) / _horner(_ERF_Q, z)


def fast_tanh(x):
    """tanh(x) = 1 − 2 / (e^(2x) + 1), exact to float32 rounding away from 0 and within 10⁻⁷ absolute."""
    return T.float32(1) - T.float32(2) / (fast_exp(T.float32(2) * x) + T.float32(1))
