"""Sparse initializations: looks-linear orthogonal (linear at init, masked, repaired) and depth-scaled bias."""

from __future__ import annotations

import math

import pytest
import torch

from cascc import frontends, passes
from cascc.ir import layers
from cascc.passes.init import orthogonality_error
from support import model_ref


@pytest.fixture(scope="module")
def lenet():
    return frontends.load(model_ref("lenet_300_100"))


def test_looks_linear_makes_a_dense_relu_net_linear(lenet):
    module = passes.run(lenet, [("init.looks_linear", {})]).module()
    x, y = torch.randn(1, 784), torch.randn(1, 784)
    with torch.no_grad():
        fx, fy, fxy = module(x), module(y), module(x + 2 * y)
        torch.testing.assert_close(fxy, fx + 2 * fy, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(module(-x), -fx, rtol=1e-4, atol=1e-5)
    assert fx.abs().max() > 0.1  # not trivially zero


def test_looks_linear_hidden_blocks_are_orthogonal_and_mirrored(lenet):
    program = passes.run(lenet, [("init.looks_linear", {})])
    w = program.weights["2.weight"]  # 100×300 hidden layer: [[W0, -W0], [-W0, W0]]
    w0 = w[:50, :150]
    torch.testing.assert_close(w[:50, 150:], -w0)
    torch.testing.assert_close(w[50:, :150], -w0)
    torch.testing.assert_close(w0 @ w0.T, torch.eye(50), rtol=1e-4, atol=1e-4)


def test_looks_linear_on_a_mask_scales_by_density_and_repair_helps(lenet):
    sparse = passes.run(lenet, [("prune.random", {"sparsity": 0.9}), ("init.looks_linear", {})])
    repaired = passes.run(
        lenet, [("prune.random", {"sparsity": 0.9}), ("init.looks_linear", {"repair_steps": 200})]
    )
    for name, mask in sparse.masks.items():
        assert torch.count_nonzero(sparse.weights[name][~mask]) == 0
        assert torch.count_nonzero(repaired.weights[name][~mask]) == 0
        assert orthogonality_error(repaired.weights[name], mask) < 0.6 * orthogonality_error(
            sparse.weights[name], mask
        )
    dense = passes.run(lenet, [("init.looks_linear", {})])
    rows = sparse.masks["2.weight"].float().mean()
    ratio = sparse.weights["2.weight"].pow(2).sum() / dense.weights["2.weight"].pow(2).sum()
    assert float(ratio) == pytest.approx(1.0, rel=0.15)  # kept 10% of the energy, scaled by 1/√0.1
    assert float(rows) == pytest.approx(0.1, abs=0.01)


def test_depth_bias_follows_the_product_of_weight_scales(lenet):
    program = passes.run(lenet, [("prune.random", {"sparsity": 0.5}), ("init.depth_bias", {"beta": 1.0})])
    product = 1.0
    for layer in layers(program):
        mask = program.masks[layer.name]
        sigma_w = math.sqrt(2.0 / (layer.fan_in * float(mask.float().mean())))
        kept = program.weights[layer.name][mask]
        assert float(kept.std()) == pytest.approx(sigma_w, rel=0.1)
        product *= sigma_w
        bias = program.weights[layer.bias]
        assert float(bias.std()) == pytest.approx(product, rel=0.35)  # 10 to 300 samples


def test_initializations_are_seeded(lenet):
    for step in ("init.looks_linear", "init.depth_bias"):
        a = passes.run(lenet, [(step, {"seed": 1})])
        b = passes.run(lenet, [(step, {"seed": 1})])
        c = passes.run(lenet, [(step, {"seed": 2})])
        assert torch.equal(a.weights["0.weight"], b.weights["0.weight"])
        assert not torch.equal(a.weights["0.weight"], c.weights["0.weight"])
