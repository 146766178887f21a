"""ONNX import against onnxruntime: single-op graphs across opsets and attributes, shape subgraphs, torch
round trips, prunable layers, malformed files, and export back to ONNX."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from cascc import frontends, passes
from cascc.errors import ModelLoadError
from cascc.frontends.onnx import UnsupportedOp, from_model
from cascc.ir import LayerKind, layers

RNG = np.random.default_rng(0)


def rand(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, size=shape).astype(np.float32)


def model_of(nodes, inputs, initializers=(), outputs=("y",), opset=17, output_shapes=None, infer=True):
    """A graph from nodes; `inputs` maps runtime input name -> array; `initializers` is name -> array.
    Output types come from ONNX shape inference unless `output_shapes` gives them."""
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in inputs.items()
        ],
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, output_shapes[i])
            if output_shapes
            else onnx.ValueInfoProto(name=n)
            for i, n in enumerate(outputs)
        ],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in dict(initializers).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    return onnx.shape_inference.infer_shapes(model) if infer else model


def check(model, inputs, rtol=1e-5, atol=1e-5):
    """cascc's exported program vs onnxruntime on the same inputs."""
    session = ort.InferenceSession(model.SerializeToString())
    expected = session.run(None, inputs)
    program = from_model(model, source="test")
    with torch.no_grad():
        got = program.module()(*(torch.from_numpy(a) for a in inputs.values()))
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(expected), f"{len(got)} outputs, onnxruntime gives {len(expected)}"
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g.numpy(), e, rtol=rtol, atol=atol)
    return program


def single(op, inputs, attrs=None, initializers=(), opset=17, outputs=("y",), input_names=None):
    names = input_names or list(inputs) + list(dict(initializers))
    return model_of(
        [helper.make_node(op, names, list(outputs), **(attrs or {}))], inputs, initializers, outputs, opset
    )


def ints(*shape, nonzero=False, dtype=np.int64):
    """Small integers of both signs; `nonzero` for divisors."""
    values = RNG.integers(-9, 10, size=shape)
    if nonzero:
        values = np.where(values == 0, 3, values)
    return values.astype(dtype)


def signs(*shape):
    return np.where(RNG.uniform(size=shape) < 0.5, -1.0, 1.0).astype(np.float32)


def ties(*shape):
    """Floats with many repeated values, so first and last index of the extreme differ."""
    return RNG.integers(-2, 3, size=shape).astype(np.float32)


def one_hot(depth, values, dtype=np.float32):
    return {"depth": np.array(depth, np.int64), "values": np.array(values, dtype)}


