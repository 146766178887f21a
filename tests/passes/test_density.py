"""Allocators: exact global budgets, the papers' layerwise ratios, and cascade-guided allocation avoiding collapse."""

import itertools
import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cascc import passes
from cascc.errors import OptionError
from cascc.ir import Layer, LayerKind, layers
from cascc.passes import analysis, connectivity
from cascc.passes.density import ALLOCATORS, AllocationWarning, allocate, kept_budget

MODELS = ["mlp_program", "cnn_program", "separable_program"]
ALLOCATIONS = [
    ("uniform", {}),
    ("uniform", {"dense_ends": True}),
    ("erk", {}),
    ("balanced", {}),
    ("pyramidal", {}),
    ("cascade", {}),
    ("global", None),
]
CRITERIA = [
    ("prune.magnitude", {}),
    ("prune.random", {}),
    ("prune.random_regular", {}),
    ("prune.snip", {}),
    ("prune.synflow", {"rounds": 4}),
    ("prune.block", {"block": "4x1"}),
]


def kept(program):
    return sum(int(program.masks[layer.name].sum()) for layer in layers(program))


@pytest.mark.filterwarnings("ignore::cascc.errors.PassWarning")
@pytest.mark.parametrize("fixture", MODELS)
@pytest.mark.parametrize("allocator,allocator_options", ALLOCATIONS)
@pytest.mark.parametrize("criterion,options", CRITERIA)
def test_every_allocator_and_criterion_hits_the_global_sparsity(
    request, fixture, allocator, allocator_options, criterion, options
):
    program = request.getfixturevalue(fixture)
    sparsity = 0.3 if allocator_options and allocator_options.get("dense_ends") else 0.9
    step = {"sparsity": sparsity, "allocator": allocator, **options}
    if allocator_options:
        step["allocator_options"] = allocator_options
    if allocator == "global" and criterion == "prune.random_regular":
        with pytest.raises(OptionError, match=r"ranks a criterion.s scores.*Choose one of uniform"):
            passes.run(program, [(criterion, step)])
        return
    pruned = passes.run(program, [(criterion, step)])
    total = sum(layer.size for layer in layers(program))
    assert kept(pruned) == total - round(sparsity * total)
    for layer in layers(program):
        assert 0 <= int(pruned.masks[layer.name].sum()) <= layer.size


def fake_layers(sizes):
    return [
        Layer(
            f"l{i}",
            LayerKind.LINEAR,
            f"n{i}",
            (out, inp),
            inp,
            out,
            producers=(f"l{i - 1}",) if i else (),
            from_input=i == 0,
            to_output=i == len(sizes) - 1,
        )
        for i, (out, inp) in enumerate(sizes)
    ]


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.tuples(st.integers(1, 300), st.integers(1, 300)), min_size=1, max_size=6),
    sparsity=st.floats(0.0, 0.999),
    name=st.sampled_from(sorted(ALLOCATORS)),
)
def test_allocators_are_exact_and_never_exceed_a_layer(sizes, sparsity, name):
    chain = fake_layers([(out, inp) for out, inp in sizes])
    # make the chain consistent: each layer's input width is the previous output width
    chain = fake_layers([(out, chain[i - 1].fan_out if i else inp) for i, (out, inp) in enumerate(sizes)])
    # allocators that rank a criterion's scores (global) get some; the others ignore them
    gen = torch.Generator().manual_seed(len(sizes))
    scores = {layer.name: torch.rand(layer.size, generator=gen) for layer in chain}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllocationWarning)
        allocation = allocate(name, chain, sparsity, scores=scores)
    assert sum(allocation.values()) == kept_budget(chain, sparsity)
    assert all(0 <= allocation[layer.name] <= layer.size for layer in chain)


@pytest.fixture(scope="module")
def methods_mlp():
    """The worked example of docs/methods.md §1: a 40-256-256-256-10 MLP at 98% sparsity."""
    return fake_layers([(256, 40), (256, 256), (256, 256), (10, 256)])


