"""Frontends: every model format comes in as a `Program` (core-ATen torch.export + signature)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelLoadError
from ..ir import Program
from . import torch as torch_frontend

FORMATS = "a Python factory `file.py:factory`, a torch.export `.pt2` file or an `.onnx` file"


def load(
    ref: str | Path, *, seed: int = 0, input_shapes: dict[str, tuple[int, ...]] | None = None
) -> Program:
    """Load a model reference (`file.py:factory`, `.pt2`, `.onnx`) into a Program; `input_shapes` fixes an
    ONNX model's symbolic input dimensions."""
    text = str(ref)
    if input_shapes and Path(text).suffix.lower() != ".onnx":
        raise ModelLoadError(
            text,
            "--input-shape fixes an ONNX model's symbolic dimensions, and this is not an ONNX model",
            "drop --input-shape (a factory's example inputs or a .pt2's signature fix its shapes)",
        )
    if _is_factory_ref(text):
        path, factory = text.rsplit(":", 1)
        return torch_frontend.load_factory(Path(path), factory, seed=seed)
    suffix = Path(text).suffix.lower()
    if suffix == ".pt2":
        return torch_frontend.load_pt2(Path(text), seed=seed)
    if suffix == ".py":
        raise ModelLoadError(
            text,
            "a Python model needs a factory name",
            f"write it as `{text}:FACTORY`, where FACTORY() returns (module, example_inputs)",
        )
    if suffix == ".onnx":
        from .onnx import load_onnx

        return load_onnx(Path(text), seed=seed, input_shapes=input_shapes)
    raise ModelLoadError(
        text, f"unrecognized model reference (suffix {suffix or 'none'!r})", f"pass {FORMATS}"
    )


def model_file(ref: str | Path) -> Path:
    """The file a model reference reads: the .py of `file.py:factory`, else the reference itself."""
    text = str(ref)
    return Path(text.rsplit(":", 1)[0]) if _is_factory_ref(text) else Path(text)


def _is_factory_ref(text: str) -> bool:
    head, sep, tail = text.rpartition(":")
    return bool(sep) and head.lower().endswith(".py") and bool(tail)
