"""One-shot pruning accuracy (no fine-tuning) on scikit-learn digits: allocators × reparameterization.

For each trained example model and sparsity, prune by magnitude with each allocator, then optionally apply
the variance-preserving rescale (data-free Gaussian probe, or the training split), and measure test accuracy
in torch eager. Prints a table, writes benchmarks/results/oneshot_accuracy.json (--out) and the table to
docs/benchmarks/oneshot_accuracy.md (--doc PATH elsewhere).

    python benchmarks/oneshot_accuracy.py [--sparsities 0.8 0.9 0.95]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parent.parent


COLUMNS = ("model", "sparsity", "allocator", "dense", "pruned", "+rescale (Gaussian)", "+rescale (data)")


def main() -> None:
    import report

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sparsities", nargs="+", type=float, default=[0.8, 0.9, 0.95])
    ap.add_argument("--allocators", nargs="+", default=["uniform", "erk", "cascade"])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    report.add_arguments(ap)
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from cascc import frontends, passes
    from cascc.data import load

    data = load("digits")
    rows = []
    for model in ("mlp", "cnn"):
        program = frontends.load(f"{ROOT / 'examples' / 'digits.py'}:{model}")
        dense = accuracy(program, data, torch)
        for sparsity in args.sparsities:
            for allocator in args.allocators:
                pruned = passes.run(
                    program, [("prune.magnitude", {"sparsity": sparsity, "allocator": allocator})]
                )
                row = {"model": model, "sparsity": sparsity, "allocator": allocator, "dense": dense}
                row["pruned"] = accuracy(pruned, data, torch)
                row["rescale_gaussian"] = accuracy(passes.run(pruned, [("reparam.rescale", {})]), data, torch)
                row["rescale_data"] = accuracy(
                    passes.run(pruned, [("reparam.rescale", {"data": "digits"})]), data, torch
                )
                rows.append(row)
    table = Table(
        title="one-shot magnitude pruning on digits, test accuracy (no fine-tuning)", title_justify="left"
    )
    for col in COLUMNS:
        table.add_column(col)
    for r in rows:
        table.add_row(*cells(r))
    Console().print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "oneshot_accuracy.json"
    path.write_text(json.dumps(rows, indent=1))
    doc = report.write(
        args, "oneshot_accuracy", "One-shot pruning accuracy on digits", markdown(rows), raw=path
    )
    if doc:
        print(f"wrote {doc}")


def cells(r: dict) -> list[str]:
    return [
        r["model"],
        f"{r['sparsity']:.2f}",
        r["allocator"],
        f"{r['dense']:.3f}",
        f"{r['pruned']:.3f}",
        f"{r['rescale_gaussian']:.3f}",
        f"{r['rescale_data']:.3f}",
    ]


def markdown(rows: list[dict]) -> str:
    """The table as Markdown (rows as in oneshot_accuracy.json)."""
    lines = [
        (
            "Test accuracy on digits after one-shot magnitude pruning, no fine-tuning; `+rescale` applies "
            "`reparam.rescale` with a Gaussian probe or with the training split."
        ),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def accuracy(program, data, torch) -> float:
    module = program.module()
    batch = program.inputs[0].shape[0]
    with torch.no_grad():
        predicted = (
            torch.cat(
                [
                    module(data.x_test[i : i + batch].reshape(program.inputs[0].shape))
                    for i in range(0, len(data.x_test) - batch + 1, batch)
                ]
            )
            .reshape(-1, 10)
            .argmax(1)
        )
    return float((predicted == data.y_test[: len(predicted)]).float().mean())


if __name__ == "__main__":
    sys.exit(main())
