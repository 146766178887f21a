"""The zoo benchmark (`python benchmarks/zoo.py`): every zoo architecture compiled dense and at 90%, its
self-test, sizes, kernel coverage and batch-1 latency against onnxruntime on the same weights.

Per model, in one process and one interleaved measurement:
- the model is exported to ONNX (TorchScript exporter, opset 17): that file is the dense size reference
  and what onnxruntime runs (1 thread, all graph optimizations);
- cascc builds it for x86 dense and at 90% (uniform magnitude, and with --allocators erk also ERK), each
  self-tested against torch eager; compile seconds, artifact and library bytes (code and constants apart),
  and layers on cascc kernels are recorded;
- with --targets arm64 cuda, it also compiles those builds (no run: no device here) and records the result;
- the dense ONNX file itself is imported by cascc and self-tested (`onnx` column).
Results go to benchmarks/results/zoo.json and docs/benchmarks/zoo.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import report
    from zoo import ZOO

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(ZOO), choices=list(ZOO))
    ap.add_argument("--small", action="store_true", help="the reduced zoo the tests compile")
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--allocators", nargs="+", default=["uniform"], choices=["uniform", "erk"])
    ap.add_argument("--targets", nargs="*", default=[], choices=["arm64", "cuda"], help="also compile for")
    ap.add_argument("--no-onnx-import", action="store_true", help="skip compiling the ONNX export")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    report.add_arguments(ap)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    rows = []
    name = "zoo_small" if args.small else "zoo"
    for model in args.models:
        try:
            rows.append(bench_model(model, ZOO[model], args))
        except Exception as exc:  # one model's failure is a row, not the end of the run
            traceback.print_exc()
            rows.append(
                {"model": model, "kind": ZOO[model][1], "error": f"{type(exc).__name__}: {exc}"[:400]}
            )
        write(rows, args, name)
    print(f"\nwrote {args.out / (name + '.json')}")


def bench_model(model: str, entry, args) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch
    from rich.console import Console

    from cascc import api
    from cascc.frontends.torch import from_module
    from cascc.recipe import Recipe
    from cascc.runtime.bench import measure
    from cascc.runtime.session import Session
    from zoo import CLAIMED

    say = Console(stderr=True).print
    factory, kind = entry
    module, example = factory(small=args.small)
    x = [t.numpy() for t in example]
    row: dict = {"model": model, "kind": kind, "params": sum(p.numel() for p in module.parameters())}
    with tempfile.TemporaryDirectory(prefix="cascc-zoo-") as tmp:
        tmp = Path(tmp)
        onnx_path = tmp / "dense.onnx"
        say(f"[dim]{model}: exporting to ONNX…[/]")
        torch.onnx.export(module, example, str(onnx_path), dynamo=False, opset_version=17)
        row["onnx_bytes"] = onnx_path.stat().st_size
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        feeds = {i.name: a for i, a in zip(session.get_inputs(), x, strict=True)}
        runners = {"onnxruntime": lambda: session.run(None, feeds)}
        program = from_module(module, example, source=f"benchmarks/zoo.py:{model}")
        builds = {"dense": Recipe()} | {
            f"{a} {args.sparsity:g}": Recipe(sparsity=args.sparsity, allocator=a) for a in args.allocators
        }
        row["builds"] = {}
        for label, recipe in builds.items():
            say(f"[dim]{model}: compiling {label}…[/]")
            start = time.perf_counter()
            result = api.compile(program, target="x86", recipe=recipe, out=tmp / label.replace(" ", "_"))
            compile_s = time.perf_counter() - start
            check = api.selftest(result.path)
            layers = result.manifest["layers"]
            build = {
                "compile_s": compile_s,
                "artifact_bytes": sum(f["bytes"] for f in result.manifest["files"].values()),
                **{f"library_{k}": v for k, v in result.manifest["size"].items()},
                "selftest_passed": check.passed,
                "selftest_error": check.max_abs_error,
                "selftest_of_tolerance": check.max_rel_error,
                "layers": len(layers),
                "cascc_layers": sum(r["kernel_kind"] != "generic" for r in layers),
                "sparse_layers": sum(r["kernel_kind"] == "sparse" for r in layers),
                "generic_claimed": sum(
                    r["kernel_kind"] == "generic" and r["kind"] in CLAIMED for r in layers
                ),
                "density": sum(r["nonzero"] for r in layers) / max(sum(r["weights"] for r in layers), 1),
                "targets": {},
            }
            for target in args.targets:
                say(f"[dim]{model}: compiling {label} for {target}…[/]")
                start = time.perf_counter()
                try:
                    api.compile(
                        program, target=target, recipe=recipe, out=tmp / f"{label}-{target}".replace(" ", "_")
                    )
                    build["targets"][target] = {"ok": True, "compile_s": time.perf_counter() - start}
                except Exception as exc:
                    build["targets"][target] = {"ok": False, "error": str(exc)[:300]}
            row["builds"][label] = build
            runners[f"cascc {label}"] = Session(result.path / "model.so", threads=1).runner(x)
        if not args.no_onnx_import:
            say(f"[dim]{model}: importing and compiling the ONNX export…[/]")
            try:
                imported = api.compile(onnx_path, target="x86", out=tmp / "from_onnx")
                outcome = api.selftest(imported.path)
                expected = session.run(None, feeds)[0]
                with torch.no_grad():
                    got = imported.program.module()(*example)
                got = (got[0] if isinstance(got, tuple | list) else got).numpy()
                err = float(np.abs(got - expected).max() / (np.abs(expected).max() or 1.0))
                row["onnx_import"] = {"selftest_passed": outcome.passed, "vs_onnxruntime": err}
            except Exception as exc:
                row["onnx_import"] = {"error": str(exc)[:300]}
        say(f"[dim]{model}: timing {len(runners)} runners interleaved…[/]")
        timings = measure(runners, rounds=args.rounds)
    row["onnxruntime_us"] = timings["onnxruntime"].median_us
    for label, build in row["builds"].items():
        build["us"] = timings[f"cascc {label}"].median_us
        build["speed_vs_onnxruntime"] = row["onnxruntime_us"] / build["us"]
        build["size_vs_onnx"] = build["artifact_bytes"] / row["onnx_bytes"]
    return row


def write(rows: list[dict], args, name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    import report

    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"cpu": report.cpu(), "threads": 1, "batch": 1, "rounds": args.rounds, "small": args.small}
    raw = args.out / f"{name}.json"
    raw.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    sparse = f"uniform {args.sparsity:g}"
    header = [
        "model", "kind", "compile s (dense / 90%)", "size ÷ ONNX (90%)", "code KiB", "cascc layers",
        "self-test (of tol.)", "ORT µs", "dense ×", "90% ×",
    ]  # fmt: skip
    if "erk" in args.allocators:
        header.append("ERK 90% ×")
    if args.targets:
        header.append("targets")
    header.append("ONNX import")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table = Table(*header, title="zoo: batch 1, 1 thread, ratios to onnxruntime dense in the same run")
    for r in rows:
        if "error" in r:
            cells = [r["model"], r["kind"], f"failed: {r['error'][:120]}"] + [""] * (len(header) - 3)
        else:
            d, s = r["builds"]["dense"], r["builds"][sparse]
            cells = [
                r["model"],
                r["kind"],
                f"{d['compile_s']:.0f} / {s['compile_s']:.0f}",
                f"{s['size_vs_onnx']:.2f}",
                f"{s['library_code'] / 1024:.0f}",
                f"{s['cascc_layers']}/{s['layers']} ({s['sparse_layers']} sparse)",
                f"{'ok' if d['selftest_passed'] and s['selftest_passed'] else 'FAILED'} "
                f"({max(d['selftest_of_tolerance'], s['selftest_of_tolerance']):.3f})",
                f"{r['onnxruntime_us']:.0f}",
                f"{d['speed_vs_onnxruntime']:.2f}",
                f"{s['speed_vs_onnxruntime']:.2f}",
            ]
            if "erk" in args.allocators:
                cells.append(f"{r['builds'][f'erk {args.sparsity:g}']['speed_vs_onnxruntime']:.2f}")
            if args.targets:
                oks = {t: all(b["targets"][t]["ok"] for b in r["builds"].values()) for t in args.targets}
                cells.append(", ".join(f"{t} {'ok' if ok else 'FAILED'}" for t, ok in oks.items()))
            imp = r.get("onnx_import", {})
            cells.append(
                "skipped" if not imp else f"failed: {imp['error'][:60]}" if "error" in imp
                else f"{'ok' if imp['selftest_passed'] else 'FAILED'} ({imp['vs_onnxruntime']:.1e} vs ORT)"
            )  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
        table.add_row(*cells)
    note = (
        "\n`dense ×`, `90% ×`: onnxruntime latency ÷ cascc latency (> 1: cascc faster), onnxruntime on the "
        "dense ONNX export of the same weights; medians of interleaved rounds. `size ÷ ONNX`: the whole "
        "90% artifact (library, self-test cases, manifest) ÷ the dense ONNX file. `code KiB`: the "
        "library's .text. `self-test (of tol.)`: the largest error as a fraction of the tolerance. "
        "`cascc layers`: prunable layers (linear, conv, depthwise, embedding) on cascc kernels.\n"
    )
    Console().print(table)
    report.write(
        args,
        name,
        "Model zoo" + (" (reduced)" if args.small else ""),
        "\n".join(lines) + "\n" + note,
        raw=raw,
    )


if __name__ == "__main__":
    main()
