"""One peer runtime in its own process, driven by benchmarks/peers.py over stdin/stdout.

Run by each peer virtualenv's python; it imports numpy and the one runtime it is asked to load, never
cascc, so a venv pinned to numpy < 2 (DeepSparse) can run it. The protocol is one JSON object a line:

    {"op": "load", "runtime": "onnxruntime", "model": "m.onnx", "inputs": ["x0.npy"], "threads": 1,
     "options": {...}, "outputs": "dir"}            -> {"ok": true, "version": "1.32.0", "outputs": [...npy]}
    {"op": "run", "n": 100}                          -> {"ok": true, "seconds": per-call seconds}
    {"op": "profile", "path": "p.json", ...}         -> {"ok": true}  (DeepSparse's per-layer analysis)
    {"op": "quit"}

A failure answers {"ok": false, "error": "...", "missing": true where the runtime is not installed}. The
runtime's own prints go to stderr: stdout carries only the protocol.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

# name -> load(model, inputs, threads, options) -> (call returning a list of arrays, runtime version)
LOADERS: dict[str, Callable] = {}


def loader(name: str):
    def add(fn):
        if name in LOADERS:
            raise ValueError(f"runtime {name!r} registered twice")
        LOADERS[name] = fn
        return fn

    return add


@loader("onnxruntime")
def load_onnxruntime(model: str, inputs: list[np.ndarray], threads: int, options: dict):
    """onnxruntime's CPU provider, every graph optimization on, `threads` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    feeds = {i.name: x for i, x in zip(session.get_inputs(), inputs, strict=True)}
    return lambda: session.run(None, feeds), ort.__version__


@loader("openvino")
def load_openvino(model: str, inputs: list[np.ndarray], threads: int, options: dict):
    """OpenVINO's CPU plugin at options["precision"] ("f32" or "bf16"), one stream, `threads` threads."""
    import openvino as ov

    config = {
        "INFERENCE_PRECISION_HINT": options.get("precision", "f32"),
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
    }
    compiled = ov.Core().compile_model(model, "CPU", config)
    request = compiled.create_infer_request()

    def call():
        request.infer(inputs)
        return [request.get_output_tensor(i).data for i in range(len(compiled.outputs))]

    return call, ov.get_version().split("-")[0]


@loader("deepsparse")
def load_deepsparse(model: str, inputs: list[np.ndarray], threads: int, options: dict):
    """DeepSparse's engine compiled for the inputs' batch on `threads` cores."""
    os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
    import deepsparse

    engine = deepsparse.Engine(model=model, batch_size=inputs[0].shape[0], num_cores=threads)
    return lambda: engine.run(inputs), deepsparse.__version__


@loader("litert")
def load_litert(model: str, inputs: list[np.ndarray], threads: int, options: dict):
    """LiteRT's interpreter with its default XNNPACK delegate; a .pt2 is first converted by litert-torch."""
    from ai_edge_litert.interpreter import Interpreter

    if model.endswith(".pt2"):
        model = convert_litert(model, inputs)
    interpreter = Interpreter(model_path=model, num_threads=threads)
    interpreter.allocate_tensors()
    ins = sorted(interpreter.get_input_details(), key=lambda d: d["index"])
    outs = [d["index"] for d in interpreter.get_output_details()]
    for detail, x in zip(ins, inputs, strict=True):
        interpreter.set_tensor(detail["index"], x)

    def call():
        interpreter.invoke()
        return [interpreter.get_tensor(i) for i in outs]

    from importlib.metadata import PackageNotFoundError, version

    try:
        converter = f", litert-torch {version('litert-torch')}"
    except PackageNotFoundError:
        converter = ""
    return call, f"ai-edge-litert {version('ai-edge-litert')}{converter}"


