"""Per-kernel time breakdown of one cascc build: where an inference's time goes.

The VM calls every kernel through an instrument hook; before each call the hook re-runs that kernel on its
real arguments `--repeat` times and keeps the median, so each row is the kernel's warm-cache time and the
rows add up to roughly the model's latency minus the VM's own dispatch cost (the `vm.builtin.*` rows are
bookkeeping calls timed the same way).

    python benchmarks/breakdown.py dscnn --density 0.1
    python benchmarks/breakdown.py mlp --density 1 0.1 --top 10
    python benchmarks/breakdown.py resnet18 --density 1 0.1     # a zoo model (benchmarks/zoo.py ZOO)
    python benchmarks/breakdown.py resnet20 --precision int8     # int8 (calibrated on Gaussian probes)

Layers of one shape class share one kernel, so a row counts every call of its kernel and names the first
layer that uses it.

Prints a table per build, writes breakdown_<model>.json to --out (default benchmarks/results/) and the tables
to docs/benchmarks/breakdown_<model>.md (--doc PATH elsewhere).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    import report
    from zoo import MODELS, ZOO

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=list(MODELS) + list(ZOO))
    ap.add_argument("--small", action="store_true", help="a zoo model at the reduced zoo's size")
    ap.add_argument("--density", nargs="+", type=float, default=[1.0, 0.1])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--precision", choices=["fp32", "int8"], default="fp32")
    ap.add_argument("--top", type=int, default=25, help="rows printed per build (the JSON keeps all)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    report.add_arguments(ap)
    args = ap.parse_args()
    builds = {
        f"d={d:g}": breakdown(args.model, d, args.batch, args.repeat, args.small, args.precision)
        for d in args.density
    }
    title = f"{args.model} {args.precision} batch {args.batch}"
    tables = [table(f"{title} {label}", rows, args.top) for label, rows in builds.items()]
    print("\n".join(tables))
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": args.model,
        "batch": args.batch,
        "precision": args.precision,
        "cpu": report.cpu(),
        "builds": builds,
    }
    name = f"breakdown_{args.model}" + ("" if args.precision == "fp32" else f"_{args.precision}")
    path = args.out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1))
    doc = report.write(args, name, f"Kernel time breakdown: {args.model}", "\n".join(tables), raw=path)
    print(f"wrote {path}" + (f" and {doc}" if doc else ""))


def breakdown(
    name: str, density: float, batch: int, repeat: int, small: bool = False, precision: str = "fp32"
) -> list[dict]:
    """One row per kernel symbol: calls per inference, total µs, and the layer decision where there is one."""
    import torch
    import tvm
    from tvm import relax

    from cascc import passes
    from cascc.frontends.torch import from_module
    from cascc.lower import lower
    from cascc.targets import TARGETS
    from zoo import MODELS, ZOO

    torch.manual_seed(0)
    module, example = ZOO[name][0](small=small) if name in ZOO else MODELS[name](batch)
    program = from_module(module, example, source=f"benchmarks/zoo.py:{name}")
    if density < 1.0:
        program = passes.run(program, [("prune.magnitude", {"sparsity": round(1 - density, 6)})])
    if precision == "int8":  # timing only: ranges from Gaussian probes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = passes.run(program, [("quantize.ptq", {"samples": 64})])
    lowered = lower(program, TARGETS["x86"])
    vm = relax.VirtualMachine(lowered.executable, tvm.cpu())
    total: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)

    def instrument(func, symbol, before, _ret, *call_args):
        if before:
            func(*call_args)
            samples = []
            for _ in range(repeat):
                start = time.perf_counter()
                func(*call_args)
                samples.append(time.perf_counter() - start)
            total[symbol] += statistics.median(samples) * 1e6
            calls[symbol] += 1
        return 0

    inputs = [tvm.runtime.tensor(t.numpy()) for t in example]
    vm.set_instrument(instrument)
    vm["main"](*inputs)
    kernels = {_symbol(d.layer): d for d in lowered.decisions}
    rows = []
    for symbol, us in sorted(total.items(), key=lambda kv: -kv[1]):
        decision = next((d for prefix, d in kernels.items() if symbol.startswith(prefix + "_")), None)
        rows.append(
            {
                "kernel": symbol,
                "calls": calls[symbol],
                "us": round(us, 2),
                "layer": decision.layer if decision else None,
                "choice": decision.kernel if decision else None,
                "density": round(decision.density, 3) if decision else None,
            }
        )
    return rows


def _symbol(layer: str) -> str:
    return "cascc_" + "".join(ch if ch.isalnum() else "_" for ch in layer)


def table(title: str, rows: list[dict], top: int) -> str:
    whole = sum(r["us"] for r in rows)
    lines = [
        f"\n{title}: {whole:.1f} µs in {sum(r['calls'] for r in rows)} calls",
        "",
        "| kernel | calls | µs | share | layer choice |",
        "|---|---|---|---|---|",
    ]
    for r in rows[:top]:
        choice = f"{r['choice']} (density {r['density']})" if r["choice"] else ""
        lines.append(f"| {r['kernel']} | {r['calls']} | {r['us']:.1f} | {r['us'] / whole:.0%} | {choice} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
