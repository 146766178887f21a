"""`cascc compile`, `prune`, `export-onnx` and `analyze`: from a model to a Program or an artifact."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from ..training.config import TrainConfig
from .options import (
    INPUT_SHAPE,
    SEED,
    Names,
    _recipe,
    config_option,
    err,
    out,
    precision_options,
    quantization,
    sparsify_options,
    writable_file,
)


def _target_names() -> list[str]:  # read when --target is parsed or shown
    from ..targets import TARGETS

    return sorted(TARGETS)


STRICT = click.option(
    "--strict", is_flag=True, help="Refuse a model whose weights hold NaN or Inf (else a warning)."
)


@click.command("compile")
@click.argument("model")
@click.option(
    "--target",
    "-t",
    type=Names(_target_names),
    default="x86",
    show_default=True,
    help="Compilation target.",
)
@sparsify_options
@click.option(
    "--output",
    "-o",
    "output",
    type=click.Path(path_type=Path),
    required=True,
    help="Artifact directory to write (atomically).",
)
@click.option(
    "--cpu",
    "--arch",
    "cpu",
    help="Target CPU for LLVM (-mcpu), e.g. cortex-a72, or the GPU arch for cuda (sm_80, sm_86, …); "
    "default: host CPU for x86, generic for arm64, sm_80 for cuda.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for every random choice.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option(
    "--measure",
    is_flag=True,
    help="Time each layer's chosen kernel and its alternative here; stored in the manifest (not deterministic).",
)
@click.option(
    "--finetune",
    is_flag=True,
    help="Fine-tune on --data after pruning, masks fixed; report accuracy vs the model.",
)
@config_option(TrainConfig, "epochs", default=10, help="Fine-tuning epochs.")
@config_option(TrainConfig, "lr", help="Fine-tuning learning rate (default 0.05, SGD).")
@precision_options
@STRICT
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of a table.")
def compile_cmd(
    model: str,
    target: str,
    output: Path,
    cpu: str | None,
    seed: int,
    force: bool,
    measure: bool,
    finetune: bool,
    epochs: int,
    lr: float | None,
    precision: str,
    calibrator: str,
    calibration_samples: int,
    strict: bool,
    as_json: bool,
    **recipe: Any,
) -> None:
    """Compile MODEL (file.py:factory, .pt2 or .onnx) into an artifact directory."""
    from ..api import compile as compile_model

    recipe_, shapes = _recipe(recipe, seed, command_uses_data=finetune or precision == "int8")
    quantize = quantization(precision, calibrator, calibration_samples, recipe_.data, seed)
    tuning = None
    if finetune:
        if recipe_.data is None:
            raise click.UsageError("--finetune needs --data (e.g. --data digits)")
        tuning = {"data": recipe_.data, "epochs": epochs, **({"lr": lr} if lr else {})}
    from .train import progress_bar

    with progress_bar(), err.status("compiling") as status:
        result = compile_model(
            model,
            target=target,
            recipe=recipe_,
            input_shapes=shapes,
            out=output,
            seed=seed,
            force=force,
            cpu=cpu,
            measure=measure,
            finetune=tuning,
            quantize=quantize,
            stage=lambda msg: status.update(f"{msg}…"),
            strict=strict,
        )
    if as_json:
        click.echo(json.dumps({**result.manifest, "digest": result.digest}, indent=2, sort_keys=True))
        return
    _layer_table(result.manifest)
    if "evaluation" in result.manifest:
        from .train import evaluation_table

        evaluation_table(result.manifest["evaluation"])
    rows = result.manifest["layers"]
    kept, total = sum(r["nonzero"] for r in rows), sum(r["weights"] for r in rows)
    size = sum(f["bytes"] for f in result.manifest["files"].values())
    out.print(f"{kept:,} of {total:,} prunable weights kept (density {kept / max(total, 1):.3f})")
    out.print(kernel_count_line(rows))
    out.print(f"wrote [bold]{escape(str(output))}[/] ({size / 1024:.1f} KiB) for target {target}")
    if "size" in result.manifest:
        s = result.manifest["size"]
        out.print(
            f"library {s['library'] / 1024:.1f} KiB: code {s['code'] / 1024:.1f} KiB in {s['kernels']} "
            f"kernels, constants {s['weights'] / 1024:.1f} KiB"
        )
    out.print(
        f"manifest digest {result.digest} (pin it with --expect-digest)", highlight=False, soft_wrap=True
    )


def kernel_count_line(rows: list[dict[str, Any]]) -> str:
    """How many prunable layers run on cascc's kernels (sparse, dense) and how many on TVM's generic
    lowering, with the generic ones' kinds."""
    kinds = Counter(r.get("kernel_kind", "generic") for r in rows)
    cascc_ = kinds.get("sparse", 0) + kinds.get("dense", 0)
    generic = Counter(r["kind"] for r in rows if r.get("kernel_kind", "generic") == "generic")
    line = (
        f"layers on cascc kernels: {cascc_} of {len(rows)} ({kinds.get('sparse', 0)} sparse, "
        f"{kinds.get('dense', 0)} dense)"
    )
    if generic:
        line += "; on TVM's generic lowering: " + ", ".join(f"{n} {k}" for k, n in sorted(generic.items()))
    return line


