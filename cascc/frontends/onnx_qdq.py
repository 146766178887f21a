"""QDQ ONNX: QuantizeLinear/DequantizeLinear pairs, as `onnxruntime.quantization` and NNCF write them.

Before import, `fold_qdq` rewrites the graph to float and keeps the grids it read:
- a DequantizeLinear of a quantized initializer (a weight or an int32 bias), or a QuantizeLinear →
  DequantizeLinear pair on a float initializer, becomes the float initializer codes × scale, named as the
  codes without their `_quantized` suffix; an int8 weight's scales are kept;
- a QuantizeLinear → DequantizeLinear pair on a computed value becomes a Clip to the grid's range (the
  pair's saturation, in which onnxruntime's quantizer folds a ReLU or Clip), and the grid of its output —
  the value a layer reads — is kept (int8 activations as the same grid in uint8, zero + 128).

After import, `precisions` gives each layer its int8 grid where the model quantized both its weight
(symmetric per output channel in ±127, the form cascc computes) and its input, and fp32 with the reason
otherwise. Roundings elsewhere (a pair on a residual add or an output) are computed in float, saturated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..ir import Program, layers
from ..ir.int8_rules import int8_blocker
from ..ir.quant import INT8_MAX, UINT8_MAX, LayerPrecision, Precision
from .onnx_checks import UnsupportedOp

_CODE_TYPES = {"uint8": 0, "int8": 128, "int32": None}  # uint8 offset of an activation grid's zero point


@dataclass(frozen=True)
class WeightGrid:
    """A quantized initializer's grid: scales (scalar or per `axis`), and whether it is symmetric int8 in
    ±127 (zero point 0), the weight form cascc's kernels take."""

    scales: np.ndarray
    axis: int
    symmetric: bool


@dataclass
class QdqGrids:
    """What `fold_qdq` read: weight grids by float initializer name, activation grids (scale, uint8 zero
    point) by the name of the value a consumer reads, and the name each codes initializer's floats took."""

    weights: dict[str, WeightGrid] = field(default_factory=dict)
    activations: dict[str, tuple[float, int]] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)  # codes initializer → its float initializer

    def __bool__(self) -> bool:
        return bool(self.weights or self.activations)


