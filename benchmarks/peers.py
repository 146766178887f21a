"""Peer benchmark: cascc next to onnxruntime, OpenVINO, DeepSparse and LiteRT on the same masked weights.

Each runtime runs in its own worker process (benchmarks/peer_worker.py) under its own virtualenv
(benchmarks/.peers/<name>/, made by benchmarks/setup_peers.sh or `--setup`). Per model × batch the model is
pruned once (unstructured magnitude, `prune.magnitude`, as benchmarks/latency.py does), the masked module
is exported to ONNX once, and every runtime loads that file (LiteRT converts the masked module with
litert-torch, cascc compiles the pruned program dense and sparse). Each runtime's output is checked against
torch eager before timing; a mismatch stops the run naming the runtime. Then, per thread count, the parent
asks each worker in turn to run the input n times, over interleaved rounds, so every ratio comes from one
run; medians per runtime, ratios to onnxruntime (dense kernels, f32).

    benchmarks/setup_peers.sh                                   # once: the peer venvs
    python benchmarks/peers.py --models resnet20 mlp --batches 1 --threads 1
    python benchmarks/peers.py --runtimes onnxruntime deepsparse cascc --profile

A peer whose venv is missing is skipped with one line saying how to install it. Writes JSON to
benchmarks/results/peers.json and the table to docs/benchmarks/peers.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)
sys.path.insert(0, str(Path(__file__).parent))

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".peers"
WORKER = HERE / "peer_worker.py"
SETUP = HERE / "setup_peers.sh"
MODELS = ("resnet20", "dscnn", "mobilenetv2", "mlp", "resnet18", "transformer")
FAMILIES = ("onnxruntime", "openvino", "deepsparse", "litert", "cascc")
TARGET_S = 0.01  # seconds of calls per runtime per round: short rounds spread other work over all runtimes


@dataclasses.dataclass(frozen=True)
class Runtime:
    """One measured configuration: a worker loader, the venv it runs in and what it loads."""

    label: str
    family: str  # the --runtimes name and the venv's folder under benchmarks/.peers/
    loader: str  # peer_worker.LOADERS key
    model: str  # "onnx", "pt2" (LiteRT converts it) or "cascc dense" / "cascc sparse"
    options: tuple[tuple[str, str], ...] = ()
    tolerance: float = 1e-4  # relative to the output's largest magnitude, vs torch eager
    arithmetic: str = "f32"
    main_venv: bool = False  # may fall back to the main venv's python (it has the runtime)


def runtimes(families: list[str]) -> list[Runtime]:
    """The configurations of the chosen runtime families; OpenVINO bf16 only where the CPU has bf16."""
    table = [
        Runtime("onnxruntime", "onnxruntime", "onnxruntime", "onnx", main_venv=True),
        Runtime("OpenVINO f32", "openvino", "openvino", "onnx", (("precision", "f32"),)),
        Runtime("DeepSparse", "deepsparse", "deepsparse", "onnx"),
        Runtime("LiteRT XNNPACK", "litert", "litert", "pt2"),
        Runtime("cascc dense", "cascc", "cascc", "cascc dense", main_venv=True),
        Runtime("cascc sparse", "cascc", "cascc", "cascc sparse", main_venv=True),
    ]
    if cpu_has_bf16():
        bf16 = Runtime(
            "OpenVINO bf16", "openvino", "openvino", "onnx", (("precision", "bf16"),), 5e-2, "bf16"
        )
        table.insert(2, bf16)
    return [r for r in table if r.family in families]


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def python_for(runtime: Runtime) -> str | None:
    """The venv python that runs this runtime's worker, or None where it is not set up."""
    venv = PEERS / runtime.family / "bin" / "python"
    if venv.exists():
        return str(venv)
    return sys.executable if runtime.main_venv else None


class PeerError(RuntimeError):
    """A worker failed or answered wrongly; the message starts with the runtime's label."""


