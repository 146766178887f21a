"""`cascc train`: de novo sparse training and the standard sparse-training schedules, from the command line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .cli_options import SEED, FiniteFloat, _recipe, err, out, sparsify_options, writable_file
from .training import INITS, SCHEDULES

DATA_HELP = "Data set: digits, mnist1d, npz:PATH (x_train, y_train, x_test, y_test) or csv:PATH (last column = label)."


# The pruning options of `train` (the rest of compile's recipe options do not apply to training).
TRAIN_RECIPE_OPTIONS = (
    "input_shapes",
    "sparsity",
    "allocator",
    "criterion",
    "dense_ends",
    "margin",
    "repair_flow",
)


def pruning_options(command):
    return sparsify_options(command, only=TRAIN_RECIPE_OPTIONS)


class RichProgress:
    """passes.train.Progress as a rich progress bar with the running loss and batch accuracy."""

    def __init__(self) -> None:
        self._bar: Progress | None = None

    def begin(self, description: str, total: int) -> None:
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f} · acc {task.fields[acc]:.3f}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, loss=float("nan"), acc=float("nan"))

    def step(self, loss: float, accuracy: float) -> None:
        self._bar.update(self._task, advance=1, loss=loss, acc=accuracy)

    def end(self) -> None:
        self._bar.stop()


@contextlib.contextmanager
def progress_bar() -> Iterator[None]:
    """Show training loops run inside the block as a progress bar."""
    from .passes.train import progress

    token = progress.set(RichProgress())
    try:
        yield
    finally:
        progress.reset(token)


def training_options(command):
    """Optimizer options shared by `train` (and, in part, `compile --finetune`)."""
    options = [
        click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True),
        click.option("--optimizer", type=click.Choice(["sgd", "adamw"]), default="sgd", show_default=True),
        click.option(
            "--lr",
            type=FiniteFloat(0, min_open=True),
            help="Learning rate (default 0.1 SGD, 3e-3 AdamW).",
        ),
        click.option("--weight-decay", type=FiniteFloat(0), default=5e-4, show_default=True),
        click.option(
            "--lr-schedule",
            type=click.Choice(["cosine", "step", "constant", "cyclic"]),
            default="cosine",
            show_default=True,
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command("train")
@click.option("--model", "-m", "model", required=True, help="The model: file.py:factory, .pt2 or .onnx.")
@click.option("--data", default="digits", show_default=True, help=DATA_HELP)
@click.option(
    "--schedule",
    type=click.Choice(SCHEDULES),
    default="static",
    show_default=True,
    help="static: fixed mask from the start · gmp: gradual magnitude pruning from dense · imp/lrr: iterative "
    "pruning with weight / learning-rate rewinding · rigl/set: dynamic sparse training · sculpt: cyclic "
    "training, one magnitude step, cyclic training.",
)
@click.option(
    "--init",
    type=click.Choice(list(INITS)),
    default="sparse-aware",
    show_default=True,
    help="Sparse-mask schedules: per-unit He init from the in-degree (sparse-aware), looks-linear orthogonal, "
    "He with depth-scaled biases (depth-bias), or keep the model's weights.",
)
@click.option(
    "--epochs", type=click.IntRange(1), default=20, show_default=True, help="Epochs (per IMP/LRR round)."
)
@training_options
@click.option(
    "--rounds", type=click.IntRange(1), help="IMP/LRR rounds (default: prune 20% of the rest each round)."
)
@click.option(
    "--rewind-epochs",
    type=FiniteFloat(0),
    default=0.5,
    show_default=True,
    help="IMP: rewind weights to here.",
)
@click.option(
    "--update-every", type=click.IntRange(1), help="RigL/SET: steps between mask updates (default auto)."
)
@click.option(
    "--ham", is_flag=True, help="Wrap the optimizer in HAM (hyperbolic aware minimization; masks kept)."
)
@click.option(
    "--perturb-signs",
    type=FiniteFloat(0, 1),
    default=0.0,
    help="Ablation: flip this share of kept signs at init.",
)
@click.option(
    "--mw", is_flag=True, help="Train masked weights as m⊙w with decaying weight decay (PILoT-style)."
)
@click.option(
    "--mw-rebalance-every",
    type=click.IntRange(0),
    default=0,
    help="With --mw: Sign-In rebalancing period (steps).",
)
@pruning_options
@click.option(
    "--baseline/--no-baseline", default=True, show_default=True, help="Also train dense and compare."
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for every random choice.")
@click.option(
    "--nproc",
    type=click.IntRange(1, 1024),
    default=1,
    show_default=True,
    help="Processes per node (torchrun).",
)
@click.option("--nnodes", type=click.IntRange(1), default=1, show_default=True, help="Nodes (torchrun).")
@click.option("--node-rank", type=click.IntRange(0), default=0, show_default=True, help="This node's rank.")
@click.option("--rdzv-endpoint", help="Multi-node rendezvous HOST:PORT (torchrun's c10d rendezvous).")
@click.option(
    "--output", "-o", "output", type=click.Path(path_type=Path), required=True, help="The .pt2 file to write."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def train_cmd(
    model: str,
    output: Path,
    seed: int,
    baseline: bool,
    nproc: int,
    nnodes: int,
    node_rank: int,
    rdzv_endpoint: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Train the --model sparse (de novo, GMP, IMP, LRR, RigL or SET), save it as a .pt2, and compare it with the
    same model trained dense: accuracy, per class, under Gaussian noise and under FGSM."""
    import json

    from .frontends import model_file
    from .training import TrainPlan, train

    writable_file(output, (".pt2",), "--output", inputs=(model_file(model),))
    recipe_options = {k: options.pop(k) for k in list(options) if k in TRAIN_RECIPE_OPTIONS}
    recipe, shapes = _recipe(recipe_options, seed, command_uses_data=True)
    plan = TrainPlan(**options)
    if nproc > 1 or nnodes > 1:
        from .launch import launch

        report = launch(
            model, recipe, plan, out=output, seed=seed, baseline=baseline, input_shapes=shapes, nproc=nproc,
            nnodes=nnodes, node_rank=node_rank, rdzv_endpoint=rdzv_endpoint,
        )  # fmt: skip
    else:
        with progress_bar(), err.status("training") as status:
            result = train(
                model, recipe, plan, out=output, seed=seed, baseline=baseline, input_shapes=shapes,
                stage=lambda msg: status.update(f"{msg}…"),
            )  # fmt: skip
        report = result.to_json()
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    evaluation_table(report["evaluation"])
    if "flipped_since_init" in report.get("signs", {}):
        out.print(
            f"signs flipped since init: {100 * report['signs']['flipped_since_init']:.1f}% of kept weights"
        )
    if "level_sign_agreement" in report.get("signs", {}):
        levels = ", ".join(f"{100 * a:.1f}%" for a in report["signs"]["level_sign_agreement"])
        out.print(f"sign agreement with the previous level: {levels}")
    out.print(f"wrote [bold]{escape(str(output))}[/] after {', '.join(p['name'] for p in report['passes'])}")