def fold_qdq(model, opset: int, source: str) -> QdqGrids:
    """Rewrite the top-level graph's Q/DQ nodes to float in place (see the module docstring); `opset` is
    the model's default-domain opset."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    if not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.node):
        return QdqGrids()
    init = {t.name: t for t in graph.initializer}
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    producer = {out: n for n in graph.node for out in n.output}
    taken = set(init) | set(producer) | {i.name for i in graph.input}
    readers_of = Counter(name for node in graph.node for name in node.input)
    grids = QdqGrids()

    def value(name: str) -> np.ndarray | None:
        tensor = _constant(name, init, constants)
        return None if tensor is None else numpy_helper.to_array(tensor)

    def code_type(name: str | None, node, fallback: int) -> np.dtype:
        """The numpy type of the codes a constant `name` holds (or `fallback`, a TensorProto type),
        refused unless uint8, int8 or int32 (an onnx that stores int4 as int8 would pass a dtype check)."""
        tensor = _constant(name, init, constants) if name else None
        kind = fallback if tensor is None else tensor.data_type
        if kind not in (TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32):
            _refuse(source, node, f"{_type_name(kind)} codes", "quantize to uint8 or int8")
        return helper.tensor_dtype_to_np_dtype(kind)

    def grid_of(node, codes: str | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """(scale, zero point, axis) of a Q or DQ node, each constant, or a clear error; `codes`: the
        constant a DQ reads, whose type an absent zero point takes. A one-element scale is per tensor."""
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("block_size", 0):
            _refuse(source, node, "blocked quantization (block_size)", "quantize per tensor or per channel")
        scale = value(node.input[1])
        zero_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if zero_name:
            zero = value(zero_name)
            if zero is not None:
                code_type(zero_name, node, TensorProto.UINT8)
        else:  # no zero point: 0 in the codes read, or the Q's `output_dtype` (opset 21), or uint8
            kind = code_type(codes, node, attrs.get("output_dtype") or TensorProto.UINT8)
            zero = None if scale is None else np.zeros(scale.shape, kind)
        if scale is None or zero is None:
            _refuse(
                source,
                node,
                "its scale or zero point is computed, not a constant",
                "export them as initializers",
            )
        if not np.all(np.isfinite(scale)) or not np.all(scale > 0):
            _refuse(source, node, "a scale that is not a positive finite number", "recalibrate the model")
        if zero_name and zero.size != scale.size:
            _refuse(source, node, "its zero point and scale differ in size", "re-export it")
        if scale.size == 1:
            scale, zero = scale.reshape(()), zero.reshape(())
        elif scale.ndim != 1:
            _refuse(source, node, f"a scale of shape {list(scale.shape)}", "quantize per tensor or per axis")
        return scale.astype(np.float32), zero.reshape(scale.shape), int(attrs.get("axis", 1))

    def along(node, scale: np.ndarray, axis: int, shape: tuple[int, ...]) -> list[int]:
        """The shape that broadcasts `scale` over a tensor of `shape`: per tensor, or along `axis`."""
        if not scale.ndim:
            return [1] * len(shape)
        if not -len(shape) <= axis < len(shape) or shape[axis] != scale.size:
            _refuse(
                source,
                node,
                f"{scale.size} scales along axis {axis} of a {list(shape)} tensor",
                "give one scale per channel of the axis",
            )
        broadcast = [1] * len(shape)
        broadcast[axis % len(shape)] = -1
        return broadcast

    def weight(node, codes: np.ndarray, code_name: str, scale, zero, axis):
        if codes.dtype != zero.dtype:
            _refuse(
                source, node, f"{codes.dtype.name} codes with a {zero.dtype.name} zero point", "re-export it"
            )
        shape = along(node, scale, axis, codes.shape)
        floats = (codes.astype(np.float32) - zero.astype(np.float32).reshape(shape)) * scale.reshape(shape)
        if code_name in init and readers_of[code_name] == 1:  # replaced: its name is free again
            graph.initializer.remove(init.pop(code_name))
            taken.discard(code_name)
        name = code_name.removesuffix("_quantized")
        if name in taken:
            name = node.output[0]
        graph.initializer.append(numpy_helper.from_array(floats.astype(np.float32), name))
        taken.add(name)
        grids.renamed[code_name] = name
        if codes.dtype == np.int8 and codes.ndim >= 2:
            symmetric = not np.any(zero) and int(codes.min(initial=0)) >= -INT8_MAX
            grids.weights[name] = WeightGrid(scale, axis % codes.ndim, symmetric)
        return name

    kept, replaced, folded_q, fake = [], {}, set(), {}
    for node in graph.node:
        if node.op_type != "DequantizeLinear":
            kept.append(node)
            continue
        source_name = node.input[0]
        codes = value(source_name)
        quantizer = producer.get(source_name)
        if codes is not None:
            code_type(source_name, node, TensorProto.UINT8)
            replaced[node.output[0]] = weight(node, codes, source_name, *grid_of(node, source_name))
        elif quantizer is not None and quantizer.op_type == "QuantizeLinear":
            q_scale, q_zero, q_axis = grid_of(quantizer)
            scale, zero, axis = grid_of(node)
            if not (len(node.input) > 2 and node.input[2]):  # no zero point: 0 in the Q's codes
                zero = zero.astype(q_zero.dtype)
            floats = value(quantizer.input[0])
            ndim = None if floats is None else floats.ndim
            same_axis = not scale.ndim or (q_axis == axis if ndim is None else q_axis % ndim == axis % ndim)
            equal = q_scale.shape == scale.shape and q_zero.dtype == zero.dtype and same_axis
            if not equal or np.any(q_scale != scale) or np.any(q_zero != zero):
                _refuse(source, node, "its grid differs from its QuantizeLinear's", "pair equal grids")
            folded_q.add(quantizer.output[0])
            if floats is not None:  # a fake-quantized float weight (NNCF): compute its codes, once
                if quantizer.output[0] not in fake:
                    low, high = (-128, 127) if zero.dtype == np.int8 else (0, 255)
                    shape = along(node, scale, axis, floats.shape)
                    q = np.rint(floats.astype(np.float32) / scale.reshape(shape)) + zero.reshape(shape)
                    codes = np.clip(q, low, high).astype(zero.dtype)
                    fake[quantizer.output[0]] = weight(node, codes, quantizer.input[0], scale, zero, axis)
                replaced[node.output[0]] = fake[quantizer.output[0]]
                continue
            if scale.size != 1:
                _refuse(source, node, "per-channel activation scales", "quantize activations per tensor")
            offset = _CODE_TYPES[zero.dtype.name]
            if offset is None:
                _refuse(source, node, "int32 activation codes", "quantize activations to uint8 or int8")
            step, code = np.float32(scale), int(zero) + offset
            grids.activations[node.output[0]] = (float(step), code)
            kept += _saturation(quantizer.input[0], node, step, code, graph, opset, taken)
        else:
            _refuse(
                source,
                node,
                f"it reads {source_name!r}, neither a quantized initializer nor a QuantizeLinear's output",
                "import the float model, or quantize it with onnxruntime.quantization or NNCF",
            )
    for output in graph.output:
        if output.name in replaced:
            _refuse(source, producer[output.name], "a graph output is a dequantized weight", "re-export it")
    read = {n for node in kept for n in node.input} | {o.name for o in graph.output}
    for node in kept:
        if node.op_type == "QuantizeLinear" and (node.output[0] not in folded_q or node.output[0] in read):
            _refuse(source, node, "its codes reach an op other than DequantizeLinear", "keep Q/DQ in pairs")
    kept = [n for n in kept if n.op_type != "QuantizeLinear"]
    del graph.node[:]
    graph.node.extend(kept)
    from .onnx import all_nodes

    for node in all_nodes(graph):  # subgraphs read outer values by name too
        node.input[:] = [replaced.get(n, n) for n in node.input]
    _drop_unread_initializers(graph)
    return grids


def _constant(name: str, init: Mapping, constants: Mapping):
    """The TensorProto an initializer or a Constant node's `value` holds, or None."""
    if name in init:
        return init[name]
    if name not in constants:
        return None
    from onnx import helper, numpy_helper

    for attr in constants[name].attribute:
        if attr.name == "value":
            return attr.t
        if attr.name in _SCALAR_CONSTANTS:
            number = np.asarray(helper.get_attribute_value(attr), _SCALAR_CONSTANTS[attr.name])
            return numpy_helper.from_array(number, name)
    return None


