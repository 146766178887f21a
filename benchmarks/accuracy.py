"""Sparse-training accuracy on real data: dense vs {uniform, ERK, cascade} allocation × {one-shot magnitude +
fine-tune, GMP, RigL, de novo static with sparse-aware init} at several sparsities, over seeds.

Tasks: scikit-learn digits with the 64-256-256-10 MLP (examples/digits.py:untrained_mlp), and MNIST-1D with
the paper's 1-D CNN shape at 64 channels (examples/mnist1d.py:wide_cnn). Every run gets the same training
budget as the dense model (one-shot + fine-tune: the trained dense model, pruned, then half the epochs).
Runs go to a process pool (one thread each). Writes benchmarks/results/accuracy.{json,png} (--out) and the
tables to docs/benchmarks/accuracy.md (--doc PATH elsewhere).

    python benchmarks/accuracy.py                 # full: 2 tasks × 3 seeds × 4 sparsities, ~12 min on 2 cores
    python benchmarks/accuracy.py --quick         # 1 seed at 90%: a smoke run
    python benchmarks/accuracy.py --suite grant   # the grant's methods on three tasks (accuracy_grant.*)
    python benchmarks/accuracy.py --suite denovo  # de novo training, equal steps vs equal FLOPs (accuracy_denovo.*)
    python benchmarks/accuracy.py --suite int8    # int8 vs fp32, dense and 90%, and the zoo (accuracy_int8.*)
    python benchmarks/accuracy.py --diagnose      # the cascade analysis of the MNIST-1D CNN's de novo masks
    python benchmarks/accuracy.py --report-only   # rewrite the tables and the plot from the JSON

A suite can run in parts (`--tasks`, `--sparsities`, `--cells METHOD:ALLOCATOR`, `--budgets`) with `--merge`
keeping the JSON's other runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parent.parent
ALLOCATORS = ("uniform", "erk", "cascade")
METHODS = ("oneshot+finetune", "gmp", "rigl", "static")


@dataclass(frozen=True)
class Task:
    model: str
    data: str
    training: dict = field(default_factory=dict)  # train.fit options (epochs, optimizer, lr, …)
    finetune: dict = field(default_factory=dict)  # train.finetune options after one-shot pruning


def _preset_training(name: str) -> dict:
    """A `cascc train` preset's training options (epochs, optimizer, lr, weight decay, batch size)."""
    from cascc.training.presets import PRESETS

    keys = ("epochs", "optimizer", "lr", "weight_decay", "batch_size")
    return {k: PRESETS[name].options[k] for k in keys}


TASKS = {
    "digits-mlp": Task(
        f"{ROOT / 'examples' / 'digits.py'}:untrained_mlp",
        "digits",
        {"epochs": 20, "optimizer": "sgd", "lr": 0.1},
        {"epochs": 10, "optimizer": "sgd", "lr": 0.05},
    ),
    "mnist1d-cnn": Task(
        f"{ROOT / 'examples' / 'mnist1d.py'}:wide_cnn",
        "mnist1d",
        {"epochs": 30, "optimizer": "adamw", "lr": 1e-2, "weight_decay": 1e-2},
        {"epochs": 15, "optimizer": "adamw", "lr": 3e-3, "weight_decay": 1e-2},
    ),
    "mnist1d-mlp-6k": Task(  # the lottery-ticket notebook's budget: 6000 steps of batch 100 (150 epochs)
        f"{ROOT / 'examples' / 'mnist1d.py'}:mlp",
        "mnist1d",
        {"epochs": 150, "optimizer": "adamw", "lr": 1e-2, "weight_decay": 1e-2, "batch_size": 100},
        {"epochs": 75, "optimizer": "adamw", "lr": 3e-3, "weight_decay": 1e-2, "batch_size": 100},
    ),
    "mnist1d-mlp-ticket": Task(  # the same MLP and budget, trained with `--preset ticket`'s settings
        f"{ROOT / 'examples' / 'mnist1d.py'}:mlp",
        "mnist1d",
        _preset_training("ticket"),
    ),
    "mnist1d-mlp": Task(  # the 40-500-500-10 MLP of the MNIST-1D lottery-ticket notebook
        f"{ROOT / 'examples' / 'mnist1d.py'}:mlp",
        "mnist1d",
        {"epochs": 20, "optimizer": "adamw", "lr": 1e-2, "weight_decay": 1e-2, "batch_size": 100},
        {"epochs": 10, "optimizer": "adamw", "lr": 3e-3, "weight_decay": 1e-2, "batch_size": 100},
    ),
}


