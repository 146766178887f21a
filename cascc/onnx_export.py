"""Write a Program back as ONNX: masked weights zeroed, optionally as `sparse_initializer`s.

Uses torch's ONNX exporter on the exported program (`dynamo=True`, which needs `onnxscript`); parameter
names survive as initializer names. onnxruntime densifies sparse initializers at load, so outputs match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ArtifactError, first_paragraph
from .files import atomic_file
from .frontends.onnx import quiet
from .ir import Program


def export_onnx(program: Program, path: Path, *, sparse_initializers: bool = False, opset: int = 18) -> Path:
    """Save `program` as an ONNX file at `path` (written to a temporary file, then renamed)."""
    import onnx
    import torch

    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ArtifactError(path, "the output must be an .onnx file", "name it e.g. pruned.onnx")
    masked = program.with_weights({n: w for n, w in program.masked_weights().items() if n in program.masks})
    try:
        with quiet("torch.onnx"):
            exported = torch.onnx.export(
                masked.exported,
                program.example_inputs(),
                dynamo=True,
                opset_version=opset,
                verbose=False,
                optimize=False,  # the optimizer folds weight transposes into anonymous initializers
            )
    except Exception as exc:
        raise ArtifactError(
            program.source,
            f"torch's ONNX exporter failed: {first_paragraph(exc)}",
            "report the model to cascc",
        ) from exc
    model = exported.model_proto
    if sparse_initializers:
        to_sparse(model, set(program.masks))
    onnx.checker.check_model(model)
    with atomic_file(path) as tmp:
        onnx.save(model, str(tmp))
    return path


def to_sparse(model, names: set[str]) -> int:
    """Move the named initializers into `graph.sparse_initializer` (COO, linearized int64 indices).
    Returns how many moved."""
    from onnx import helper, numpy_helper

    graph = model.graph
    keep, moved = [], 0
    for tensor in graph.initializer:
        if tensor.name not in names:
            keep.append(tensor)
            continue
        dense = numpy_helper.to_array(tensor)
        flat = dense.reshape(-1)
        index = np.flatnonzero(flat).astype(np.int64)
        values = numpy_helper.from_array(flat[index], tensor.name)
        indices = numpy_helper.from_array(index, f"{tensor.name}_indices")
        graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, list(dense.shape)))
        moved += 1
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return moved
