"""Per-layer lowering decisions: which kernel a layer got and why (no TVM import).

A decision's `kind` says what runs (a cascc sparse kernel, a cascc dense kernel, TVM's generic kernel); a
layer that does not run sparse carries a `Decline` saying why, recorded where the rewrite declined it
(`rewrite.Context.why`), never guessed afterwards from the layer kind. `kernel` and `reason` are the human
labels (CLI table, manifest), derived from the kind, the decline and the cost model's numbers.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


class DecisionKind(enum.Enum):
    """What kernel runs the layer."""

    SPARSE = "sparse"  # a cascc kernel that skips the zeros
    DENSE_CASCC = "dense"  # a cascc dense kernel
    DENSE_GENERIC = "generic"  # TVM's lowering with the target's generic schedule (or dlight on GPUs)


class Decline(enum.Enum):
    """Why a layer does not run a sparse kernel; the value is its label."""

    COST_MODEL = "the cost model predicts the sparse kernel too slow"
    SYMBOLIC_SHAPE = "symbolic shapes"
    NON_FLOAT32 = "a non-float32 weight or activation"
    LAYOUT = "a layout cascc kernels do not read (not NCHW/OIHW, not a 2-D linear, not x·Wᵀ)"
    DILATED_STRIDED = "strided dilated convolutions"
    NOT_FOLDABLE = "an epilogue that does not fold (bias shape, clip bounds other than ReLU6)"
    ATTENTION_WIDTH = "an activation matmul whose width no vector tile divides"
    NO_GPU_SPARSE_CONV = "no GPU sparse conv kernel yet"
    NOT_MATCHED = "this layer's form (no cascc pattern matched it)"

    def reason(self, density: float) -> str:
        """The reason shown for a layer of this density declined this way (an unmasked layer has no zeros to
        skip, whatever the cause: its reason says "unmasked", its `decline` still the cause)."""
        if density == 1.0 and self is not Decline.COST_MODEL:
            return "unmasked"
        if self is Decline.NO_GPU_SPARSE_CONV:
            return f"{self.value}: zeros run dense"
        return f"no cascc kernel for {self.value} yet: zeros run dense"


@dataclass(frozen=True)
class Decision:
    """The kernel chosen for one prunable layer, with the reason shown to the user and stored in the manifest.

    `dense_us` / `sparse_us` are the cost model's predictions (None where no model applies); `measured_us`
    holds measured µs per candidate kernel ("sparse", "dense") when compiled with --measure. `kind` and
    `decline` are the typed facts behind the `kernel` and `reason` labels (`decline` is None when sparse).
    """

    layer: str
    density: float
    kernel: str
    reason: str
    dense_us: float | None = None
    sparse_us: float | None = None
    measured_us: Mapping[str, float] | None = None
    kind: DecisionKind = DecisionKind.DENSE_GENERIC
    decline: Decline | None = None
    precision: str = "fp32"  # the arithmetic the kernel computes in

    @property
    def sparse(self) -> bool:
        return self.kind is DecisionKind.SPARSE

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["measured_us"] = dict(self.measured_us) if self.measured_us else None
        data["kind"] = self.kind.value
        data["decline"] = self.decline.name if self.decline else None
        return data


def declined(
    layer: str, density: float, decline: Decline, kernel: str = "dense (TVM generic schedule)"
) -> Decision:
    """A layer left to TVM's generic lowering (or to `kernel`), and why."""
    return Decision(
        layer, density, kernel, decline.reason(density), kind=DecisionKind.DENSE_GENERIC, decline=decline
    )
