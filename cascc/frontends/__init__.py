"""Frontends: every model format comes in as a `Program` (core-ATen torch.export + signature)."""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import ModelLoadError, PassWarning
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


def load_model(
    model: str | Path | Program,
    *,
    seed: int = 0,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    strict: bool = False,
) -> Program:
    """`model` itself if it is a Program, else the Program its frontend imports. Weights holding NaN or
    Inf are a warning naming them, or with `strict` an error."""
    if isinstance(model, Program):
        return model
    program = load(model, seed=seed, input_shapes=input_shapes)
    empty = [spec.name for spec in program.inputs if 0 in spec.shape]
    if empty:
        raise ModelLoadError(
            model,
            f"input(s) {', '.join(empty)} have a zero-size dimension",
            "give every input at least one element",
        )
    bad = [name for name, w in program.weights.items() if w.is_floating_point() and not w.isfinite().all()]
    if bad:
        problem = f"weight(s) {', '.join(bad[:5])}{' …' if len(bad) > 5 else ''} hold NaN or Inf"
        if strict:
            raise ModelLoadError(
                model, problem, "fix the model's weights, or drop --strict to compile anyway"
            )
        warnings.warn(
            f"{model}: {problem}; the compiled model will propagate them", PassWarning, stacklevel=2
        )
    return program


def model_file(ref: str | Path) -> Path:
    """The file a model reference reads: the .py of `file.py:factory`, else the reference itself."""
    text = str(ref)
    return Path(text.rsplit(":", 1)[0]) if _is_factory_ref(text) else Path(text)


def _is_factory_ref(text: str) -> bool:
    head, sep, tail = text.rpartition(":")
    return bool(sep) and head.lower().endswith(".py") and bool(tail)
