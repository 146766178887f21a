"""m⊙w: folding gives identical outputs, masks stay exact, the decay and Sign-In rules do what they say."""

from __future__ import annotations

import pytest
import torch

from cascc import frontends, passes
from cascc.data import load
from cascc.passes import mw
from cascc.passes.batched import batched
from support import EXAMPLES

START = [("prune.random", {"sparsity": 0.9, "allocator": "erk"}), ("reparam.sparse_init", {})]


@pytest.fixture(scope="module")
def sparse():
    return passes.run(frontends.load(f"{EXAMPLES / 'digits.py'}:untrained_mlp"), START)


def test_folding_the_factors_gives_identical_outputs(sparse):
    module = batched(sparse).eval()
    factors = mw.attach(module.inner, sparse.masks)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m, _w in factors.values():  # unbalanced factors, as after training
            m.mul_(1 + torch.rand(m.shape, generator=gen))
    x = load("digits").x_test[:32]
    with torch.no_grad():
        before = module(x)
        mw.fold(module.inner, factors)
        after = module(x)
    assert torch.equal(before, after)
    assert not any(".parametrizations." in name for name, _ in module.inner.named_parameters())


def test_mw_training_keeps_masks_and_learns(sparse):
    trained = passes.run(
        sparse, [("train.fit", {"data": "digits", "epochs": 15, "mw": True, "mw_rebalance_every": 50})]
    )
    plain = passes.run(sparse, [("train.fit", {"data": "digits", "epochs": 15})])
    data = load("digits")
    module = batched(trained).eval()
    with torch.no_grad():
        accuracy = float((module(data.x_test).argmax(1) == data.y_test).float().mean())
    assert accuracy >= 0.85
    for name, mask in trained.masks.items():
        assert torch.count_nonzero(trained.weights[name][~mask]) == 0
        assert not torch.equal(trained.weights[name], plain.weights[name])


def test_balanced_start_decay_and_sign_in_rebalancing():
    theta = torch.tensor([[0.5, -0.2], [0.0, 3.0]])
    m, w = mw.Product().right_inverse(theta)
    torch.testing.assert_close(m * w, theta)
    torch.testing.assert_close(m.abs(), w.abs())  # balanced: m² − w² = 0
    factors = {"x": (m.clone(), w.clone())}
    mw.decay(factors, lr=0.1, rate=0.5)
    torch.testing.assert_close(factors["x"][0], m * 0.95)
    mw.rebalance(factors, scale=2.0)
    m2, w2 = factors["x"]
    torch.testing.assert_close(m2 * w2, (m * 0.95) * (w * 0.95), rtol=1e-6, atol=1e-7)
    assert bool((m2.abs() > w2.abs()).all())  # imbalanced: w can cross zero while m stays away from it
    assert mw.decay_rate(1e-4, 0, 100) == pytest.approx(1e-4) and mw.decay_rate(1e-4, 100, 100) == 0


def test_mw_with_a_moving_mask_is_refused(sparse):
    from cascc.errors import OptionError

    with pytest.raises(OptionError, match="fixed mask"):
        passes.run(sparse, [("train.fit", {"data": "digits", "epochs": 1, "mw": True, "schedule": "rigl"})])


def test_mw_and_ham_runs_repeat_exactly(sparse):
    for options in ({"mw": True, "mw_rebalance_every": 5}, {"ham": True, "optimizer": "adamw"}):
        step = [("train.fit", {"data": "digits", "epochs": 1, **options})]
        a, b = passes.run(sparse, step), passes.run(sparse, step)
        for name in sparse.masks:
            assert torch.equal(a.weights[name], b.weights[name])
