"""Measuring an artifact on a remote device through TVM RPC: a server on the board (or a tracker that hands
out boards by key) receives the library, runs it, and times it with the VM's `time_evaluator`.

The outputs of a first run come back with the timings, so the caller checks the self-test on the device
before it reports a latency.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cascc.errors import CasccError, OptionError, first_paragraph


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


@dataclass(frozen=True, eq=False)
class RemoteRun:
    """The outputs the device computed on the inputs, and its per-call latencies (µs), one per repeat."""

    outputs: list[np.ndarray]
    samples_us: tuple[float, ...]


def measure(
    remote: Remote,
    library: Path,
    device: str,
    inputs: Sequence[np.ndarray],
    *,
    rounds: int,
    number: int = 10,
) -> RemoteRun:
    """Upload `library`, run it once on the remote `device` (the outputs come back for the self-test), then
    time `rounds` repeats of `number` calls each."""
    try:
        return _measure(remote, library, device, inputs, rounds, number)
    finally:
        # An RPC server serves one session at a time and a session ends only when every remote handle is
        # freed; VirtualMachine handles sit in reference cycles, so collect them now.
        gc.collect()


def _measure(remote, library, device, inputs, rounds, number) -> RemoteRun:
    from tvm import relax, rpc, runtime

    from .session import flatten

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
    outputs = [t.numpy() for t in flatten(vm.get_outputs("main"))]
    timer = vm.time_evaluator("invoke_stateful", dev, number=number, repeat=rounds)
    return RemoteRun(outputs, tuple(t * 1e6 for t in timer("main").results))
