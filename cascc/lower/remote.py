"""Measuring an artifact on a remote device through TVM RPC: a server on the board (or a tracker that hands
out boards by key) receives the library, runs it, and times it with the VM's `time_evaluator`.

The remote run first checks the artifact's self-test on the device, so a latency from a board that computes
something else is never reported.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cascc.errors import ArtifactError, CasccError, OptionError, first_paragraph


@dataclass(frozen=True)
class Remote:
    """Where to run: an RPC server at `address` (HOST:PORT), or a tracker there when `key` is given."""

    address: str
    key: str | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.address.rpartition(":")
        if not (sep and host and port.isdigit()):
            raise OptionError(self.address, "not HOST:PORT", "pass e.g. --rpc 192.168.1.20:9090")
        return host, int(port)

    def describe(self) -> str:
        return f"tracker {self.address}, key {self.key}" if self.key else f"rpc {self.address}"


@dataclass(frozen=True)
class RemoteRun:
    """Per-call latencies (µs) measured on the device and the self-test's largest error there."""

    samples_us: tuple[float, ...]
    max_abs_error: float

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples_us)

    @property
    def p90_us(self) -> float:
        ordered = sorted(self.samples_us)
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def measure(
    remote: Remote,
    library: Path,
    device: str,
    inputs: Sequence[np.ndarray],
    expected: Sequence[np.ndarray],
    *,
    rounds: int,
    rtol: float,
    atol: float,
    number: int = 10,
) -> RemoteRun:
    """Upload `library`, check its self-test on the remote `device`, then time `rounds` repeats of `number`
    calls each (after a warm-up call)."""
    try:
        return _measure(remote, library, device, inputs, expected, rounds, rtol, atol, number)
    finally:
        # An RPC server serves one session at a time and a session ends only when every remote handle is
        # freed; VirtualMachine handles sit in reference cycles, so collect them now.
        gc.collect()


def _measure(remote, library, device, inputs, expected, rounds, rtol, atol, number) -> RemoteRun:
    from tvm import relax, rpc, runtime

    host, port = remote.host_port
    try:
        session = (
            rpc.connect_tracker(host, port).request(remote.key) if remote.key else rpc.connect(host, port)
        )
    except Exception as exc:  # TVM raises bare RuntimeError/TVMError for every connection problem
        raise CasccError(
            remote.address,
            f"cannot reach the {remote.describe()}: {first_paragraph(exc)}",
            "start it on the device (README: Remote devices) and check the address, port and key",
        ) from exc
    name = f"cascc-{library.stat().st_size}-{library.name}"
    session.upload(str(library), name)
    dev = session.device(device, 0)
    vm = relax.VirtualMachine(session.load_module(name), dev)
    args = [runtime.tensor(np.ascontiguousarray(x), dev) for x in inputs]
    vm.set_input("main", *args)
    vm.invoke_stateful("main")  # results stay on the device; get_outputs fetches tuples field by field
    outputs = _flatten(vm.get_outputs("main"))
    errors = [float(np.max(np.abs(o.numpy() - e))) if e.size else 0.0 for o, e in zip(outputs, expected)]
    if len(outputs) != len(expected) or not all(
        np.allclose(o.numpy(), e, rtol=rtol, atol=atol) for o, e in zip(outputs, expected)
    ):
        raise ArtifactError(
            library,
            f"on the {remote.describe()} its outputs differ from the self-test reference "
            f"(max abs error {max(errors, default=float('nan')):.3g})",
            "rebuild it for the device's target (--target/--cpu) and rerun",
        )
    timer = vm.time_evaluator("invoke_stateful", dev, number=number, repeat=rounds)
    samples = tuple(t * 1e6 for t in timer("main").results)
    return RemoteRun(samples, max(errors, default=0.0))


def _flatten(value) -> list:
    if hasattr(value, "numpy"):
        return [value]
    return [leaf for item in value for leaf in _flatten(item)]
