"""Latency measurement: runners timed interleaved in one run, so ratios between them are fair.

Each round times `number` back-to-back calls of every runner in turn; a runner's latency is the median of
its per-call times over rounds (p90 kept too). Interleaving spreads machine noise over all runners alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ArtifactError, OptionError
from ..registry import Registry
from .artifact import Artifact, open_artifact
from .replay import baseline_module
from .running import open_session
from .selftesting import judge


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


# `--baseline`: a peer runtime timed next to the artifact, (masked module, example inputs, threads) -> call
BASELINES: Registry[Callable[..., Callable[[], object]]] = Registry("baseline")


@BASELINES.register("onnxruntime")
def _onnxruntime(module, example, threads: int) -> Callable[[], object]:
    """The masked module exported to ONNX, in onnxruntime's CPU provider."""
    from .baselines import onnxruntime_runner

    return onnxruntime_runner(module, example, threads)


@BASELINES.register("torch")
def _torch(module, example, threads: int) -> Callable[[], object]:
    """The masked module in torch eager (inference mode)."""
    from .baselines import torch_runner

    return torch_runner(module, example)


def bench(
    path: str | Path,
    *,
    rounds: int = 15,
    threads: int | None = None,
    baselines: Sequence[str] = (),
    rpc: str | None = None,
    key: str | None = None,
    model: str | None = None,
    expect_digest: str | None = None,
) -> dict[str, Any]:
    """Median/p90 latency of an artifact on its sample input, optionally interleaved with onnxruntime and
    torch eager running the same masked model (rebuilt from its source factory `model` and the recorded
    passes). With `rpc`
    (HOST:PORT of a TVM RPC server, or of a tracker when `key` names the device), the artifact runs and is
    timed on that remote device instead, after its self-test passed there."""
    import os

    import torch

    art = open_artifact(Path(path), expect_digest=expect_digest)
    if rpc is not None:
        return _bench_remote(art, rounds=rounds, rpc=rpc, key=key, baselines=baselines)
    if key is not None:
        raise OptionError(None, "--key names a device at a tracker", "pass the tracker with --rpc HOST:PORT")
    threads = threads or os.cpu_count() or 1
    inputs, _ = art.selftest_data()
    runners = {"cascc": open_session(art, threads).runner(inputs)}
    for name in baselines:
        if name not in BASELINES:
            raise OptionError(None, f"unknown baseline {name!r}", f"choose from {', '.join(BASELINES)}")
    if baselines:
        module = baseline_module(art, model)
        torch.set_num_threads(threads)
        example = [torch.from_numpy(x) for x in inputs]
        for name in baselines:
            runners[name] = BASELINES[name](module, example, threads)
    timings = measure(runners, rounds=rounds)
    base = timings["cascc"].median_us
    return {
        "artifact": str(path),
        "threads": threads,
        "rounds": rounds,
        "runners": {n: {**t.to_json(), "ratio_to_cascc": t.median_us / base} for n, t in timings.items()},
    }


def _bench_remote(
    art: Artifact, *, rounds: int, rpc: str, key: str | None, baselines: Sequence[str]
) -> dict[str, Any]:
    """Run the artifact on the remote device: its self-test first, then `rounds` timed repeats."""
    from .remote import Remote, measure

    if baselines:
        raise OptionError(
            None,
            "baselines run on this machine, not on the remote device, so their ratio would mean nothing",
            "drop --baseline with --rpc",
        )
    remote = Remote(rpc, key)
    inputs, expected = art.selftest_data()
    number = 10
    run = measure(remote, art.library, art.manifest["target"]["device"], inputs, rounds=rounds, number=number)
    check = judge([run.outputs], [expected], art.tolerance, ["sample input"])
    if not check.passed:
        raise ArtifactError(
            art.library,
            f"on the {remote.describe()} its outputs differ from the self-test reference "
            f"(max abs error {check.max_abs_error:.3g})",
            "rebuild it for the device's target (--target/--cpu) and rerun",
        )
    samples = list(run.samples_us)
    timing = Timing(statistics.median(samples), quantile(samples, 0.9), rounds, number)
    return {
        "artifact": str(art.path),
        "remote": remote.describe(),
        "selftest_max_abs_error": check.max_abs_error,
        "rounds": rounds,
        "runners": {"cascc": {**timing.to_json(), "ratio_to_cascc": 1.0}},
    }
