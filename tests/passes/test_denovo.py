"""De novo sparse training (issue 20): FLOPs budgets, the trainability allocator, cascade-guided regrowth,
the gradient-signal figures of the analysis and the preset's history record."""

from __future__ import annotations

import math

import pytest
import torch

from cascc import frontends, passes
from cascc.errors import CasccError
from cascc.ir import layers
from cascc.passes import budget
from cascc.passes.analysis import analyze
from cascc.passes.density import allocate, gain_margin
from cascc.passes.schedules import DropGrow, cascade_score, starved_units
from cascc.passes.train import diagnostics
from support import EXAMPLES


@pytest.fixture(scope="module")
def mnist1d_cnn():
    return frontends.load(f"{EXAMPLES / 'mnist1d.py'}:wide_cnn")


@pytest.fixture(scope="module")
def fresh_mlp():
    return frontends.load(f"{EXAMPLES / 'digits.py'}:untrained_mlp")


def test_step_cost_weighs_each_layer_by_its_output_positions(mnist1d_cnn):
    # stride-2 convs on a length-40 signal: 19, 10 and 5 output positions; the linear head is applied once
    assert budget.positions(mnist1d_cnn) == {
        "conv1.weight": 19,
        "conv2.weight": 10,
        "conv3.weight": 5,
        "linear.weight": 1,
    }
    masks = {layer.name: torch.zeros(layer.weight_shape, dtype=torch.bool) for layer in layers(mnist1d_cnn)}
    masks["conv2.weight"][0, 0, 0] = True  # one kept weight in conv2, applied at 10 positions
    masks["linear.weight"][:, :3] = True  # 30 kept in the head, applied once
    masks["conv1.weight"][:] = True  # conv1 dense: 320 weights × 19
    cost = budget.step_cost(mnist1d_cnn, masks)
    dense = 320 * 19 + 64 * 64 * 3 * (10 + 5) + 3200
    assert cost.dense == dense
    assert cost.sparse == 320 * 19 + 10 + 30
    assert cost.ratio == pytest.approx((320 * 19 + 40) / dense)


def test_equal_flops_epochs_pay_the_dense_budget_and_respect_the_cap():
    cost = budget.StepCost(dense=1000.0, sparse=80.0)  # a sparse step is 8% of a dense one
    assert budget.equal_flops_epochs(30, cost) == 375  # 30 / 0.08
    assert budget.equal_flops_epochs(30, cost, cap=10) == 300
    overhead = budget.regrowth_overhead(every=100, stop=0.75)
    assert overhead == pytest.approx(0.0025)
    stretched = budget.equal_flops_epochs(30, cost, overhead=overhead)
    assert stretched == math.floor(30 / 0.0825)
    assert stretched * (0.08 + overhead) <= 30  # never more FLOPs than the dense run
    assert budget.equal_flops_epochs(30, budget.StepCost(1000.0, 1000.0)) == 30  # dense: as given


def test_fit_with_a_flops_budget_trains_the_stretched_epoch_count(fresh_mlp):
    sparse = passes.run(
        fresh_mlp, [("prune.random", {"sparsity": 0.9, "allocator": "erk"}), ("reparam.sparse_init", {})]
    )
    ratio = budget.step_cost(sparse).ratio
    assert ratio == pytest.approx(0.1, abs=1e-3)  # an MLP's FLOP density is its density
    collected: dict = {}
    token = diagnostics.set(collected)
    try:
        fit = {"data": "digits", "epochs": 1, "budget": "flops", "budget_cap": 3, "schedule": "rigl"}
        trained = passes.run(sparse, [("train.fit", fit)])
    finally:
        diagnostics.reset(token)
    assert collected["budget"]["epochs"] == 3  # 1 / 0.1 epochs, capped at 3
    assert collected["budget"]["flops_vs_dense"] <= 1.0
    assert trained.history[-1].options["budget"] == "flops"
    with pytest.raises(CasccError, match="unknown training budget"):
        passes.run(sparse, [("train.fit", {"data": "digits", "epochs": 1, "budget": "joules"})])