_SCALAR_CONSTANTS = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64}


def _drop_unread_initializers(graph) -> None:
    """Remove the initializers (codes, scales, zero points) no node reads any more, subgraphs included."""
    from .onnx import all_nodes

    read = {n for node in all_nodes(graph) for n in node.input} | {o.name for o in graph.output}
    dropped = {t.name for t in graph.initializer if t.name not in read}
    live = [t for t in graph.initializer if t.name not in dropped]
    inputs = [i for i in graph.input if i.name not in dropped]  # IR < 4 lists initializers as inputs too
    del graph.initializer[:]
    graph.initializer.extend(live)
    del graph.input[:]
    graph.input.extend(inputs)


def _saturation(value: str, dq, step: np.float32, zero: int, graph, opset: int, taken: set[str]) -> list:
    """The float part of a Q → DQ pair: a Clip of `value` to the grid's range, which a quantizer may carry a
    fused ReLU or Clip in (onnxruntime drops a ReLU whose range starts at 0), named as the DQ's output."""
    from onnx import helper, numpy_helper

    low, high = (np.float32(q - zero) * step for q in (0, UINT8_MAX))
    if opset < 11:  # Clip's bounds were attributes before opset 11
        return [helper.make_node("Clip", [value], [dq.output[0]], min=float(low), max=float(high))]
    names = []
    for bound, number in (("min", low), ("max", high)):
        name = f"{dq.output[0]}::{bound}"
        while name in taken:
            name += "_"
        taken.add(name)
        graph.initializer.append(numpy_helper.from_array(np.asarray(number, np.float32), name))
        names.append(name)
    return [helper.make_node("Clip", [value, *names], [dq.output[0]], name=dq.name)]