class Worker:
    """A peer_worker.py process spoken to over its stdin/stdout, one JSON line each way."""

    def __init__(self, runtime: Runtime, python: str, logdir: Path, threads: int = 1):
        self.runtime = runtime
        self.log = logdir / f"{runtime.label.replace(' ', '_')}.log"
        env = dict(os.environ, NM_DISABLE_ANALYTICS="1", OMP_NUM_THREADS=str(threads))
        env.pop("PYTHONPATH", None)
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [python, str(WORKER), runtime.loader], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                env=env,
            )  # fmt: skip

    def ask(self, **msg) -> dict:
        """Send one request and return its answer."""
        self.send(**msg)
        return self.receive()

    def send(self, **msg) -> None:
        with contextlib.suppress(BrokenPipeError):  # a dead worker is reported by receive()
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()

    def receive(self) -> dict:
        """The next answer; a dead worker raises PeerError with its log's tail."""
        line = self.proc.stdout.readline()
        if not line:
            tail = self.log.read_text()[-1500:] if self.log.exists() else ""
            raise PeerError(f"{self.runtime.label}: the worker exited ({self.log}):\n{tail}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(PeerError):
                self.ask(op="quit")
            self.proc.wait(timeout=30)


def main() -> None:
    import report

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--models", nargs="+", default=["resnet20", "dscnn", "mobilenetv2", "mlp"], choices=MODELS
    )
    ap.add_argument("--batches", nargs="+", type=int, default=[1])
    ap.add_argument("--threads", nargs="+", type=int, default=[1])
    ap.add_argument("--density", type=float, default=0.1, help="weights kept per layer (0.1: 90%% pruned)")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--runtimes", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    ap.add_argument("--profile", action="store_true", help="save DeepSparse's per-layer analysis as JSON")
    ap.add_argument("--setup", action="store_true", help="create the peer venvs (setup_peers.sh) and exit")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--append", action="store_true", help="keep the rows of --out's peers.json not rerun")
    report.add_arguments(ap)
    args = ap.parse_args()
    if args.setup:
        raise SystemExit(subprocess.call(["bash", str(SETUP), *args.runtimes]))
    if "onnxruntime" not in args.runtimes:
        ap.error("--runtimes needs onnxruntime: every ratio is to it")

    import torch

    torch.set_num_threads(max(args.threads))
    try:
        result = bench(args, say=lambda text: print(text, file=sys.stderr, flush=True))
    except PeerError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"\nwrote {args.out / 'peers.json'}" + (f" and {result}" if result else ""))


def bench(args, say=print):
    """Measure every model × batch × threads; write the JSON and table after each; return the table's path.
    With --append, rows of an earlier run on this machine are kept unless measured again."""
    import report

    meta = {
        "cpu": report.cpu(),
        "density": args.density,
        "rounds": args.rounds,
        "target_s": TARGET_S,
        "pruning": "prune.magnitude",
        "cascc_commit": git_commit(),
        "commands": [report.command()],
        "versions": {},
        "skipped": {},
    }
    rows: list[dict] = []
    raw = args.out / "peers.json"
    if args.append and raw.exists():
        old = json.loads(raw.read_text())
        if (old["meta"]["cpu"], old["meta"]["density"]) != (meta["cpu"], meta["density"]):
            raise PeerError(f"--append: {raw} is of another CPU or density; write elsewhere with --out")
        rows = old["rows"]
        meta["commands"] = old["meta"].get("commands", []) + meta["commands"]
        meta["versions"] = old["meta"]["versions"]
        meta["skipped"] = old["meta"]["skipped"]
    doc = None
    with tempfile.TemporaryDirectory(prefix="cascc-peers-") as tmp:
        tmp = Path(tmp)
        workers = start_workers(runtimes(args.runtimes), tmp, meta, say)
        try:
            for name in args.models:
                for batch in args.batches:
                    say(f"{name} batch {batch}: pruning to density {args.density:g}, exporting, compiling…")
                    module, example = model_factory(name, batch)
                    kinds = {w.runtime.model for w in workers.values()}
                    files = prepare(module, example, args.density, tmp / f"{name}_b{batch}", kinds, name)
                    for threads in args.threads:
                        row = measure_config(name, batch, threads, files, workers, meta, args, say)
                        key = (name, batch, threads)
                        rows = [r for r in rows if (r["model"], r["batch"], r["threads"]) != key] + [row]
                        doc = write(rows, meta, args)
        finally:
            for w in workers.values():
                w.close()
    return doc


