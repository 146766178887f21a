"""The `cascc` command line: thin click wrappers over the library; errors are translated once, in `CasccGroup`."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from .cli_options import INPUT_SHAPE, SEED, FiniteFloat, _recipe, err, out, sparsify_options, writable_file
from .cli_train import train_cmd
from .errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_INTERNAL, CasccError

# torch.export emits a pytree FutureWarning on every export; it is torch's, not the user's.
warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)


EXIT_CODES = f"""Exit codes: 0 ok · {EXIT_CHECK_FAILED} a check failed · {EXIT_BAD_INPUT} bad input or usage ·
{EXIT_INTERNAL} internal error (rerun with --debug or CASCC_DEBUG=1 for the traceback)."""


class CasccGroup(click.Group):
    """Translates a CasccError into one paragraph and its exit code; anything else into exit 101."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except CasccError as exc:
            if _debug(ctx):
                raise
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            if _debug(ctx):
                raise
            err.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}. "
                "This is a cascc bug; rerun with --debug for the traceback and report it.",
                highlight=False,
                soft_wrap=True,
            )
            ctx.exit(EXIT_INTERNAL)


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool((root.params or {}).get("debug")) or os.environ.get("CASCC_DEBUG") == "1"


def _version() -> str:
    from . import __version__

    return __version__


@click.group(cls=CasccGroup, epilog=EXIT_CODES)
@click.version_option(_version(), prog_name="cascc")
@click.option(
    "--debug", is_flag=True, envvar="CASCC_DEBUG", help="Show full tracebacks (also CASCC_DEBUG=1)."
)
def main(debug: bool) -> None:
    """cascc: sparsify neural networks and compile them through TVM into on-device artifacts."""
    _print_pass_warnings()


def _print_pass_warnings() -> None:
    """Show a pass's PassWarning as one `warning:` line; leave every other warning to Python."""
    from .errors import PassWarning

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PassWarning):
            err.print(f"[bold yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    warnings.simplefilter("always", PassWarning)


def _target_names() -> list[str]:
    from .targets import TARGETS

    return sorted(TARGETS)


STRICT = click.option(
    "--strict", is_flag=True, help="Refuse a model whose weights hold NaN or Inf (else a warning)."
)


@main.command("compile")
@click.argument("model")
@click.option(
    "--target",
    "-t",
    type=click.Choice(_target_names()),
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
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True, help="Fine-tuning epochs.")
@click.option(
    "--lr", type=FiniteFloat(0, min_open=True), help="Fine-tuning learning rate (default 0.05, SGD)."
)
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
    strict: bool,
    as_json: bool,
    **recipe: Any,
) -> None:
    """Compile MODEL (file.py:factory, .pt2 or .onnx) into an artifact directory."""
    from .pipeline import compile as compile_model

    recipe_, shapes = _recipe(recipe, seed, command_uses_data=finetune)
    tuning = None
    if finetune:
        if recipe_.data is None:
            raise click.UsageError("--finetune needs --data (e.g. --data digits)")
        tuning = {"data": recipe_.data, "epochs": epochs, **({"lr": lr} if lr else {})}
    from .cli_train import progress_bar

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
            stage=lambda msg: status.update(f"{msg}…"),
            strict=strict,
        )
    if as_json:
        click.echo(json.dumps({**result.manifest, "digest": result.digest}, indent=2, sort_keys=True))
        return
    _layer_table(result.manifest)
    if "evaluation" in result.manifest:
        from .cli_train import evaluation_table

        evaluation_table(result.manifest["evaluation"])
    rows = result.manifest["layers"]
    kept, total = sum(r["nonzero"] for r in rows), sum(r["weights"] for r in rows)
    size = sum(f["bytes"] for f in result.manifest["files"].values())
    out.print(f"{kept:,} of {total:,} prunable weights kept (density {kept / max(total, 1):.3f})")
    out.print(f"wrote [bold]{escape(str(output))}[/] ({size / 1024:.1f} KiB) for target {target}")
    out.print(
        f"manifest digest {result.digest} (pin it with --expect-digest)", highlight=False, soft_wrap=True
    )


