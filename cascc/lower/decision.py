"""Per-layer lowering decisions: which kernel a layer got and why (no TVM import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Decision:
    """The kernel chosen for one prunable layer, with the reason shown to the user and stored in the manifest."""

    layer: str
    density: float
    kernel: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "density": self.density, "kernel": self.kernel, "reason": self.reason}
