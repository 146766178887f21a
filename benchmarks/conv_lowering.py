"""Conv lowering A/B: stride-1 convs always through im2col + GEMM, against cascc's default, where the cost
model may run them direct (im2col-free) instead.

Both variants of each model × density are built with the same kernels and cost model except
`KernelCosts.direct_conv`, checked against torch eager, and timed interleaved with onnxruntime in one run.

    python benchmarks/conv_lowering.py                           # resnet20, dscnn, mobilenetv2; d = 1, 0.1
    python benchmarks/conv_lowering.py --models resnet20 --densities 1 0.2 0.1 --batches 1 32

Writes conv_lowering.json to --out (default benchmarks/results/) and the Markdown table to
docs/benchmarks/conv_lowering.md (--doc PATH elsewhere).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
sys.path.insert(0, str(Path(__file__).parent))

VARIANTS = {"im2col": False, "direct": True}


def main() -> None:
    import report
    from zoo import MODELS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet20", "dscnn", "mobilenetv2"], choices=list(MODELS))
    ap.add_argument("--densities", nargs="+", type=float, default=[1.0, 0.1])
    ap.add_argument("--batches", nargs="+", type=int, default=[1])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    report.add_arguments(ap)
    args = ap.parse_args()
    rows = [row for name in args.models for batch in args.batches for row in bench(name, batch, args)]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "conv_lowering.json").write_text(
        json.dumps({"threads": args.threads, "cpu": report.cpu(), "rows": rows}, indent=1)
    )
    print(table(rows, args.threads))
    doc = report.write(
        args,
        "conv_lowering",
        "Conv lowering: im2col vs direct",
        table(rows, args.threads),
        raw=args.out / "conv_lowering.json",
    )
    if doc:
        print(f"wrote {doc}")


def bench(name, batch, args):
    import torch
    from latency import check_outputs, compile_build

    from cascc import passes
    from cascc.frontends.torch import from_module
    from cascc.runtime.baselines import masked_module, onnxruntime_runner
    from cascc.runtime.bench import measure
    from zoo import MODELS

    torch.manual_seed(0)
    module, example = MODELS[name](batch)
    program = from_module(module, example, source=f"benchmarks/zoo.py:{name}")
    x = [t.numpy() for t in example]
    runners, compile_s, pruned = {}, {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for density in args.densities:
            steps = [] if density >= 1.0 else [("prune.magnitude", {"sparsity": round(1 - density, 6)})]
            pruned = passes.run(program, steps)
            for variant, direct in VARIANTS.items():
                label = (density, variant)
                path = Path(tmp) / f"{variant}_{density:g}.so"
                build = compile_build(pruned, "sparse", path, args.threads, direct_conv=direct)
                check_outputs(build["session"], pruned, x, f"{name} {variant} d={density:g}")
                runners[label] = build["session"].runner(x)
                compile_s[label] = build["compile_s"]
        runners["onnxruntime"] = onnxruntime_runner(masked_module(module, pruned), example, args.threads)
        timings = measure(runners, rounds=args.rounds)
    ort = timings["onnxruntime"].median_us
    return [
        {
            "model": name,
            "batch": batch,
            "density": density,
            "im2col_us": timings[(density, "im2col")].median_us,
            "direct_us": timings[(density, "direct")].median_us,
            "onnxruntime_us": ort,
            "compile_s": {v: compile_s[(density, v)] for v in VARIANTS},
        }
        for density in args.densities
    ]


def table(rows, threads) -> str:
    lines = [
        "| model | batch | density | im2col only µs | direct allowed µs | ratio | onnxruntime µs | × vs ORT (direct allowed) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['density']:g} | {r['im2col_us']:.1f} | {r['direct_us']:.1f} "
            f"| {r['direct_us'] / r['im2col_us']:.2f} | {r['onnxruntime_us']:.1f} "
            f"| {r['onnxruntime_us'] / r['direct_us']:.2f}× |"
        )
    note = f"\n{threads} thread(s); medians of interleaved rounds; onnxruntime runs the masked model dense.\n"
    return "\n".join(lines) + "\n" + note


if __name__ == "__main__":
    main()
