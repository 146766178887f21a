"""HAM: the exact multiplicative update after the base step, zeros kept, masks exact through training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cascc import frontends, passes
from cascc.passes.optim import HAM
from support import EXAMPLES


def test_ham_applies_the_update_of_the_paper_after_the_base_step():
    w0 = np.array([[0.5, -0.2, 0.0], [0.1, 0.3, -0.4]], dtype=np.float32)
    grad = np.array([[0.01, -0.02, 0.5], [0.003, -0.004, 0.002]], dtype=np.float32)
    bias0 = np.array([0.1, -0.1], dtype=np.float32)
    w, bias = torch.nn.Parameter(torch.tensor(w0)), torch.nn.Parameter(torch.tensor(bias0))
    lr, alpha, beta = 0.1, 200.0, 1e-3
    optimizer = HAM(torch.optim.SGD([w, bias], lr=lr), alpha=alpha, beta=beta)
    w.grad, bias.grad = torch.tensor(grad), torch.tensor([1.0, 1.0])
    optimizer.step()
    stepped = w0 - lr * grad  # plain SGD first
    expected = stepped * np.exp(np.clip(lr * (-alpha * np.sign(stepped) * grad - beta), -5, 5))
    np.testing.assert_allclose(w.detach().numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(bias.detach().numpy(), bias0 - lr, rtol=1e-6)  # 1-D: base step only


def test_ham_keeps_masks_exact_and_changes_training():
    program = frontends.load(f"{EXAMPLES / 'digits.py'}:untrained_mlp")
    start = [("prune.random", {"sparsity": 0.9, "allocator": "erk"}), ("reparam.sparse_init", {})]
    fit = {"data": "digits", "epochs": 3, "optimizer": "adamw"}
    plain = passes.run(program, [*start, ("train.fit", fit)])
    ham = passes.run(program, [*start, ("train.fit", {**fit, "ham": True})])
    for name, mask in ham.masks.items():
        assert torch.count_nonzero(ham.weights[name][~mask]) == 0
        assert not torch.equal(ham.weights[name], plain.weights[name])


def test_divergence_is_a_clear_error():
    from cascc.errors import OptionError

    program = frontends.load(f"{EXAMPLES / 'digits.py'}:untrained_mlp")
    with pytest.raises(OptionError, match=r"diverged.*Lower the learning rate"):
        passes.run(program, [("train.fit", {"data": "digits", "epochs": 2, "lr": 1e6})])


def test_ham_is_a_train_option(tmp_path):
    from support import invoke

    code, text = invoke(
        "train", "--model", f"{EXAMPLES / 'digits.py'}:untrained_mlp", "--sparsity", "0.9", "--ham", "--optimizer", "adamw",
        "--epochs", "2", "--no-baseline", "-o", tmp_path / "m.pt2", "--json",
    )  # fmt: skip
    assert code == 0, text
    assert '"ham": true' in text
