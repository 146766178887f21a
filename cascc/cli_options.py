"""Options and consoles shared by the `cascc` commands (cli.py, cli_train.py)."""

from __future__ import annotations

import math
import os
from pathlib import Path
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
        if len(shape) > 8 or math.prod(shape) > 2**31:
            self.fail(
                f"{value!r} is {math.prod(shape):,} elements, past any input cascc compiles", param, ctx
            )
        return name, shape


class FiniteFloat(click.FloatRange):
    """click's FloatRange, refusing nan and ±inf (which compare False to every bound and slip through)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


# every seed becomes a torch/numpy seed: a signed 64-bit range
SEED = click.IntRange(0, 2**63 - 1)

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
            type=FiniteFloat(0, min_open=True),
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


# option → (when it applies, what to add for it to apply): an explicit option that would do nothing is an
# error, never silently ignored
APPLIES = {
    "nm": (lambda o: o["criterion"] == "nm", "--criterion nm"),
    "block": (lambda o: o["criterion"] == "block", "--criterion block"),
    "margin": (lambda o: o["allocator"] == "cascade", "--allocator cascade"),
}


def _recipe(options: dict[str, Any], seed: int, *, command_uses_data: bool = False):
    """Split the shared options into (Recipe, input shapes), refusing options given explicitly that the
    other options make meaningless, and checking the recipe's values before any work starts.
    `command_uses_data`: the command itself reads --data (analyze probes, fine-tuning, training)."""
    from .data import check_spec
    from .recipe import Recipe

    ctx = click.get_current_context(silent=True)
    for name, (applies, needs) in APPLIES.items():
        given = ctx is not None and ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
        if name in options and given and not applies(options):
            flag = "--" + name.replace("_", "-")
            raise click.UsageError(
                f"{flag} does nothing here: it applies with {needs} (add it, or drop {flag})"
            )
    if options.get("data") is not None:
        check_spec(options["data"])
        if not (command_uses_data or options["criterion"] == "snip" or options["reparam"] == "rescale"):
            raise click.UsageError(
                "--data does nothing here: it feeds --criterion snip, --reparam rescale, --finetune and the "
                "analysis (add one, or drop --data)"
            )
    shapes = dict(options.pop("input_shapes", ()) or ()) or None
    recipe = Recipe(seed=seed, **options)
    recipe.steps()  # value errors (an unreadable --nm or --block) before the model is imported
    return recipe, shapes


def writable_file(
    path: Path, suffixes: tuple[str, ...], option: str, *, inputs: tuple[Path, ...] = ()
) -> None:
    """Refuse an output file before any work: a wrong suffix, a directory, a parent that is missing, not
    a directory or not writable, or a path that is one of `inputs` or lies inside one (an artifact)."""
    from .errors import OptionError

    resolved = path.resolve()
    for given in inputs:
        given = Path(given).resolve()
        if resolved == given or given in resolved.parents:
            raise OptionError(
                path, f"{option} would overwrite the input {given}", "write the output elsewhere"
            )
    if path.suffix.lower() not in suffixes:
        raise OptionError(path, f"{option} must end in {' or '.join(suffixes)}", "rename the output file")
    if path.is_dir():
        raise OptionError(path, f"{option} is a directory", "name a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OptionError(
            path, f"{option}: the folder {parent} does not exist or is not writable", "choose another path"
        )
