"""`cascc train`: train a sparse model — de novo on a fixed mask, or under GMP, IMP, LRR, RigL or SET — save
it as a `.pt2`, and compare it on the test split with the same model trained dense."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import OptionError
from ..recipe import Recipe
from ..registry import Registry
from .config import BUDGETS, TrainConfig, known, option

if TYPE_CHECKING:
    from ..ir import Program

Steps = list[tuple[str, dict[str, Any]]]
# `--schedule`: name -> the passes that train under it, from the plan, the recipe and the seed
SCHEDULES: Registry[Callable[[TrainPlan, Recipe, int], Steps]] = Registry("schedule")

DATA_HELP = "Data set: digits, mnist1d, npz:PATH (x_train, y_train, x_test, y_test) or csv:PATH (last column = label)."


def _schedules() -> Iterable[str]:
    return SCHEDULES


def _inits() -> Iterable[str]:
    from ..passes.init import INITS

    return INITS


@dataclass(frozen=True)
class TrainPlan(TrainConfig):
    """What to train on and how: the training loop's options (the `TrainConfig` fields), the data set, the
    mask schedule and the sparse mask's initialization."""

    data: str = option("digits", DATA_HELP)
    schedule: str = option(
        "static",
        "static: fixed mask from the start · gmp: gradual magnitude pruning from dense · imp/lrr: iterative "
        "pruning with weight / learning-rate rewinding · rigl/set: dynamic sparse training · rigl-cascade: RigL "
        "growing into starved units first · sculpt: cyclic "
        "training, one magnitude step, cyclic training.",
        names=_schedules,
    )
    init: str = option(
        "sparse-aware",
        "Sparse-mask schedules: per-unit He init from the in-degree (sparse-aware), looks-linear orthogonal, "
        "He with depth-scaled biases (depth-bias), or keep the model's weights.",
        names=_inits,
    )
    rounds: int | None = option(None, "IMP/LRR rounds (default: prune 20% of the rest each round).", low=1)
    rewind_epochs: float = option(0.5, "IMP: rewind weights to here.", low=0)
    update_every: int | None = option(None, "RigL/SET: steps between mask updates (default auto).", low=1)
    perturb_signs: float = option(0.0, "Ablation: flip this share of kept signs at init.", low=0, high=1)
    budget: str = option(
        "steps",
        "steps: --epochs as given · flops: a sparse mask trains for as many epochs as --epochs of the dense "
        "model cost in FLOPs (static, rigl, set, rigl-cascade).",
        names=lambda: BUDGETS,
    )
    budget_cap: float | None = option(None, "With --budget flops: at most this many times --epochs.", low=1)
    # set by `--preset`: its name and the values this run used for the options it sets (recorded in history)
    preset: str | None = None
    preset_settings: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        known(self.schedule, SCHEDULES, "schedule")
        known(self.init, _inits(), "init")
        known(self.budget, BUDGETS, "budget")

    def config(self, seed: int) -> dict[str, Any]:
        """The training-loop options (the TrainConfig fields a user sets) as pass options."""
        return {**self.loop_options(), "seed": seed}

    def steps(self, recipe: Recipe, seed: int) -> Steps:
        """The passes: the preset's record (if any), prune and initialize where the schedule starts sparse,
        then the training pass."""
        steps = SCHEDULES[self.schedule](self, recipe, seed)
        if self.budget != "steps" and steps[-1][0] != "train.fit":
            raise OptionError(
                None,
                f"--budget {self.budget} sets the length of one training run and --schedule {self.schedule} "
                "runs several",
                "use --budget steps with it",
            )
        if self.preset is not None:
            steps.insert(0, ("train.preset", {"name": self.preset, **dict(self.preset_settings or {})}))
        return steps

    def _target(self, recipe: Recipe) -> dict[str, Any]:
        """The pruning target of the schedules that prune while training."""
        if recipe.sparsity == 0.0:
            raise OptionError(None, f"--schedule {self.schedule} prunes to a target", "pass --sparsity")
        target: dict[str, Any] = {"sparsity": recipe.sparsity, "allocator": recipe.allocator}
        allocator_options = recipe.allocator_options()
        if allocator_options:
            target["allocator_options"] = allocator_options
        return target


@SCHEDULES.register("static")
def _on_a_mask(plan: TrainPlan, recipe: Recipe, seed: int) -> Steps:
    """Start from the recipe's mask, initialized as `--init` says; rigl/set then rewire it while training."""
    from ..passes.init import INITS

    if plan.schedule != "static" and recipe.sparsity == 0.0:
        raise OptionError(None, f"--schedule {plan.schedule} needs a sparse mask", "pass --sparsity")
    steps = recipe.steps()
    if INITS[plan.init] and steps:
        steps.append((INITS[plan.init], {"seed": seed}))
    if plan.perturb_signs:
        steps.append(("signs.perturb", {"ratio": plan.perturb_signs, "seed": seed}))
    options = {"schedule": plan.schedule, "data": plan.data, **plan.config(seed)}
    if plan.update_every is not None and plan.schedule != "static":
        options["update_every"] = plan.update_every
    if plan.budget != "steps":
        options["budget"] = plan.budget
        if plan.budget_cap is not None:
            options["budget_cap"] = plan.budget_cap
    return [*steps, ("train.fit", options)]


