"""ONNX frontend: an `.onnx` file → a torch module interpreting its graph with `onnx_ops` → `torch.export`.

Float initializers become the module's parameters (ONNX names, sanitized), so every pass — pruning,
fine-tuning — works on them; a 2-D weight read by MatMul (or Gemm without transB) is stored transposed, as
[out, in], so it shows up as a linear layer. Values computable at import time (Constant, Shape, and
anything computed only from them and integer initializers) are folded before tracing, so shape subgraphs
never reach the exported program; an If whose condition folds is replaced by its taken branch there.
A QDQ (quantized) model is folded to float first, its layers keeping their int8 grids (`onnx_qdq`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelLoadError, first_paragraph
from ..ir import Program, from_exported
from . import onnx_ops
from .onnx_checks import UnsupportedOp, check_model_file
from .onnx_qdq import fold_qdq, precisions

MIN_OPSET = 7
# Attributes that older opsets carry and that change nothing here.
IGNORED_ATTRIBUTES = frozenset({"consumed_inputs", "is_test", "spatial"})


def load_onnx(
    path: Path, *, seed: int = 0, input_shapes: Mapping[str, tuple[int, ...]] | None = None
) -> Program:
    """Import an ONNX file as a Program (static input shapes; `input_shapes` fixes symbolic dimensions)."""
    model = read_model(path)
    return from_model(model, source=str(path), seed=seed, input_shapes=input_shapes)


def input_names(path: Path) -> list[str]:
    """The names of an ONNX file's runtime inputs (graph inputs that are not initializers), in order."""
    model = read_model(path)
    init = {t.name for t in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in init]


def read_model(path: Path):
    """Parse an ONNX file, with one-paragraph errors for missing, truncated or non-ONNX files."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(path, "no such file", "check the path of the .onnx file")
    try:
        return onnx.load(str(path))
    except Exception as exc:
        raise ModelLoadError(
            path,
            f"not a readable ONNX protobuf ({first_paragraph(exc, 200)})",
            "re-export the model (torch.onnx.export, tf2onnx, …); the file may be truncated",
        ) from exc


def from_model(
    model, *, source: str, seed: int = 0, input_shapes: Mapping[str, tuple[int, ...]] | None = None
) -> Program:
    """Import an in-memory `onnx.ModelProto`."""
    import onnx

    check_model_file(model, source)
    opset = _opset(model, source)
    sparse = densify_sparse_initializers(model)
    grids = fold_qdq(model, opset, source)
    sparse = [grids.renamed.get(name, name) for name in sparse]  # sparse codes: the mask is their floats'
    check_supported(model, opset, source)
    try:
        onnx.checker.check_model(model)
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:
        raise ModelLoadError(
            source, f"invalid ONNX model: {first_paragraph(exc, 400)}", "fix the exporter or the graph"
        ) from exc
    graph = Graph(model, opset, source)
    inputs = graph.example_inputs(dict(input_shapes or {}), seed)
    module = _with_input_names(OnnxModule(graph, inputs), [value.name for value in graph.inputs])
    try:
        with quiet("torch"):  # a failed trace logs the whole partial graph; the error below says enough
            exported = torch.export.export(module, inputs).run_decompositions()
    except Exception as exc:
        raise ModelLoadError(
            source,
            f"tracing the ONNX graph failed: {first_paragraph(exc)}",
            "report the model and op to cascc",
        ) from exc
    program = from_exported(exported, source=source, frontend="onnx", seed=seed)
    if grids:  # a QDQ model: its layers keep the int8 grids it was quantized with
        kept = precisions(program, graph.nodes, grids, module.names)
        program = dataclasses.replace(program, precisions=kept)
    if not sparse:
        return program
    # a sparse initializer's structure is its mask: keep it, so passes and kernels see the sparsity
    masks = {module.names[n]: program.weights[module.names[n]] != 0 for n in sparse if n in module.names}
    return dataclasses.replace(program, masks=masks)


def _with_input_names(module: OnnxModule, names: list[str]) -> OnnxModule:
    """Give `forward` one named parameter per ONNX input, so the exported program keeps the ONNX names."""
    base = type(module)
    taken = {"self"}
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + [
        inspect.Parameter(sanitize(name, taken), inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names
    ]

    def forward(self, *inputs):
        return base.forward(self, *inputs)

    forward.__signature__ = inspect.Signature(parameters)
    module.__class__ = type(base.__name__, (base,), {"forward": forward})
    return module


def densify_sparse_initializers(model) -> list[str]:
    """Replace `graph.sparse_initializer`s by dense initializers (as onnxruntime does); return their names."""
    from onnx import numpy_helper

    names = []
    for sparse in model.graph.sparse_initializer:
        values = numpy_helper.to_array(sparse.values)
        index = numpy_helper.to_array(sparse.indices).astype(np.int64)
        dense = np.zeros(tuple(sparse.dims), dtype=values.dtype)
        if index.ndim == 2:  # [nnz, rank] coordinates
            dense[tuple(index.T)] = values
        else:  # linearized indices
            dense.reshape(-1)[index] = values
        model.graph.initializer.append(numpy_helper.from_array(dense, sparse.values.name))
        names.append(sparse.values.name)
    del model.graph.sparse_initializer[:]
    return names


@contextlib.contextmanager
def quiet(logger: str):
    """Silence a library logger for a block (torch logs whole partial graphs when a trace fails)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _opset(model, source: str) -> int:
    versions = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    opset = versions.get("ai.onnx")
    if opset is None:
        raise ModelLoadError(source, "the model imports no default-domain (ai.onnx) opset", "re-export it")
    if opset < MIN_OPSET:
        raise UnsupportedOp(
            source, f"opset {opset} is older than {MIN_OPSET}", "convert it with onnx.version_converter"
        )
    return opset


