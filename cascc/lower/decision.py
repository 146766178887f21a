"""Per-layer lowering decisions: which kernel a layer got and why (no TVM import)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Decision:
    """The kernel chosen for one prunable layer, with the reason shown to the user and stored in the manifest.

    `dense_us` / `sparse_us` are the cost model's predictions (None where no model applies); `measured_us`
    holds measured µs per candidate kernel ("sparse", "dense") when compiled with --measure.
    """

    layer: str
    density: float
    kernel: str
    reason: str
    dense_us: float | None = None
    sparse_us: float | None = None
    measured_us: Mapping[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["measured_us"] = dict(self.measured_us) if self.measured_us else None
        return data
