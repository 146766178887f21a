"""Shrink: dead units removed structurally, outputs identical to the masked model, fewer parameters."""

import warnings

import pytest
import torch

from cascc import passes
from cascc.ir import layers
from cascc.passes import connectivity


def outputs(program, inputs):
    with torch.no_grad():
        return program.module()(*inputs)


def parameter_count(program):
    return sum(t.numel() for t in program.weights.values())


@pytest.mark.parametrize(
    "fixture,sparsity",
    [("mlp_program", 0.9), ("cnn_program", 0.97), ("digits_cnn_program", 0.97), ("digits_mlp_program", 0.97)],
)
def test_shrink_keeps_outputs_and_drops_parameters(request, fixture, sparsity):
    program = request.getfixturevalue(fixture)
    pruned = passes.run(program, [("prune.random", {"sparsity": sparsity, "seed": 5})])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", passes.PassWarning)
        shrunk = passes.run(pruned, [("shrink.dead_units", {})])
    inputs = pruned.example_inputs()
    torch.testing.assert_close(outputs(shrunk, inputs), outputs(pruned, inputs), rtol=1e-5, atol=1e-5)
    assert parameter_count(shrunk) < parameter_count(pruned)
    assert [r.name for r in shrunk.history] == ["prune.random", "shrink.dead_units"]

    # every kept weight of the masked model survives: shrink removes only what cannot matter
    def kept(p):
        return sum(int(p.masks[layer.name].sum()) for layer in layers(p))

    assert kept(shrunk) <= kept(pruned)


def test_shrink_removes_exactly_the_units_without_a_path(mlp_program):
    masks = {layer.name: torch.ones(layer.weight_shape, dtype=torch.bool) for layer in layers(mlp_program)}
    masks["4.weight"][:, [3, 7]] = False  # hidden units 3 and 7 of the second layer lead nowhere
    masks["0.weight"][[1, 2]] = False  # first-layer units 1, 2 see no input …
    program = mlp_program.with_weights({"0.bias": torch.full((32,), -1.0)})  # … and stay at relu(-1) = 0
    import dataclasses

    program = dataclasses.replace(program, masks=masks)
    shrunk = passes.run(program, [("shrink.dead_units", {})])
    assert [layer.weight_shape for layer in layers(shrunk)] == [(30, 20), (22, 30), (5, 22)]
    x = program.example_inputs()
    torch.testing.assert_close(outputs(shrunk, x), outputs(program, x))
    assert not connectivity.exact(layers(shrunk), shrunk.masks).reachable["0.weight"].logical_not().any()


def test_constant_units_with_a_nonzero_value_are_kept_and_reported(mlp_program):
    import dataclasses

    masks = {layer.name: torch.ones(layer.weight_shape, dtype=torch.bool) for layer in layers(mlp_program)}
    masks["0.weight"][[1, 2]] = False
    program = dataclasses.replace(mlp_program.with_weights({"0.bias": torch.ones(32)}), masks=masks)
    with pytest.warns(passes.PassWarning, match="input-independent"):
        shrunk = passes.run(program, [("shrink.dead_units", {})])
    assert layers(shrunk)[0].weight_shape == (32, 20)


def test_grouped_consumers_are_reported_not_guessed(cnn_program):
    pruned = passes.run(cnn_program, [("prune.random", {"sparsity": 0.97, "seed": 5})])
    with pytest.warns(passes.PassWarning, match="grouped convolution|depthwise"):
        passes.run(pruned, [("shrink.dead_units", {})])