def check_supported(model, opset: int, source: str) -> None:
    """Raise one UnsupportedOp naming every op or domain the importer cannot take, in If branches too."""
    missing = set()
    for node in all_nodes(model.graph):
        domain = node.domain or "ai.onnx"
        if domain != "ai.onnx":
            missing.add(f"{node.op_type} (domain {domain})")
        elif onnx_ops.resolve(node.op_type, opset) is None:
            known = " at this opset" if node.op_type in onnx_ops.OPS else ""
            missing.add(f"{node.op_type}{known}")
    if missing:
        raise UnsupportedOp(
            source,
            f"unsupported ONNX op(s) at opset {opset}: {', '.join(sorted(missing))}",
            "replace them in the exporter, or export from torch and pass the .pt2 or file.py:factory",
        )


def all_nodes(graph):
    """The graph's nodes and, depth first, those of their subgraphs (both branches of an If: which one runs
    is known only once its condition is folded)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from all_nodes(sub)


def inline_branch(node, branch, tag: str) -> list:
    """The nodes of `branch` (the taken subgraph of If `node`) to run in its place: the names the branch
    defines get `tag` appended (the other branch and other Ifs may define the same), its initializers become
    Constant nodes, and one Identity per output gives the node's output its name."""
    import onnx
    from onnx import helper

    local = {name for n in branch.node for name in n.output if name} | {t.name for t in branch.initializer}
    rename = {name: name + tag for name in local}
    nodes = [helper.make_node("Constant", [], [rename[t.name]], value=t) for t in branch.initializer]
    for original in branch.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(original)
        _rename(copy, rename)
        nodes.append(copy)
    for inner, outer in zip(branch.output, node.output, strict=True):
        if outer:
            nodes.append(helper.make_node("Identity", [rename.get(inner.name, inner.name)], [outer]))
    return nodes


def _rename(node, rename: Mapping[str, str]) -> None:
    """Rename a node's inputs and outputs in place, and the outer names its subgraphs read."""
    node.input[:] = [rename.get(n, n) for n in node.input]
    node.output[:] = [rename.get(n, n) for n in node.output]
    for attr in node.attribute:
        for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            own = {name for n in sub.node for name in n.output} | {t.name for t in sub.initializer}
            outer = {k: v for k, v in rename.items() if k not in own}
            for inner in sub.node:
                _rename(inner, outer)
            for value in sub.output:
                value.name = outer.get(value.name, value.name)


def sanitize(name: str, taken: set[str]) -> str:
    """A Python identifier for an ONNX tensor name, unique among `taken`."""
    base = re.sub(r"\W", "_", name) or "tensor"
    if base[0].isdigit():
        base = "t_" + base
    candidate, n = base, 1
    while candidate in taken or hasattr(torch.nn.Module, candidate):  # e.g. an initializer named "half"
        n += 1
        candidate = f"{base}_{n}"
    taken.add(candidate)
    return candidate