def evaluation_table(evaluation: dict[str, Any]) -> None:
    """Dense vs sparse on the test split: accuracy, the worst-hit class, Gaussian noise and FGSM."""
    columns = [c for c in ("dense", "sparse") if c in evaluation]
    rows = [("accuracy", lambda e: e["accuracy"])]
    rows += [
        (f"Gaussian noise σ={s}", lambda e, s=s: e["gaussian_noise"][s])
        for s in evaluation["sparse"]["gaussian_noise"]
    ]
    rows += [(f"FGSM ε={s}", lambda e, s=s: e["fgsm"][s]) for s in evaluation["sparse"]["fgsm"]]
    table = Table(title=f"test accuracy ({evaluation['sparse']['samples']} samples)", title_justify="left")
    for col in ("metric", *columns, *(["Δ"] if len(columns) == 2 else [])):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for label, get in rows:
        values = [get(evaluation[c]) for c in columns]
        delta = [f"{values[1] - values[0]:+.3f}"] if len(values) == 2 else []
        table.add_row(label, *(f"{v:.3f}" for v in values), *delta)
    if "largest_class_drop" in evaluation:
        worst = evaluation["largest_class_drop"]
        c = worst["class"]
        table.add_row(
            f"worst class ({c})",
            f"{evaluation['dense']['per_class'][c]:.3f}",
            f"{evaluation['sparse']['per_class'][c]:.3f}",
            f"{-worst['drop']:+.3f}",
        )
    out.print(table)
