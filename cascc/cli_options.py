"""Options and consoles shared by the `cascc` commands (cli.py, cli_train.py)."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

out = Console()
err = Console(stderr=True)


class InputShape(click.ParamType):
    """`name=1x3x224x224`: a static shape for one model input."""

    name = "NAME=DxDx…"

    def convert(self, value, param, ctx):
        name, sep, dims = str(value).partition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or min(shape) < 1:
            self.fail(f"{value!r} is not NAME=DxDx… (e.g. input=1x3x224x224)", param, ctx)
        return name, shape


INPUT_SHAPE = click.option(
    "--input-shape",
    "input_shapes",
    type=InputShape(),
    multiple=True,
    help="ONNX models: fix an input's symbolic dimensions, e.g. input=1x3x224x224 (repeatable).",
)


def _sparsify_option_table() -> dict[str, Any]:
    """The pruning options that build a `Recipe`, by parameter name, plus --input-shape."""
    from .recipe import ALLOCATOR_NAMES, CRITERIA, REPARAMS

    options = [
        INPUT_SHAPE,
        click.option(
            "--sparsity",
            "-s",
            type=click.FloatRange(0, 1, max_open=True),
            default=0.0,
            show_default=True,
            help="Fraction of prunable weights to remove (0 = dense).",
        ),
        click.option(
            "--allocator",
            type=click.Choice(ALLOCATOR_NAMES),
            default="uniform",
            show_default=True,
            help="Layerwise density allocation; 'cascade' keeps every layer above the percolation margin, "
            "'global' ranks all layers' scores together.",
        ),
        click.option(
            "--criterion",
            type=click.Choice(list(CRITERIA)),
            default="magnitude",
            show_default=True,
            help="Which weights survive inside a layer.",
        ),
        click.option("--nm", default="2:4", show_default=True, help="N:M pattern for --criterion nm."),
        click.option("--block", default="4x1", show_default=True, help="ROWSxCOLS for --criterion block."),
        click.option(
            "--dense-ends", is_flag=True, help="Uniform allocator: keep the first and last layer dense."
        ),
        click.option(
            "--margin",
            type=click.FloatRange(0, min_open=True),
            default=3.0,
            show_default=True,
            help="Cascade allocator: least expected live in/out-degree per unit (κ).",
        ),
        click.option(
            "--reparam",
            type=click.Choice(list(REPARAMS)),
            default="none",
            show_default=True,
            help="After pruning: variance-preserving rescale, or sparse-aware re-initialization.",
        ),
        click.option(
            "--repair-flow",
            is_flag=True,
            help="After pruning, give every dead or unread unit one random connection (cost reported).",
        ),
        click.option("--shrink", is_flag=True, help="Remove dead units structurally (outputs unchanged)."),
        click.option(
            "--data",
            help="Data set for SNIP, rescale, analysis probes and --finetune: digits, mnist1d, npz:PATH or "
            "csv:PATH (default: Gaussian probes).",
        ),
    ]
    names = [
        "input_shapes", "sparsity", "allocator", "criterion", "nm", "block", "dense_ends", "margin", "reparam",
        "repair_flow", "shrink", "data",
    ]  # fmt: skip
    return dict(zip(names, options))


def sparsify_options(command, only: tuple[str, ...] | None = None):
    """The pruning options shared by compile, prune, analyze and train (`only`: a subset, by name)."""
    table = _sparsify_option_table()
    for name in reversed(list(table)):
        if only is None or name in only:
            command = table[name](command)
    return command


def _recipe(options: dict[str, Any], seed: int):
    """Split the shared options into (Recipe, input shapes)."""
    from .recipe import Recipe

    shapes = dict(options.pop("input_shapes", ()) or ()) or None
    return Recipe(seed=seed, **options), shapes
