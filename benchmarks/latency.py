"""Latency benchmark: cascc sparse and dense builds against onnxruntime and torch eager, interleaved.

For each model × batch, every runner (onnxruntime and torch on the masked model, the cascc dense build, and
the cascc sparse build per density) is timed in one interleaved measurement, so ratios are fair on a noisy
machine. Before timing, each cascc build's output is checked against torch eager on the same masked model.

    python benchmarks/latency.py                       # all models, densities 1/.5/.2/.1/.05, batch 1 and 32
    python benchmarks/latency.py --models mlp --batches 1 --densities 1 0.1
    python benchmarks/latency.py --models mlp --block 1x8 --out benchmarks/results/block1x8

Masks come from magnitude pruning at the same sparsity in every layer (`prune.magnitude`), or with --block
from block magnitude pruning (`prune.block`: whole ROWSxCOLS blocks).

Writes JSON to --out (default benchmarks/results/) and the Markdown table to docs/benchmarks/latency.md
(latency_block<RxC>.md with --block; --doc PATH elsewhere).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
sys.path.insert(0, str(Path(__file__).parent))

DENSITIES = (1.0, 0.5, 0.2, 0.1, 0.05)


def main() -> None:
    import report
    from zoo import MODELS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--densities", nargs="+", type=float, default=list(DENSITIES))
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--block", help="prune whole ROWSxCOLS blocks (prune.block), e.g. 1x8 or 4x1")
    report.add_arguments(ap)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    bandwidth = memory_bandwidth()
    rows = []
    for name in args.models:
        for batch in args.batches:
            rows.extend(bench_model(name, MODELS[name], batch, args, bandwidth))
            doc = write(rows, args, bandwidth)
    print(f"\nwrote {args.out / 'latency.json'}" + (f" and {doc}" if doc else ""))


def bench_model(name, factory, batch, args, bandwidth):
    import torch
    from rich.console import Console

    from cascc import passes
    from cascc.frontends.torch import from_module
    from cascc.runtime.baselines import masked_module, onnxruntime_runner, torch_runner
    from cascc.runtime.bench import measure

    console = Console(stderr=True)
    torch.manual_seed(0)
    module, example = factory(batch)
    program = from_module(module, example, source=f"benchmarks/zoo.py:{name}")
    x = [t.numpy() for t in example]
    runners, builds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for density in sorted(set(args.densities), reverse=True):
            steps = [] if density >= 1.0 else [pruning_step(1 - density, args.block)]
            pruned = passes.run(program, steps)
            for mode in ("dense",) if density >= 1.0 else ("sparse", "dense"):
                label = f"cascc {mode} d={density:g}"
                console.print(f"[dim]{name} batch {batch}: building {label}…[/]")
                build = compile_build(pruned, mode, Path(tmp) / f"{mode}_d{density:g}.so", args.threads)
                check_outputs(build["session"], pruned, x, label)
                builds[label] = dict(build, density=density, mode=mode, program=pruned)
                runners[label] = build["session"].runner(x)
        # peers run the original module with the densest build's masks copied in (their kernels are dense)
        masked = masked_module(module, builds[next(iter(builds))]["program"])
        runners["onnxruntime"] = onnxruntime_runner(masked, example, args.threads)
        runners["torch eager"] = torch_runner(masked, example)
        console.print(f"[dim]{name} batch {batch}: measuring {len(runners)} runners interleaved…[/]")
        timings = measure(runners, rounds=args.rounds)
    ort = timings["onnxruntime"].median_us
    rows = []
    dense_at = {b["density"]: timings[label].median_us for label, b in builds.items() if b["mode"] == "dense"}
    for label, b in builds.items():
        if b["mode"] == "dense" and b["density"] < 1.0:
            continue  # the dense build of a pruned model is timed only to compare; reported in its sparse row
        t = timings[label].median_us
        rows.append(
            {
                "model": name,
                "batch": batch,
                "density": b["density"],
                "cascc_us": t,
                "cascc_dense_us": dense_at.get(b["density"], t),
                "onnxruntime_us": ort,
                "torch_us": timings["torch eager"].median_us,
                "speedup_vs_onnxruntime": ort / t,
                "bound_us": bytes_moved(b["program"], x) / bandwidth * 1e6,
                "bytes_moved": bytes_moved(b["program"], x),
                "compile_s": b["compile_s"],
                "sparse_layers": sum(d.kernel.startswith("sparse") for d in b["decisions"]),
                "layers": len(b["decisions"]),
            }
        )
    return rows


def pruning_step(sparsity: float, block: str | None):
    options = {"sparsity": round(sparsity, 6)}
    return ("prune.block", {**options, "block": block}) if block else ("prune.magnitude", options)


def compile_build(program, mode, path, threads, **costs):
    """Build for the x86 host; `costs` override KernelCosts fields (e.g. direct_conv=False)."""
    from cascc.lower import lower
    from cascc.runtime.session import Session
    from cascc.targets import TARGETS

    target = TARGETS["x86"]
    if mode == "dense":  # the same kernels with sparsity never chosen
        costs = {**costs, "margin": float("inf")}
    if costs:
        target = dataclasses.replace(target, costs=dataclasses.replace(target.costs, **costs))
    start = time.perf_counter()
    lowered = lower(program, target)
    lowered.export(path)
    compile_s = time.perf_counter() - start
    return {"session": Session(path, threads=threads), "compile_s": compile_s, "decisions": lowered.decisions}


def check_outputs(session, program, x, label):
    import torch

    got = session.run(x)[0]
    with torch.no_grad():
        want = program.module()(*[torch.from_numpy(a) for a in x])
    want = (want[0] if isinstance(want, (tuple, list)) else want).numpy()
    err = float(np.abs(got - want).max() / (np.abs(want).max() + 1e-6))
    if err > 1e-4:
        raise SystemExit(f"{label}: output differs from torch eager (relative error {err:.2e})")


def bytes_moved(program, x) -> int:
    """Lower bound on bytes one inference must read/write: every weight once (prunable layers at the smaller
    of dense fp32 and CSR fp32 + int16 column index), the inputs and the outputs."""
    from cascc.ir import layers

    prunable = {ly.name for ly in layers(program)}
    total = 0
    for name, w in program.weights.items():
        if name in prunable and name in program.masks:
            nnz = int(program.masks[name].sum())
            total += min(4 * w.numel(), 6 * nnz)
        else:
            total += w.element_size() * w.numel()
    total += sum(a.nbytes for a in x)
    total += sum(4 * int(np.prod(s.shape)) for s in program.outputs)
    return total


def memory_bandwidth() -> float:
    """Bytes/s of a large numpy copy (read + write), the DRAM bandwidth the bound assumes."""
    a = np.ones(32 * 1024 * 1024 // 4, np.float32)
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - start)
    return 2 * a.nbytes / best


def write(rows, args, bandwidth):
    """The JSON to --out and the Markdown table to docs/benchmarks/ (after every model, so a long run that
    stops keeps what it measured); returns the table's path."""
    from rich.console import Console
    from rich.table import Table

    import report

    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "threads": args.threads,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpu": report.cpu(),
        "bandwidth_GBps": bandwidth / 1e9,
        "rounds": args.rounds,
        "pruning": f"prune.block {args.block}" if args.block else "prune.magnitude",
    }
    (args.out / "latency.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    header = [
        "model",
        "batch",
        "density",
        "cascc µs",
        "cascc dense µs",
        "onnxruntime µs",
        "torch µs",
        "× vs ORT",
        "bound µs",
        "sparse layers",
        "compile s",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table = Table(
        *header, title=f"latency, {args.threads} threads, medians of {args.rounds} interleaved rounds"
    )
    for r in rows:
        cells = [
            r["model"],
            str(r["batch"]),
            f"{r['density']:g}",
            f"{r['cascc_us']:.1f}",
            f"{r['cascc_dense_us']:.1f}",
            f"{r['onnxruntime_us']:.1f}",
            f"{r['torch_us']:.1f}",
            f"{r['speedup_vs_onnxruntime']:.2f}×",
            f"{r['bound_us']:.1f}",
            f"{r['sparse_layers']}/{r['layers']}",
            f"{r['compile_s']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
        table.add_row(*cells)
    pruning = (
        f"whole {args.block} blocks pruned by magnitude" if args.block else "magnitude pruning per layer"
    )
    note = (
        f"\n{pruning}; {args.threads} thread{'s' if args.threads != 1 else ''}; medians of {args.rounds} interleaved rounds; `× vs ORT` = onnxruntime "
        f"latency / cascc latency (>1 is faster); bound = bytes moved at {bandwidth / 1e9:.1f} GB/s.\n"
    )
    Console().print(table)
    name = f"latency_block{args.block}" if args.block else "latency"
    title = f"Latency, {args.block} block masks" if args.block else "Latency"
    return report.write(args, name, title, "\n".join(lines) + "\n" + note, raw=args.out / "latency.json")


if __name__ == "__main__":
    main()
