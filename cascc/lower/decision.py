"""Per-layer lowering decisions: which kernel a layer got and why (no TVM import)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Decision:
    """The kernel chosen for one prunable layer, with the reason shown to the user and stored in the manifest.

    `dense_us` / `sparse_us` are the cost model's predictions (None where no model applies).
    """

    layer: str
    density: float
    kernel: str
    reason: str
    dense_us: float | None = None
    sparse_us: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
