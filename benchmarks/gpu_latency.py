"""GPU latency of cascc's CUDA builds: dense (dlight schedules) and sparse (CSR kernel) per density, on the
benchmark models, timed with the artifact's own runner on the GPU (device-synchronized, interleaved).

Needs an NVIDIA GPU with a driver; without one it says so and exits 2. The CPU torch of this project has no
CUDA, so no peer runs in the same process: the ratio reported is sparse vs cascc dense, and the per-layer
kernel decisions (with the cost model's predictions) come from the manifests.

    python benchmarks/gpu_latency.py [--models mlp resnet20] [--densities 1 0.1] [--batches 1 32]

Writes gpu_latency.json to --out (default benchmarks/results/) and the Markdown table to
docs/benchmarks/gpu_latency.md (--doc PATH elsewhere).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))

from latency import DENSITIES  # noqa: E402  (the CPU benchmark's densities; found through the sys.path line)


def main() -> int:
    import report
    from zoo import MODELS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--densities", nargs="+", type=float, default=list(DENSITIES))
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    ap.add_argument(
        "--arch", default="sm_80", help="the GPU's compute capability, e.g. sm_90 for an H100/H200"
    )
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    report.add_arguments(ap)
    args = ap.parse_args()

    from cascc.runtime.session import device_present

    if not device_present("cuda"):
        print(
            "error: no CUDA device here; run this on a machine with an NVIDIA GPU and driver", file=sys.stderr
        )
        return 2
    import cascc
    from cascc.frontends.torch import from_module
    from cascc.runtime.bench import measure
    from cascc.runtime.running import open_session

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            for batch in args.batches:
                module, example = MODELS[name](batch)
                program = from_module(module, example, source=f"benchmark:{name}")
                runners, decisions = {}, {}
                for density in args.densities:
                    out = Path(tmp) / f"{name}-{batch}-{density}"
                    result = cascc.compile(
                        program, target="cuda", cpu=args.arch, sparsity=round(1 - density, 6), out=out
                    )
                    art = cascc.artifact.open_artifact(out)
                    if not cascc.selftest(out).passed:
                        raise SystemExit(f"{name} at density {density}: the GPU output differs from torch")
                    inputs, _ = art.selftest_data()
                    runners[density] = open_session(art).runner(inputs)
                    decisions[density] = [(row["name"], row["kernel"]) for row in result.manifest["layers"]]
                timings = measure(runners, rounds=args.rounds)
                dense = timings[1.0].median_us if 1.0 in timings else None
                for density, timing in timings.items():
                    rows.append(
                        {
                            "model": name,
                            "batch": batch,
                            "density": density,
                            "median_us": timing.median_us,
                            "p90_us": timing.p90_us,
                            "speedup_vs_dense": dense / timing.median_us if dense else None,
                            "kernels": decisions[density],
                        }
                    )
                    print(f"{name} batch {batch} density {density}: {timing.median_us:.1f} µs")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "gpu_latency.json"
    path.write_text(
        json.dumps({"arch": args.arch, "gpu": gpu_name(), "cpu": report.cpu(), "rows": rows}, indent=1)
    )
    lines = ["| model | batch | density | median µs | p90 µs | × cascc dense |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['speedup_vs_dense']:.2f}" if r["speedup_vs_dense"] else ""
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['density']} | {r['median_us']:.1f} | {r['p90_us']:.1f} | {ratio} |"
        )
    print("\n".join(lines))
    note = "\nMedians of interleaved rounds on the GPU; `× cascc dense` = cascc dense latency / this build's."
    extra = (("GPU", f"{gpu_name()}, built for {args.arch}"),)
    doc = report.write(
        args, "gpu_latency", "GPU latency", "\n".join(lines) + "\n" + note, raw=path, extra=extra
    )
    if doc:
        print(f"wrote {doc}")
    return 0


def gpu_name() -> str:
    """The first GPU's name from nvidia-smi, or "unknown GPU"."""
    import subprocess

    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown GPU"
    return out.splitlines()[0].strip() if out.strip() else "unknown GPU"


if __name__ == "__main__":
    sys.exit(main())
