"""Remote measurement over TVM RPC, on loopback: an RPC server (and a tracker) in subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import cascc
from support import assert_clean_error, invoke, model_ref


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _start(*args: str) -> subprocess.Popen:
    # own process group: the server forks a worker that outlives its parent unless the group is killed
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("rpc") / "mlp"
    cascc.compile(model_ref("mlp"), sparsity=0.9, out=out)
    return out


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    process = _start(
        "tvm.exec.rpc_server", "--host", "127.0.0.1", "--port", str(port), "--port-end", str(port + 1)
    )
    try:
        _wait_for(port)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(process)


def test_bench_measures_through_an_rpc_server(artifact, server):
    code, text = invoke("bench", artifact, "--rpc", server, "--runs", "5", "--json")
    assert code == 0, text
    result = json.loads(text[text.index("{") :])
    assert result["remote"] == f"rpc {server}"
    assert result["selftest_max_abs_error"] < 1e-4  # the outputs computed remotely match torch's
    timing = result["runners"]["cascc"]
    assert 0 < timing["median_us"] <= timing["p90_us"]


def test_check_gates_remote_latency(artifact, server):
    code, text = invoke("check", artifact, "--max-latency", "10s", "--rpc", server, "--runs", "3")
    assert code == 0, text
    assert f"rpc {server}" in text
    code, text = invoke("check", artifact, "--max-latency", "1us", "--rpc", server, "--runs", "3")
    assert code == 1 and "max_latency" in text


@pytest.mark.slow
def test_a_tracker_hands_out_the_device_by_key(artifact):
    tracker_port = _free_port()
    tracker = _start(
        "tvm.exec.rpc_tracker",
        "--host",
        "127.0.0.1",
        "--port",
        str(tracker_port),
        "--port-end",
        str(tracker_port + 1),
    )
    server = None
    try:
        _wait_for(tracker_port)
        port = _free_port()
        server = _start(
            "tvm.exec.rpc_server", "--host", "127.0.0.1", "--port", str(port), "--port-end", str(port + 1),
            "--tracker", f"127.0.0.1:{tracker_port}", "--key", "cascc-test",
        )  # fmt: skip
        _wait_for(port)
        time.sleep(1.0)  # the server registers with the tracker after it listens
        code, text = invoke(
            "bench",
            artifact,
            "--rpc",
            f"127.0.0.1:{tracker_port}",
            "--key",
            "cascc-test",
            "--runs",
            "3",
            "--json",
        )
        assert code == 0, text
        assert (
            json.loads(text[text.index("{") :])["remote"]
            == f"tracker 127.0.0.1:{tracker_port}, key cascc-test"
        )
    finally:
        for process in (server, tracker):
            if process is not None:
                _stop(process)


def test_remote_errors_are_one_paragraph(artifact, server):
    code, text = invoke("bench", artifact, "--rpc", f"127.0.0.1:{_free_port()}")
    assert_clean_error(code, text, 2, "cannot reach", "README")
    code, text = invoke("bench", artifact, "--rpc", "nowhere")
    assert_clean_error(code, text, 2, "nowhere", "HOST:PORT")
    code, text = invoke("bench", artifact, "--rpc", server, "--baseline", "onnxruntime")
    assert_clean_error(code, text, 2, "--baseline")
    code, text = invoke("bench", artifact, "--key", "pi")
    assert_clean_error(code, text, 2, "--rpc")
