"""Peer runtimes measured next to a cascc artifact: onnxruntime and torch eager on the same masked model."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..errors import CasccError, first_paragraph
from ..ir import Program


def masked_module(module: torch.nn.Module, program: Program) -> torch.nn.Module:
    """A copy of the original nn.Module, in eval mode, whose parameters hold the program's masked weights."""
    return program.load_into(module).eval()


def onnxruntime_runner(
    module: torch.nn.Module, inputs: Sequence[torch.Tensor], threads: int
) -> Callable[[], object]:
    """Export `module` to ONNX (TorchScript exporter) and return a call running it in onnxruntime."""
    import onnxruntime as ort

    path = Path(tempfile.mkdtemp(prefix="cascc-ort-")) / "model.onnx"
    names = [f"input_{i}" for i in range(len(inputs))]
    try:
        torch.onnx.export(module, tuple(inputs), str(path), dynamo=False, opset_version=17, input_names=names)
    except Exception as exc:
        raise CasccError(
            None,
            f"exporting the model to ONNX for the onnxruntime baseline failed: {first_paragraph(exc)}",
            "drop --baseline onnxruntime",
        ) from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feeds = {n: t.numpy() for n, t in zip(names, inputs, strict=True)}
    return lambda: session.run(None, feeds)


def torch_runner(module: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> Callable[[], object]:
    def call():
        with torch.inference_mode():
            return module(*inputs)

    return call