X4 = rand(2, 4, 7, 6)
CASES = [
    # convolutions
    ("Conv", {"x": X4}, {}, {"w": rand(3, 4, 3, 3), "b": rand(3)}, 11),
    ("Conv", {"x": X4}, {"group": 2, "dilations": [2, 1], "pads": [1, 0, 2, 1]}, {"w": rand(4, 2, 3, 2)}, 13),
    ("Conv", {"x": X4}, {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, {"w": rand(5, 4, 3, 3)}, 17),
    ("Conv", {"x": X4}, {"auto_pad": "SAME_LOWER", "strides": [2, 1]}, {"w": rand(5, 4, 2, 2)}, 21),
    ("Conv", {"x": rand(2, 3, 10)}, {"strides": [2]}, {"w": rand(4, 3, 3)}, 17),
    ("ConvTranspose", {"x": X4}, {"strides": [2, 2], "pads": [1, 1, 0, 0]}, {"w": rand(4, 3, 3, 3)}, 17),
    (
        "ConvTranspose",
        {"x": X4},
        {"strides": [2, 2], "output_padding": [1, 0], "group": 2},
        {"w": rand(4, 2, 3, 3)},
        11,
    ),
    # matrix products
    ("Gemm", {"a": rand(3, 5)}, {}, {"b": rand(5, 4), "c": rand(4)}, 11),
    (
        "Gemm",
        {"a": rand(5, 3)},
        {"alpha": 0.5, "beta": 2.0, "transA": 1, "transB": 1},
        {"b": rand(4, 5), "c": rand(3, 4)},
        13,
    ),
    ("MatMul", {"a": rand(2, 3, 5)}, {}, {"b": rand(5, 4)}, 17),
    ("MatMul", {"a": rand(2, 3, 5), "b": rand(2, 5, 4)}, {}, {}, 17),
    ("Einsum", {"a": rand(2, 3, 4), "b": rand(2, 4, 5)}, {"equation": "bij,bjk->bik"}, {}, 17),
    ("Einsum", {"a": rand(3, 4)}, {"equation": "ij->ji"}, {}, 12),
    # elementwise
    *[
        (op, {"a": rand(2, 3, 4), "b": rand(3, 1)}, {}, {}, 17)
        for op in ("Add", "Sub", "Mul", "Div", "Min", "Max", "Mean", "Sum")
    ],
    ("Pow", {"a": rand(2, 3, low=0.1, high=2), "b": rand(3, low=0.5, high=2)}, {}, {}, 15),
    *[(op, {"x": rand(2, 3, 4, low=0.1, high=3)}, {}, {}, 17) for op in ("Sqrt", "Exp", "Log", "Reciprocal")],
    *[
        (op, {"x": rand(2, 3, 4, low=-3, high=3)}, {}, {}, 17)
        for op in ("Neg", "Abs", "Erf", "Relu", "Sigmoid", "HardSwish", "Tanh", "Identity")
    ],
    ("LeakyRelu", {"x": rand(2, 5)}, {"alpha": 0.2}, {}, 17),
    ("PRelu", {"x": rand(2, 3, 4)}, {}, {"slope": rand(3, 1)}, 17),
    ("HardSigmoid", {"x": rand(2, 5, low=-4, high=4)}, {"alpha": 0.3, "beta": 0.4}, {}, 17),
    ("Clip", {"x": rand(2, 5, low=-2, high=2)}, {"min": -0.5, "max": 0.7}, {}, 10),
    (
        "Clip",
        {"x": rand(2, 5, low=-2, high=2)},
        {},
        {"lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)},
        13,
    ),
    ("Gelu", {"x": rand(2, 5, low=-3, high=3)}, {"approximate": "tanh"}, {}, 20),
    ("Softmax", {"x": rand(2, 3, 4)}, {"axis": 1}, {}, 11),
    ("Softmax", {"x": rand(2, 3, 4)}, {"axis": 1}, {}, 13),
    ("LogSoftmax", {"x": rand(2, 3, 4)}, {}, {}, 17),
    ("Where", {"c": rand(2, 3) > 0, "a": rand(2, 3), "b": rand(3)}, {}, {}, 17),
    *[
        (op, {"a": rand(2, 3).round(1), "b": rand(3).round(1)}, {}, {}, 17)
        for op in ("Equal", "Less", "Greater")
    ],
    ("Cast", {"x": rand(2, 3, low=-5, high=5)}, {"to": TensorProto.INT64}, {}, 17),
    ("Dropout", {"x": rand(2, 3)}, {}, {}, 13),
    # normalization and pooling
    (
        "BatchNormalization",
        {"x": X4},
        {"epsilon": 1e-3},
        {"s": rand(4), "b": rand(4), "m": rand(4), "v": rand(4, low=0.5, high=2)},
        15,
    ),
    ("LayerNormalization", {"x": rand(2, 3, 8)}, {}, {"s": rand(8), "b": rand(8)}, 17),
    ("LayerNormalization", {"x": rand(2, 3, 8)}, {"axis": 1, "epsilon": 1e-3}, {"s": rand(3, 8)}, 17),
    ("InstanceNormalization", {"x": X4}, {}, {"s": rand(4), "b": rand(4)}, 17),
    ("MaxPool", {"x": X4}, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, {}, 12),
    ("MaxPool", {"x": X4}, {"kernel_shape": [2, 3], "pads": [1, 0, 0, 1], "dilations": [2, 1]}, {}, 12),
    (
        "AveragePool",
        {"x": X4},
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 0},
        {},
        11,
    ),
    (
        "AveragePool",
        {"x": X4},
        {"kernel_shape": [3, 2], "pads": [1, 0, 1, 1], "count_include_pad": 1, "strides": [2, 2]},
        {},
        17,
    ),
    ("AveragePool", {"x": X4}, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, {}, 19),
    ("GlobalAveragePool", {"x": X4}, {}, {}, 17),
    ("GlobalMaxPool", {"x": X4}, {}, {}, 17),
    # shapes
    ("Flatten", {"x": X4}, {"axis": 2}, {}, 13),
    ("Reshape", {"x": X4}, {}, {"s": np.array([0, -1, 3], np.int64)}, 14),
    ("Transpose", {"x": X4}, {"perm": [0, 2, 3, 1]}, {}, 17),
    ("Concat", {"a": rand(2, 3), "b": rand(2, 4)}, {"axis": -1}, {}, 17),
    (
        "Slice",
        {"x": X4},
        {},
        {
            "st": np.array([-1, 1], np.int64),
            "en": np.array([-8, 100], np.int64),
            "ax": np.array([2, 3], np.int64),
            "sp": np.array([-2, 2], np.int64),
        },
        13,
    ),
    ("Gather", {"x": X4}, {"axis": 1}, {"i": np.array([[0, -1], [2, 1]], np.int64)}, 13),
    ("Squeeze", {"x": rand(2, 1, 3, 1)}, {"axes": [1, -1]}, {}, 11),
    ("Squeeze", {"x": rand(2, 1, 3, 1)}, {}, {"a": np.array([1], np.int64)}, 13),
    ("Unsqueeze", {"x": rand(2, 3)}, {"axes": [0, 3]}, {}, 11),
    ("Unsqueeze", {"x": rand(2, 3)}, {}, {"a": np.array([-1, 1], np.int64)}, 13),
    ("Expand", {"x": rand(3, 1)}, {}, {"s": np.array([2, 1, 4], np.int64)}, 13),
    ("Tile", {"x": rand(2, 3)}, {}, {"r": np.array([2, 1], np.int64)}, 13),
    (
        "Pad",
        {"x": X4},
        {"mode": "constant"},
        {"p": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "v": np.array(0.5, np.float32)},
        13,
    ),
    ("Pad", {"x": X4}, {"mode": "reflect"}, {"p": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)}, 13),
    ("Pad", {"x": X4}, {"mode": "edge"}, {"p": np.array([0, 0, 1, 0, 0, 0, 2, 1], np.int64)}, 18),
    ("ReduceMean", {"x": X4}, {"axes": [1, -1], "keepdims": 0}, {}, 13),
    ("ReduceSum", {"x": X4}, {"keepdims": 1}, {"a": np.array([2], np.int64)}, 13),
    ("ReduceMax", {"x": X4}, {}, {"a": np.array([0, 3], np.int64)}, 18),
    (
        "Resize",
        {"x": X4},
        {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
        {"roi": np.zeros(0, np.float32), "sc": np.array([1, 1, 2, 1.5], np.float32)},
        13,
    ),
    (
        "Resize",
        {"x": X4},
        {"mode": "linear"},
        {"roi": np.zeros(0, np.float32), "sc": np.array([1, 1, 0.5, 2], np.float32)},
        13,
    ),
    (
        "Resize",
        {"x": X4},
        {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
        {
            "roi": np.zeros(0, np.float32),
            "sc": np.zeros(0, np.float32),
            "sz": np.array([2, 4, 9, 4], np.int64),
        },
        19,
    ),
    # integer arithmetic, scans, triangles, selection, one-hot, arg-reductions
    # integer divisors are initializers: the importer traces with zero integer inputs, and 0 divides nothing
    ("Mod", {"a": ints(2, 3, 4)}, {}, {"b": ints(2, 3, 4, nonzero=True)}, 13),
    (
        "Mod",
        {"a": ints(2, 3, 4, dtype=np.int32)},
        {"fmod": 1},
        {"b": ints(3, 1, nonzero=True, dtype=np.int32)},
        13,
    ),
    ("Mod", {"a": ints(2, 5)}, {"fmod": 0}, {"b": np.array([3, -3, 4, -4, 7], np.int64)}, 10),
    (
        "Mod",
        {"a": rand(2, 3, 4, low=-6, high=6), "b": rand(4, low=0.5, high=2) * signs(4)},
        {"fmod": 1},
        {},
        13,
    ),
    ("CumSum", {"x": rand(2, 3, 4)}, {}, {"axis": np.array(1, np.int64)}, 14),
    ("CumSum", {"x": rand(2, 3, 4)}, {"exclusive": 1}, {"axis": np.array(-1, np.int32)}, 14),
    ("CumSum", {"x": rand(2, 3, 4)}, {"reverse": 1}, {"axis": np.array(0, np.int64)}, 11),
    (
        "CumSum",
        {"x": ints(3, 5, dtype=np.int32)},
        {"exclusive": 1, "reverse": 1},
        {"axis": np.array(-2, np.int64)},
        14,
    ),
    ("Trilu", {"x": rand(3, 4)}, {}, {}, 14),
    ("Trilu", {"x": rand(2, 4, 5)}, {"upper": 0}, {"k": np.array(1, np.int64)}, 14),
    ("Trilu", {"x": rand(2, 4, 5)}, {"upper": 1}, {"k": np.array(-2, np.int64)}, 14),
    ("Trilu", {"x": ints(2, 1, 3, 4)}, {"upper": 0}, {"k": np.array(-1, np.int64)}, 14),
    ("Trilu", {"x": rand(3, 4)}, {"upper": 0}, {"k": np.array(7, np.int64)}, 14),
    ("TopK", {"x": rand(3, 7)}, {}, {"k": np.array([3], np.int64)}, 11),
    ("TopK", {"x": rand(2, 5, 4)}, {"axis": 1, "largest": 0}, {"k": np.array([2], np.int64)}, 11),
    ("TopK", {"x": rand(4, 9).round(1)}, {"axis": -1}, {"k": np.array([6], np.int64)}, 11),  # ties
    ("TopK", {"x": rand(4, 9).round(1)}, {"largest": 0}, {"k": np.array([4], np.int64)}, 11),  # ties
    ("TopK", {"x": rand(3, 6)}, {"axis": 0}, {"k": np.array([2], np.int64)}, 10),
    ("TopK", {"x": rand(3, 6)}, {"k": 2}, {}, 9),
    ("OneHot", {"i": np.array([[0, 3, -1], [-4, 5, 2]], np.int64)}, {}, one_hot(4, [0.0, 1.0]), 11),
    ("OneHot", {"i": np.array([[0, 3, -1], [-4, 5, 2]], np.int64)}, {"axis": 0}, one_hot(4, [-1.0, 2.0]), 11),
    ("OneHot", {"i": np.array([1.7, 0.2, 3.0], np.float32)}, {"axis": -2}, one_hot(5, [0, 7], np.int64), 11),
    ("OneHot", {"i": np.array([[2, 0], [1, 3]], np.int64)}, {"axis": 1}, one_hot(3, [0.5, 1.5]), 9),
    ("ArgMin", {"x": rand(2, 3, 4)}, {"axis": 1}, {}, 13),
    ("ArgMin", {"x": rand(2, 3, 4)}, {"axis": -2, "keepdims": 0}, {}, 11),
    ("ArgMin", {"x": ties(3, 5, 4)}, {"axis": -1, "select_last_index": 1}, {}, 13),
    ("ArgMin", {"x": ties(3, 5, 4)}, {"axis": 1, "keepdims": 0, "select_last_index": 0}, {}, 12),
    ("ArgMax", {"x": ties(3, 5, 4)}, {"axis": -1, "keepdims": 0, "select_last_index": 1}, {}, 13),
    ("ArgMax", {"x": ties(3, 5, 4)}, {"axis": 0}, {}, 11),
]


@pytest.mark.parametrize(
    "op,inputs,attrs,initializers,opset", CASES, ids=[f"{c[0]}-opset{c[4]}-{i}" for i, c in enumerate(CASES)]
)
def test_op_matches_onnxruntime(op, inputs, attrs, initializers, opset):
    outputs = {"Dropout": ("y", "mask"), "TopK": ("values", "indices")}.get(op, ("y",))
    check(single(op, inputs, attrs, initializers, opset, outputs=outputs), inputs)


@pytest.mark.parametrize("axis,largest", [(1, 1), (-2, 0), (-1, 1)])
def test_topk_unsorted(axis, largest):
    """sorted=0 leaves the order open (onnxruntime and cascc order them differently): the same k elements."""
    x = {"x": rand(2, 5, 4)}
    model = single(
        "TopK",
        x,
        {"axis": axis, "largest": largest, "sorted": 0},
        {"k": np.array([3], np.int64)},
        11,
        outputs=("values", "indices"),
    )
    values, indices = ort.InferenceSession(model.SerializeToString()).run(None, x)
    got_values, got_indices = from_model(model, source="test").module()(torch.from_numpy(x["x"]))
    np.testing.assert_array_equal(np.sort(got_indices.numpy(), axis), np.sort(indices, axis))
    np.testing.assert_array_equal(np.take_along_axis(x["x"], got_indices.numpy(), axis), got_values.numpy())
    np.testing.assert_array_equal(np.sort(got_values.numpy(), axis), np.sort(values, axis))


@pytest.mark.parametrize(
    "op,attrs,initializers,what",
    [
        ("TopK", {}, {}, "TopK: K"),
        ("CumSum", {}, {}, "CumSum: axis"),
        ("Trilu", {"upper": 0}, {}, "Trilu: k"),
        ("OneHot", {}, {"values": np.array([0.0, 1.0], np.float32)}, "OneHot: depth"),
    ],
)
def test_number_inputs_must_be_constant(op, attrs, initializers, what):
    """An input read as a number (K, axis, k, depth) that comes from the model's inputs is refused by name."""
    x = rand(3, 4) if op != "OneHot" else np.array([0, 2, 1], np.int64)
    inputs = {"x": x, "n": np.array([1] if op == "TopK" else 1, np.int64)}
    model = single(op, inputs, attrs, initializers, 14, outputs=("v", "i") if op == "TopK" else ("y",))
    with pytest.raises(ModelLoadError, match=f"{what} is computed from the model's inputs"):
        from_model(model, source="m.onnx")


@pytest.mark.parametrize("opset", [13, 18])
def test_split_forms(opset):
    x = rand(6, 4)
    node = (
        helper.make_node("Split", ["x", "s"], ["a", "b"], axis=0)
        if opset == 13
        else helper.make_node("Split", ["x"], ["a", "b", "c"], axis=0, num_outputs=3)
    )
    outputs = ("a", "b") if opset == 13 else ("a", "b", "c")
    init = {"s": np.array([2, 4], np.int64)} if opset == 13 else {}
    check(model_of([node], {"x": x}, init, outputs, opset), {"x": x})


def test_shape_subgraph_is_folded():
    """Shape → Gather → Unsqueeze → Concat → Reshape, ConstantOfShape and Range fold to constants."""
    x = rand(2, 3, 4)
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes"], ["batch1"]),
        helper.make_node("Concat", ["batch1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("Constant", [], ["n"], value=numpy_helper.from_array(np.array([12], np.int64))),
        helper.make_node(
            "ConstantOfShape", ["n"], ["ones"], value=numpy_helper.from_array(np.array([1.0], np.float32))
        ),
        helper.make_node("Range", ["r0", "r1", "r2"], ["ramp"]),
        helper.make_node("Mul", ["ones", "ramp"], ["scaled"]),
        helper.make_node("Add", ["flat", "scaled"], ["y"]),
    ]
    init = {
        "zero": np.array(0, np.int64),
        "axes": np.array([0], np.int64),
        "minus1": np.array([-1], np.int64),
        "r0": np.array(0.0, np.float32),
        "r1": np.array(6.0, np.float32),
        "r2": np.array(0.5, np.float32),
    }
    program = check(model_of(nodes, {"x": x}, init, ("y",), 13, output_shapes=[(2, 12)]), {"x": x})
    targets = {str(n.target) for n in program.exported.graph.nodes if n.op == "call_function"}
    assert not any("arange" in t or "full" in t for t in targets)  # folded, not computed at run time


def test_erf_gelu_pattern():
    x = rand(3, 8, low=-3, high=3)
    nodes = [
        helper.make_node("Div", ["x", "sqrt2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["a"]),
        helper.make_node("Mul", ["x", "a"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["y"]),
    ]
    init = {
        "sqrt2": np.array(np.sqrt(2), np.float32),
        "one": np.array(1, np.float32),
        "half": np.array(0.5, np.float32),
    }
    check(model_of(nodes, {"x": x}, init, ("y",), 13), {"x": x})


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)

    def forward(self, x):
        return self.layer(x)


def round_trip_models():
    import models

    return [
        ("mlp", *models.mlp()),
        ("cnn", *models.cnn()),
        ("separable", *models.separable_cnn()),
        ("transformer", Encoder(), (torch.randn(2, 6, 32),)),
    ]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(
    "name,module,example", round_trip_models(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_torch_onnx_cascc_round_trip(tmp_path, name, module, example):
    path = tmp_path / f"{name}.onnx"
    module = module.eval()
    if name == "transformer":  # the TorchScript exporter cannot trace nn.MultiheadAttention here
        torch.onnx.export(module, example, dynamo=True, opset_version=18).save(path)
    else:
        torch.onnx.export(module, example, path, dynamo=False, opset_version=17)
    program = frontends.load(path)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(*example), module(*example), rtol=1e-5, atol=1e-5)
    prunable = layers(program)
    assert prunable and all(
        layer.kind in (LayerKind.LINEAR, LayerKind.CONV, LayerKind.DEPTHWISE) for layer in prunable
    )
    pruned = passes.run(program, [("prune.magnitude", {"sparsity": 0.8})])  # passes work on imported weights
    assert all(float(pruned.masks[layer.name].float().mean()) < 0.25 for layer in prunable)


class CausalEncoder(nn.Module):
    """A 2-layer TransformerEncoder with a causal or a key-padding mask: the TorchScript exporter spells the
    masks with Mod (and the causal one with Trilu)."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x, pad=None):
        if pad is not None:
            return self.encoder(x, src_key_padding_mask=pad)
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.encoder(x, mask=mask, is_causal=True)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("masking", ["causal", "padding"])
def test_transformer_encoder_with_mask(tmp_path, masking):
    torch.manual_seed(0)
    module = CausalEncoder().eval()
    x = torch.randn(2, 6, 32)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[1, 4:] = True
    example = (x,) if masking == "causal" else (x, pad)
    names = ["x"] if masking == "causal" else ["x", "pad"]
    path = tmp_path / "encoder.onnx"
    torch.onnx.export(module, example, path, dynamo=False, opset_version=17, input_names=names)
    model = onnx.load(path)
    ops = {node.op_type for node in model.graph.node}
    assert "Mod" in ops and ("Trilu" in ops) == (masking == "causal")
    program = check(model, {n: t.numpy() for n, t in zip(names, example, strict=True)}, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(*example), module(*example), rtol=1e-4, atol=1e-5)


def test_matmul_and_gemm_weights_become_linear_layers():
    x = rand(4, 6)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["y"]),
    ]
    init = {"w1": rand(6, 5), "w2": rand(5, 3), "b2": rand(3)}
    program = check(model_of(nodes, {"x": x}, init, ("y",), 13), {"x": x})
    found = {
        layer.name: (layer.kind, layer.fan_in, layer.fan_out, layer.activation) for layer in layers(program)
    }
    assert found == {"w1": (LayerKind.LINEAR, 6, 5, "relu"), "w2": (LayerKind.LINEAR, 5, 3, None)}


# ---------------------------------------------------------------------------------------------------------
# Bad input


def test_unsupported_ops_are_listed_at_once(tmp_path):
    x = rand(2, 3)
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("LpNormalization", ["a"], ["b"]),
        helper.make_node("Hardmax", ["b"], ["c"]),
        helper.make_node("Foo", ["c"], ["y"], domain="com.example"),
    ]
    model = model_of(nodes, {"x": x}, {}, ("y",), 17, infer=False)
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(UnsupportedOp) as info:
        from_model(model, source="m.onnx")
    text = str(info.value)
    assert "m.onnx" in text and "LpNormalization" in text and "Hardmax" in text and "com.example" in text
    assert "opset 17" in text


def test_malformed_files(tmp_path):
    good = single("Relu", {"x": rand(2, 3)})
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good.SerializeToString()[:20])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff\xfe not a protobuf at all")
    for path in (truncated, garbage):
        with pytest.raises(ModelLoadError, match="not a readable ONNX protobuf"):
            frontends.load(path)
    with pytest.raises(ModelLoadError, match="no such file"):
        frontends.load(tmp_path / "missing.onnx")


def test_missing_initializer_and_rank_mismatch():
    missing = model_of([helper.make_node("Add", ["x", "w"], ["y"])], {"x": rand(2, 3)}, {}, ("y",), 17)
    with pytest.raises(ModelLoadError, match="invalid ONNX model"):
        from_model(missing, source="m.onnx")
    bad_rank = single("MatMul", {"a": rand(2, 3)}, {}, {"b": rand(4, 5, 6, 7)[0, 0]}, 17)
    with pytest.raises(ModelLoadError, match=r"invalid ONNX model|tracing"):
        from_model(bad_rank, source="m.onnx")


def test_symbolic_dimensions_need_an_input_shape():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ModelLoadError, match=r"--input-shape x=1x3"):
        from_model(model, source="m.onnx")
    program = from_model(model, source="m.onnx", input_shapes={"x": (5, 3)})
    assert program.inputs[0].shape == (5, 3)


# ---------------------------------------------------------------------------------------------------------
# Export


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("sparse", [False, True])
def test_export_pruned_program_to_onnx(tmp_path, cnn_program, sparse):
    from cascc.onnx_export import export_onnx

    pruned = passes.run(cnn_program, [("prune.magnitude", {"sparsity": 0.8})])
    path = export_onnx(pruned, tmp_path / "p.onnx", sparse_initializers=sparse)
    model = onnx.load(path)
    assert len(model.graph.sparse_initializer) == (len(pruned.masks) if sparse else 0)
    x = pruned.example_inputs()
    session = ort.InferenceSession(str(path))
    with torch.no_grad():
        expected = pruned.module()(*x).numpy()
    np.testing.assert_allclose(
        session.run(None, {session.get_inputs()[0].name: x[0].numpy()})[0], expected, rtol=1e-5, atol=1e-6
    )
    back = frontends.load(path)
    if sparse:  # sparse initializers come back as masks
        assert sorted(float(m.float().mean()) for m in back.masks.values()) == pytest.approx(
            sorted(float(m.float().mean()) for m in pruned.masks.values())
        )
