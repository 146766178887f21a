"""Training passes: masks stay exact, schedules keep their counts, de novo training learns, runs repeat."""

from __future__ import annotations

import pytest
import torch

from cascc import frontends, passes
from cascc.data import load
from cascc.ir import layers
from cascc.passes.batched import batched
from cascc.passes.schedules import DropGrow, GradualMagnitude
from cascc.passes.train import TrainConfig, train
from support import EXAMPLES

SPARSE_START = [("prune.random", {"sparsity": 0.9, "allocator": "erk"}), ("reparam.sparse_init", {})]


@pytest.fixture(scope="module")
def fresh_mlp():
    return frontends.load(f"{EXAMPLES / 'digits.py'}:untrained_mlp")


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def _accuracy(program, data) -> float:
    """Test accuracy of the masked program run sample by sample in torch eager (its static batch of 1)."""
    module = program.module()
    with torch.no_grad():
        predicted = torch.cat([module(x[None]) for x in data.x_test]).argmax(1)
    return float((predicted == data.y_test).float().mean())


def _counts(program) -> dict[str, int]:
    return {name: int(mask.sum()) for name, mask in program.masks.items()}


def _assert_masked_zero(program) -> None:
    for name, mask in program.masks.items():
        assert torch.count_nonzero(program.weights[name][~mask]) == 0, name


def test_batched_module_matches_the_program_sample_by_sample(digits_cnn_program):
    module = batched(digits_cnn_program).eval()
    x = load("digits").x_test[:7]
    eager = digits_cnn_program.module()
    with torch.no_grad():
        expected = torch.cat([eager(xi[None]) for xi in x])
        torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-5)


def test_de_novo_sparse_training_reaches_90_percent_at_90_percent_sparsity(fresh_mlp, digits):
    sparse = passes.run(fresh_mlp, SPARSE_START)
    assert _accuracy(sparse, digits) < 0.5  # untrained
    trained = passes.run(sparse, [("train.fit", {"data": "digits", "epochs": 20})])
    assert _counts(trained) == _counts(sparse)
    assert all(torch.equal(trained.masks[n], sparse.masks[n]) for n in sparse.masks)
    _assert_masked_zero(trained)
    assert _accuracy(trained, digits) >= 0.90
    assert [r.name for r in trained.history][-1] == "train.fit"


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_masked_weights_are_exactly_zero_after_every_step(fresh_mlp, digits, optimizer, monkeypatch):
    import cascc.passes.train as training

    sparse = passes.run(fresh_mlp, SPARSE_START)
    built = []
    monkeypatch.setattr(
        training, "batched", lambda program, **kw: built.append(batched(program, **kw)) or built[-1]
    )
    checked = []

    class Watch:  # the loop reports after each optimizer step and re-masking
        def begin(self, description, total):
            pass

        def step(self, loss, accuracy):
            params = dict(built[0].inner.named_parameters())
            for name, mask in sparse.masks.items():
                assert torch.count_nonzero(params[name].detach()[~mask]) == 0, name
            checked.append(loss)

        def end(self):
            pass

    token = training.progress.set(Watch())
    try:
        result = train(sparse, digits, TrainConfig(epochs=1, optimizer=optimizer, weight_decay=0.1))
    finally:
        training.progress.reset(token)
    assert len(checked) == len(digits.x_train) // 128
    for name, mask in sparse.masks.items():
        assert torch.count_nonzero(result.weights[name][~mask]) == 0
        assert torch.count_nonzero(result.weights[name][mask]) == int(mask.sum())


def test_finetune_recovers_a_one_shot_pruned_model(digits_mlp_program, digits):
    pruned = passes.run(digits_mlp_program, [("prune.magnitude", {"sparsity": 0.95, "allocator": "erk"})])
    tuned = passes.run(pruned, [("train.finetune", {"data": "digits", "epochs": 5})])
    assert all(torch.equal(tuned.masks[n], pruned.masks[n]) for n in pruned.masks)
    _assert_masked_zero(tuned)
    assert _accuracy(tuned, digits) > _accuracy(pruned, digits) + 0.02


def test_gmp_schedule_follows_the_cubic_and_reaches_the_final_count_exactly():
    final = {"a": 100}
    gmp = GradualMagnitude(final, begin=0.1, end=0.7, pruning_steps=10)
    gmp.start({"a": torch.ones(1000, dtype=torch.bool)}, total_steps=1000)
    assert gmp.kept("a", 100) == 1000
    assert gmp.kept("a", gmp.last_step) == 100
    midway = (100 + gmp.last_step) // 2  # s_t = s_f + (s_i - s_f)(1 - 1/2)^3 with s_i = 0, s_f = 0.9
    progress = (midway - 100) / (gmp.last_step - 100)
    assert gmp.kept("a", midway) == 1000 - round(1000 * (0.9 + (0 - 0.9) * (1 - progress) ** 3))


