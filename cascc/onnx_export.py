"""Write a Program back as ONNX: masked weights zeroed, optionally as `sparse_initializer`s.

Uses torch's ONNX exporter on the exported program (`dynamo=True`, which needs `onnxscript`); parameter
names survive as initializer names. onnxruntime densifies sparse initializers at load, so outputs match.

An int8 Program is written as QDQ, the form `onnxruntime.quantization` writes and the importer reads back:
each int8 layer's weight as int8 codes with a DequantizeLinear (per output channel, zero point 0), and its
input through a QuantizeLinear → DequantizeLinear pair on its uint8 grid. onnxruntime then computes what
the simulated Program does, up to rounding ties (QuantizeLinear divides by the scale, cascc multiplies by
its float32 inverse).
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
    masked_names = set(program.masks)
    if program.int8_layers:
        codes = to_qdq(model, program)
        masked_names = {codes.get(name, name) for name in masked_names}
    if sparse_initializers:
        to_sparse(model, masked_names)
    onnx.checker.check_model(model)
    with atomic_file(path) as tmp:
        onnx.save(model, str(tmp))
    return path


def to_qdq(model, program: Program) -> dict[str, str]:
    """Quantize the int8 layers of an exported float `model` in place (see the module docstring). Returns
    each int8 weight's name → the name of its codes initializer."""
    from onnx import helper, numpy_helper

    from .frontends.onnx_qdq import value_readers, weight_reader
    from .ir.quant import quantize_weight

    graph = model.graph
    init = {t.name: t for t in graph.initializer}
    nodes = [_copy(node) for node in graph.node]  # edited, then written back in order
    taken = set(init) | {out for node in nodes for out in node.output} | {i.name for i in graph.input}

    def fresh(name: str) -> str:
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    readers = value_readers(nodes)
    weights = program.masked_weights()
    codes_of, first, before = {}, [], {}  # weight DequantizeLinears; input pairs, by consumer
    for name, spec in program.int8_layers.items():
        if name not in init:
            raise ArtifactError(program.source, f"int8 layer {name!r} has no ONNX initializer", "report it")
        reader = weight_reader(name, readers)
        if reader is None:
            raise ArtifactError(
                program.source,
                f"int8 layer {name!r} is not read as one Conv, Gemm or MatMul's weight in the ONNX export",
                "export it with --precision fp32, or report the model",
            )
        consumer, axis = reader
        codes = quantize_weight(weights[name].numpy(), spec.weight_scales)  # [out, in, …]
        if axis:  # the exported parameter is [in, out]
            codes = codes.T
        base, scale, zero = (fresh(f"{name}_{part}") for part in ("quantized", "scale", "zero_point"))
        scales = np.asarray(spec.weight_scales, np.float32)
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.ascontiguousarray(codes), base),
                numpy_helper.from_array(scales, scale),
                numpy_helper.from_array(np.zeros(scales.shape, np.int8), zero),
            ]
        )
        first.append(helper.make_node("DequantizeLinear", [base, scale, zero], [name], axis=axis))
        codes_of[name] = base
        source = consumer.input[0]
        grid = [fresh(f"{name}_input_scale"), fresh(f"{name}_input_zero_point")]
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.asarray(spec.input_scale, np.float32), grid[0]),
                numpy_helper.from_array(np.asarray(spec.input_zero, np.uint8), grid[1]),
            ]
        )
        quantized, dequantized = fresh(f"{name}_input_quantized"), fresh(f"{name}_input")
        before[id(consumer)] = [
            helper.make_node("QuantizeLinear", [source, *grid], [quantized]),
            helper.make_node("DequantizeLinear", [quantized, *grid], [dequantized]),
        ]
        consumer.input[0] = dequantized
    kept = [t for t in graph.initializer if t.name not in codes_of]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    ordered = first + [new for node in nodes for new in (*before.get(id(node), ()), node)]
    del graph.node[:]
    graph.node.extend(ordered)
    return codes_of


def _copy(node):
    import onnx

    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    return copy


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
