"""Self-test cases and their tolerance: how closely compiled outputs must match torch eager.

An artifact stores two cases, its example input and a second, seeded input of the same kind, each with
torch eager's output on the masked model. `cascc run --selftest` runs the example, the second input, then
the example again, so a kernel that leaves part of a reused buffer unwritten fails on the later calls.

The tolerance follows the arithmetic rather than a fixed number. An fp32 sum of n products reordered (as
TVM's kernels reorder torch's) differs by about √n·u of the sum's magnitude (u = 2⁻²⁴, errors of random
sign), and the errors of a chain of layers add up along it, so the output of a network whose deepest
chain accumulates D products in all differs by about √D·u times the output's scale. The bound allows
SAFETY times that: ResNet-50 (D = 53,075) gets 8.8·10⁻⁴ of the output's scale, where its dense 224-px build
measured 2% of that bound, and the digits MLP (D = 576) 9·10⁻⁵, while a wrong kernel (a dropped tap, a
stale tile) errs by a sizeable fraction of the output. The
scale is the output's own largest magnitude, so an output that is near zero everywhere gets a tolerance
near zero too, not a fixed absolute one that passes anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..ir import Program, layers

UNIT_ROUNDOFF = 2.0**-24
SAFETY = 64.0
TINY = float(np.finfo(np.float32).tiny)
# the three calls of a self-test: (case index, label)
CALLS = ((0, "sample input"), (1, "second input"), (0, "sample input, again"))


@dataclass(frozen=True)
class Tolerance:
    """|got − expected| ≤ atol[k] + rtol·|expected| for output k."""

    rtol: float
    atol: tuple[float, ...]
    accumulation_depth: int

    def to_json(self) -> dict:
        return {"rtol": self.rtol, "atol": list(self.atol), "accumulation_depth": self.accumulation_depth}


@dataclass(frozen=True)
class SelfTest:
    """Outcome of the self-test calls against the stored torch-eager outputs."""

    passed: bool
    max_abs_error: float
    max_rel_error: float  # of the error to the tolerance: ≤ 1 passes
    rtol: float
    atol: float  # the largest of the per-output atols
    calls: int
    failed_call: str | None = None


def accumulation_depth(program: Program) -> int:
    """Products summed along the deepest chain of layers: the largest Σ fan-in over any producer path."""
    depth: dict[str, int] = {}
    for layer in layers(program):  # graph order: producers come first
        depth[layer.name] = layer.fan_in + max((depth.get(p, 0) for p in layer.producers), default=0)
    return max(depth.values(), default=1)


def tolerance(depth: int, expected_cases: Sequence[Sequence[np.ndarray]]) -> Tolerance:
    """The tolerance for outputs whose network accumulates `depth` products, scaled by each output's
    largest magnitude over all cases."""
    rtol = SAFETY * UNIT_ROUNDOFF * math.sqrt(max(depth, 1))
    atol = []
    for k in range(len(expected_cases[0])):
        values = [np.abs(case[k]).max() for case in expected_cases if case[k].size]
        scale = float(max(values, default=0.0))
        # never below float32's smallest normal: kernels may flush subnormals to zero (x86 FTZ/DAZ)
        atol.append(max(rtol * scale, TINY) if math.isfinite(scale) else TINY)
    return Tolerance(rtol, tuple(atol), depth)


def second_input(program: Program, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """A second input of the same kind as the example, seeded by the program's seed: floats drawn from a
    normal with the example's mean and spread, integers and booleans as a permutation of the example's
    values (token ids stay in range)."""
    rng = np.random.default_rng([program.seed, 0x5E1F])
    second = []
    for x in inputs:
        if np.issubdtype(x.dtype, np.floating) and x.size:
            spread = float(x.std()) or 1.0
            second.append((rng.standard_normal(x.shape) * spread + float(x.mean())).astype(x.dtype))
        else:
            second.append(rng.permutation(x.reshape(-1)).reshape(x.shape))
    return second


def judge(
    got: Sequence[Sequence[np.ndarray]],
    expected: Sequence[Sequence[np.ndarray]],
    tol: Tolerance,
    labels: Sequence[str],
) -> SelfTest:
    """Each call's outputs against its case's expected outputs; the first call out of tolerance is named."""
    worst_abs, worst_rel, failed = 0.0, 0.0, None
    for outs, want, label in zip(got, expected, labels, strict=True):
        ok = len(outs) == len(want)
        for k, (g, e) in enumerate(zip(outs, want, strict=False)):  # a count mismatch is `ok` above
            if g.shape != e.shape:
                ok = False
                continue
            if not g.size:
                continue
            err = np.abs(g.astype(np.float64) - e.astype(np.float64))
            allowed = tol.atol[k] + tol.rtol * np.abs(e)
            worst_abs = max(worst_abs, float(np.nan_to_num(err, nan=np.inf).max()))
            worst_rel = max(worst_rel, float(np.nan_to_num(err / allowed, nan=np.inf).max()))
            ok = ok and bool((err <= allowed).all())
        if not ok and failed is None:
            failed = label
    return SelfTest(
        failed is None, worst_abs, worst_rel, tol.rtol, max(tol.atol, default=0.0), len(got), failed
    )
