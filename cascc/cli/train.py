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

from ..errors import OptionError
from ..training.plan import TrainPlan
from ..training.presets import PRESETS
from .options import (
    SEED,
    Names,
    _recipe,
    config_options,
    err,
    out,
    precision_options,
    quantization,
    sparsify_options,
    writable_file,
)

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
    from ..passes.train import progress

    token = progress.set(RichProgress())
    try:
        yield
    finally:
        progress.reset(token)


@click.command("train")
@click.option("--model", "-m", "model", required=True, help="The model: file.py:factory, .pt2 or .onnx.")
@click.option(
    "--preset",
    type=Names(lambda: PRESETS),
    help="Named settings of the best de novo method found (denovo: the MNIST-1D CNN's, ticket: the MLP's); "
    "options given explicitly win. Printed and recorded in the .pt2's history.",
)
@config_options(TrainPlan)
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
@precision_options
@click.option(
    "--qat-epochs",
    type=click.IntRange(1, 10_000),
    default=10,
    show_default=True,
    help="--precision int8: epochs of quantization-aware fine-tuning after calibration.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def train_cmd(
    model: str,
    preset: str | None,
    output: Path,
    seed: int,
    baseline: bool,
    nproc: int,
    nnodes: int,
    node_rank: int,
    rdzv_endpoint: str | None,
    as_json: bool,
    precision: str,
    calibrator: str,
    calibration_samples: int,
    qat_epochs: int,
    **options: Any,
) -> None:
    """Train the --model sparse (de novo, GMP, IMP, LRR, RigL or SET), save it as a .pt2, and compare it with the
    same model trained dense: accuracy, per class, under Gaussian noise and under FGSM."""
    import json

    from ..frontends import model_file
    from ..training.plan import train

    writable_file(output, (".pt2",), "--output", inputs=(model_file(model),))
    settings = None
    if preset is not None:
        options, settings = PRESETS[preset].apply(options, _given(options))
        shown = ", ".join(f"{name}={value}" for name, value in settings.items())
        err.print(f"preset {preset}: {escape(shown)}")
    recipe_options = {k: options.pop(k) for k in list(options) if k in TRAIN_RECIPE_OPTIONS}
    recipe, shapes = _recipe(recipe_options, seed, command_uses_data=True)
    plan = TrainPlan(**options, preset=preset, preset_settings=settings)
    quantize = quantization(precision, calibrator, calibration_samples, plan.data, seed)
    if quantize is not None and (nproc > 1 or nnodes > 1):
        raise OptionError(
            "--precision int8", "quantization-aware training runs in one process", "drop --nproc/--nnodes"
        )
    if nproc > 1 or nnodes > 1:
        from ..training.distributed import launch

        report = launch(
            model, recipe, plan, out=output, seed=seed, baseline=baseline, input_shapes=shapes, nproc=nproc,
            nnodes=nnodes, node_rank=node_rank, rdzv_endpoint=rdzv_endpoint,
        )  # fmt: skip
    else:
        with progress_bar(), err.status("training") as status:
            result = train(
                model, recipe, plan, out=output, seed=seed, baseline=baseline, input_shapes=shapes,
                stage=lambda msg: status.update(f"{msg}…"), quantize=quantize, qat_epochs=qat_epochs,
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
    if "int8" in report:
        scores = report["int8"]["accuracy"]
        out.print(
            f"int8 ({report['int8']['int8_layers']} layers): test accuracy fp32 {scores['fp32']:.3f}, "
            f"after calibration {scores['ptq']:.3f}, after {report['int8']['epochs']} epochs "
            f"quantization-aware {scores['qat']:.3f}"
        )
    if "budget" in report:
        spent = report["budget"]
        out.print(
            f"equal-FLOPs budget: {spent['epochs']} epochs for the dense run's {spent['dense_epochs']} "
            f"({spent['flops_vs_dense']:.2f}× its training FLOPs)"
        )
    out.print(f"wrote [bold]{escape(str(output))}[/] after {', '.join(p['name'] for p in report['passes'])}")


def _given(options: dict[str, Any]) -> list[str]:
    """The options the user set (command line or environment), which a preset does not override."""
    ctx = click.get_current_context()
    defaults = (click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP)
    return [name for name in options if ctx.get_parameter_source(name) not in defaults]


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
