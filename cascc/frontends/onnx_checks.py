"""Sanity checks of an untrusted ONNX file before anything in it is allocated or interpreted.

onnx.checker accepts initializers whose raw data has the wrong length, dims of 2⁶² (allocated before
anything fails), unknown or complex data types, sparse indices out of range or negative, and opsets newer
than the installed onnx knows; each of those is refused here, naming the tensor.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelLoadError

MAX_ELEMENTS = 1 << 31  # one initializer: beyond this it is a corrupt size, not a model


class UnsupportedOp(ModelLoadError):
    """The model uses ONNX ops (or domains, or op versions) that the importer does not implement."""


def check_model_file(model, source: str) -> None:
    """Refuse a newer-than-known opset and every malformed dense or sparse initializer."""
    import onnx

    known = onnx.defs.onnx_opset_version()
    for entry in model.opset_import:
        if (entry.domain or "ai.onnx") == "ai.onnx" and entry.version > known:
            raise ModelLoadError(
                source,
                f"it declares opset {entry.version}, newer than the {known} the installed onnx knows",
                f"re-export it at opset ≤ {known}",
            )
    for tensor in model.graph.initializer:
        _check_tensor(tensor, source, "initializer")
    for sparse in model.graph.sparse_initializer:
        _check_sparse(sparse, source)


def _elements(dims, name: str, source: str, kind: str) -> int:
    """The element count of `dims`, refused when negative, of absurd rank, or past MAX_ELEMENTS."""
    if any(d < 0 for d in dims) or len(dims) > 16:
        raise ModelLoadError(source, f"{kind} {name!r} has dims {list(dims)}", "re-export the model")
    count = math.prod(dims)
    if count > MAX_ELEMENTS:
        raise ModelLoadError(
            source,
            f"{kind} {name!r} claims {count:,} elements (dims {list(dims)}), past any real model",
            "the file is corrupt; re-export it",
        )
    return count


def _check_tensor(tensor, source: str, kind: str) -> None:
    from onnx import TensorProto, helper

    count = _elements(tensor.dims, tensor.name, source, kind)
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(
            source, f"{kind} {tensor.name!r} has unknown data type {tensor.data_type}", "re-export the model"
        ) from exc
    if dtype.kind == "c":
        raise ModelLoadError(
            source,
            f"{kind} {tensor.name!r} is complex ({dtype}); cascc would have to drop its imaginary part",
            "convert it to real values in the exporter",
        )
    if tensor.data_location == TensorProto.EXTERNAL:
        raise ModelLoadError(
            source,
            f"{kind} {tensor.name!r} lives in an external data file",
            "save the model with its data inline",
        )
    if tensor.HasField("raw_data"):
        stored, expected = len(tensor.raw_data), count * dtype.itemsize
        if tensor.data_type in (TensorProto.INT4, TensorProto.UINT4):
            expected = (count + 1) // 2
        if stored != expected:
            raise ModelLoadError(
                source,
                f"{kind} {tensor.name!r} holds {stored} bytes of raw data, its dims and type need {expected}",
                "the file is corrupt; re-export it",
            )
        return
    stored = len(getattr(tensor, helper.tensor_dtype_to_field(tensor.data_type)))
    if stored != count:
        raise ModelLoadError(
            source,
            f"{kind} {tensor.name!r} holds {stored} values, its dims {list(tensor.dims)} need {count}",
            "the file is corrupt; re-export it",
        )


def _check_sparse(sparse, source: str) -> None:
    from onnx import numpy_helper

    name = sparse.values.name
    _check_tensor(sparse.values, source, "sparse initializer values")
    _check_tensor(sparse.indices, source, "sparse initializer indices")
    total = _elements(sparse.dims, name, source, "sparse initializer")
    values, index = numpy_helper.to_array(sparse.values), numpy_helper.to_array(sparse.indices)
    nnz = values.size
    if not np.issubdtype(index.dtype, np.integer):
        raise ModelLoadError(source, f"sparse initializer {name!r} has non-integer indices", "re-export it")
    linear = index.ndim == 1
    if (linear and index.size != nnz) or (not linear and index.shape != (nnz, len(sparse.dims))):
        raise ModelLoadError(
            source,
            f"sparse initializer {name!r} has {nnz} values for indices of shape {list(index.shape)}",
            "the file is corrupt; re-export it",
        )
    bounds = total if linear else np.asarray(sparse.dims)
    if index.size and ((index < 0).any() or (index >= bounds).any()):
        raise ModelLoadError(
            source,
            f"sparse initializer {name!r} has indices outside its dims {list(sparse.dims)}",
            "the file is corrupt; re-export it",
        )
    if index.size and len(np.unique(index, axis=0)) != nnz:
        raise ModelLoadError(source, f"sparse initializer {name!r} repeats an index", "re-export it")
