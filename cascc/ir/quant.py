"""Layer precision: how one prunable layer of a Program computes (fp32, or int8 with its scales).

int8 follows the convention onnxruntime and NNCF use for static quantization: weights signed 8-bit,
symmetric per output channel (zero point 0, q in [-127, 127]); the activation a layer reads unsigned 8-bit,
asymmetric per tensor. The arithmetic is defined once here (`quantize_activation`, `quantize_weight`) and
both the simulated module (`Program.module()`, the self-test's reference) and the kernels' packing use it,
so the two round identically: q = clamp(round_half_even(x · (1/scale)) + zero, 0, 255) in float32.

A mask survives quantization exactly: a pruned weight is 0, and round(0 / s) = 0.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

INT8_MAX = 127  # weights: symmetric, -127 … 127 (−128 unused, so negation is exact)
UINT8_MAX = 255


class Precision(enum.Enum):
    """The arithmetic a layer (or a whole Program, `--precision`) computes in."""

    FP32 = "fp32"
    INT8 = "int8"
    BF16 = "bf16"


@dataclass(frozen=True)
class LayerPrecision:
    """One layer's precision. int8: the input's (scale, zero point) and one weight scale per output unit;
    fp32: `reason` says why the layer stays float (a rule of the quantization pass)."""

    precision: Precision
    input_scale: float = 1.0
    input_zero: int = 0
    weight_scales: tuple[float, ...] = ()
    reason: str | None = None

    @property
    def int8(self) -> bool:
        return self.precision is Precision.INT8

    def inverse_scale(self) -> np.float32:
        """1/scale in float32, the factor activations are multiplied by before rounding."""
        return np.float32(1) / np.float32(self.input_scale)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"precision": self.precision.value}
        if self.int8:
            data.update(
                input_scale=self.input_scale,
                input_zero=self.input_zero,
                weight_scales=list(self.weight_scales),
            )
        if self.reason:
            data["reason"] = self.reason
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerPrecision:
        """The record `to_json` wrote; raises ValueError on any field out of its range."""
        precision = Precision(data["precision"])
        reason = data.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise ValueError("reason is not a string")
        if precision is not Precision.INT8:
            return cls(precision, reason=reason)
        scale, zero = float(data["input_scale"]), data["input_zero"]
        scales = tuple(float(s) for s in data["weight_scales"])
        if not (np.isfinite(scale) and scale > 0) or not all(np.isfinite(s) and s > 0 for s in scales):
            raise ValueError("a scale is not a positive finite number")
        if not isinstance(zero, int) or not 0 <= zero <= UINT8_MAX:
            raise ValueError("input_zero is not an integer in 0…255")
        return cls(precision, scale, zero, scales, reason)


def activation_params(low: float, high: float) -> tuple[float, int]:
    """(scale, zero point) of an unsigned 8-bit grid covering [low, high] (widened to include 0, so a ReLU
    output's zero and zero padding are exact)."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    scale = (high - low) / UINT8_MAX
    if not scale > 0:
        return 1.0, 0
    scale = float(np.float32(scale))
    zero = int(np.clip(round(-low / scale), 0, UINT8_MAX))
    return scale, zero


def _unit_scales(weight: torch.Tensor) -> torch.Tensor:
    """Per unit (axis 0) max |w| / 127 in float64, 1.0 for an all-zero unit."""
    peak = weight.detach().abs().reshape(weight.shape[0], -1).amax(dim=1).double()
    return torch.where(peak > 0, peak / INT8_MAX, torch.ones_like(peak))


def weight_scales(weight: torch.Tensor) -> tuple[float, ...]:
    """Symmetric per-output-unit scales (axis 0): max |w| / 127, 1.0 for an all-zero unit."""
    return tuple(float(np.float32(s)) for s in _unit_scales(weight).tolist())


def quantize_weight(weight: np.ndarray, scales) -> np.ndarray:
    """int8 codes of a weight [n, …] with per-unit `scales`: clamp(round_half_even(w / s), ±127)."""
    s = np.asarray(scales, np.float32).reshape((-1,) + (1,) * (weight.ndim - 1))
    return np.clip(np.rint(weight.astype(np.float32) / s), -INT8_MAX, INT8_MAX).astype(np.int8)


def fake_quantize_weight(weight: torch.Tensor, scales) -> torch.Tensor:
    """The weight the int8 kernel computes with, in float: codes × scale (straight-through gradient)."""
    s = torch.tensor(scales, dtype=weight.dtype).reshape((-1,) + (1,) * (weight.dim() - 1))
    return _rounded(weight, s)


def _rounded(weight: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """clamp(round(w / s), ±127) · s, exactly in value; the gradient passes straight to `weight`."""
    q = torch.clamp(torch.round(weight / s), -INT8_MAX, INT8_MAX) * s
    return q.detach() + (weight - weight.detach())


def quantize_activation(x: np.ndarray, spec: LayerPrecision) -> np.ndarray:
    """uint8 codes of an activation (numpy; the kernels' reference)."""
    q = np.rint(x.astype(np.float32) * spec.inverse_scale()) + np.float32(spec.input_zero)
    return np.clip(q, 0, UINT8_MAX).astype(np.uint8)


def fake_quantize_weight_tracking(weight: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """`fake_quantize_weight` with the scales `weight_scales` would record for the weight as it is now, per
    unit along `axis`: quantization-aware training's weight grid follows the weights it trains."""
    scales = _unit_scales(weight.movedim(axis, 0)).to(weight.dtype)
    return _rounded(weight, scales.reshape((-1,) + (1,) * (weight.dim() - 1)).movedim(0, axis))


def fake_quantize_activation(x: torch.Tensor, spec: LayerPrecision) -> torch.Tensor:
    """The activation the int8 kernel reads, in float: (codes − zero) × scale. The gradient passes straight
    through inside the grid's range and is zero where the code clamps (a clipped straight-through
    estimator: a clamped input cannot change the output)."""
    inv = torch.tensor(float(spec.inverse_scale()), dtype=torch.float32)
    raw = torch.round(x * inv) + spec.input_zero
    q = torch.clamp(raw, 0, UINT8_MAX)
    fq = (q - spec.input_zero) * torch.tensor(spec.input_scale, dtype=torch.float32)
    inside = ((raw >= 0) & (raw <= UINT8_MAX)).to(x.dtype)
    return fq.detach() + (x - x.detach()) * inside  # exactly fq in value