def git_commit() -> str:
    """The commit cascc's builds were compiled at ("+dirty" with uncommitted changes to it)."""
    root = Path(__import__("cascc").__file__).resolve().parent.parent
    git = ["git", "-C", str(root)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "cascc", "passes", "targets"], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def start_workers(chosen: list[Runtime], tmp: Path, meta: dict, say, python: str | None = None) -> dict:
    """{label: Worker} of the runtimes that are set up (all under `python` if given); the others are skipped
    with a line saying how to install them."""
    workers = {}
    for rt in chosen:
        exe = python or python_for(rt)
        if exe is None:
            why = f"not set up: run `benchmarks/setup_peers.sh {rt.family}` (or peers.py --setup)"
            meta["skipped"][rt.label] = why
            say(f"skipping {rt.label}: {why}")
            continue
        workers[rt.label] = Worker(rt, exe, tmp)
    return workers


def model_factory(name: str, batch: int):
    """(module, example inputs) of a benchmark model (benchmarks/zoo.py) at `batch`; resnet18 is the zoo's
    ResNet-18 at 224 px (the `zoo` extra), its input redrawn at the batch."""
    import torch

    import zoo

    torch.manual_seed(0)
    if name == "resnet18":
        module, (x,) = zoo.ZOO["resnet18"][0]()
        return module, (torch.randn(batch, *x.shape[1:], generator=torch.Generator().manual_seed(1)),)
    return zoo.MODELS[name](batch)


def prepare(module, example, density: float, folder: Path, kinds: set[str], name: str) -> dict:
    """Prune the model once, export the masked module (ONNX; .pt2 where LiteRT is in `kinds`), build cascc
    dense and sparse where asked, and save the inputs and torch eager's outputs: the files workers load."""
    import torch
    from latency import compile_build, pruning_step

    from cascc import passes
    from cascc.frontends.torch import from_module
    from cascc.runtime.baselines import masked_module

    folder.mkdir(parents=True)
    program = from_module(module, example, source=f"benchmarks/zoo.py:{name}")
    pruned = passes.run(program, [pruning_step(1 - density, None)] if density < 1 else [])
    masked = masked_module(module, pruned)
    files = {"inputs": [], "onnx": str(folder / "model.onnx")}
    for i, x in enumerate(example):
        files["inputs"].append(str(folder / f"input{i}.npy"))
        np.save(files["inputs"][-1], x.numpy())
    with torch.no_grad():
        want = masked(*example)
    files["want"] = [t.numpy() for t in (want if isinstance(want, tuple | list) else (want,))]
    export_onnx(masked, example, files["onnx"])
    if "pt2" in kinds:
        files["pt2"] = str(folder / "model.pt2")
        torch.export.save(torch.export.export(masked, example), files["pt2"])
    for mode in ("dense", "sparse"):
        if f"cascc {mode}" in kinds:
            build = compile_build(pruned, mode, folder / f"cascc_{mode}.so", 1)
            files[f"cascc {mode}"] = str(folder / f"cascc_{mode}.so")
            files[f"cascc {mode} decisions"] = [d.kernel for d in build["decisions"]]
    files["density"] = sum(int(m.sum()) for m in pruned.masks.values()) / max(
        sum(m.numel() for m in pruned.masks.values()), 1
    )
    return files


def export_onnx(module, example, path: str) -> None:
    """The masked module as ONNX (TorchScript exporter, opset 17, static shapes), as the other benchmarks do."""
    import torch

    names = [f"input_{i}" for i in range(len(example))]
    torch.onnx.export(module, tuple(example), path, dynamo=False, opset_version=17, input_names=names)


