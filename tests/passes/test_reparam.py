"""Sparse-aware initialization and the variance-preserving rescale, against torch/numpy statistics."""

import pytest
import torch

from cascc import passes
from cascc.data import load
from cascc.ir import layers
from cascc.passes import probe
from cascc.passes.reparam import _patches


def test_sparse_init_uses_each_units_in_degree(lenet_program):
    pruned = passes.run(lenet_program, [("prune.random", {"sparsity": 0.9})])
    fresh = passes.run(pruned, [("reparam.sparse_init", {"seed": 0})])
    weights = fresh.masked_weights()
    for layer in layers(fresh):
        mask = fresh.masks[layer.name]
        w = fresh.weights[layer.name]
        assert torch.equal(w[~mask], torch.zeros_like(w[~mask]))  # pruned entries hold no weight
        k = mask.sum(dim=1).double()
        gain = 2.0 if layer.activation == "relu" else 1.0
        # E[w_ij² · k_i / gain] = 1 over all kept weights
        scaled = (weights[layer.name].double() ** 2 * (k / gain)[:, None])[mask]
        bound = 4 * (2 / scaled.numel()) ** 0.5  # 4 standard errors of a mean of χ²₁ samples
        assert float(scaled.mean()) == pytest.approx(1.0, abs=bound), layer.name
        if layer.bias:
            assert not fresh.weights[layer.bias].any()


def test_sparse_init_is_seeded(mlp_program):
    pruned = passes.run(mlp_program, [("prune.random", {"sparsity": 0.5})])
    a = passes.run(pruned, [("reparam.sparse_init", {"seed": 1})]).weights["2.weight"]
    b = passes.run(pruned, [("reparam.sparse_init", {"seed": 1})]).weights["2.weight"]
    c = passes.run(pruned, [("reparam.sparse_init", {"seed": 2})]).weights["2.weight"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def unit_variance(program, dense, layer, x):
    """Per-unit pre-activation variance of `program`'s layer weights on the dense network's layer inputs."""
    module = dense.module()
    values = [
        _patches(layer, probe.capture(dense, module, inputs, {layer.input_node})[layer.input_node].double())
        for inputs in probe.batches(dense, x, len(x) if x is not None else 400)
    ]
    patches = torch.cat(values)
    w = program.masked_weights()[layer.name].double().reshape(layer.fan_out, -1)
    return (patches @ w.t()).var(0), (patches @ w.t()).mean(0)


@pytest.fixture(scope="module")
def rescaled_digits(digits_mlp_program):
    pruned = passes.run(digits_mlp_program, [("prune.magnitude", {"sparsity": 0.8})])
    return pruned, passes.run(pruned, [("reparam.rescale", {"data": "digits", "samples": 2000})])


@pytest.mark.parametrize("split", ["x_train", "x_test"])
def test_rescale_restores_per_unit_variance(digits_mlp_program, rescaled_digits, split):
    """Trained digits MLP at 80%: statistics from the whole training split. On it the match is exact; on the
    held-out test split most units stay within 10% while plain pruning loses about 60% of the variance."""
    pruned, rescaled = rescaled_digits
    x = getattr(load("digits"), split)
    for layer in layers(digits_mlp_program):
        dense_var, _ = unit_variance(digits_mlp_program, digits_mlp_program, layer, x)
        masked_var, _ = unit_variance(pruned, digits_mlp_program, layer, x)
        fixed_var, _ = unit_variance(rescaled, digits_mlp_program, layer, x)
        live = masked_var > 1e-12  # units whose kept weights see only constant pixels cannot be restored
        before = (masked_var[live] / dense_var[live] - 1).abs()
        after = (fixed_var[live] / dense_var[live] - 1).abs()
        assert float(before.median()) > 0.5, layer.name
        if split == "x_train":
            assert float(after.max()) < 1e-6, layer.name
        else:
            assert float(after.median()) < 0.05, layer.name
            assert float((after <= 0.10).double().mean()) >= 0.85, layer.name


def test_rescale_with_data_corrects_the_mean(digits_mlp_program, rescaled_digits):
    pruned, rescaled = rescaled_digits
    x = load("digits").x_train
    layer = layers(digits_mlp_program)[0]

    def bias(p):
        return p.weights[layer.bias].double()

    _, dense_mean = unit_variance(digits_mlp_program, digits_mlp_program, layer, x)
    _, masked_mean = unit_variance(pruned, digits_mlp_program, layer, x)
    _, fixed_mean = unit_variance(rescaled, digits_mlp_program, layer, x)
    err_before = (masked_mean + bias(pruned) - dense_mean - bias(digits_mlp_program)).abs().mean()
    err_after = (fixed_mean + bias(rescaled) - dense_mean - bias(digits_mlp_program)).abs().mean()
    assert float(err_after) < 0.1 * float(err_before)


@pytest.mark.slow
def test_rescale_on_a_cnn_with_batchnorm_uses_conv_patches(cnn_program):
    pruned = passes.run(cnn_program, [("prune.magnitude", {"sparsity": 0.8})])
    rescaled = passes.run(pruned, [("reparam.rescale", {"samples": 2000})])
    for layer in layers(cnn_program):
        if layer.groups > 1:
            continue
        dense_var, _ = unit_variance(cnn_program, cnn_program, layer, None)
        fixed_var, _ = unit_variance(rescaled, cnn_program, layer, None)
        live = fixed_var > 1e-12
        assert float(((fixed_var[live] / dense_var[live]) - 1).abs().median()) < 0.1, layer.name
    assert all(torch.equal(rescaled.masks[n], pruned.masks[n]) for n in pruned.masks)


def test_diagonal_covariance_is_the_data_free_form(mlp_program):
    """With independent Gaussian inputs the first layer's Σ is diagonal, so both forms agree."""
    pruned = passes.run(mlp_program, [("prune.magnitude", {"sparsity": 0.7})])
    full = passes.run(pruned, [("reparam.rescale", {"covariance": "full", "samples": 3000})])
    diag = passes.run(pruned, [("reparam.rescale", {"covariance": "diag", "samples": 3000})])
    torch.testing.assert_close(full.weights["0.weight"], diag.weights["0.weight"], rtol=0.05, atol=1e-3)


def test_rescale_corrects_batchnorm_running_mean_of_bias_free_convs(digits_cnn_program):
    """Digits CNN: the stem conv has no bias and a BatchNorm next; its input (the image) is unchanged by pruning,
    so after the rescale the BatchNorm-centred mean per channel must equal the dense model's on the same data."""
    stem = layers(digits_cnn_program)[0]
    assert stem.bias is None and stem.norm_mean is not None
    pruned = passes.run(digits_cnn_program, [("prune.magnitude", {"sparsity": 0.8})])
    rescaled = passes.run(pruned, [("reparam.rescale", {"data": "digits", "samples": 300})])
    x = load("digits").x_train[:300]  # the samples the rescale measured
    centred = []
    for program in (digits_cnn_program, pruned, rescaled):
        _, mean = unit_variance(program, digits_cnn_program, stem, x)
        centred.append(mean - program.weights[stem.norm_mean].double())
    dense, plain, fixed = centred
    assert float((fixed - dense).abs().max()) < 1e-4
    assert float((plain - dense).abs().max()) > 1e-2  # pruning did shift it
