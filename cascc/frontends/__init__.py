"""Frontends: every model format comes in as a `Program` (core-ATen torch.export + signature)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelLoadError
from ..ir import Program
from . import torch as torch_frontend

FORMATS = "a Python factory `file.py:factory` or a torch.export `.pt2` file"


def load(ref: str | Path, *, seed: int = 0) -> Program:
    """Load a model reference (`file.py:factory`, `.pt2`) into a Program."""
    text = str(ref)
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
        raise ModelLoadError(
            text,
            "ONNX import is not available in this build yet",
            "export the model from torch and pass a `.pt2` file or a `file.py:factory`",
        )
    raise ModelLoadError(
        text, f"unrecognized model reference (suffix {suffix or 'none'!r})", f"pass {FORMATS}"
    )


def _is_factory_ref(text: str) -> bool:
    head, sep, tail = text.rpartition(":")
    return bool(sep) and head.lower().endswith(".py") and bool(tail)