@dataclass(frozen=True)
class Suite:
    """Which tasks, methods, allocations and sparsities a run covers, and where its results go."""

    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    allocators: tuple[str, ...]
    sparsities: tuple[float, ...]
    out: str
    budgets: tuple[str, ...] = ("steps",)  # equal steps; "flops": the dense run's FLOPs (passes/budget.py)
    per_task: dict = field(default_factory=dict)  # task -> its own sparsities, replacing `sparsities`
    only: dict = field(default_factory=dict)  # method -> the tasks it runs on (default: every task)
    steps_only: tuple[str, ...] = ()  # methods run at equal steps only (their FLOPs are not a sparse run's)
    cells: tuple[tuple[str, str], ...] = ()  # (method, allocator) pairs, instead of methods × allocators

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The (method, allocator) pairs the suite runs."""
        return self.cells or tuple((m, a) for m in self.methods for a in self.allocators)


SUITES = {
    # the sparse-training issue: allocations × the standard schedules
    "standard": Suite(("digits-mlp", "mnist1d-cnn"), METHODS, ALLOCATORS, (0.8, 0.9, 0.95, 0.98), "accuracy"),
    # the grant's methods (docs/methods.md §2, §4, §5) on the cascade allocation, against static sparse-aware
    "grant": Suite(
        ("digits-mlp", "mnist1d-mlp", "mnist1d-cnn"),
        ("static", "looks-linear", "depth-bias", "repair", "ham", "mw", "imp", "lrr", "sculpt"),
        ("cascade",),
        (0.9, 0.95, 0.98),
        "accuracy_grant",
    ),
}
# de novo sparse training (issue 20): equal steps vs equal FLOPs, the best methods found, IMP as the anchor
SUITES["denovo"] = Suite(
    ("mnist1d-cnn", "mnist1d-mlp-6k", "mnist1d-mlp-ticket", "digits-mlp"),
    ("static", "rigl", "rigl-cascade", "imp"),
    ("erk", "gain"),
    (0.9, 0.95, 0.98),
    "accuracy_denovo",
    budgets=("steps", "flops"),
    per_task={
        "mnist1d-mlp-6k": (0.9, 0.95, 0.98, 0.99),
        "mnist1d-mlp-ticket": (0.9, 0.95, 0.98, 0.99),
        "digits-mlp": (0.9,),
    },
    only={"imp": ("mnist1d-mlp-6k",)},
    steps_only=("imp",),
    cells=(("static", "erk"), ("rigl", "erk"), ("rigl", "gain"), ("rigl-cascade", "gain"), ("imp", "erk")),
)
DE_NOVO = ("static", "rigl", "rigl-cascade")  # sparse from the first step: a step costs its FLOP density
FLOPS_CAP = (
    10.0  # equal-FLOPs runs train at most 10× the dense epochs (≤ the dense FLOPs where density > 0.1)
)
ROUNDS = 3  # IMP/LRR levels in the benchmark (the 20%-per-round rule would take 10–18 trainings)


@dataclass(frozen=True)
class Job:
    task: str
    seed: int
    method: str  # "dense" or one of METHODS
    sparsity: float = 0.0
    allocator: str = ""
    budget: str = "steps"


def steps(job: Job, task: Task) -> list[tuple[str, dict]]:
    """The cascc passes of one run (the dense model of one-shot runs is loaded, already trained)."""
    fit = {"data": task.data, "seed": job.seed, **task.training}
    if job.budget != "steps":
        fit.update(budget=job.budget, budget_cap=FLOPS_CAP)
    target = {"sparsity": job.sparsity, "allocator": job.allocator}
    random_mask = ("prune.random", {**target, "seed": job.seed})
    sparse_start = [random_mask, ("reparam.sparse_init", {"seed": job.seed})]
    return {
        "dense": lambda: [("train.fit", fit)],
        "oneshot+finetune": lambda: [
            ("prune.magnitude", target),
            ("train.finetune", {"data": task.data, "seed": job.seed, **task.finetune}),
        ],
        "gmp": lambda: [("train.fit", {**fit, "schedule": "gmp", **target})],
        "rigl": lambda: [*sparse_start, ("train.fit", {**fit, "schedule": "rigl"})],
        "rigl-cascade": lambda: [*sparse_start, ("train.fit", {**fit, "schedule": "rigl-cascade"})],
        "looks-linear": lambda: [random_mask, ("init.looks_linear", {"seed": job.seed}), ("train.fit", fit)],
        "depth-bias": lambda: [random_mask, ("init.depth_bias", {"seed": job.seed}), ("train.fit", fit)],
        "repair": lambda: [
            random_mask,
            ("repair.flow", {"seed": job.seed}),
            sparse_start[1],
            ("train.fit", fit),
        ],
        # HAM's step is lr·α: α = 200 at lr 0.01 in the paper; α = 2 / lr keeps that product for every task
        "ham": lambda: [*sparse_start, ("train.fit", {**fit, "ham": True, "ham_alpha": 2.0 / fit["lr"]})],
        "mw": lambda: [*sparse_start, ("train.fit", {**fit, "mw": True, "mw_rebalance_every": 100})],
        "imp": lambda: [("train.iterative", {**fit, **target, "rewind": "weights", "rounds": ROUNDS})],
        "lrr": lambda: [("train.iterative", {**fit, **target, "rewind": "lr", "rounds": ROUNDS})],
        "sculpt": lambda: [("train.sculpt", {**fit, **target})],
        "static": lambda: [*sparse_start, ("train.fit", fit)],
    }[job.method]()


def run(job: Job, dense_dir: str) -> dict:
    """One training run in a worker process: its accuracy, per class, under noise and FGSM."""
    import torch

    torch.set_num_threads(1)
    from cascc import frontends, passes
    from cascc.data import load
    from cascc.frontends.torch import save_pt2
    from cascc.passes.budget import step_cost
    from cascc.passes.evaluate import evaluate
    from cascc.passes.train import diagnostics

    task = TASKS[job.task]
    start = time.perf_counter()
    dense_path = Path(dense_dir) / f"{job.task}-{job.seed}.pt2"
    source = dense_path if job.method == "oneshot+finetune" else task.model
    collected: dict = {}
    token = diagnostics.set(collected)
    try:
        program = passes.run(frontends.load(str(source), seed=job.seed), steps(job, task))
    finally:
        diagnostics.reset(token)
    if job.method == "dense":
        save_pt2(program, dense_path)
    result = evaluate(program, load(task.data), seed=job.seed)
    spent = collected.get("budget") or {
        "epochs": task.training["epochs"],
        "flops_vs_dense": step_cost(program).ratio if job.method in DE_NOVO else 1.0,
    }
    return {
        **asdict(job),
        **result.to_json(),
        "epochs": spent["epochs"],
        "flops_vs_dense": spent["flops_vs_dense"],
        "seconds": time.perf_counter() - start,
    }


def jobs(suite: Suite, tasks, seeds, sparsities) -> tuple[list[Job], list[Job]]:
    dense = [Job(t, s, "dense") for t in tasks for s in seeds]
    sparse = [
        Job(t, s, m, sp, a, b)
        for t in tasks
        for s in seeds
        for sp in _sparsities(suite, t, sparsities)
        for m, a in suite.pairs()
        if t in suite.only.get(m, (t,))
        for b in (("steps",) if m in suite.steps_only else suite.budgets)
    ]
    # longest runs first, so the pool does not end waiting on one of them
    return dense, sorted(
        sparse, key=lambda j: (j.method not in ("imp", "lrr", "sculpt"), j.budget == "steps", -j.sparsity)
    )


def _run_key(run: dict) -> tuple:
    return (
        run["task"],
        run["seed"],
        run["method"],
        run["sparsity"],
        run["allocator"],
        run.get("budget", "steps"),
    )


def _sparsities(suite: Suite, task: str, chosen) -> tuple[float, ...]:
    """The sparsities of `task`: those passed on the command line, else the suite's for the task."""
    return tuple(chosen) if chosen is not None else suite.per_task.get(task, suite.sparsities)


