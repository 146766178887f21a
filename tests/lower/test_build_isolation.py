"""Code generation runs in a child process: a native crash there is a cascc error naming the kernel (exit
101, no artifact), and no kernel may hand LLVM a vector wider than the lane limit."""

from __future__ import annotations

import ctypes

import pytest
import tvm
from tvm.script import tirx as T

from cascc.errors import LoweringError
from cascc.lower import schedules
from cascc.lower.build import Crash, in_child
from support import assert_clean_error, invoke, model_ref


def segfault() -> None:
    """A real native crash: read address 0."""
    ctypes.string_at(0)


def test_a_child_returns_its_result_and_raises_its_errors(tmp_path):
    assert in_child(lambda: [1, 2], tmp_path) == [1, 2]
    with pytest.raises(LoweringError, match="from the child"):
        in_child(lambda: (_ for _ in ()).throw(LoweringError(None, "from the child")), tmp_path)


def test_a_child_that_segfaults_is_reported_not_fatal(tmp_path):
    crash = in_child(segfault, tmp_path)
    assert isinstance(crash, Crash)
    assert crash.signal == "SIGSEGV"


def test_a_crash_in_codegen_names_the_kernel_and_leaves_no_artifact(tmp_path, monkeypatch):
    """tvm.compile dies natively; the bisection finds the one kernel whose own build crashes (the
    classifier's, second of the MLP's three layers), and the CLI exits 101 with one paragraph."""
    real_build = tvm.tirx.build

    def crashing_build(mod, *args, **kwargs):
        if any("2_weight" in gv.name_hint for gv in mod.get_global_vars()):
            segfault()
        return real_build(mod, *args, **kwargs)

    monkeypatch.setattr(tvm, "compile", lambda *a, **k: segfault())
    monkeypatch.setattr(tvm.tirx, "build", crashing_build)
    out = tmp_path / "out"
    code, text = invoke("compile", model_ref("mlp"), "-o", out)
    assert_clean_error(code, text, 101, "crashed (SIGSEGV) while building kernel", "2_weight")
    assert not out.exists()
    assert not list(tmp_path.iterdir())  # no partial or temporary artifact directory either


def test_a_crash_no_single_kernel_reproduces_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(tvm, "compile", lambda *a, **k: segfault())
    code, text = invoke("compile", model_ref("mlp"), "-o", tmp_path / "out")
    assert_clean_error(code, text, 101, "crashed (SIGSEGV)", "no kernel crashes alone")


LANES = 51076  # one 226×226 plane: the vector that once aborted LLVM


@T.prim_func
def whole_plane_fill(A: T.Buffer((LANES,), "float32")):
    T.func_attr({"tirx.is_scheduled": True})
    for c in range(2):
        if c == 0:
            for v in T.vectorized(LANES):
                A[v] = T.float32(0)


@T.prim_func
def chunked_fill(A: T.Buffer((LANES,), "float32")):
    T.func_attr({"tirx.is_scheduled": True})
    for f in range(LANES // 4):
        for v in T.vectorized(4):
            A[f * 4 + v] = T.float32(0)


def test_a_vector_wider_than_the_lane_limit_is_refused_before_llvm():
    assert schedules.vector_extents(tvm.IRModule({"ok": chunked_fill})) == {"ok": 4}
    with pytest.raises(LoweringError, match=r"whole_plane \(51076 lanes\)"):
        schedules.check_scheduled(tvm.IRModule({"whole_plane": whole_plane_fill, "ok": chunked_fill}))