def _layer_table(manifest: dict[str, Any]) -> None:
    measured = any(row.get("measured_us") for row in manifest["layers"])
    table = Table(title="layers", title_justify="left")
    for col in ("layer", "kind", "shape", "density", "kernel", "reason") + (
        ("measured µs",) if measured else ()
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
        if measured:
            m = row.get("measured_us") or {}
            cells.append(", ".join(f"{k} {v:.1f}" for k, v in sorted(m.items())))
        table.add_row(*cells)
    out.print(table)


@main.command("prune")
@click.argument("model")
@sparsify_options
@click.option(
    "--output", "-o", "output", type=click.Path(path_type=Path), required=True, help="The .pt2 file to write."
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for every random choice.")
@STRICT
def prune_cmd(model: str, output: Path, seed: int, strict: bool, **recipe: Any) -> None:
    """Sparsify MODEL and save it as a .pt2 (masks and pass history kept) for compile, analyze or training."""
    from .frontends import model_file
    from .ir import layers
    from .pipeline import prune

    writable_file(output, (".pt2",), "--output", inputs=(model_file(model),))
    recipe_, shapes = _recipe(recipe, seed)
    with err.status("pruning") as status:
        program = prune(
            model,
            recipe_,
            out=output,
            seed=seed,
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


@main.command("export-onnx")
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
    from .frontends import model_file
    from .pipeline import export_onnx

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


@main.command("analyze")
@click.argument("model")
@sparsify_options
@click.option("--html", "html_path", type=click.Path(path_type=Path), help="Write an HTML report with plots.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for every random choice.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def analyze_cmd(model: str, html_path: Path | None, seed: int, as_json: bool, **recipe: Any) -> None:
    """Cascade analysis of MODEL (after pruning, if --sparsity is given): connectivity, dead units, signal."""
    from .pipeline import analyze

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


EXPECT_DIGEST = click.option(
    "--expect-digest",
    metavar="SHA256",
    help="Refuse the artifact unless its manifest digest is this (printed by `cascc compile`): pins "
    "exactly which build a CI run accepts.",
)
MODEL_OPTION = click.option(
    "--model",
    metavar="MODEL",
    help="The artifact's source model (file.py:factory, .pt2, .onnx), for what needs it (a baseline, "
    "--max-class-drop, export of an artifact); cascc never imports the model an artifact's manifest names.",
)


@main.command("run")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option(
    "--input",
    "-i",
    "input_file",
    type=click.Path(path_type=Path),
    help=".npy (single-input model) or .npz keyed by input name; default: the stored sample input.",
)
@click.option(
    "--output", "-o", "output_file", type=click.Path(path_type=Path), help="Save outputs (.npy or .npz)."
)
@click.option(
    "--selftest",
    is_flag=True,
    help="Run the stored sample, a second stored input and the sample again; compare with torch eager.",
)
@EXPECT_DIGEST
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def run_cmd(
    artifact: Path,
    input_file: Path | None,
    output_file: Path | None,
    selftest: bool,
    expect_digest: str | None,
    as_json: bool,
) -> None:
    """Run a compiled ARTIFACT directory with the TVM runtime."""
    import numpy as np

    from . import pipeline
    from .artifact import open_artifact

    if output_file is not None:
        writable_file(
            output_file,
            (".npy", ".npz"),
            "--output",
            inputs=(artifact,) + ((input_file,) if input_file else ()),
        )
    if selftest:
        result = pipeline.selftest(artifact, expect_digest=expect_digest)
        payload = {
            "selftest": "pass" if result.passed else "fail",
            "max_abs_error": result.max_abs_error,
            "max_rel_error": result.max_rel_error,
            "rtol": result.rtol,
            "atol": result.atol,
            "calls": result.calls,
            "failed_call": result.failed_call,
        }
        if as_json:
            click.echo(json.dumps(payload))
        else:
            verdict = "[green]passed[/]" if result.passed else f"[red]FAILED[/] on the {result.failed_call}"
            out.print(
                f"self-test {verdict}: {result.calls} calls, max |error| {result.max_abs_error:.2e}, "
                f"{result.max_rel_error:.2g} of the tolerance (rtol {result.rtol:.2g}, atol ≤ "
                f"{result.atol:.2g}, from the network's accumulation depth) against torch eager"
            )
        if not result.passed:
            sys.exit(EXIT_CHECK_FAILED)
        return
    inputs = (
        pipeline.load_inputs(input_file, artifact, expect_digest=expect_digest)
        if input_file
        else open_artifact(artifact, expect_digest=expect_digest).selftest_data()[0]
    )
    outputs = pipeline.run(artifact, inputs, expect_digest=expect_digest)
    if output_file:
        from .artifact import atomic_file, write_npz

        if output_file.suffix.lower() == ".npy" and len(outputs) != 1:
            raise click.UsageError(f"--output {output_file}: the model has {len(outputs)} outputs; use .npz")
        with atomic_file(output_file) as tmp:
            if output_file.suffix.lower() == ".npy":
                with open(tmp, "wb") as handle:
                    np.save(handle, outputs[0])
            else:
                write_npz(tmp, {f"output_{i}": y for i, y in enumerate(outputs)})
    if as_json:
        click.echo(json.dumps({f"output_{i}": y.tolist() for i, y in enumerate(outputs)}))
        return
    for i, y in enumerate(outputs):
        summary = f"output_{i}: {y.dtype}{list(y.shape)}"
        if y.ndim == 2 and y.shape[1] > 1:
            summary += f", argmax per row {y.argmax(axis=1).tolist()[:16]}"
        out.print(summary)
        out.print(np.array2string(y, precision=4, threshold=40), highlight=False)


RPC_OPTION = click.option(
    "--rpc",
    metavar="HOST:PORT",
    help="Run and time on a remote device: a TVM RPC server (python -m tvm.exec.rpc_server), or a tracker "
    "with --key.",
)
KEY_OPTION = click.option(
    "--key", help="With --rpc pointing at a TVM RPC tracker: the device key to request."
)


@main.command("bench")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option(
    "--rounds",
    "--runs",
    type=click.IntRange(3, 10_000),
    default=15,
    show_default=True,
    help="Interleaved timing rounds (each ~10 ms of back-to-back calls per runner).",
)
@click.option(
    "--threads", type=click.IntRange(1, 1024), help="Threads for every runner (default: all cores)."
)
@click.option(
    "--baseline",
    "baselines",
    multiple=True,
    type=click.Choice(["onnxruntime", "torch"]),
    help="Also time this peer on the same masked model, interleaved (repeatable).",
)
@RPC_OPTION
@KEY_OPTION
@MODEL_OPTION
@EXPECT_DIGEST
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def bench_cmd(
    artifact: Path,
    rounds: int,
    threads: int | None,
    baselines: tuple[str, ...],
    rpc: str | None,
    key: str | None,
    model: str | None,
    expect_digest: str | None,
    as_json: bool,
) -> None:
    """Measure an ARTIFACT's latency on its sample input (median and p90), optionally against peers, here or
    on a remote device over TVM RPC."""
    from .pipeline import bench

    with err.status("measuring…"):
        result = bench(
            artifact,
            rounds=rounds,
            threads=threads,
            baselines=baselines,
            rpc=rpc,
            key=key,
            model=model,
            expect_digest=expect_digest,
        )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    where = (
        f"on the {result['remote']} (self-test passed there)"
        if "remote" in result
        else f"{result['threads']} threads"
    )
    table = Table(title=f"{artifact}: {where}, {rounds} rounds", title_justify="left")
    for col in ("runner", "median µs", "p90 µs", "× cascc latency"):
        table.add_column(col)
    for name, t in result["runners"].items():
        table.add_row(name, f"{t['median_us']:.1f}", f"{t['p90_us']:.1f}", f"{t['ratio_to_cascc']:.2f}")
    out.print(table)


@main.command("check")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--max-size", help="Largest total artifact size, e.g. 2MB, 512KiB.")
@click.option("--max-latency", help="Largest median latency on the sample input, e.g. 5ms, 250us.")
@click.option(
    "--max-latency-ratio", type=FiniteFloat(0, min_open=True), help="Largest latency / the --baseline's."
)
@click.option(
    "--baseline",
    type=click.Choice(["onnxruntime", "torch"]),
    help="Peer for --max-latency-ratio (onnxruntime).",
)
@click.option("--min-accuracy", type=FiniteFloat(0, 1), help="Least test accuracy on --data.")
@click.option(
    "--max-class-drop",
    type=FiniteFloat(0, 1),
    help="Largest per-class accuracy drop vs the dense model.",
)
@click.option("--data", help="Data set for the accuracy budgets: digits, npz:PATH, csv:PATH.")
@click.option("--runs", type=click.IntRange(3, 10_000), help="Interleaved timing rounds (default 15).")
@click.option("--threads", type=click.IntRange(1, 1024), help="Threads for timing (default: all cores).")
@RPC_OPTION
@KEY_OPTION
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    help="Budget file with a [check] table (default: ./cascc.toml when it exists); options override it.",
)
@MODEL_OPTION
@EXPECT_DIGEST
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the results as JSON.")
@click.option("--junit", "junit_path", type=click.Path(path_type=Path), help="Write a JUnit XML report.")
def check_cmd(
    artifact: Path,
    config: Path | None,
    threads: int | None,
    model: str | None,
    expect_digest: str | None,
    json_path: Path | None,
    junit_path: Path | None,
    **options: Any,
) -> None:
    """Gate ARTIFACT on size, latency and accuracy budgets: exit 0 if all hold, 1 if any fails."""
    from .check import check, load_budgets, to_json, to_junit

    for path, suffix, option in ((json_path, ".json", "--json"), (junit_path, ".xml", "--junit")):
        if path is not None:
            writable_file(path, (suffix,), option, inputs=(artifact,) + ((config,) if config else ()))
    default = Path("cascc.toml")
    budgets = load_budgets(config) if config else (load_budgets(default) if default.is_file() else {})
    budgets.update({k: v for k, v in options.items() if v is not None})
    with err.status("checking…"):
        gates = check(artifact, budgets, threads=threads, model=model, expect_digest=expect_digest)
    table = Table(title=f"cascc check {artifact}", title_justify="left")
    for col in ("budget", "measured", "limit", "verdict", "detail"):
        table.add_column(col)
    for g in gates:
        relation = "≥" if g.name == "min_accuracy" else "≤"
        verdict = "[green]pass[/]" if g.passed else "[bold red]FAIL[/]"
        table.add_row(
            g.name, f"{g.measured:.4g} {g.unit}", f"{relation} {g.limit:.4g} {g.unit}", verdict, g.detail
        )
    out.print(table)
    for g in gates:
        if not g.passed:
            out.print(f"[bold red]{escape(g.line())}[/]", highlight=False)
    if json_path:
        json_path.write_text(json.dumps(to_json(gates), indent=2))
    if junit_path:
        junit_path.write_text(to_junit(gates, artifact.name))
    if not all(g.passed for g in gates):
        sys.exit(EXIT_CHECK_FAILED)


@main.command("planted")
@click.option(
    "--task", "tasks", multiple=True, type=click.Choice(["relu", "circle", "helix"]), help="Repeatable."
)
@click.option(
    "--seed", type=SEED, default=0, show_default=True, help="Seed for the target, the plant and data."
)
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
def planted_cmd(tasks: tuple[str, ...], seed: int, as_json: bool) -> None:
    """Plant 'n' Seek: score every pruner's mask against a planted ticket (precision, recall, task metric)."""
    from .planted import TASKS, run

    with err.status("planting and pruning…"):
        scores = run(tasks or tuple(TASKS), seed=seed)
    if as_json:
        click.echo(json.dumps([s.to_json() for s in scores], indent=2))
        return
    table = Table(
        title="planted tickets: masks at the planted weight count (precision = recall)", title_justify="left"
    )
    for col in ("task", "pruner", "precision", "recall", "pruned, untrained"):
        table.add_column(col)
    for s in scores:
        table.add_row(s.task, s.pruner, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.metric} {s.value:.4g}")
    out.print(table)


@main.command("targets")
@click.option("--json", "as_json", is_flag=True, help="Print the targets as JSON.")
def targets_cmd(as_json: bool) -> None:
    """List compilation targets."""
    from .targets import TARGETS

    if as_json:
        click.echo(
            json.dumps(
                {
                    n: {
                        "description": t.description,
                        "tvm": dict(t.tvm_target),
                        "runs_on_host": t.runs_on_host,
                    }
                    for n, t in sorted(TARGETS.items())
                },
                indent=2,
            )
        )
        return
    table = Table()
    for col in ("name", "description", "TVM target", "runs here"):
        table.add_column(col)
    for name, t in sorted(TARGETS.items()):
        table.add_row(name, t.description, json.dumps(dict(t.tvm_target)), "yes" if t.runs_on_host else "no")
    out.print(table)


main.add_command(train_cmd)

if __name__ == "__main__":  # pragma: no cover
    main()