def summarize(results: list[dict]) -> dict:
    """Mean ± std of accuracy (and the worst per-class drop vs the same seed's dense model) per cell."""
    dense = {(r["task"], r["seed"]): r for r in results if r["method"] == "dense"}
    cells: dict[tuple, list[dict]] = {}
    for r in results:
        key = (r["task"], r["method"], r["allocator"], r["sparsity"], r.get("budget", "steps"))
        cells.setdefault(key, []).append(r)
    summary = {}
    for key, runs in sorted(cells.items()):
        accuracy = [r["accuracy"] for r in runs]
        drops = [
            max(
                d - s for d, s in zip(dense[(r["task"], r["seed"])]["per_class"], r["per_class"], strict=True)
            )
            for r in runs
        ]
        summary[key] = {
            "accuracy_mean": statistics.mean(accuracy),
            "accuracy_std": statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0,
            "worst_class_drop_mean": statistics.mean(drops),
            "noise_0.3_mean": statistics.mean(r["gaussian_noise"]["0.3"] for r in runs),
            "fgsm_mean": statistics.mean(r["fgsm"]["0.05"] for r in runs),
            "seeds": len(runs),
            "epochs_mean": statistics.mean(r.get("epochs", 0) for r in runs),
            "flops_vs_dense_mean": statistics.mean(r.get("flops_vs_dense", 1.0) for r in runs),
        }
    return summary