def load_all(workers: dict, files: dict, threads: int, folder: Path, meta: dict, say) -> dict[str, dict]:
    """Load the model in each worker and check its output against torch eager; {label: load answer}."""
    loaded = {}
    for label, w in workers.items():  # all load at once: imports and compiles overlap, nothing is timed yet
        rt = w.runtime
        outdir = folder / label.replace(" ", "_")
        outdir.mkdir(parents=True, exist_ok=True)
        w.send(
            op="load", runtime=rt.loader, model=files[rt.model], inputs=files["inputs"], threads=threads,
            options=dict(rt.options), outputs=str(outdir),
        )  # fmt: skip
    for label, w in list(workers.items()):
        rt = w.runtime
        answer = w.receive()
        if not answer["ok"]:
            if answer.get("missing"):
                why = f"{answer['error']}: run `benchmarks/setup_peers.sh {rt.family}`"
                meta["skipped"][label] = why
                say(f"skipping {label}: {why}")
                workers[label].close()
                del workers[label]
                continue
            say(f"{label}: loading failed: {answer['error']}")
            loaded[label] = {"error": answer["error"]}
            continue
        meta["versions"][label] = answer["version"]
        got = [np.load(p) for p in answer["outputs"]]
        loaded[label] = {"error_vs_torch": check(label, got, files["want"], rt.tolerance)}
    return loaded


def check(label: str, got: list[np.ndarray], want: list[np.ndarray], tolerance: float) -> float:
    """The largest output error relative to the output's largest magnitude; PeerError above `tolerance`."""
    if len(got) != len(want):
        raise PeerError(f"{label}: {len(got)} outputs, torch eager has {len(want)}")
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        if g.shape != w.shape:
            raise PeerError(f"{label}: output shape {g.shape}, torch eager's is {w.shape}")
        worst = max(worst, float(np.abs(g - w).max() / (np.abs(w).max() + 1e-6)))
    if not worst <= tolerance:
        raise PeerError(
            f"{label}: output differs from torch eager (relative error {worst:.2e}, tolerance {tolerance:g})"
        )
    return worst


def interleave(workers: dict, rounds: int, warmup: int = 2, target_s: float = TARGET_S) -> dict:
    """Per-call latency of each worker: calls per round sized to ~`target_s`, then `rounds` rounds in which
    every worker runs its n calls in turn; {label: (Timing of the medians, the fastest round's µs)}."""
    import statistics

    from cascc.runtime.bench import Timing, quantile

    numbers = {}
    for label, w in workers.items():
        ask(w, n=1)
        once = ask(w, n=2)
        numbers[label] = max(1, min(10_000, int(target_s / max(once, 1e-7))))
    samples = {label: [] for label in workers}
    for r in range(warmup + rounds):
        for label, w in workers.items():
            seconds = ask(w, n=numbers[label])
            if r >= warmup:
                samples[label].append(seconds * 1e6)
    return {
        label: (Timing(statistics.median(s), quantile(s, 0.9), rounds, numbers[label]), min(s))
        for label, s in samples.items()
    }


def ask(worker: Worker, n: int) -> float:
    answer = worker.ask(op="run", n=n)
    if not answer["ok"]:
        raise PeerError(f"{worker.runtime.label}: running failed: {answer['error']}")
    return answer["seconds"]


def measure_config(name, batch, threads, files, workers, meta, args, say) -> dict:
    """Load, check and time every runtime on one model × batch × threads; one JSON row."""
    folder = Path(files["onnx"]).parent / f"t{threads}"
    say(f"{name} batch {batch}, {threads} thread{'s' * (threads != 1)}: loading and checking…")
    loaded = load_all(workers, files, threads, folder, meta, say)
    timed = {label: w for label, w in workers.items() if "error" not in loaded[label]}
    if "onnxruntime" not in timed:
        raise PeerError(f"onnxruntime: {loaded.get('onnxruntime', {}).get('error', 'not loaded')}")
    say(f"{name} batch {batch}, {threads} threads: timing {len(timed)} runtimes interleaved…")
    timings = interleave(timed, args.rounds)
    if args.profile and "DeepSparse" in timed:
        path = args.out / "peers_profile" / f"deepsparse_{name}_b{batch}_t{threads}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        answer = timed["DeepSparse"].ask(op="profile", path=str(path), iterations=20)
        say(
            f"DeepSparse profile: {path}" if answer["ok"] else f"DeepSparse profile failed: {answer['error']}"
        )
    ort, ort_min = timings["onnxruntime"]
    peers = {}
    for label, info in loaded.items():
        if label in timings:
            t, fastest = timings[label]
            info = {
                **info,
                **t.to_json(),
                "min_us": fastest,
                "ratio_to_onnxruntime": ort.median_us / t.median_us,
                "min_ratio_to_onnxruntime": ort_min / fastest,  # less sensitive to other work on the machine
            }
        peers[label] = info
    return {
        "model": name,
        "batch": batch,
        "threads": threads,
        "load_average": os.getloadavg()[
            0
        ],  # the machine's 1-minute load after timing: a shared machine shows
        "density": files["density"],
        "cascc_sparse_layers": sum(k.startswith("sparse") for k in files.get("cascc sparse decisions", [])),
        "cascc_layers": len(files.get("cascc sparse decisions", [])),
        "onnxruntime_us": ort.median_us,
        "runtimes": peers,
    }