@SCHEDULES.register("gmp")
def _gradual(plan: TrainPlan, recipe: Recipe, seed: int) -> Steps:
    """Gradual magnitude pruning from dense to the recipe's target while training."""
    if plan.budget != "steps":
        raise OptionError(None, "gmp trains dense first: its FLOPs are the dense run's", "use --budget steps")
    return [
        ("train.fit", {"schedule": "gmp", **plan._target(recipe), "data": plan.data, **plan.config(seed)})
    ]


@SCHEDULES.register("lrr")
@SCHEDULES.register("imp")
def _iterative(plan: TrainPlan, recipe: Recipe, seed: int) -> Steps:
    """Train, prune, rewind the weights (imp) or only the learning rate (lrr), repeat."""
    rewind: dict[str, Any] = {
        "rewind": "weights" if plan.schedule == "imp" else "lr",
        "rewind_epochs": plan.rewind_epochs,
    }
    if plan.rounds is not None:
        rewind["rounds"] = plan.rounds
    return [("train.iterative", {**plan._target(recipe), **rewind, "data": plan.data, **plan.config(seed)})]


# rigl and set rewire the static schedule's mask (registered here to list the schedules from dense to sparse)
SCHEDULES.register("rigl")(_on_a_mask)
SCHEDULES.register("set")(_on_a_mask)


@SCHEDULES.register("sculpt")
def _sculpt(plan: TrainPlan, recipe: Recipe, seed: int) -> Steps:
    """Cyclic training, one magnitude step, cyclic training."""
    return [("train.sculpt", {**plan._target(recipe), "data": plan.data, **plan.config(seed)})]


# RigL growing into starved units first (passes/schedules.py), after the standard schedules in the listing
SCHEDULES.register("rigl-cascade")(_on_a_mask)


@dataclass(frozen=True)
class TrainResult:
    """The trained sparse Program, its dense counterpart (if trained) and their comparison on the test split."""

    program: Program
    path: Path | None
    evaluation: Any  # passes.evaluate.Evaluation
    comparison: Any | None  # passes.evaluate.Comparison
    signs: dict[str, Any] = dataclasses.field(default_factory=dict)  # sign diagnostics (passes.signs)
    budget: dict[str, Any] | None = None  # --budget flops: the epochs trained and the FLOPs vs dense
    int8: dict[str, Any] | None = None  # --precision int8: test accuracy fp32, after PTQ, after QAT

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
        if self.budget is not None:
            report["budget"] = self.budget
        if self.int8 is not None:
            report["int8"] = self.int8
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
    quantize: dict[str, Any] | None = None,
    qat_epochs: int = 10,
) -> TrainResult:
    """Train `model` sparse as `recipe` and `plan` say and save it to `out` (a `.pt2`); with `baseline`, also
    train it dense with the same settings and compare the two (accuracy per class and under noise/FGSM).
    `quantize` (the `quantize.ptq` options): the trained model is then calibrated to int8 on the plan's data
    and fine-tuned `qat_epochs` quantization-aware (`train.finetune` on the simulated int8 model), masks
    fixed; the comparison is of the int8 result."""
    from .. import passes
    from ..data import load
    from ..frontends import load_model
    from ..frontends.torch import save_pt2
    from ..passes.evaluate import compare, evaluate
    from ..passes.signs import flipped
    from ..passes.train import diagnostics, world_and_rank

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
    int8 = None
    if quantize is not None:
        program, int8 = _quantization_aware(program, data, plan, quantize, qat_epochs, seed, say)
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
    spent = collected.pop("budget", None)
    signs = {"flipped_since_init": flipped(initial.weights, program.weights, program.masks), **collected}
    return TrainResult(program, path, evaluation, comparison, signs, spent, int8)


def _quantization_aware(program, data, plan: TrainPlan, quantize, epochs: int, seed: int, say):
    """(int8 program, test accuracies fp32 / after PTQ / after QAT): PTQ on the plan's data, then QAT."""
    from .. import passes
    from ..passes.evaluate import evaluate

    def accuracy(p) -> float:
        return evaluate(p, data, seed=seed, noise=(), fgsm=()).accuracy

    say("calibrating int8 ranges")
    calibrated = passes.run(program, [("quantize.ptq", {**quantize, "data": plan.data, "seed": seed})])
    say(f"fine-tuning int8-aware ({epochs} epochs, masks fixed)")
    finetuned = passes.run(
        calibrated, [("train.finetune", {"data": plan.data, "epochs": epochs, "seed": seed})]
    )
    scores = {"fp32": accuracy(program), "ptq": accuracy(calibrated), "qat": accuracy(finetuned)}
    return finetuned, {"epochs": epochs, "int8_layers": len(finetuned.int8_layers), "accuracy": scores}
