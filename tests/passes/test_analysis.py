"""Cascade analysis: exact reachability against brute-force references, analytic recursion against the exact
counts and a Monte-Carlo forward pass, verdicts, and the HTML report."""

import base64
import dataclasses
import re

import pytest
import torch

from cascc import passes
from cascc.ir import layers
from cascc.passes import analysis, connectivity


def chain_reference(masks):
    """Reachability and co-reachability of an MLP by boolean matrix products (independent of cascc)."""
    live = torch.ones(masks[0].shape[1], dtype=torch.bool)
    reach = []
    for m in masks:
        live = (m.float() @ live.float()) > 0
        reach.append(live)
    useful = torch.ones(masks[-1].shape[0], dtype=torch.bool)
    co = [useful]
    for m in reversed(masks[1:]):
        useful = (m.t().float() @ useful.float()) > 0
        co.insert(0, useful)
    return reach, co


@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.95])
def test_exact_reachability_matches_matrix_products_on_an_mlp(mlp_program, sparsity):
    pruned = passes.run(mlp_program, [("prune.random", {"sparsity": sparsity, "seed": 3})])
    prunable = layers(pruned)
    got = connectivity.exact(prunable, pruned.masks)
    reach, co = chain_reference([pruned.masks[layer.name] for layer in prunable])
    for layer, r, c in zip(prunable, reach, co, strict=True):
        assert torch.equal(got.reachable[layer.name], r)
        assert torch.equal(got.coreachable[layer.name], c)


def test_exact_reachability_through_residual_adds_and_flatten(cnn_program):
    """ResidualCNN: stem → conv1 → conv2 (+ stem skip) → depthwise → flatten → head, at channel level."""
    masks = {layer.name: torch.ones(layer.weight_shape, dtype=torch.bool) for layer in layers(cnn_program)}
    masks["stem.weight"][2] = False  # stem channel 2: no input → unreachable, but the skip carries conv2's
    masks["conv2.weight"][2] = False  # …and conv2's channel 2 is empty too → channel 2 of the sum is dead
    masks["conv1.weight"][:, 5] = False  # conv1 no longer reads stem channel 5; still used by the skip path
    masks["head.weight"][:, 16 * 7 : 16 * 8] = False  # the head ignores depthwise channel 7
    got = connectivity.exact(layers(cnn_program), masks)
    assert not got.reachable["dw.weight"][2] and got.reachable["dw.weight"].sum() == 7
    assert not got.reachable["stem.weight"][2] and not got.reachable["conv2.weight"][2]
    assert got.coreachable["stem.weight"][5]  # skip path: stem 5 → dw 5 → head
    assert not got.coreachable["dw.weight"][7]
    # channel 7 of the stem still feeds conv1, whose every channel reaches the head through conv2
    assert got.coreachable["stem.weight"][7] and got.coreachable["conv2.weight"][:7].all()
    assert not got.approximate


@pytest.fixture(scope="module")
def wide_mlp():
    from cascc.frontends.torch import from_module
    from models import relu_mlp

    torch.manual_seed(0)
    return from_module(relu_mlp(400, 400, 400, 400, 100), (torch.randn(1, 400),))


@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.95, 0.98, 0.99])
def test_analytic_functional_fraction_agrees_with_exact_on_er_masks(wide_mlp, sparsity):
    """Every layer has ≥ 100 units, so one mask's fraction is a fair sample of the recursion's mean."""
    for seed in range(2):
        pruned = passes.run(wide_mlp, [("prune.random", {"sparsity": sparsity, "seed": seed})])
        prunable = layers(pruned)
        exact = connectivity.exact(prunable, pruned.masks)
        recursion = connectivity.analytic(
            prunable, {n: float(m.float().mean()) for n, m in pruned.masks.items()}
        )
        for layer in prunable:
            got = float(exact.functional(layer.name).float().mean())
            assert abs(got - recursion.functional(layer.name)) <= 0.05, (layer.name, got)


