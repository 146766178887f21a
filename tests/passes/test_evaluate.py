"""Evaluation on the test split against an independent reference: the eager nn.Module, numpy bookkeeping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cascc import passes
from cascc.data import load
from cascc.frontends.torch import call_factory, from_module
from cascc.passes.evaluate import compare, evaluate
from cascc.passes.seeding import generator
from support import EXAMPLES


@pytest.fixture(scope="module")
def eager_and_program():
    module, example = call_factory(Path(EXAMPLES / "digits.py"), "mlp")
    return module.eval(), from_module(module, example)


def test_accuracy_per_class_and_perturbations_match_the_eager_model(eager_and_program):
    module, program = eager_and_program
    data = load("digits")
    result = evaluate(program, data, noise=(0.1, 0.3), fgsm=(0.05,), seed=3)
    x, y = data.x_test, data.y_test.numpy()
    with torch.no_grad():
        clean = module(x).argmax(1).numpy()
    assert result.accuracy == pytest.approx((clean == y).mean())
    for c in range(10):
        assert result.per_class[c] == pytest.approx((clean[y == c] == c).mean())
    scale = float(data.x_train.std())
    gen = generator(3, "evaluate.noise")
    for sigma in (0.1, 0.3):
        noisy = x + sigma * scale * torch.randn(x.shape, generator=gen)
        with torch.no_grad():
            expected = (module(noisy).argmax(1).numpy() == y).mean()
        assert result.noise[sigma] == pytest.approx(expected)
    attack = x.clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(module(attack), data.y_test).backward()
    with torch.no_grad():
        attacked = (module(x + 0.05 * scale * attack.grad.sign()).argmax(1).numpy() == y).mean()
    assert result.fgsm[0.05] == pytest.approx(attacked)
    assert attacked < result.accuracy  # the attack is real


def test_comparison_names_the_class_that_lost_most(eager_and_program):
    _, program = eager_and_program
    data = load("digits")
    pruned = passes.run(program, [("prune.magnitude", {"sparsity": 0.97})])
    comparison = compare(program, pruned, data)
    drops = np.array(comparison.dense.per_class) - np.array(comparison.sparse.per_class)
    worst, drop = comparison.worst_class
    assert worst == int(np.argmax(drops)) and drop == pytest.approx(drops.max())
    assert drop > 0
    report = comparison.to_json()
    assert report["largest_class_drop"] == {"class": worst, "drop": drop}
    assert report["accuracy_drop"] == pytest.approx(comparison.dense.accuracy - comparison.sparse.accuracy)
