"""Cyclic learning rate, SCULPT, sign diagnostics and the perturb_signs ablation."""

from __future__ import annotations

import math

import pytest
import torch

from cascc import frontends, passes
from cascc.ir import layers
from cascc.passes.signs import agreement, flipped
from cascc.passes.train import _lr_factor
from support import EXAMPLES


@pytest.fixture(scope="module")
def fresh():
    return frontends.load(f"{EXAMPLES / 'digits.py'}:untrained_mlp")


def test_cyclic_schedule_restarts_each_cycle():
    factor = _lr_factor("cyclic", 100, cycles=4)
    assert [factor(s) for s in (0, 25, 50, 75)] == [1.0, 1.0, 1.0, 1.0]
    assert factor(12) == pytest.approx(0.5 * (1 + math.cos(math.pi * 12 / 25)))
    assert factor(24) < 0.01


def test_sculpt_prunes_once_to_the_target_and_trains(fresh):
    trained = passes.run(
        fresh, [("train.sculpt", {"data": "digits", "sparsity": 0.9, "allocator": "erk", "epochs": 8})]
    )
    assert {n: int(m.sum()) for n, m in trained.masks.items()} == dict(
        passes.density.allocate("erk", layers(fresh), 0.9)
    )
    for name, mask in trained.masks.items():
        assert torch.count_nonzero(trained.weights[name][~mask]) == 0


def test_perturb_signs_flips_exactly_the_ratio(fresh):
    sparse = passes.run(fresh, [("prune.random", {"sparsity": 0.8})])
    flipped_program = passes.run(sparse, [("signs.perturb", {"ratio": 0.25, "seed": 1})])
    share = flipped(sparse.weights, flipped_program.weights, sparse.masks)
    kept = sum(int(m.sum()) for m in sparse.masks.values())
    expected = sum(round(0.25 * int(m.sum())) for m in sparse.masks.values()) / kept
    assert share == pytest.approx(expected, abs=1e-9)
    assert agreement(sparse, flipped_program) == pytest.approx(1 - expected, abs=1e-9)
    for name in sparse.masks:  # magnitudes unchanged
        torch.testing.assert_close(flipped_program.weights[name].abs(), sparse.weights[name].abs())


def test_train_reports_signs_flipped_since_init(tmp_path):
    from support import invoke

    code, text = invoke(
        "train", "--model", f"{EXAMPLES / 'digits.py'}:untrained_mlp", "--sparsity", "0.9", "--criterion",
        "random", "--epochs", "3", "--no-baseline", "-o", tmp_path / "m.pt2",
    )  # fmt: skip
    assert code == 0, text
    assert "signs flipped since init" in text


def test_iterative_training_reports_sign_agreement_between_levels():
    import cascc

    result = cascc.train(
        f"{EXAMPLES / 'digits.py'}:untrained_mlp",
        cascc.Recipe(sparsity=0.9),
        cascc.TrainPlan(schedule="imp", rounds=2, epochs=3, rewind_epochs=0),
        baseline=False,
    )
    levels = result.signs["level_sign_agreement"]
    assert len(levels) == 2 and all(0.5 <= a <= 1.0 for a in levels)
    assert 0.0 <= result.signs["flipped_since_init"] < 0.5