def test_analytic_active_fraction_agrees_with_a_monte_carlo_forward_pass():
    """docs/methods.md §1: a zero-bias ER ReLU net with λ = 3.2; the recursion vs the measured active fraction."""
    from cascc.frontends.torch import from_module
    from models import relu_mlp

    torch.manual_seed(0)
    program = from_module(relu_mlp(256, 256, 256, 256, 256, 256, bias=False), (torch.randn(64, 256),))
    gaps = []
    for seed in range(4):  # average over masks: one 256-unit realization fluctuates by ~0.03
        pruned = passes.run(program, [("prune.random", {"sparsity": 1 - 3.2 / 256, "seed": seed})])
        report = analysis.analyze(pruned, samples=256)
        gaps.append([row.measured_active - row.predicted_active for row in report.layers[:-1]])
    mean_gap = torch.tensor(gaps).mean(0)
    assert mean_gap.abs().max() < 0.02, mean_gap


def test_measured_gain_and_activity_match_torch_eager(mlp_program):
    report = analysis.analyze(mlp_program, samples=600, seed=7)
    from cascc.passes import probe

    xs = torch.cat([inputs[0] for inputs in probe.batches(mlp_program, None, 200, seed=7)])  # the same probe
    with torch.no_grad():
        lin1 = torch.nn.functional.linear(xs, mlp_program.weights["0.weight"], mlp_program.weights["0.bias"])
    assert report.layers[0].measured_gain == pytest.approx(float(lin1.var(0).mean() / xs.var()), rel=1e-3)
    assert report.layers[0].measured_active == pytest.approx(float((lin1 > 0).float().mean()), rel=1e-3)


def test_verdicts(mlp_program):
    assert analysis.analyze(mlp_program, samples=8).status == "healthy"
    pruned = passes.run(mlp_program, [("prune.magnitude", {"sparsity": 0.5})])
    cut = {**pruned.masks, "2.weight": torch.zeros_like(pruned.masks["2.weight"])}
    report = analysis.analyze(dataclasses.replace(pruned, masks=cut), samples=8)
    assert report.status == "collapsed"
    dead_half = pruned.masks["2.weight"].clone()
    dead_half[:12] = False
    report = analysis.analyze(
        dataclasses.replace(pruned, masks={**pruned.masks, "2.weight": dead_half}), samples=8
    )
    assert report.status == "degraded" and "2.weight" in report.summary
    row = next(r for r in report.layers if r.name == "2.weight")
    assert row.dead_units == 12 and row.in_degree_zero_share == pytest.approx(0.5)


def test_effective_density_counts_only_weights_on_functional_paths(mlp_program):
    pruned = passes.run(mlp_program, [("prune.magnitude", {"sparsity": 0.5})])
    masks = dict(pruned.masks)
    masks["4.weight"] = masks["4.weight"].clone()
    masks["4.weight"][:, :8] = False  # hidden units 0..7 of layer 2 now lead nowhere
    report = analysis.analyze(dataclasses.replace(pruned, masks=masks), samples=8)
    row = next(r for r in report.layers if r.name == "2.weight")
    expected = int(masks["2.weight"][8:].sum()) / masks["2.weight"].numel()
    assert row.effective_density == pytest.approx(expected)


def test_html_report_has_three_plots_and_a_row_per_layer(tmp_path, cnn_program):
    from cascc.report_html import write_html

    report = analysis.analyze(passes.run(cnn_program, [("prune.random", {"sparsity": 0.8})]), samples=8)
    path = write_html(report, tmp_path / "r" / "report.html")
    page = path.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert page.count("<tr>") == len(report.layers) + 1
    assert report.status in page
    assert list(tmp_path.joinpath("r").iterdir()) == [path]  # no temporary file left


def test_analysis_is_not_a_pipeline_pass(mlp_program):
    with pytest.raises(passes.registry.CasccError, match="analysis"):
        passes.run(mlp_program, [("analyze.cascade", {})])