def test_gain_allocator_minimizes_the_log_gain_spread_under_the_budget(mnist1d_cnn):
    prunable = layers(mnist1d_cnn)
    erk = allocate("erk", prunable, 0.9)
    gain = allocate("gain", prunable, 0.9)
    assert sum(gain.values()) == sum(erk.values())  # the same budget, exactly
    by_name = {layer.name: layer for layer in prunable}

    def spread(allocation):  # Σ_l 2/k_l: the log-variance of the signal gain through depth
        return sum(2 * by_name[n].fan_out / k for n, k in allocation.items())

    assert spread(gain) < spread(erk)
    # conv1 (fan-in 5) is cheap: dense; the two 64-channel convs get the same count; the head fewer than ERK's
    assert gain["conv1.weight"] == 320
    assert abs(gain["conv2.weight"] - gain["conv3.weight"]) <= 1
    assert gain["linear.weight"] < erk["linear.weight"]
    # first-order optimality among the free layers: moving weights from one to another raises the spread
    moved = dict(
        gain, **{"conv2.weight": gain["conv2.weight"] - 50, "linear.weight": gain["linear.weight"] + 50}
    )
    assert spread(moved) > spread(gain)
    assert gain_margin(prunable, gain) > gain_margin(prunable, erk)


def test_starved_units_are_silent_rows_and_rows_far_below_the_mean_in_degree():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 0, 1]], dtype=torch.bool)
    grad = torch.tensor([[0.1, 0.2, 0.0, 0.3], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.1, 0, 0, 0]])
    # row 1 gets no gradient at all (a silent ReLU), row 2 has no input; rows 0 and 3 are fine
    assert starved_units(mask, grad).tolist() == [False, True, True, False]
    assert starved_units(mask, None).tolist() == [False, False, True, False]


def test_cascade_growth_feeds_each_starved_row_before_following_the_gradient():
    gen = torch.Generator().manual_seed(0)
    survivors = torch.tensor([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    score = torch.tensor([[0.0, 0.9, 0.8, 0.7], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    starved = torch.tensor([False, True, True])
    ranked = cascade_score(score, starved, survivors, gen)
    top3 = set(torch.topk(torch.where(survivors, -1.0, ranked).flatten(), 3).indices.tolist())
    rows = {i // 4 for i in top3}
    assert rows == {0, 1, 2}  # one grown weight in each starved row, the third by |∇| in row 0
    assert 1 in top3  # …the largest gradient (0.9)
    assert torch.equal(cascade_score(score, torch.zeros(3, dtype=torch.bool), survivors, gen), score)


def test_rigl_cascade_revives_a_silent_unit_that_rigl_never_grows_into():
    """Row 1 has no kept weight and no gradient: RigL's |∇| ranking never picks it, cascade growth does
    and starts its new weight at the He scale (non-zero), so the unit can fire."""
    weight = torch.tensor([[0.5, 0.4, 0.3, 0.0], [0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    weight.grad = torch.tensor([[0.0, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    for grow, expect_row1 in (("gradient", False), ("cascade", True)):
        w = weight.detach().clone().requires_grad_(True)
        w.grad = weight.grad.clone()
        mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]], dtype=torch.bool)
        w.data[1, 0] = 1e-3  # row 1 keeps one tiny weight: the drop removes it
        schedule = DropGrow(grow, alpha=0.5, every=1, seed=0)
        schedule.start({"w": mask}, total_steps=1000)
        masks = {"w": mask.clone()}
        assert schedule.update(1, {"w": w}, masks)
        assert int(masks["w"].sum()) == int(mask.sum())  # counts are kept
        assert bool(masks["w"][1].any()) is expect_row1, grow
        if expect_row1:
            grown = masks["w"][1] & ~mask[1]
            assert bool((w.detach()[1][grown] != 0).all())


def test_analysis_reports_where_the_gradient_signal_lies(fresh_mlp):
    dense = analyze(fresh_mlp, data="digits", samples=64)
    assert all(row.grad_share_pruned == 0.0 and row.grad_rms_pruned is None for row in dense.layers)
    assert all(row.grad_rms_kept > 0 for row in dense.layers)
    sparse = passes.run(
        fresh_mlp, [("prune.random", {"sparsity": 0.9, "seed": 1}), ("reparam.sparse_init", {})]
    )
    report = analyze(sparse, data="digits", samples=64)
    for row in report.layers:
        # a random 10% mask sees about 10% of a dense-looking gradient; most of the signal lies outside it
        assert 0.5 < row.grad_share_pruned < 1.0
        assert row.silent_units is not None and 0 <= row.silent_units <= row.units


def test_analysis_counts_units_that_never_fire_as_silent(fresh_mlp):
    first = layers(fresh_mlp)[0]
    weight = fresh_mlp.weights[first.name].clone()
    bias = torch.full_like(fresh_mlp.weights[first.bias], 1e4)  # every unit fires on every input…
    bias[:5] = -1e4  # …but five, below zero everywhere
    weight[:] = 0.0
    program = fresh_mlp.with_weights({first.name: weight, first.bias: bias})
    row = analyze(program, data="digits", samples=32).layers[0]
    assert row.silent_units == 5
