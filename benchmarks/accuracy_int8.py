"""int8 accuracy (`python benchmarks/accuracy.py --suite int8`): post-training int8 against fp32, dense and at
90%, on trained models, and top-1 agreement with fp32 on the zoo's random-weight models.

Trained tasks (test split, one seed): the digits MLP and the digits CNN trained as accuracy.py's tasks train
them, and the MNIST-1D CNN (64 channels). Each is trained dense, then pruned to 90% (magnitude, uniform)
and fine-tuned; both are quantized with `quantize.ptq` on the training data (percentile calibrator) and
evaluated on the simulated int8 model, which computes what the int8 kernels compute (tested equal in
tests/passes/test_quantize.py). The drop per class is fp32's accuracy on a class minus int8's.

Zoo models (benchmarks/zoo.py, the reduced sizes): random weights, calibrated on random inputs drawn like
the example; top-1 agreement of int8 with fp32 on other random inputs.

Writes benchmarks/results/accuracy_int8.json and docs/benchmarks/accuracy_int8.md.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ZOO_MODELS = ("resnet18", "mobilenetv2-1.0", "vit-tiny", "bert-tiny", "whisper-tiny-encoder")
SPARSITY = 0.9


def trained_tasks():
    """(name, fp32 dense program, fp32 90% program, data name) per trained task."""
    from accuracy import TASKS

    from cascc import passes
    from cascc.frontends import load_model

    root = Path(__file__).resolve().parent.parent
    tasks = {name: TASKS[name] for name in ("digits-mlp", "mnist1d-cnn")}
    for name, task in tasks.items():
        start = load_model(task.model, seed=0)
        dense = passes.run(start, [("train.fit", {"data": task.data, "seed": 0, **task.training})])
        sparse = passes.run(
            dense,
            [
                ("prune.magnitude", {"sparsity": SPARSITY}),
                ("train.finetune", {"data": task.data, "seed": 0, **task.finetune}),
            ],
        )
        yield name, dense, sparse, task.data
    cnn = load_model(f"{root / 'examples' / 'digits.py'}:cnn", seed=0)  # trained by its factory
    sparse = passes.run(
        cnn, [("prune.magnitude", {"sparsity": SPARSITY}), ("train.finetune", {"data": "digits", "seed": 0})]
    )
    yield "digits-cnn", cnn, sparse, "digits"


def trained_rows() -> list[dict]:
    from cascc import passes
    from cascc.data import load
    from cascc.passes.evaluate import evaluate

    rows = []
    for name, dense, sparse, data_name in trained_tasks():
        data = load(data_name)
        for label, program in (("dense", dense), (f"{SPARSITY:.0%}", sparse)):
            q = passes.run(program, [("quantize.ptq", {"data": data_name, "seed": 0})])
            fp32 = evaluate(program, data, noise=(), fgsm=())
            int8 = evaluate(q, data, noise=(), fgsm=())
            drops = [f - i for f, i in zip(fp32.per_class, int8.per_class, strict=True)]
            worst = int(np.argmax(drops))
            rows.append(
                {
                    "task": name,
                    "density": label,
                    "fp32": fp32.accuracy,
                    "int8": int8.accuracy,
                    "int8_layers": len(q.int8_layers),
                    "layers": len(q.precisions),
                    "worst_class": worst,
                    "worst_class_drop": drops[worst],
                }
            )
            print(f"{name} {label}: fp32 {fp32.accuracy:.4f} int8 {int8.accuracy:.4f}", flush=True)
    return rows


def zoo_rows(samples: int = 32) -> list[dict]:
    import torch

    import zoo
    from cascc import passes
    from cascc.frontends.torch import from_module

    rows = []
    for name in ZOO_MODELS:
        module, example = zoo.ZOO[name][0](small=True)
        program = from_module(module.eval(), example, source=f"benchmarks/zoo.py:{name}")
        gen = torch.Generator().manual_seed(0)
        calibration = [tuple(zoo._draw(x, gen)[:1] for x in example) for _ in range(16)]
        with tempfile.TemporaryDirectory() as tmp:
            q = _calibrated(program, calibration, Path(tmp)) if len(example) == 1 else None
        if q is None:  # several inputs: calibrate on Gaussian probes (the pass's data-free path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                q = passes.run(program, [("quantize.ptq", {"seed": 0})])
        fp32_module, int8_module = program.module(), q.module()
        agree = 0
        with torch.no_grad():
            for _ in range(samples):
                x = tuple(zoo._draw(t, gen)[:1] for t in example)
                a, b = fp32_module(*x), int8_module(*x)
                a, b = (v[0] if isinstance(v, (tuple, list)) else v for v in (a, b))
                agree += bool(
                    (a.reshape(-1, a.shape[-1]).argmax(-1) == b.reshape(-1, b.shape[-1]).argmax(-1)).all()
                )
        rows.append(
            {
                "model": name,
                "agreement": agree / samples,
                "samples": samples,
                "int8_layers": len(q.int8_layers),
                "layers": len(q.precisions),
                "calibration": "random inputs" if len(example) == 1 else "Gaussian probes",
            }
        )
        print(f"{name}: top-1 agreement {agree}/{samples}", flush=True)
    return rows


def _calibrated(program, calibration, tmp: Path):
    """`quantize.ptq` calibrated on `calibration` (single-input models), through an npz data set."""
    import torch

    from cascc import passes

    x = torch.cat([c[0] for c in calibration]).numpy()
    path = tmp / "calibration.npz"
    y = np.zeros(len(x), np.int64)
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
    return passes.run(program, [("quantize.ptq", {"data": f"npz:{path}", "samples": len(x), "seed": 0})])


def markdown(trained: list[dict], zoo_: list[dict]) -> str:
    lines = [
        "| task | density | fp32 | int8 | Δ | int8 layers | worst class (drop) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in trained:
        lines.append(
            f"| {r['task']} | {r['density']} | {r['fp32']:.4f} | {r['int8']:.4f} | "
            f"{r['int8'] - r['fp32']:+.4f} | {r['int8_layers']} of {r['layers']} | "
            f"{r['worst_class']} ({r['worst_class_drop']:+.4f}) |"
        )
    lines += [
        "",
        "| zoo model (reduced size, random weights) | top-1 agreement with fp32 | int8 layers | calibrated on |",
        "|---|---|---|---|",
    ]
    for r in zoo_:
        lines.append(
            f"| {r['model']} | {r['agreement']:.2f} ({r['samples']} inputs) | {r['int8_layers']} of "
            f"{r['layers']} | {r['calibration']} |"
        )
    return "\n".join(lines)


def main(args) -> int:
    import report

    start = time.time()
    trained = trained_rows()
    zoo_ = zoo_rows()
    out = args.out / "accuracy_int8.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "cpu": report.cpu(),
        "command": report.command(),
        "seconds": time.time() - start,
        "trained": trained,
        "zoo": zoo_,
    }
    out.write_text(json.dumps(payload, indent=2))
    body = markdown(trained, zoo_)
    print(body)
    report.write(args, "accuracy_int8", "int8 accuracy: post-training int8 against fp32", body, raw=out)
    return 0