def _layer_table(manifest: dict[str, Any]) -> None:
    measured = any(row.get("measured_us") for row in manifest["layers"])
    table = Table(title="layers", title_justify="left")
    quantized = any(row.get("precision", "fp32") != "fp32" for row in manifest["layers"])
    for col in (
        ("layer", "kind", "shape", "density", "kernel", "reason")
        + (("precision",) if quantized else ())
        + (("measured µs",) if measured else ())
    ):
        table.add_column(col)
    for row in manifest["layers"]:
        cells = [
            row["name"],
            row["kind"],
            "×".join(map(str, row["shape"])),
            f"{row['density']:.3f}",
            row["kernel"] or "",
            row["reason"] or "",
        ]
        if quantized:
            why = row.get("precision_reason")
            cells.append(row.get("precision", "fp32") + (f": {why}" if why else ""))
        if measured:
            m = row.get("measured_us") or {}
            cells.append(", ".join(f"{k} {v:.1f}" for k, v in sorted(m.items())))
        table.add_row(*cells)
    out.print(table)


@click.command("prune")
@click.argument("model")
@sparsify_options
@click.option(
    "--output", "-o", "output", type=click.Path(path_type=Path), required=True, help="The .pt2 file to write."
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for every random choice.")
@precision_options
@STRICT
def prune_cmd(
    model: str,
    output: Path,
    seed: int,
    precision: str,
    calibrator: str,
    calibration_samples: int,
    strict: bool,
    **recipe: Any,
) -> None:
    """Sparsify MODEL and save it as a .pt2 (masks and pass history kept) for compile, analyze or training."""
    from ..api import prune
    from ..frontends import model_file
    from ..ir import layers

    writable_file(output, (".pt2",), "--output", inputs=(model_file(model),))
    recipe_, shapes = _recipe(recipe, seed, command_uses_data=precision == "int8")
    quantize = quantization(precision, calibrator, calibration_samples, recipe_.data, seed)
    with err.status("pruning") as status:
        program = prune(
            model,
            recipe_,
            out=output,
            seed=seed,
            quantize=quantize,
            stage=lambda m: status.update(f"{m}…"),
            input_shapes=shapes,
            strict=strict,
        )
    rows = layers(program)
    kept = sum(int(program.masks[r.name].sum()) if r.name in program.masks else r.size for r in rows)
    total = sum(r.size for r in rows)
    out.print(f"{kept:,} of {total:,} prunable weights kept (density {kept / max(total, 1):.4f})")
    out.print(
        f"wrote [bold]{escape(str(output))}[/] after {', '.join(r.name for r in program.history) or 'no passes'}"
    )


@click.command("export-onnx")
@click.argument("source")
@click.option(
    "--output", "-o", "output", type=click.Path(path_type=Path), required=True, help="The .onnx file."
)
@click.option(
    "--sparse-initializers", is_flag=True, help="Store masked weights as ONNX sparse_initializers (COO)."
)
@INPUT_SHAPE
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed (for factories).")
@click.option(
    "--model",
    metavar="MODEL",
    help="With an artifact DIR as SOURCE: the model it was compiled from (never read from its manifest).",
)
def export_onnx_cmd(
    source: str, output: Path, sparse_initializers: bool, input_shapes: tuple, seed: int, model: str | None
) -> None:
    """Write SOURCE (an artifact DIR, file.py:factory, .pt2 or .onnx) as ONNX, masked weights zeroed."""
    from ..api import export_onnx
    from ..frontends import model_file

    writable_file(output, (".onnx",), "--output", inputs=(model_file(source),))
    with err.status("exporting to ONNX…"):
        program = export_onnx(
            source,
            output,
            sparse_initializers=sparse_initializers,
            input_shapes=dict(input_shapes) or None,
            seed=seed,
            model=model,
        )
    size = output.stat().st_size
    out.print(
        f"wrote [bold]{escape(str(output))}[/] ({size / 1024:.1f} KiB, {len(program.masks)} masked weight(s)"
        f"{' as sparse initializers' if sparse_initializers else ''})"
    )


@click.command("analyze")
@click.argument("model")
@sparsify_options
@click.option("--html", "html_path", type=click.Path(path_type=Path), help="Write an HTML report with plots.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for every random choice.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def analyze_cmd(model: str, html_path: Path | None, seed: int, as_json: bool, **recipe: Any) -> None:
    """Cascade analysis of MODEL (after pruning, if --sparsity is given): connectivity, dead units, signal."""
    from ..api import analyze

    recipe_, shapes = _recipe(recipe, seed, command_uses_data=True)
    with err.status("analyzing") as status:
        report = analyze(
            model,
            recipe_,
            input_shapes=shapes,
            data=recipe_.data,
            html=html_path,
            seed=seed,
            stage=lambda m: status.update(f"{m}…"),
        )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    _analysis_table(report)
    if html_path:
        out.print(f"wrote [bold]{escape(str(html_path))}[/]")


def _analysis_table(report) -> None:
    """The terminal view: the columns that decide health; --json and --html carry every field."""
    table = Table(title=f"cascade analysis, probe: {report.probe}", title_justify="left")
    for col in (
        "layer",
        "density",
        "in-degree mean (0)",
        "dead/isolated",
        "functional exact/analytic",
        "active meas/analytic",
        "gain meas/mean-field",
    ):
        table.add_column(col)
    for r in report.layers:
        measured = r.measured_active is not None
        table.add_row(
            r.name,
            f"{r.density:.3f}",
            f"{r.in_degree_mean:.1f} ({r.in_degree_zero_share:.0%})",
            f"{r.dead_units}/{r.isolated_units}",
            f"{r.functional:.2f} / {r.predicted_functional:.2f}",
            f"{r.measured_active:.2f} / {r.predicted_active:.2f}" if measured else "–",
            f"{r.measured_gain:.3g} / {r.predicted_gain:.3g}" if measured else "–",
        )
    out.print(table)
    colour = {"healthy": "green", "degraded": "yellow", "collapsed": "red"}[report.status]
    out.print(f"[bold {colour}]{report.status}[/]: {escape(report.summary)}")


COMMANDS = (
    compile_cmd,
    prune_cmd,
    export_onnx_cmd,
    analyze_cmd,
)