def markdown(summary: dict, suite: Suite, sparsities, seconds: float, workers: int) -> str:
    lines = [
        (
            f"Test accuracy, mean ± std over seeds; {seconds / 60:.1f} min on {workers} worker processes "
            f"(`python benchmarks/accuracy.py{_suite_flag(suite)}`)."
        ),
        "",
    ]
    for task, spec in TASKS.items():
        dense = summary.get((task, "dense", "", 0.0, "steps"))
        if dense is None:
            continue
        lines += [
            f"**{task}** ({spec.data}; dense {_pm(dense)})",
            "",
            "| method | allocation | " + " | ".join(f"{s:.0%}" for s in sparsities) + " |",
            "|---|---|" + "---|" * len(sparsities),
        ]
        for method in suite.methods:
            for allocator in suite.allocators:
                cells = [summary.get((task, method, allocator, s, "steps")) for s in sparsities]
                row = " | ".join(_pm(c) if c else "" for c in cells)
                lines.append(f"| {method} | {allocator} | {row} |")
        lines.append("")
        at90 = [(k, v) for k, v in summary.items() if k[0] == task and k[3] == 0.9]
        if at90:
            best = max(v["accuracy_mean"] for _, v in at90)
            winners = [k for k, v in at90 if v["accuracy_mean"] == best]
            best_cell = summary[winners[0]]
            names = ", ".join(f"{k[1]} + {k[2]}" for k in winners)
            lines += [
                (
                    f"Best at 90%: {names}, {_pm(best_cell)} vs dense {_pm(dense)} "
                    f"({100 * (best - dense['accuracy_mean']):+.1f} points)."
                ),
                "",
                (
                    "At 90%: worst per-class drop vs dense, accuracy under Gaussian noise σ=0.3·std and FGSM "
                    "ε=0.05·std (means):"
                ),
                "",
                "| method | allocation | worst class drop | noise σ=0.3 | FGSM ε=0.05 |",
                "|---|---|---|---|---|",
                f"| dense | | 0 | {dense['noise_0.3_mean']:.3f} | {dense['fgsm_mean']:.3f} |",
            ]
            for (_t, method, allocator, _), v in sorted(at90):
                lines.append(
                    f"| {method} | {allocator} | {v['worst_class_drop_mean']:.3f} | {v['noise_0.3_mean']:.3f} "
                    f"| {v['fgsm_mean']:.3f} |"
                )
            lines.append("")
    return "\n".join(lines)


