"""Options and consoles shared by the `cascc` commands."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

out = Console()
err = Console(stderr=True)


class Names(click.Choice):
    """A click.Choice over names a registry holds, read when an option is parsed or its help shown (never
    cached: a name registered later is a choice too), so that building the command tree (and
    `cascc --help`) imports neither torch nor the passes."""

    def __init__(self, names: Callable[[], Iterable[str]]):
        self._names = names
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._names())


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
    """The pruning options that build a `Recipe`, by parameter name, plus --input-shape; the names each
    takes come from the registries (read when parsed or shown, not when the command tree is built)."""
    from .. import recipe

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
            type=Names(recipe.allocators),
            default="uniform",
            show_default=True,
            help="Layerwise density allocation; 'cascade' keeps every layer above the percolation margin, "
            "'global' ranks all layers' scores together.",
        ),
        click.option(
            "--criterion",
            type=Names(recipe.criteria),
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
            type=Names(recipe.reparams),
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
    return dict(zip(names, options, strict=True))


def sparsify_options(command, only: tuple[str, ...] | None = None):
    """The pruning options shared by compile, prune, analyze and train (`only`: a subset, by name)."""
    table = _sparsify_option_table()
    for name in reversed(list(table)):
        if only is None or name in only:
            command = table[name](command)
    return command


def _recipe(options: dict[str, Any], seed: int, *, command_uses_data: bool = False):
    """Split the shared options into (Recipe, input shapes), refusing options given explicitly that the
    chosen criterion, allocator and reparameterization do not declare (`Recipe.check_applies`), and checking
    the recipe's values before any work starts. `command_uses_data`: the command itself reads --data
    (analyze probes, fine-tuning, training)."""
    from ..data import check_spec
    from ..recipe import Recipe

    ctx = click.get_current_context(silent=True)
    given = [
        name
        for name in options
        if ctx is not None and ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    ]
    if options.get("data") is not None:
        check_spec(options["data"])
    shapes = dict(options.pop("input_shapes", ()) or ()) or None
    recipe = Recipe(seed=seed, **options)
    # value errors (an unreadable --nm or --block) and options that would do nothing, before the model loads
    recipe.steps(given=given, command_uses=("data",) if command_uses_data else ())
    return recipe, shapes


def writable_file(
    path: Path, suffixes: tuple[str, ...], option: str, *, inputs: tuple[Path, ...] = ()
) -> None:
    """Refuse an output file before any work: a wrong suffix, a directory, a parent that is missing, not
    a directory or not writable, or a path that is one of `inputs` or lies inside one (an artifact)."""
    from ..errors import OptionError

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


def config_option(cls: type, name: str, **override: Any):
    """The click option for field `name` of a config dataclass (cascc.training.config): `--name-with-dashes`,
    its type from the annotation and the field's `Flag` (range, or the registry its names come from), its
    default and help from the field; `override` replaces click settings (another default, help)."""
    import dataclasses
    import typing

    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    flag = field.metadata["flag"]
    hint = typing.get_type_hints(cls)[name]
    kind = next(t for t in typing.get_args(hint) or (hint,) if t is not type(None))
    settings: dict[str, Any] = {"default": field.default, "help": flag.help}
    if kind is bool:
        settings["is_flag"] = True
    else:
        if flag.names is not None:
            settings["type"] = Names(flag.names)
        elif kind is int:
            settings["type"] = click.IntRange(flag.low, flag.high)
        elif kind is float:
            settings["type"] = FiniteFloat(flag.low, flag.high, min_open=flag.low_open)
        settings["show_default"] = field.default is not None
    settings.update(override)
    return click.option("--" + name.replace("_", "-"), name, **settings)


def config_options(cls: type, names: Iterable[str] | None = None):
    """Every offered field of a config dataclass (or those in `names`) as click options, in field order."""
    from ..training.config import offered

    chosen = [f.name for f in offered(cls) if names is None or f.name in names]

    def add(command):
        for name in reversed(chosen):
            command = config_option(cls, name)(command)
        return command

    return add


def _precisions():
    from ..ir.quant import Precision

    return [precision.value for precision in Precision]


def _calibrators():
    from cascc.passes.quantize import CALIBRATORS

    return CALIBRATORS


def precision_options(command):
    """--precision and the int8 calibration options (compile, prune)."""
    options = [
        click.option(
            "--precision",
            type=Names(_precisions),
            default="fp32",
            show_default=True,
            help="Arithmetic: int8 quantizes weights per channel and activations per tensor, calibrated on "
            "--data (Gaussian probes without it, with a warning); layers that stay fp32 say why.",
        ),
        click.option(
            "--calibrator",
            type=Names(_calibrators),
            default="percentile",
            show_default=True,
            help="int8 activation ranges: the 99.99th-percentile range, or the observed min-max.",
        ),
        click.option(
            "--calibration-samples",
            type=click.IntRange(1, 1 << 20),
            default=256,
            show_default=True,
            help="int8: samples the activation ranges are calibrated on.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def quantization(precision: str, calibrator: str, samples: int, data: str | None, seed: int):
    """The `quantize.ptq` options for --precision (None: fp32), or a clear error for one not offered."""
    from ..errors import OptionError

    if precision == "bf16":
        raise OptionError(
            "bf16",
            "cascc has no bf16 kernels yet: TVM 0.27's LLVM codegen has no bfloat vector type (it legalizes "
            "bf16 to f32 compute and u16 storage), so it cannot emit AVX512-BF16's vdpbf16ps, whose LLVM "
            "intrinsic takes <32 x bfloat> operands",
            "compile with --precision fp32 or int8",
        )
    if precision == "fp32":
        return None
    return {"data": data, "calibrator": calibrator, "samples": samples, "seed": seed}