@pytest.mark.parametrize(
    "name,fan_in",
    [
        ("uniform", [0.8, 5.1, 5.1, 5.1]),
        ("erk", [2.1, 3.6, 3.6, 48]),
        ("balanced", [2.8, 2.8, 2.8, 72]),
        ("pyramidal", [5.6, 5.0, 0.69, 0.10]),
    ],
)
def test_mean_fan_in_matches_the_worked_example(methods_mlp, name, fan_in):
    allocation = allocate(name, methods_mlp, 0.98)
    got = [allocation[layer.name] / layer.fan_out for layer in methods_mlp]
    assert got == pytest.approx(fan_in, rel=0.05, abs=0.05)


def test_balanced_gives_unclipped_layers_equal_counts(methods_mlp):
    allocation = allocate("balanced", methods_mlp, 0.98)
    counts = [allocation[layer.name] for layer in methods_mlp[:3]]
    assert max(counts) - min(counts) <= 1


def test_pyramidal_density_decays_geometrically(methods_mlp):
    allocation = allocate("pyramidal", methods_mlp, 0.9)
    d = [allocation[layer.name] / layer.size for layer in methods_mlp]
    ratios = [b / a for a, b in itertools.pairwise(d)]
    assert ratios == pytest.approx([d[0]] * 3, rel=0.02)  # d_l = rho^l


def test_uniform_dense_ends_keeps_first_and_last_dense(methods_mlp):
    allocation = allocate("uniform", methods_mlp, 0.5, dense_ends=True)
    assert allocation["l0"] == methods_mlp[0].size and allocation["l3"] == methods_mlp[3].size


def test_uniform_dense_ends_rejects_an_impossible_budget(methods_mlp):
    with pytest.raises(passes.density.OptionError, match="dense-ends"):
        allocate("uniform", methods_mlp, 0.99, dense_ends=True)


def test_cascade_warns_with_the_best_margin_when_the_budget_is_short(methods_mlp):
    with pytest.warns(AllocationWarning, match=r"best achievable margin is κ = \d"):
        allocate("cascade", methods_mlp, 0.98)


def test_cascade_meets_the_margin_when_it_can(lenet_program):
    prunable = layers(lenet_program)
    allocation = allocate("cascade", prunable, 0.99)
    densities = {layer.name: allocation[layer.name] / layer.size for layer in prunable}
    rec = connectivity.analytic(prunable, densities)
    for layer in prunable:
        r_in = 1.0 if layer.from_input else rec.reachable[layer.producers[0]]
        live = -connectivity.unit_fan_in(layer) * math.log(1 - densities[layer.name] * r_in)
        assert live >= 3.0 - 0.05, layer.name


@pytest.mark.filterwarnings("ignore::cascc.errors.PassWarning")
def test_lenet_at_99_percent_uniform_degrades_and_cascade_does_not(lenet_program):
    """The issue's acceptance test: random masks at 99% sparsity, uniform vs cascade-guided allocation."""
    for seed in range(3):
        uniform = passes.run(
            lenet_program, [("prune.random", {"sparsity": 0.99, "allocator": "uniform", "seed": seed})]
        )
        cascade = passes.run(
            lenet_program, [("prune.random", {"sparsity": 0.99, "allocator": "cascade", "seed": seed})]
        )
        bad = analysis.analyze(uniform, samples=8)
        good = analysis.analyze(cascade, samples=8)
        assert bad.status in ("degraded", "collapsed")
        assert min(row.functional for row in bad.layers) < analysis.DEGRADED_BELOW
        assert good.status == "healthy", good.summary
        assert all(row.functional >= analysis.DEGRADED_BELOW for row in good.layers)


@pytest.mark.filterwarnings("ignore::cascc.errors.PassWarning")
@pytest.mark.parametrize("criterion,options", CRITERIA)
def test_same_seed_same_masks(cnn_program, criterion, options):
    step = (criterion, {"sparsity": 0.85, "allocator": "cascade", **options})
    a, b = passes.run(cnn_program, [step]), passes.run(cnn_program, [step])
    assert all(torch.equal(a.masks[n], b.masks[n]) for n in a.masks)
