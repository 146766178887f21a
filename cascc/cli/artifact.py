"""`cascc run`, `bench` and `check`: use an artifact."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from ..errors import EXIT_CHECK_FAILED
from .options import FiniteFloat, Names, err, out, writable_file


def _baselines():
    from ..runtime.bench import BASELINES

    return BASELINES


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


@click.command("run")
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

    from .. import api
    from ..runtime.artifact import open_artifact

    if output_file is not None:
        writable_file(
            output_file,
            (".npy", ".npz"),
            "--output",
            inputs=(artifact,) + ((input_file,) if input_file else ()),
        )
    if selftest:
        result = api.selftest(artifact, expect_digest=expect_digest)
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
        api.load_inputs(input_file, artifact, expect_digest=expect_digest)
        if input_file
        else open_artifact(artifact, expect_digest=expect_digest).selftest_data()[0]
    )
    outputs = api.run(artifact, inputs, expect_digest=expect_digest)
    if output_file:
        from ..files import atomic_file, write_npz

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


@click.command("bench")
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
    type=Names(_baselines),
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
    from ..api import bench

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


@click.command("check")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--max-size", help="Largest total artifact size, e.g. 2MB, 512KiB.")
@click.option("--max-latency", help="Largest median latency on the sample input, e.g. 5ms, 250us.")
@click.option(
    "--max-latency-ratio", type=FiniteFloat(0, min_open=True), help="Largest latency / the --baseline's."
)
@click.option(
    "--baseline",
    type=Names(_baselines),
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
    from ..runtime.check import check, load_budgets, to_json, to_junit

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


COMMANDS = (
    run_cmd,
    bench_cmd,
    check_cmd,
)
