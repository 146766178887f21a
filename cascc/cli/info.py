"""`cascc targets` and `cascc planted`."""

from __future__ import annotations

import json

import click
from rich.table import Table

from .options import SEED, Names, err, out


def _tasks():
    from ..experiments.planted import TASKS

    return TASKS


@click.command("planted")
@click.option("--task", "tasks", multiple=True, type=Names(_tasks), help="Repeatable.")
@click.option(
    "--seed", type=SEED, default=0, show_default=True, help="Seed for the target, the plant and data."
)
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
def planted_cmd(tasks: tuple[str, ...], seed: int, as_json: bool) -> None:
    """Plant 'n' Seek: score every pruner's mask against a planted ticket (precision, recall, task metric)."""
    from ..experiments.planted import TASKS, run

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


@click.command("targets")
@click.option("--json", "as_json", is_flag=True, help="Print the targets as JSON.")
def targets_cmd(as_json: bool) -> None:
    """List compilation targets."""
    from ..targets import TARGETS

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


COMMANDS = (
    planted_cmd,
    targets_cmd,
)