def write(rows: list[dict], meta: dict, args) -> Path | None:
    """The JSON to --out and the Markdown tables (median ratios, fastest-round ratios, µs) to
    docs/benchmarks/peers.md."""
    import report

    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.out / "peers.json"
    raw.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    labels = [r.label for r in runtimes(FAMILIES) if any(r.label in row["runtimes"] for row in rows)]
    peers = [label for label in labels if label != "onnxruntime"]

    def table(columns, cell, unit="", first=("model", "batch", "threads")):
        names = [f"{c}{unit if c in labels else ''}" for c in columns]
        lines = ["| " + " | ".join([*first, *names]) + " |", "|" + "---|" * (len(first) + len(columns))]
        for row in rows:
            cells = [row["model"], str(row["batch"]), str(row["threads"])]
            for label in columns:
                info = row["runtimes"].get(label, {}) if label in labels else row
                cells.append("—" if not info else "failed" if "error" in info else cell(label, info))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    ratios = table(
        ["onnxruntime µs", *peers],
        lambda label, i: (
            f"{i['ratio_to_onnxruntime']:.2f}" if label in labels else f"{i['onnxruntime_us']:.0f}"
        ),
        " ×",
    )
    fastest = table(peers, lambda label, i: f"{i['min_ratio_to_onnxruntime']:.2f}", " ×")
    us = table(
        [*labels, "load"],
        lambda label, i: f"{i['median_us']:.0f}" if label in labels else f"{i.get('load_average', 0):.1f}",
    )
    versions = {}  # one entry per distinct version string
    for label, version in meta["versions"].items():
        versions.setdefault(version, label)
    versions = "; ".join(f"{label.split()[0]} {version}" for version, label in versions.items())
    versions += f"; cascc at {meta.get('cascc_commit', 'unknown')}"
    skipped = "".join(f"\n- {k} skipped: {v}" for k, v in meta["skipped"].items())
    note = (
        f"Ratios: onnxruntime latency ÷ the runtime's (> 1: faster than onnxruntime), all on the same "
        f"masked weights (unstructured magnitude pruning to density {meta['density']:g}), medians of "
        f"{meta['rounds']} interleaved rounds in one run, each runtime in its own process. onnxruntime, "
        "OpenVINO, DeepSparse and LiteRT run the masked model with their own kernels; `cascc dense` is the "
        "same weights on cascc's dense kernels, `cascc sparse` on its sparse ones. `OpenVINO bf16` is a "
        "different arithmetic (bf16 inference precision), checked at a looser tolerance; every other column "
        "is f32 and matches torch eager to 1e-4 of the output's scale. `load`: the machine's 1-minute load "
        "average after the row's timing; above the thread count, other work shared the cores, and the "
        f"fastest rounds' ratios are the less disturbed figures.\n\nVersions: {versions}.{skipped}\n"
    )
    body = (
        f"{ratios}\n\nRatios of each runtime's fastest round:\n\n{fastest}\n\nMicroseconds per call "
        f"(medians):\n\n{us}\n\n{note}"
    )
    commands = "`; `".join(meta.get("commands", [])) or None
    return report.write(args, "peers", "Peer runtimes", body, raw=raw, command_line=commands)


if __name__ == "__main__":
    main()