def convert_litert(pt2: str, inputs: list[np.ndarray]) -> str:
    """Convert a saved torch.export program to a .tflite file beside it with litert-torch (f32)."""
    out = str(Path(pt2).with_suffix(".tflite"))
    if Path(out).exists():  # converted for an earlier thread count
        return out
    import litert_torch
    import torch

    module = torch.export.load(pt2).module()
    litert_torch.convert(module, tuple(torch.from_numpy(x) for x in inputs)).export(out)
    return out


@loader("cascc")
def load_cascc(model: str, inputs: list[np.ndarray], threads: int, options: dict):
    """A cascc artifact's library on the TVM runtime (what cascc's Session does, without importing cascc)."""
    import tvm
    import tvm_ffi
    from tvm import relax

    tvm_ffi.get_global_func("runtime.config_threadpool")(0, threads)
    device = tvm.cpu(0)
    vm = relax.VirtualMachine(tvm.runtime.load_module(model), device)
    args = [tvm.runtime.tensor(np.ascontiguousarray(x), device) for x in inputs]
    main = vm["main"]

    def call():
        out = main(*args)
        device.sync()
        return [t.numpy() for t in flatten(out)]

    return call, f"TVM runtime {tvm.__version__}"


def flatten(value) -> list:
    """The tensors of a TVM VM result, nested tuples flattened in order."""
    return [value] if hasattr(value, "numpy") else [t for item in value for t in flatten(item)]


def profile_deepsparse(model: str, inputs: list[np.ndarray], threads: int, path: str, iterations: int):
    """DeepSparse's debug analysis: per-layer times and kernel names, saved as JSON at `path`."""
    os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
    from deepsparse import model_debug_analysis

    result = model_debug_analysis(
        model,
        inputs,
        batch_size=inputs[0].shape[0],
        num_cores=threads,
        num_iterations=iterations,
        num_warmup_iterations=max(1, iterations // 5),
    )
    Path(path).write_text(json.dumps(result, indent=1, default=str) + "\n")


def serve(requests, reply) -> None:
    """Answer protocol requests until "quit" or end of input."""
    call = inputs = state = None
    for line in requests:
        msg = json.loads(line)
        op = msg["op"]
        try:
            if op == "quit":
                return
            if op == "load":
                inputs = [np.load(p) for p in msg["inputs"]]
                state = msg
                call, version = LOADERS[msg["runtime"]](msg["model"], inputs, msg["threads"], msg["options"])
                outs = [np.ascontiguousarray(o) for o in call()]
                paths = [str(Path(msg["outputs"]) / f"out{i}.npy") for i in range(len(outs))]
                for p, o in zip(paths, outs, strict=True):
                    np.save(p, o)
                reply({"ok": True, "version": version, "outputs": paths})
            elif op == "run":
                n = int(msg["n"])
                start = time.perf_counter()
                for _ in range(n):
                    call()
                reply({"ok": True, "seconds": (time.perf_counter() - start) / n})
            elif op == "profile":
                profile_deepsparse(state["model"], inputs, state["threads"], msg["path"], msg["iterations"])
                reply({"ok": True})
            else:
                reply({"ok": False, "error": f"unknown op {op!r}"})
        except ImportError as exc:
            reply({"ok": False, "missing": True, "error": f"{type(exc).__name__}: {exc}"})
        except Exception as exc:
            traceback.print_exc()
            reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]})


# what each loader imports, imported at start (`peer_worker.py RUNTIME`) while the parent still prepares
MODULES = {
    "onnxruntime": "onnxruntime",
    "openvino": "openvino",
    "deepsparse": "deepsparse",
    "litert": "ai_edge_litert.interpreter",
    "cascc": "tvm",
}


def main() -> None:
    # the protocol keeps the real stdout; anything the runtime prints lands on stderr
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    if len(sys.argv) > 1 and sys.argv[1] in MODULES:
        os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
        with contextlib.suppress(ImportError):  # the load request reports it as missing
            importlib.import_module(MODULES[sys.argv[1]])

    def reply(obj: dict) -> None:
        protocol.write(json.dumps(obj) + "\n")
        protocol.flush()

    serve(sys.stdin, reply)


if __name__ == "__main__":
    main()
