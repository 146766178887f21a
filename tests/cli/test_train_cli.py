"""`cascc train` and `cascc compile --finetune` end to end, including two torchrun processes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from cascc import passes
from cascc.data import load
from cascc.frontends.torch import load_pt2
from cascc.ir import layers
from support import EXAMPLES, assert_clean_error, invoke

FRESH_MLP = f"{EXAMPLES / 'digits.py'}:untrained_mlp"
STATIC = ["--sparsity", "0.9", "--allocator", "erk", "--criterion", "random", "--epochs", "10"]


def _accuracy(program) -> float:
    data = load("digits")
    module = program.module()
    with torch.no_grad():
        predicted = torch.cat([module(x[None]) for x in data.x_test]).argmax(1)
    return float((predicted == data.y_test).float().mean())


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "model.pt2"
    code, text = invoke("train", "--model", FRESH_MLP, *STATIC, "-o", out, "--json")
    assert code == 0, text
    return out, json.loads(text[text.index("{") :])


def test_train_writes_a_sparse_model_that_learned(single):
    out, report = single
    program = load_pt2(out)
    expected = passes.density.allocate("erk", layers(program), 0.9)
    assert {n: int(m.sum()) for n, m in program.masks.items()} == dict(expected)
    assert [r.name for r in program.history] == ["prune.random", "reparam.sparse_init", "train.fit"]
    accuracy = _accuracy(program)
    assert accuracy >= 0.9
    evaluation = report["evaluation"]
    assert evaluation["sparse"]["accuracy"] == pytest.approx(accuracy)
    assert set(evaluation) >= {"dense", "sparse", "largest_class_drop", "accuracy_drop"}
    assert set(evaluation["sparse"]["gaussian_noise"]) == {"0.1", "0.3"}
    assert evaluation["dense"]["accuracy"] >= 0.9


@pytest.mark.slow
def test_two_torchrun_processes_train_the_same_masks(single, tmp_path):
    out = tmp_path / "ddp.pt2"
    command = [sys.executable, "-m", "cascc.cli", "train", "--model", FRESH_MLP, *STATIC, "--no-baseline"]
    done = subprocess.run(
        [*command, "--nproc", "2", "-o", str(out)], check=False, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ddp, alone = load_pt2(out), load_pt2(single[0])
    for name, mask in alone.masks.items():
        assert torch.equal(ddp.masks[name], mask)
        assert torch.count_nonzero(ddp.weights[name][~mask]) == 0
    # Each rank takes half of every global batch and DDP averages the gradients: the same steps as one process,
    # up to floating-point summation order.
    for name, weight in alone.weights.items():
        torch.testing.assert_close(ddp.weights[name], weight, rtol=1e-3, atol=1e-3)
    assert _accuracy(ddp) >= 0.9


def test_torchrun_command_for_multi_node():
    from pathlib import Path

    from cascc.training.distributed import torchrun_command

    command = torchrun_command(
        Path("job.json"), nproc=4, nnodes=2, node_rank=1, rdzv_endpoint="10.0.0.1:29500"
    )
    assert command[1:4] == ["-m", "torch.distributed.run", "--nproc-per-node=4"]
    assert "--nnodes=2" in command and "--node-rank=1" in command
    assert "--rdzv-endpoint=10.0.0.1:29500" in command and "--standalone" not in command
    assert "--standalone" in torchrun_command(Path("job.json"), nproc=2)


def test_train_refuses_bad_input_cleanly(tmp_path):
    code, text = invoke("train", "--model", FRESH_MLP, "-o", tmp_path / "m.onnx")
    assert_clean_error(code, text, 2, "m.onnx", ".pt2")
    code, text = invoke("train", "--model", FRESH_MLP, "--schedule", "gmp", "-o", tmp_path / "m.pt2")
    assert_clean_error(code, text, 2, "--sparsity")
    bad = tmp_path / "wide.npz"
    np.savez(
        bad, x_train=np.zeros((8, 10)), y_train=np.zeros(8), x_test=np.zeros((4, 10)), y_test=np.zeros(4)
    )
    code, text = invoke("train", "--model", FRESH_MLP, "--data", f"npz:{bad}", "-o", tmp_path / "m.pt2")
    assert_clean_error(code, text, 2, str(bad), "64 per sample")
    assert not list(tmp_path.glob("*.pt2")) and not list(tmp_path.glob(".*"))


def test_compile_finetune_records_the_evaluation(tmp_path):
    out = tmp_path / "art"
    code, text = invoke(
        "compile", f"{EXAMPLES / 'digits.py'}:mlp", "--sparsity", "0.95", "--allocator", "erk",
        "--finetune", "--data", "digits", "-o", out,
    )  # fmt: skip
    assert code == 0, text
    assert "worst class" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["passes"][-1]["name"] == "train.finetune"
    evaluation = manifest["evaluation"]
    assert evaluation["sparse"]["accuracy"] > 0.85
    code, text = invoke("run", out, "--selftest")
    assert code == 0, text


def test_compile_finetune_needs_data(tmp_path):
    code, text = invoke("compile", f"{EXAMPLES / 'digits.py'}:mlp", "--finetune", "-o", tmp_path / "a")
    assert code == 2 and "--data" in text and "Traceback" not in text


def test_training_options_are_declared_once():
    """click's train options are the offered TrainPlan/TrainConfig fields (names, defaults); the plan hands
    the loop exactly its TrainConfig fields; compile --finetune reuses the same declarations."""
    import dataclasses

    from cascc.cli.main import main
    from cascc.training.config import TrainConfig, offered
    from cascc.training.plan import TrainPlan

    params = {p.name: p for p in main.commands["train"].params}
    for field in offered(TrainPlan):
        assert params[field.name].default == field.default, field.name
        assert params[field.name].opts == ["--" + field.name.replace("_", "-")]
    loop = {f.name for f in offered(TrainConfig)}
    assert loop < {f.name for f in dataclasses.fields(TrainPlan)}
    plan = TrainPlan(epochs=3, lr=0.01, ham=True, optimizer="adamw")
    assert TrainConfig.of(plan.config(seed=1)) == TrainConfig(
        epochs=3, lr=0.01, ham=True, optimizer="adamw", seed=1
    )
    compile_params = {p.name: p for p in main.commands["compile"].params}
    assert compile_params["epochs"].default == 10 and compile_params["lr"].default is None


def test_train_preset_sets_its_options_records_them_and_yields_to_explicit_ones(tmp_path):
    """--preset denovo on the digits MLP: RigL on a random mask at the dense run's FLOPs; --epochs, --data and
    --budget-cap given explicitly win over the preset. The settings are printed and recorded as `train.preset`."""
    from cascc.training.presets import PRESETS

    out = tmp_path / "denovo.pt2"
    args = ("train", "--model", FRESH_MLP, "--preset", "denovo", "--data", "digits", "--epochs", "1")
    code, text = invoke(*args, "--budget-cap", "2", "--no-baseline", "-o", out, "--json")
    assert code == 0, text
    assert "preset denovo:" in text and "schedule=rigl" in text and "epochs=1" in text
    report = json.loads(text[text.index("{") :])
    assert report["budget"]["epochs"] == 2 and report["budget"]["flops_vs_dense"] <= 1.0
    program = load_pt2(out)
    names = [r.name for r in program.history]
    assert names == ["train.preset", "prune.random", "reparam.sparse_init", "train.fit"]
    recorded = dict(program.history[0].options)
    assert recorded.pop("name") == "denovo"
    assert recorded == {**PRESETS["denovo"].options, "epochs": 1, "budget_cap": 2.0}
    fit = program.history[-1].options
    assert fit["schedule"] == "rigl" and fit["budget"] == "flops" and fit["epochs"] == 1
    expected = passes.density.allocate(PRESETS["denovo"].options["allocator"], layers(program), 0.9)
    assert {n: int(m.sum()) for n, m in program.masks.items()} == dict(expected)
    code, text = invoke(*args, "--schedule", "gmp", "-o", tmp_path / "gmp.pt2")
    assert_clean_error(code, text, 2, "--budget steps")


def test_every_preset_sets_only_train_options_with_valid_values():
    """Each preset names `cascc train` parameters only, and its values build a valid plan and recipe."""
    from cascc.cli.main import main
    from cascc.cli.train import TRAIN_RECIPE_OPTIONS
    from cascc.recipe import Recipe
    from cascc.training.plan import TrainPlan
    from cascc.training.presets import PRESETS

    params = {p.name for p in main.commands["train"].params}
    for name, preset in PRESETS.items():
        assert set(preset.options) <= params, name
        plan = {k: v for k, v in preset.options.items() if k not in TRAIN_RECIPE_OPTIONS}
        recipe = {k: v for k, v in preset.options.items() if k in TRAIN_RECIPE_OPTIONS}
        steps = TrainPlan(**plan).steps(Recipe(**recipe), seed=0)
        assert steps[-1][0] == "train.fit" and steps[-1][1]["schedule"] == preset.options["schedule"]
        merged, used = preset.apply({"epochs": 3, "lr": 0.5}, given=["lr"])
        assert merged["lr"] == 0.5 and merged["epochs"] == preset.options["epochs"]
        assert used["lr"] == 0.5 and set(used) == set(preset.options)