class Graph:
    """The ONNX graph as the module needs it: nodes, initializers split into parameters and constants."""

    def __init__(self, model, opset: int, source: str):
        from onnx import numpy_helper

        self.source = source
        self.opset = opset
        g = model.graph
        self.nodes = list(g.node)
        init = {t.name: _tensor(numpy_helper.to_array(t), source) for t in g.initializer}
        self.inputs = [i for i in g.input if i.name not in init]
        self.outputs = [o.name for o in g.output]
        self.transposed = _transposed_weights(self.nodes, init)
        # float tensors are parameters (trainable, prunable); scalars and integer tensors are constants
        self.parameters = {n: t for n, t in init.items() if t.is_floating_point() and t.dim() > 0}
        self.constants = {n: t for n, t in init.items() if n not in self.parameters}
        # per node, in order: the op function for this opset and its keyword arguments, checked once
        self.calls = [self._bind(node) for node in self.nodes]

    def _bind(self, node) -> tuple[Any, dict[str, Any]]:
        fn = onnx_ops.resolve(node.op_type, self.opset)
        attributes = self.attributes(node)
        params = inspect.signature(fn).parameters
        for key in list(attributes):
            if key not in params:
                if key in IGNORED_ATTRIBUTES:
                    del attributes[key]
                    continue
                raise UnsupportedOp(
                    self.source,
                    f"{node.op_type} node {node.name!r} has attribute {key!r}, which cascc does not implement",
                    "re-export without it or report it",
                )
        if "_outputs" in params:
            attributes["_outputs"] = len(node.output)
        return fn, attributes

    def example_inputs(self, overrides: dict[str, tuple[int, ...]], seed: int) -> tuple[torch.Tensor, ...]:
        from onnx import TensorProto

        unknown = set(overrides) - {i.name for i in self.inputs}
        if unknown:
            raise ModelLoadError(
                self.source,
                f"--input-shape names {', '.join(sorted(unknown))}, not inputs of the model",
                f"use the input names {', '.join(i.name for i in self.inputs)}",
            )
        gen = torch.Generator().manual_seed(seed)
        result = []
        for value in self.inputs:
            if not value.type.HasField("tensor_type"):
                raise UnsupportedOp(
                    self.source,
                    f"input {value.name!r} is not a tensor ({value.type.WhichOneof('value')})",
                    "use tensor inputs",
                )
            tensor_type = value.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
            shape = overrides.get(value.name)
            if shape is None:
                if any(d is None or d <= 0 for d in dims):
                    spelled = "x".join(str(d) if d else "?" for d in dims)
                    raise ModelLoadError(
                        self.source,
                        f"input {value.name!r} has symbolic dimensions ({spelled})",
                        f"fix them with --input-shape {value.name}={spelled.replace('?', '1')}",
                    )
                shape = tuple(dims)
            elif len(shape) != len(dims):
                raise ModelLoadError(
                    self.source,
                    f"--input-shape gives {value.name!r} rank {len(shape)}, the model declares rank {len(dims)}",
                    "give one size per dimension",
                )
            dtype = _dtype(tensor_type.elem_type, self.source)
            if tensor_type.elem_type in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16):
                result.append(torch.randn(shape, generator=gen).to(dtype))
            else:
                result.append(torch.zeros(shape, dtype=dtype))
        return tuple(result)

    def attributes(self, node) -> dict[str, Any]:
        """ONNX attributes as Python values (strings decoded, tensors as torch tensors)."""
        from onnx import helper, numpy_helper

        result = {}
        for attr in node.attribute:
            value = helper.get_attribute_value(attr)
            if isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, list) and value and isinstance(value[0], bytes):
                value = [v.decode() for v in value]
            elif hasattr(value, "dims") and hasattr(value, "data_type"):
                value = torch.from_numpy(numpy_helper.to_array(value).copy())
            result[attr.name] = value
        return result


def _dtype(onnx_type: int, source: str) -> torch.dtype:
    try:
        return onnx_ops.torch_dtype(onnx_type)
    except NotImplementedError as exc:
        raise UnsupportedOp(
            source, f"{exc} is not supported", "convert the model to float32/int64 types"
        ) from exc


def _tensor(array, source: str) -> torch.Tensor:
    try:
        return torch.from_numpy(array.copy())
    except TypeError as exc:
        raise UnsupportedOp(
            source, f"initializer type {array.dtype} is not supported", "convert the model to float32"
        ) from exc


def _transposed_weights(nodes, init: Mapping[str, torch.Tensor]) -> set[str]:
    """2-D float initializers read only as MatMul's B or Gemm's B without transB: stored as [out, in]."""
    uses: dict[str, list[bool]] = {}
    for node in nodes:
        for i, name in enumerate(node.input):
            if name in init:
                as_weight = i == 1 and (
                    node.op_type == "MatMul"
                    or (
                        node.op_type == "Gemm" and not any(a.name == "transB" and a.i for a in node.attribute)
                    )
                )
                uses.setdefault(name, []).append(as_weight)
    return {
        name
        for name, flags in uses.items()
        if all(flags) and init[name].dim() == 2 and init[name].is_floating_point()
    }


