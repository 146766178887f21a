"""Self-test: three calls on two stored cases, at a tolerance from the network's depth and output scale."""

import dataclasses

import numpy as np
import pytest
import torch

import cascc
from cascc import passes
from cascc.ir import layers
from cascc.runtime import artifact
from cascc.runtime import selftesting as selftest


def test_accumulation_depth_follows_the_deepest_chain(mlp_program, cnn_program):
    assert selftest.accumulation_depth(mlp_program) == 20 + 32 + 24
    fan_in = {ly.name: ly.fan_in for ly in layers(cnn_program)}
    # stem → conv1 → conv2 → (residual add) → dw → head: the residual path through conv1/conv2 is deeper
    assert selftest.accumulation_depth(cnn_program) == sum(fan_in.values())


def test_tolerance_scales_with_each_output():
    tol = selftest.tolerance(10_000, [[np.full(3, 2.0), np.full(2, 1e-6)], [np.full(3, -4.0), np.zeros(2)]])
    assert tol.rtol == pytest.approx(selftest.SAFETY * 2.0**-24 * 100)
    assert tol.atol == pytest.approx((tol.rtol * 4.0, tol.rtol * 1e-6))


def test_second_input_keeps_the_kind_of_the_example(mlp_program):
    ids = np.array([[3, 1, 4, 1, 5]], np.int64)
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32) * 3 + 1
    second_ids, second_x = selftest.second_input(mlp_program, [ids, x])
    assert sorted(second_ids.ravel()) == sorted(ids.ravel()) and second_ids.dtype == ids.dtype
    assert second_x.dtype == np.float32 and second_x.shape == x.shape and not np.allclose(second_x, x)
    assert abs(second_x.mean() - 1) < 1.5 and 1 < second_x.std() < 6


def tiny_output_mlp():
    """An MLP whose logits are ~1e-6: any fixed absolute tolerance near 1e-5 would pass every output."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    with torch.no_grad():
        model[2].weight.mul_(1e-6)
        model[2].bias.zero_()
    return model, (torch.randn(2, 16),)


def build(tmp_path, compiled_from=None):
    """An artifact of tiny_output_mlp whose stored references are torch's on the true model; with
    `compiled_from`, the compiled code comes from a different (wrong) program."""
    from cascc.frontends.torch import from_module
    from cascc.lower import lower
    from cascc.targets import TARGETS

    program = passes.run(from_module(*tiny_output_mlp()), [("prune.magnitude", {"sparsity": 0.5})])
    wrong = compiled_from(program) if compiled_from else program
    artifact.write(tmp_path / "a", program, lower(wrong, TARGETS["x86"]))
    return tmp_path / "a"


def test_correct_build_passes_on_all_three_calls(tmp_path):
    result = cascc.selftest(build(tmp_path))
    assert result.passed and result.calls == 3 and result.failed_call is None
    assert result.max_rel_error < 0.1  # rounding noise sits far inside the tolerance


def test_one_wrong_weight_fails_even_when_outputs_are_near_zero(tmp_path):
    """The compiled code uses one first-layer weight 5% off: the logits move by ~1e-8, which a fixed
    atol of 1e-5 accepted; a tolerance scaled to the output's magnitude does not."""

    def off_by_five_percent(program):
        w = program.masked_weights()["0.weight"].clone()
        i = int(w.abs().argmax())
        w.view(-1)[i] *= 1.05
        return program.with_weights({"0.weight": w})

    path = build(tmp_path, off_by_five_percent)
    result = cascc.selftest(path)
    assert not result.passed and result.failed_call == "sample input"
    assert result.max_abs_error < 1e-5  # within the old fixed atol, which passed it


def test_a_later_call_that_drifts_fails(tmp_path, monkeypatch):
    """A kernel right on the first call and wrong after (a stale buffer) fails on the third call."""
    from cascc.runtime import session as runtime

    path = build(tmp_path)
    calls = []
    real_run = runtime.Session.run

    def drifting(self, inputs):
        calls.append(1)
        outputs = real_run(self, inputs)
        return [y * 1.01 for y in outputs] if len(calls) == 3 else outputs

    monkeypatch.setattr(runtime.Session, "run", drifting)
    result = cascc.selftest(path)
    assert not result.passed and result.failed_call == "sample input, again" and len(calls) == 3


def test_manifest_records_the_tolerance(tmp_path):
    path = build(tmp_path)
    art = artifact.open_artifact(path)
    facts = art.manifest["selftest"]
    assert facts["cases"] == 2 and facts["accumulation_depth"] == 16 + 32
    expected = [art.selftest_data(c)[1] for c in range(2)]
    assert dataclasses.asdict(art.tolerance) == dataclasses.asdict(selftest.tolerance(48, expected))
    assert not np.allclose(art.selftest_data(0)[0][0], art.selftest_data(1)[0][0])