def markdown_budgets(summary: dict, suite: Suite, seconds: float, workers: int) -> str:
    """The de novo suite's tables: per task, each method at equal steps and at equal FLOPs per sparsity,
    with the FLOPs spent (× the dense run's) and the worst per-class drop vs dense."""
    lines = [
        f"Test accuracy, mean ± std over seeds; {seconds / 60:.1f} min on {workers} worker processes "
        f"(`python benchmarks/accuracy.py{_suite_flag(suite)}`). *steps*: the dense run's epochs; *FLOPs*: "
        f"as many epochs as the dense run's training FLOPs pay for at the mask's FLOP density, at most "
        f"{FLOPS_CAP:g}× (passes/budget.py). In brackets: training FLOPs as a fraction of the dense run's, "
        "and the worst per-class accuracy drop vs the same seed's dense model.",
        "",
    ]
    findings = ROOT / "docs" / "benchmarks" / "accuracy_denovo_diagnosis.md"
    if findings.exists():  # the hand-written diagnosis and conclusions, kept across reruns
        lines += [findings.read_text().strip(), "", "## Results", ""]
    for task, spec in TASKS.items():
        dense = summary.get((task, "dense", "", 0.0, "steps"))
        if dense is None:
            continue
        present = sorted({k[3] for k in summary if k[0] == task and k[1] != "dense"})
        lines += [
            f"**{task}** ({spec.data}, {spec.training['epochs']} epochs dense; dense {_pm(dense)})",
            "",
            "| method | allocation | budget | " + " | ".join(f"{s:.0%}" for s in present) + " |",
            "|---|---|---|" + "---|" * len(present),
        ]
        for method, allocator in suite.pairs():
            for budget in suite.budgets:
                cells = [summary.get((task, method, allocator, s, budget)) for s in present]
                if not any(cells):
                    continue
                row = " | ".join(
                    f"{_pm(c)} ({_flops(method, c)}, −{100 * c['worst_class_drop_mean']:.0f})" if c else ""
                    for c in cells
                )
                lines.append(f"| {method} | {allocator} | {budget} | {row} |")
        lines.append("")
    return "\n".join(lines)


DIAGNOSED = (  # (label, passes) of the runs the denovo diagnosis analyzes: the MNIST-1D CNN at 90%
    ("dense, init", []),
    ("dense, trained", [("train.fit", "fit")]),
    ("static ERK, init", ["mask", "init"]),
    ("static ERK, trained", ["mask", "init", ("train.fit", "fit")]),
    ("RigL ERK, trained", ["mask", "init", ("train.fit", "rigl")]),
)