def _refuse(source: str, node, problem: str, fix: str):
    raise UnsupportedOp(source, f"{node.op_type} node {node.name!r}: {problem}", fix)


def precisions(
    program: Program, nodes, grids: QdqGrids, names: Mapping[str, str]
) -> dict[str, LayerPrecision]:
    """Each layer's precision from the folded model's grids (`names`: ONNX initializer → parameter)."""
    onnx_name = {param: name for name, param in names.items()}
    readers = value_readers(nodes)
    result = {}
    for layer in layers(program):
        reason, spec = _layer_grid(program, layer, onnx_name.get(layer.name), readers, grids)
        result[layer.name] = spec or LayerPrecision(Precision.FP32, reason=reason)
    return result


def value_readers(nodes) -> dict[str, list]:
    """Value name → [(node, input index)] of the nodes reading it, as `weight_reader` takes."""
    readers: dict[str, list] = {}
    for node in nodes:
        for index, name in enumerate(node.input):
            readers.setdefault(name, []).append((node, index))
    return readers


def weight_reader(name: str, readers: Mapping[str, list]) -> tuple[object, int] | None:
    """The one Conv, Gemm or MatMul node reading weight `name` as its input 1, through 2-D Transposes (a
    linear layer's export), and the axis of the stored weight its output channels run along; or None.
    `readers`: value name → [(node, input index)]."""
    from onnx import helper

    swaps = 0
    while True:
        uses = readers.get(name, [])
        if len(uses) != 1:
            return None
        node, index = uses[0]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "Transpose":
            break
        if list(attrs.get("perm", [1, 0])) != [1, 0]:
            return None
        swaps, name = swaps + 1, node.output[0]
    if index != 1 or node.op_type not in ("Conv", "Gemm", "MatMul") or (swaps and node.op_type == "Conv"):
        return None
    read_axis = {"Conv": 0, "Gemm": 0 if attrs.get("transB", 0) else 1, "MatMul": 1}[node.op_type]
    return node, read_axis ^ (swaps % 2)


def _layer_grid(program, layer, name, readers, grids: QdqGrids):
    """(reason, None) for a layer that stays fp32, or (None, its int8 precision)."""
    grid = grids.weights.get(name)
    if grid is None:
        return "the QDQ model keeps its weight float", None
    blocker = int8_blocker(program, layer)
    if blocker:
        return blocker, None
    reader = weight_reader(name, readers)
    if reader is None:
        return "its weight is not read as one Conv, Gemm or MatMul's weight", None
    consumer, out_axis = reader
    activation = grids.activations.get(consumer.input[0])
    if activation is None:
        return "the QDQ model does not quantize its input", None
    if not grid.symmetric:
        return "its weight grid is asymmetric or uses code -128 (cascc's is symmetric in ±127)", None
    units = program.weights[layer.name].shape[0]
    if grid.scales.size == 1:
        scales = np.full(units, grid.scales.reshape(()), np.float32)
    elif grid.axis == out_axis and grid.scales.size == units:
        scales = grid.scales
    else:
        return "its weight scales run along its input axis, not per output channel", None
    scale, zero = activation
    return None, LayerPrecision(Precision.INT8, scale, zero, tuple(float(s) for s in scales))


def _type_name(kind: int) -> str:
    from onnx import helper

    return helper.tensor_dtype_to_string(kind).removeprefix("TensorProto.").lower()
