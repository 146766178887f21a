"""int8 benchmark: cascc int8 (dense and sparse) against cascc fp32 and onnxruntime fp32 and int8, one run.

Per model and batch, on the same masked weights, interleaved in one measurement:
- onnxruntime fp32, and onnxruntime int8: the masked model quantized by `onnxruntime.quantization`'s
  static QDQ quantization (per-channel int8 weights, uint8 activations, the same calibration inputs);
- cascc fp32 dense and at the pruned density;
- cascc int8 dense and at the pruned density (`quantize.ptq` on the same calibration inputs).

Each cascc build's output is checked before timing: fp32 against torch eager, int8 against the simulated
int8 model (`Program.module()`). Ratios are to onnxruntime int8 and to cascc's own fp32 build at the same
density. Also records each artifact's library size against the dense fp32 ONNX file.

    python benchmarks/int8.py                          # mlp, resnet20 and transformer, 90%, batch 1
    python benchmarks/int8.py --models mlp --sparsity 0.9 0.95 --batches 1 8
    python benchmarks/int8.py --block 1x4 --out benchmarks/results/int8_block1x4.json   # 1×4 block masks

Writes JSON to --out (default benchmarks/results/int8.json) and Markdown to docs/benchmarks/int8.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))

MODELS = ("mlp", "resnet20", "transformer")


def main() -> None:
    import torch

    import report

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--sparsity", nargs="+", type=float, default=[0.9])
    ap.add_argument("--batches", nargs="+", type=int, default=[1])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--block", help="prune whole blocks (prune.block), e.g. 1x4: one int8 word per block")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "int8.json")
    report.add_arguments(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = [row for name in args.models for batch in args.batches for row in bench(name, batch, args)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"cpu": report.cpu(), "command": report.command(), "rows": rows}, indent=2)
    )
    body = table(rows)
    print(body)
    name, masks = (
        ("int8", "") if not args.block else (f"int8_block{args.block}", f", {args.block} block masks")
    )
    title = f"int8 latency: cascc against onnxruntime int8 and cascc fp32{masks}"
    report.write(args, name, title, body, raw=args.out)


def bench(name: str, batch: int, args) -> list[dict]:
    import torch
    from latency import compile_build, pruning_step
    from rich.console import Console

    import zoo
    from cascc import passes
    from cascc.frontends.torch import from_module
    from cascc.runtime.baselines import masked_module
    from cascc.runtime.bench import measure

    console = Console(stderr=True)
    torch.manual_seed(0)
    module, example = getattr(zoo, name)(batch)
    program = from_module(module.eval(), example, source=f"benchmarks/zoo.py:{name}")
    x = [t.numpy() for t in example]
    calibration = [
        torch.randn(example[0].shape, generator=torch.Generator().manual_seed(i)) for i in range(8)
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for sparsity in args.sparsity:
            pruned = passes.run(program, [pruning_step(sparsity, args.block)])
            masked = masked_module(module, pruned)
            onnx_path = tmp / "fp32.onnx"
            torch.onnx.export(masked, tuple(example), str(onnx_path), dynamo=False, opset_version=17)
            runners, sizes = {}, {}
            runners["onnxruntime fp32"] = ort_runner(onnx_path, x, args.threads)
            int8_onnx = ort_quantize(onnx_path, tmp / "int8.onnx", calibration)
            runners["onnxruntime int8"] = ort_runner(int8_onnx, x, args.threads)
            sizes["onnxruntime int8"] = int8_onnx.stat().st_size
            for precision in ("fp32", "int8"):
                for dense in (True, False):
                    label = f"cascc {precision} {'dense' if dense else f'{sparsity:.0%}'}"
                    base = program if dense else pruned
                    built = quantize(base, calibration) if precision == "int8" else base
                    console.print(f"[dim]{name} batch {batch}: building {label}…[/]")
                    path = tmp / f"{label.replace(' ', '_').replace('%', '')}.so"
                    build = compile_build(built, "sparse", path, args.threads)
                    check(build["session"], built, x, label)
                    runners[label] = build["session"].runner(x)
                    sizes[label] = path.stat().st_size
            console.print(f"[dim]{name} batch {batch}: measuring {len(runners)} runners interleaved…[/]")
            timings = measure(runners, rounds=args.rounds)
            onnx_bytes = onnx_path.stat().st_size
            us = {label: t.median_us for label, t in timings.items()}
            rows.append(
                {
                    "model": name,
                    "batch": batch,
                    "sparsity": sparsity,
                    "block": args.block,
                    "threads": args.threads,
                    "us": us,
                    "bytes": sizes,
                    "onnx_fp32_bytes": onnx_bytes,
                }
            )
    return rows


def quantize(program, calibration):
    """int8 PTQ of `program` calibrated on the benchmark's calibration inputs (as an npz data set)."""
    import torch

    from cascc import passes

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calibration.npz"
        x = torch.cat(calibration).numpy()
        np.savez(
            path, x_train=x, y_train=np.zeros(len(x), np.int64), x_test=x, y_test=np.zeros(len(x), np.int64)
        )
        return passes.run(program, [("quantize.ptq", {"data": f"npz:{path}", "samples": len(x)})])


def ort_quantize(source: Path, target: Path, calibration) -> Path:
    """onnxruntime's static QDQ quantization: per-channel int8 weights, uint8 activations."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    name = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{name: c.numpy()} for c in calibration])

        def get_next(self):
            return next(self.items, None)

    quantize_static(
        str(source),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return target


def ort_runner(path: Path, x, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feeds = {i.name: a for i, a in zip(session.get_inputs(), x, strict=True)}
    return lambda: session.run(None, feeds)


def check(session, program, x, label: str) -> None:
    """The build against its reference: torch eager (fp32) or the simulated int8 model."""
    import torch

    got = session.run(x)[0]
    with torch.no_grad():
        want = program.module()(*[torch.from_numpy(a) for a in x])
    want = (want[0] if isinstance(want, (tuple, list)) else want).numpy()
    err = float(np.abs(got - want).max() / (np.abs(want).max() + 1e-6))
    if err > 1e-3:
        raise SystemExit(f"{label}: output differs from its reference (relative error {err:.2e})")


def table(rows: list[dict]) -> str:
    lines = [
        "| model | batch | sparsity | runner | µs | × onnxruntime int8 | × cascc fp32, same density | "
        "size ÷ dense fp32 ONNX |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        us = row["us"]
        ort8 = us["onnxruntime int8"]
        for label, t in us.items():
            same = label.replace("int8", "fp32") if label.startswith("cascc int8") else None
            own = f"{us[same] / t:.2f}" if same in us else ""
            size = row["bytes"].get(label)
            lines.append(
                f"| {row['model']} | {row['batch']} | {row['sparsity']:.0%} | {label} | {t:.1f} | "
                f"{ort8 / t:.2f} | {own} | {size / row['onnx_fp32_bytes']:.3f} |"
                if size
                else f"| {row['model']} | {row['batch']} | {row['sparsity']:.0%} | {label} | {t:.1f} | "
                f"{ort8 / t:.2f} | {own} | |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