def test_gmp_training_reaches_the_allocated_sparsity_exactly(fresh_mlp, digits):
    trained = passes.run(
        fresh_mlp,
        [
            (
                "train.fit",
                {"data": "digits", "schedule": "gmp", "sparsity": 0.9, "allocator": "erk", "epochs": 8},
            )
        ],
    )
    expected = passes.density.allocate("erk", layers(fresh_mlp), 0.9)
    assert _counts(trained) == dict(expected)
    _assert_masked_zero(trained)
    assert _accuracy(trained, digits) >= 0.85


def test_rigl_rewires_but_keeps_each_layers_count(fresh_mlp, digits):
    sparse = passes.run(fresh_mlp, SPARSE_START)
    trained = passes.run(sparse, [("train.fit", {"data": "digits", "schedule": "rigl", "epochs": 8})])
    assert _counts(trained) == _counts(sparse)
    assert any(not torch.equal(trained.masks[n], sparse.masks[n]) for n in sparse.masks)
    _assert_masked_zero(trained)
    assert _accuracy(trained, digits) >= 0.85


def test_drop_grow_grows_where_the_gradient_is_largest():
    weight = torch.tensor([[0.5, 0.0, 0.1, 0.0], [0.3, 0.0, 0.2, 0.0]], requires_grad=True)
    weight.grad = torch.tensor([[0.0, 0.1, 0.0, 0.9], [0.0, 0.5, 0.0, 0.2]])
    mask = weight.detach() != 0
    rigl = DropGrow("gradient", alpha=0.5, every=1)
    rigl.start({"w": mask}, total_steps=1000)
    masks = {"w": mask.clone()}
    assert rigl.update(1, {"w": weight}, masks)
    moved = round(rigl.fraction(1) * 4)
    assert moved == 2  # α_t = α/2·(1 + cos(π·1/750)) ≈ α = 1/2 of the 4 active
    # the two smallest active (0.1, 0.2) are dropped, the two largest inactive gradients (0.9, 0.5) grow
    assert masks["w"].tolist() == [[True, False, False, True], [True, True, False, False]]


@pytest.mark.parametrize("schedule", ["imp", "lrr"])
def test_iterative_pruning_reaches_the_target_in_rounds(fresh_mlp, digits, schedule):
    rewind = "weights" if schedule == "imp" else "lr"
    trained = passes.run(
        fresh_mlp,
        [
            (
                "train.iterative",
                {"data": "digits", "sparsity": 0.9, "rounds": 2, "rewind": rewind, "epochs": 8},
            )
        ],
    )
    assert _counts(trained) == dict(passes.density.allocate("uniform", layers(fresh_mlp), 0.9))
    _assert_masked_zero(trained)
    assert _accuracy(trained, digits) >= 0.85


def test_training_is_deterministic_under_a_seed(fresh_mlp):
    steps = [*SPARSE_START, ("train.fit", {"data": "digits", "schedule": "set", "epochs": 2})]
    a, b = passes.run(fresh_mlp, steps), passes.run(fresh_mlp, steps)
    other = passes.run(fresh_mlp, [*steps[:-1], ("train.fit", {**steps[-1][1], "seed": 1})])
    for name in a.masks:
        assert torch.equal(a.masks[name], b.masks[name])
        assert torch.equal(a.weights[name], b.weights[name])
    assert any(not torch.equal(a.weights[n], other.weights[n]) for n in a.masks)


def test_training_refuses_data_that_does_not_fit_the_model(fresh_mlp, tmp_path):
    import numpy as np

    from cascc.errors import OptionError

    path = tmp_path / "wide.npz"
    np.savez(
        path, x_train=np.zeros((8, 10)), y_train=np.zeros(8), x_test=np.zeros((4, 10)), y_test=np.zeros(4)
    )
    with pytest.raises(OptionError, match="64 per sample"):
        passes.run(fresh_mlp, [("train.fit", {"data": f"npz:{path}", "epochs": 1})])
    np.savez(
        path,
        x_train=np.zeros((8, 64)),
        y_train=np.arange(8) * 2,
        x_test=np.zeros((4, 64)),
        y_test=np.zeros(4),
    )
    with pytest.raises(OptionError, match="labels go up to 14 but the model has 10 outputs"):
        passes.run(fresh_mlp, [("train.fit", {"data": f"npz:{path}", "epochs": 1})])


def test_a_program_with_a_static_batch_trains_like_one_with_batch_1(digits):
    """The batch of 30 is grouped 4 at a time (rounded down to 28): same batches, same weights."""
    from cascc.frontends.torch import from_module

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    step = ("train.fit", {"data": "digits", "epochs": 15, "batch_size": 30, "lr": 0.01})
    by_four = passes.run(from_module(model, (torch.zeros(4, 64),)), [step])
    by_one = passes.run(from_module(model, (torch.zeros(1, 64),)), [(step[0], {**step[1], "batch_size": 28})])
    for name, weight in by_one.weights.items():
        torch.testing.assert_close(by_four.weights[name], weight, rtol=1e-4, atol=1e-5)
    module = batched(by_four).eval()
    with torch.no_grad():
        accuracy = float((module(digits.x_test[:360]).argmax(1) == digits.y_test[:360]).float().mean())
    assert accuracy >= 0.85