def diagnose(seed: int = 0) -> str:
    """The cascade analysis (passes/analysis.py) of the MNIST-1D CNN's de novo masks at init and after
    training, against dense, on the test split: the per-layer table of docs/benchmarks/accuracy_denovo.md."""
    import torch

    torch.set_num_threads(1)
    from cascc import frontends, passes
    from cascc.data import load
    from cascc.passes.analysis import analyze
    from cascc.passes.evaluate import evaluate

    task = TASKS["mnist1d-cnn"]
    fit = {"data": task.data, "seed": seed, **task.training}
    named = {
        "mask": ("prune.random", {"sparsity": 0.9, "allocator": "erk", "seed": seed}),
        "init": ("reparam.sparse_init", {"seed": seed}),
        "fit": fit,
        "rigl": {**fit, "schedule": "rigl"},
    }
    lines = [
        "| run | test acc | layer | density | in-degree mean (min) | dead / silent units | functional "
        "| active | variance gain meas. / mean-field | ‖∇‖² share on masked | RMS ∇ kept |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    start = frontends.load(task.model, seed=seed)
    for label, recipe in DIAGNOSED:
        steps = [named[s] if isinstance(s, str) else (s[0], named[s[1]]) for s in recipe]
        program = passes.run(start, steps)
        accuracy = evaluate(program, load(task.data), seed=seed).accuracy
        report = analyze(program, data=task.data, seed=seed)
        for i, row in enumerate(report.layers):
            lines.append(
                f"| {label if i == 0 else ''} | {f'{100 * accuracy:.1f}' if i == 0 else ''} | {row.name} "
                f"| {row.density:.3f} | {row.in_degree_mean:.1f} ({row.in_degree_min}) "
                f"| {row.dead_units} / {row.silent_units} | {row.functional:.2f} | {row.measured_active:.2f} "
                f"| {row.measured_gain:.2f} / {row.predicted_gain:.2f} | {row.grad_share_pruned:.2f} "
                f"| {row.grad_rms_kept:.2g} |"
            )
    return "\n".join(lines)


def _flops(method: str, cell: dict) -> str:
    """Training FLOPs vs the dense run, for the runs that are sparse from the first step (IMP trains
    `ROUNDS` times, the first dense: more than 1× — not counted here)."""
    return f"{cell['flops_vs_dense_mean']:.2f}×" if method in DE_NOVO else f"{ROUNDS} trainings"


def _suite_flag(suite: Suite) -> str:
    name = next(key for key, value in SUITES.items() if value.out == suite.out)
    return "" if name == "standard" else f" --suite {name}"


def _pm(cell: dict) -> str:
    return f"{100 * cell['accuracy_mean']:.1f} ± {100 * cell['accuracy_std']:.1f}"


def plot(summary: dict, suite: Suite, sparsities, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if (t, "dense", "", 0.0, "steps") in summary]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    styles = {"uniform": ":", "erk": "--", "cascade": "-", "gain": "-."}
    colors = {method: f"C{i % 10}" for i, method in enumerate(suite.methods)}
    for ax, task in zip(axes[0], tasks, strict=True):
        for method, allocator, budget in ((m, a, b) for m, a in suite.pairs() for b in suite.budgets):
            points = [
                (s, summary[(task, method, allocator, s, budget)])
                for s in sparsities
                if (task, method, allocator, s, budget) in summary
            ]
            if points:
                ax.errorbar(
                    [p[0] for p in points],
                    [p[1]["accuracy_mean"] for p in points],
                    yerr=[p[1]["accuracy_std"] for p in points],
                    color=colors[method],
                    linestyle=styles[allocator] if budget == "steps" else "-",
                    marker="o" if budget == "steps" else "s",
                    markersize=3,
                    label=f"{method} / {allocator}" + ("" if budget == "steps" else " / equal FLOPs"),
                )
        ax.axhline(summary[(task, "dense", "", 0.0, "steps")]["accuracy_mean"], color="black", label="dense")
        ax.set_title(task)
        ax.set_xlabel("sparsity")
        ax.set_ylabel("test accuracy")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    import report

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=[*SUITES, "int8"], default="standard", help="int8: accuracy_int8.py")
    ap.add_argument("--quick", action="store_true", help="one seed at 90%%")
    ap.add_argument("--tasks", nargs="+", choices=list(TASKS), help="default: the suite's")
    ap.add_argument("--methods", nargs="+", help="default: the suite's (dense always runs)")
    ap.add_argument("--budgets", nargs="+", choices=("steps", "flops"), help="default: the suite's")
    ap.add_argument("--cells", nargs="+", metavar="METHOD:ALLOCATOR", help="only these of the suite's cells")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sparsities", nargs="+", type=float, help="default: the suite's")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--report-only", action="store_true", help="rebuild the table and plot from the JSON")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the JSON's runs that this run does not repeat (run in parts)",
    )
    ap.add_argument(
        "--diagnose",
        action="store_true",
        help="print the cascade analysis of the MNIST-1D CNN's masks and exit",
    )
    report.add_arguments(ap)
    args = ap.parse_args()
    if args.suite == "int8":  # not a training suite: post-training int8 against fp32 (accuracy_int8.py)
        from accuracy_int8 import main as int8_main

        return int8_main(args)
    if args.diagnose:
        print(diagnose())
        return 0
    suite = SUITES[args.suite]
    if args.methods:
        unknown = sorted(set(args.methods) - set(suite.methods))
        if unknown:
            ap.error(
                f"suite {args.suite} has no method {', '.join(unknown)} (it has {', '.join(suite.methods)})"
            )
        suite = dataclasses.replace(
            suite,
            methods=tuple(m for m in suite.methods if m in args.methods),
            cells=tuple((m, a) for m, a in suite.cells if m in args.methods),
        )
    if args.budgets:
        suite = dataclasses.replace(suite, budgets=tuple(args.budgets))
    if args.cells:
        chosen = {tuple(cell.split(":", 1)) for cell in args.cells}
        missing = sorted(":".join(c) for c in chosen - set(suite.pairs()))
        if missing:
            ap.error(f"suite {args.suite} has no cell {', '.join(missing)}")
        suite = dataclasses.replace(suite, cells=tuple(c for c in suite.pairs() if c in chosen))
    tasks = args.tasks or list(suite.tasks)
    seeds = [0] if args.quick else list(range(args.seeds))
    sparsities = [0.9] if args.quick else args.sparsities
    files = {ext: args.out / f"{suite.out}.{ext}" for ext in ("json", "png")}
    title = {
        "grant": "Accuracy of the grant's methods",
        "denovo": "De novo sparse training: equal steps and equal FLOPs",
    }.get(args.suite, "Sparse-training accuracy")
    render = markdown_budgets if args.suite == "denovo" else None
    plot_line = (("Plot", f"`{report.relative(files['png'])}`"),)
    if args.report_only:
        saved = json.loads(files["json"].read_text())
        summary = summarize(saved["runs"])
        sparsities = sorted({k[3] for k in summary if k[1] != "dense"})
        if render:
            text = render(summary, suite, saved["seconds"], saved["workers"])
        else:
            text = markdown(summary, suite, sparsities, saved["seconds"], saved["workers"])
        doc = report.write(
            args,
            suite.out,
            title,
            text,
            raw=files["json"],
            extra=plot_line,
            command_line=saved.get("command", f"python benchmarks/accuracy.py{_suite_flag(suite)}"),
            cpu_name=saved.get("cpu", "not recorded in the JSON"),
            date=saved.get("date", "not recorded in the JSON"),
        )
        plot(summary, suite, sparsities, files["png"])
        print(text)
        print(f"wrote {doc or 'no table'} and {files['png']}")
        return 0

    from concurrent.futures import ProcessPoolExecutor

    from rich.console import Console
    from rich.progress import Progress

    console = Console()
    dense_jobs, sparse_jobs = jobs(suite, tasks, seeds, sparsities)
    results: list[dict] = []
    start = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as dense_dir,
        ProcessPoolExecutor(args.workers) as pool,
        Progress(console=console) as bar,
    ):
        for phase in (dense_jobs, sparse_jobs):  # one-shot runs start from the dense models
            task = bar.add_task("dense models" if phase is dense_jobs else "sparse runs", total=len(phase))
            for result in pool.map(run, phase, [dense_dir] * len(phase)):
                results.append(result)
                bar.advance(task)
    seconds = time.perf_counter() - start
    if args.merge and files["json"].exists():
        saved = json.loads(files["json"].read_text())
        fresh = {_run_key(r) for r in results}
        results = [r for r in saved["runs"] if _run_key(r) not in fresh] + results
        seconds += saved["seconds"]
    summary = summarize(results)
    sparsities = sorted({k[3] for k in summary if k[1] != "dense"})
    args.out.mkdir(parents=True, exist_ok=True)
    if render:
        text = render(summary, SUITES[args.suite], seconds, args.workers)
    else:
        text = markdown(summary, SUITES[args.suite], sparsities, seconds, args.workers)
    doc = report.write(args, suite.out, title, text, raw=files["json"], extra=plot_line)
    files["json"].write_text(
        json.dumps(
            {
                "suite": args.suite,
                "seconds": seconds,
                "workers": args.workers,
                "command": report.command(),
                "cpu": report.cpu(),
                "date": time.strftime("%Y-%m-%d"),
                "tasks": {k: asdict(v) for k, v in TASKS.items() if any(r["task"] == k for r in results)},
                "summary": [
                    {"task": k[0], "method": k[1], "allocator": k[2], "sparsity": k[3], "budget": k[4], **v}
                    for k, v in summary.items()
                ],
                "runs": results,
            },
            indent=1,
        )
    )
    plot(summary, SUITES[args.suite], sparsities, files["png"])
    console.print(text)
    console.print(f"wrote {doc or 'no table'}, {files['json']} and .png in {seconds / 60:.1f} min")


if __name__ == "__main__":
    sys.exit(main())