class OnnxModule(torch.nn.Module):
    """Runs the ONNX graph with torch ops; folded values are computed once, at construction."""

    def __init__(self, graph: Graph, example_inputs: tuple[torch.Tensor, ...]):
        super().__init__()
        self.graph_ = graph
        taken: set[str] = set()
        self.names: dict[str, str] = {}
        for name, tensor in graph.parameters.items():
            attr = sanitize(name, taken)
            stored = tensor.t().contiguous() if name in graph.transposed else tensor
            self.register_parameter(attr, torch.nn.Parameter(stored, requires_grad=False))
            self.names[name] = attr
        # Integer initializers stay plain tensors (not buffers): they are shapes and indices, read at trace
        # time as real values, and torch.export lifts them as constants.
        self.steps, self.folded = self._fold(example_inputs)

    def _value(self, name: str) -> torch.Tensor:
        attr = getattr(self, self.names[name])
        return attr.t() if name in self.graph_.transposed else attr

    def _fold(self, example_inputs) -> tuple[list, dict[str, torch.Tensor]]:
        """Evaluate the graph once eagerly; keep the values that depend on no input and no parameter. Returns
        the steps to trace (node, op function, attributes), each If replaced by its taken branch."""
        env: dict[str, torch.Tensor] = {}
        static: dict[str, torch.Tensor] = dict(self.graph_.constants)
        for value, tensor in zip(self.graph_.inputs, example_inputs, strict=True):
            env[value.name] = tensor
        for name in self.graph_.parameters:
            env[name] = self._value(name)
        env.update(static)
        pending = list(zip(self.graph_.nodes, self.graph_.calls, strict=True))
        steps: list = []
        index = 0
        while index < len(pending):
            node, call = pending[index]
            index += 1
            with torch.no_grad():
                outputs = self._call(call, node, [env.get(n) if n else None for n in node.input])
            foldable = node.op_type in ("Shape", "Size") or all(not n or n in static for n in node.input)
            if outputs and isinstance(outputs[0], onnx_ops.Inline):
                if not foldable:  # the branch taken here would hold only for these example inputs
                    raise UnsupportedOp(
                        self.graph_.source,
                        f"{node.op_type} node {node.name!r} branches on {node.input[0]!r}, which is computed "
                        "from the model's inputs; cascc inlines an If only when its condition is known at "
                        "import (an initializer, a Constant, or folded from shapes)",
                        "export the model with the branch decided, or make the condition a constant",
                    )
                branch = inline_branch(node, outputs[0].graph, f"::if{index}")  # index: unique per If
                pending[index:index] = [(n, self.graph_._bind(n)) for n in branch]
                continue
            steps.append((node, call))
            # a node may leave trailing optional outputs unnamed (e.g. MaxPool's Indices)
            for name, value in zip(node.output, outputs, strict=False):
                if not name:
                    continue
                env[name] = value
                if foldable and isinstance(value, torch.Tensor):
                    static[name] = value.detach()
        return steps, static

    def _call(self, call: tuple, node, args: list) -> tuple:
        fn, attributes = call
        while args and args[-1] is None:
            args.pop()
        try:
            result = fn(*args, **attributes)
        except NotImplementedError as exc:
            raise UnsupportedOp(
                self.graph_.source, f"{node.op_type}: {exc}", "re-export with a supported mode"
            ) from exc
        return result if isinstance(result, tuple) else (result,)

    def forward(self, *inputs):
        env: dict[str, Any] = {value.name: x for value, x in zip(self.graph_.inputs, inputs, strict=True)}
        for name in self.names:
            env[name] = self._value(name)
        env.update(self.folded)
        real = {id(env[name]): tensor for name, tensor in self.graph_.parameters.items()}
        token = onnx_ops.CONCRETE.set(real)
        try:
            for node, call in self.steps:
                if all(not n or n in self.folded for n in node.output):
                    continue
                outputs = self._call(call, node, [env.get(n) if n else None for n in node.input])
                env.update(zip(node.output, outputs, strict=False))  # unnamed optional outputs, as above
        finally:
            onnx_ops.CONCRETE.reset(token)
        results = tuple(env[name] for name in self.graph_.outputs)
        return results[0] if len(results) == 1 else results
