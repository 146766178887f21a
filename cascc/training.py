"""`cascc train`: train a sparse model — de novo on a fixed mask, or under GMP, IMP, LRR, RigL or SET — save
it as a `.pt2`, and compare it on the test split with the same model trained dense."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import OptionError
from .ir import Program
from .recipe import Recipe

# --init name -> the pass that initializes a sparse mask's weights (None: keep the model's)
INITS = {
    "sparse-aware": "reparam.sparse_init",
    "looks-linear": "init.looks_linear",
    "depth-bias": "init.depth_bias",
    "model": None,
}
SCHEDULES = ("static", "gmp", "imp", "lrr", "rigl", "set", "sculpt")


@dataclass(frozen=True)
class TrainPlan:
    """What to train on and how: data set, mask schedule, initialization and the optimizer settings."""

    data: str = "digits"
    schedule: str = "static"
    init: str = "sparse-aware"
    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float | None = None
    weight_decay: float = 5e-4
    lr_schedule: str = "cosine"
    rounds: int | None = None
    rewind_epochs: float = 0.5
    update_every: int | None = None
    ham: bool = False
    mw: bool = False
    mw_rebalance_every: int = 0
    perturb_signs: float = 0.0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise OptionError(
                None, f"unknown schedule {self.schedule!r}", f"use one of {', '.join(SCHEDULES)}"
            )
        if self.init not in INITS:
            raise OptionError(None, f"unknown init {self.init!r}", f"use one of {', '.join(INITS)}")

    def config(self, seed: int) -> dict[str, Any]:
        """The training-loop options (passes.train.TrainConfig) as pass options."""
        options = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "weight_decay": self.weight_decay,
            "lr_schedule": self.lr_schedule,
            "seed": seed,
        }
        if self.lr is not None:
            options["lr"] = self.lr
        if self.ham:
            options["ham"] = True
        if self.mw:
            options["mw"] = True
            if self.mw_rebalance_every:
                options["mw_rebalance_every"] = self.mw_rebalance_every
        return options

    def steps(self, recipe: Recipe, seed: int) -> list[tuple[str, dict[str, Any]]]:
        """The passes: prune and initialize where the schedule starts sparse, then the training pass."""
        config = {"data": self.data, **self.config(seed)}
        target = {"sparsity": recipe.sparsity, "allocator": recipe.allocator}
        allocator_options = recipe.allocator_options()
        if allocator_options:
            target["allocator_options"] = allocator_options
        if self.schedule in ("static", "rigl", "set"):
            if self.schedule != "static" and recipe.sparsity == 0.0:
                raise OptionError(None, f"--schedule {self.schedule} needs a sparse mask", "pass --sparsity")
            steps = recipe.steps()
            if INITS[self.init] and steps:
                steps.append((INITS[self.init], {"seed": seed}))
            if self.perturb_signs:
                steps.append(("signs.perturb", {"ratio": self.perturb_signs, "seed": seed}))
            options = {"schedule": self.schedule, **config}
            if self.update_every is not None and self.schedule != "static":
                options["update_every"] = self.update_every
            return [*steps, ("train.fit", options)]
        if recipe.sparsity == 0.0:
            raise OptionError(None, f"--schedule {self.schedule} prunes to a target", "pass --sparsity")
        if self.schedule == "gmp":
            return [("train.fit", {"schedule": "gmp", **target, **config})]
        if self.schedule == "sculpt":
            return [("train.sculpt", {**target, **config})]
        rewind = {
            "rewind": "weights" if self.schedule == "imp" else "lr",
            "rewind_epochs": self.rewind_epochs,
        }
        if self.rounds is not None:
            rewind["rounds"] = self.rounds
        return [("train.iterative", {**target, **rewind, **config})]


@dataclass(frozen=True)
class TrainResult:
    """The trained sparse Program, its dense counterpart (if trained) and their comparison on the test split."""

    program: Program
    path: Path | None
    evaluation: Any  # passes.evaluate.Evaluation
    comparison: Any | None  # passes.evaluate.Comparison
    signs: dict[str, Any] = dataclasses.field(default_factory=dict)  # sign diagnostics (passes.signs)

    def to_json(self) -> dict[str, Any]:
        report = {
            "output": str(self.path) if self.path else None,
            "passes": [r.to_json() for r in self.program.history],
        }
        if self.comparison is not None:
            report["evaluation"] = self.comparison.to_json()
        else:
            report["evaluation"] = {"sparse": self.evaluation.to_json()}
        report["signs"] = self.signs
        return report


def train(
    model: str | Path | Program,
    recipe: Recipe,
    plan: TrainPlan,
    *,
    out: str | Path | None = None,
    seed: int = 0,
    baseline: bool = True,
    stage: Callable[[str], None] | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
) -> TrainResult:
    """Train `model` sparse as `recipe` and `plan` say and save it to `out` (a `.pt2`); with `baseline`, also
    train it dense with the same settings and compare the two (accuracy per class and under noise/FGSM)."""
    from . import passes
    from .data import load
    from .frontends.torch import save_pt2
    from .passes.evaluate import compare, evaluate
    from .passes.signs import flipped
    from .passes.train import diagnostics, world_and_rank
    from .pipeline import load_model

    say = stage or (lambda _msg: None)
    passes.density.check_sparsity(recipe.sparsity)
    if out is not None and Path(out).suffix.lower() != ".pt2":
        raise OptionError(out, "the output must be a .pt2 file", "name it e.g. model.pt2")
    steps = plan.steps(recipe, seed)
    data = load(plan.data)  # data errors before the costly import
    say("importing the model")
    start = load_model(model, seed=seed, input_shapes=input_shapes)
    say(f"running {', '.join(name for name, _ in steps)}")
    initial = passes.run(start, steps[:-1])  # the mask and its initialization, before training
    collected: dict[str, Any] = {}
    token = diagnostics.set(collected)
    try:
        program = passes.run(initial, steps[-1:])
    finally:
        diagnostics.reset(token)
    dense = None
    if baseline:
        say("training the dense baseline")
        dense = passes.run(start, [("train.fit", {"data": plan.data, **plan.config(seed)})])
    if world_and_rank()[1] != 0:  # under torchrun only rank 0 evaluates and writes
        return TrainResult(program, None, None, None, {})
    say("evaluating on the test split")
    comparison = compare(dense, program, data, seed=seed) if dense is not None else None
    evaluation = comparison.sparse if comparison else evaluate(program, data, seed=seed)
    path = save_pt2(program, Path(out)) if out is not None else None
    signs = {"flipped_since_init": flipped(initial.weights, program.weights, program.masks), **collected}
    return TrainResult(program, path, evaluation, comparison, signs)
