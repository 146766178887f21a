"""Latency measurement: runners timed interleaved in one run, so ratios between them are fair.

Each round times `number` back-to-back calls of every runner in turn; a runner's latency is the median of
its per-call times over rounds (p90 kept too). Interleaving spreads machine noise over all runners alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Per-call latency of one runner in microseconds."""

    median_us: float
    p90_us: float
    rounds: int
    number: int

    def to_json(self) -> dict[str, float | int]:
        return {
            "median_us": self.median_us,
            "p90_us": self.p90_us,
            "rounds": self.rounds,
            "number": self.number,
        }


def calls_per_round(fn: Callable[[], object], target_s: float = 0.01) -> int:
    """How many calls fill about `target_s` seconds (at least 1), measured after one warm-up call."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, min(10_000, int(target_s / once)))


def measure(
    runners: Mapping[str, Callable[[], object]], *, rounds: int = 15, warmup: int = 3, target_s: float = 0.01
) -> dict[str, Timing]:
    """Median and p90 per-call latency of each runner, rounds interleaved across runners."""
    numbers = {name: calls_per_round(fn, target_s) for name, fn in runners.items()}
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(warmup + rounds):
        for name, fn in runners.items():
            n = numbers[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            elapsed = (time.perf_counter() - start) / n
            if r >= warmup:
                samples[name].append(elapsed * 1e6)
    return {
        name: Timing(statistics.median(s), quantile(s, 0.9), rounds, numbers[name])
        for name, s in samples.items()
    }


def quantile(values: list[float], q: float) -> float:
    """The `q` quantile of `values` (nearest rank, from below)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
