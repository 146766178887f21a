"""ONNX ops that real exports need beyond the core set (issue 17), against onnxruntime: ND gathers and
scatters, group/RMS/local-response normalization, RNN/GRU/LSTM, depth/space rearrangement, Upsample, the
activations and predicates, more reductions, and If with a condition known at import. Ops that cannot be
imported (a mode, an input that must be constant, a branch on a run-time value) are refused by name."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from cascc.errors import ModelLoadError
from cascc.frontends.onnx import UnsupportedOp, from_model

RNG = np.random.default_rng(17)


def rand(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, size=shape).astype(np.float32)


def i64(values):
    return np.array(values, np.int64)


def model_of(nodes, inputs, initializers=(), outputs=("y",), opset=17, rank=None):
    """A shape-inferred model: `inputs` maps run-time input names to arrays, `initializers` names to arrays.
    `rank` declares float outputs of that rank, for shapes inference cannot know."""
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in inputs.items()
        ],
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, [None] * rank)
            if rank is not None
            else onnx.ValueInfoProto(name=n)
            for n in outputs
        ],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in dict(initializers).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    return onnx.shape_inference.infer_shapes(model)


def single(op, inputs, attrs=None, initializers=(), opset=17, outputs=("y",), rank=None):
    names = list(inputs) + list(dict(initializers))
    node = helper.make_node(op, names, list(outputs), **(attrs or {}))
    return model_of([node], inputs, initializers, outputs, opset, rank)


def check(model, inputs, rtol=1e-5, atol=1e-5, reference=False):
    """cascc's exported program against onnxruntime (or, where it refuses the op's valid use,
    onnx.reference) on the same inputs, output by output."""
    if reference:
        expected = ReferenceEvaluator(model).run(None, inputs)
    else:
        expected = ort.InferenceSession(model.SerializeToString()).run(None, inputs)
    program = from_model(model, source="test")
    with torch.no_grad():
        got = program.module()(*(torch.from_numpy(a) for a in inputs.values()))
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.numpy().dtype == e.dtype
        if e.dtype.kind == "f":
            np.testing.assert_allclose(g.numpy(), e, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(g.numpy(), e)
    return program


def case(op, inputs, attrs=None, initializers=(), opset=17, tag="", rank=None, reference=False):
    """One single-op case; `rank` declares the output's rank where shape inference leaves it open."""
    options = {"rank": rank, "reference": reference}
    return pytest.param(op, inputs, attrs or {}, dict(initializers), opset, options, id=f"{op}-{opset}{tag}")


HALVES = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49, -0.51, 7.0], np.float32)
SPECIAL = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1.5, -3.0, np.float32(3e38)], np.float32)
X4 = rand(2, 8, 4, 6)

CASES = [
    # activations and predicates
    case("Round", {"x": np.concatenate([HALVES, rand(6, low=-4, high=4)])}, opset=11),
    case("Round", {"x": HALVES.reshape(2, 5)}, opset=22),
    case("Sign", {"x": np.concatenate([rand(5), np.zeros(2, np.float32)])}, opset=9),
    case("Sign", {"x": i64([-3, 0, 4, -1])}, opset=13),
    case("IsNaN", {"x": SPECIAL}, opset=9),
    case("IsNaN", {"x": SPECIAL.reshape(2, 4)}, opset=20),
    case("IsInf", {"x": SPECIAL}, opset=10),
    case("IsInf", {"x": SPECIAL}, {"detect_negative": 0}, opset=20, tag="-positive"),
    case("IsInf", {"x": SPECIAL}, {"detect_positive": 0}, opset=20, tag="-negative"),
    case("IsInf", {"x": SPECIAL}, {"detect_positive": 0, "detect_negative": 0}, opset=20, tag="-neither"),
    case("Mish", {"x": rand(3, 7, low=-6, high=6)}, opset=18),
    case("Mish", {"x": rand(3, 7, low=-30, high=30)}, opset=22, tag="-wide"),
    case("Swish", {"x": rand(3, 7, low=-6, high=6)}, opset=24),
    case("Swish", {"x": rand(3, 7, low=-6, high=6)}, {"alpha": 1.702}, opset=24, tag="-alpha"),
    case("Selu", {"x": rand(3, 7, low=-4, high=4)}, opset=7),
    case("Selu", {"x": rand(3, 7, low=-4, high=4)}, {"alpha": 2.0, "gamma": 0.5}, opset=22),
    case("Celu", {"x": rand(3, 7, low=-4, high=4)}, opset=12),
    case("Celu", {"x": rand(3, 7, low=-4, high=4)}, {"alpha": 2.5}, opset=12, tag="-alpha"),
    case("Softsign", {"x": rand(3, 7, low=-9, high=9)}, opset=7),
    case("Softsign", {"x": rand(3, 7, low=-9, high=9)}, opset=22),
    # reductions: axes as attribute (opsets < 18) and as input (18), keepdims, noop_with_empty_axes
    *[
        c
        for op, low in (
            ("ReduceL1", -2),
            ("ReduceSumSquare", -2),
            ("ReduceLogSumExp", -2),
            ("ReduceLogSum", 0.1),
        )
        for c in (
            case(op, {"x": rand(2, 3, 4, low=low, high=2)}, {"axes": [1, -1], "keepdims": 0}, opset=13),
            case(op, {"x": rand(2, 3, 4, low=low, high=2)}, {}, opset=11, tag="-all"),
            case(op, {"x": rand(2, 3, 4, low=low, high=2)}, {}, {"a": i64([0, 2])}, opset=18),
            case(op, {"x": rand(2, 3, 4, low=low, high=2)}, {"keepdims": 0}, opset=18, tag="-all"),
            # reducing over no axes: each element alone (|x|, x², log x, x)
            case(
                op,
                {"x": rand(2, 3, 4, low=low, high=2)},
                {"noop_with_empty_axes": 1},
                {"a": i64([])},
                18,
                "-noop",
            ),
        )
    ],
    case(
        "ReduceL2",
        {"x": rand(2, 3, low=-2, high=2)},
        {"noop_with_empty_axes": 1},
        {"a": i64([])},
        18,
        "-noop",
    ),
    case("ReduceLogSumExp", {"x": rand(2, 5, low=50, high=90)}, {"axes": [1]}, opset=13, tag="-large"),
    # depth and space
    case("DepthToSpace", {"x": X4}, {"blocksize": 2}, opset=9),
    case("DepthToSpace", {"x": X4}, {"blocksize": 2, "mode": "DCR"}, opset=13),
    case("DepthToSpace", {"x": X4}, {"blocksize": 2, "mode": "CRD"}, opset=11),
    case("DepthToSpace", {"x": rand(1, 18, 2, 3)}, {"blocksize": 3, "mode": "CRD"}, opset=13),
    case("SpaceToDepth", {"x": X4}, {"blocksize": 2}, opset=9),
    case("SpaceToDepth", {"x": rand(1, 2, 6, 9)}, {"blocksize": 3}, opset=13),
    case("SpaceToDepth", {"x": X4}, {"blocksize": 2, "mode": "DCR"}, opset=28),
    case("SpaceToDepth", {"x": X4}, {"blocksize": 2, "mode": "CRD"}, opset=28),
    case("Upsample", {"x": rand(2, 3, 3, 4)}, {"scales": [1.0, 1.0, 2.0, 3.0]}, opset=7, tag="-nearest"),
    case(
        "Upsample",
        {"x": rand(2, 3, 3, 4)},
        {"scales": [1.0, 1.0, 2.0, 2.0], "mode": "linear"},
        opset=7,
        tag="-linear",
    ),
    case(
        "Upsample",
        {"x": rand(1, 2, 3, 4)},
        {"mode": "nearest"},
        {"s": np.array([1, 2, 1.5, 2.5], np.float32)},
        opset=9,
        tag="-nearest",
    ),
    case(
        "Upsample",
        {"x": rand(1, 2, 3, 4)},
        {"mode": "linear"},
        {"s": np.array([1, 1, 2, 4], np.float32)},
        opset=9,
        tag="-linear",
    ),
    # gathers and scatters by index tuples and elements
    case("GatherND", {"x": rand(4, 3, 5)}, {}, {"i": i64([[[0, 1], [3, -1]], [[-4, 0], [2, 2]]])}, opset=11),
    case("GatherND", {"x": rand(4, 3, 5)}, {}, {"i": i64([[1, 2, 3], [3, -3, -5]])}, opset=13, tag="-full"),
    case(
        "GatherND",
        {"x": rand(2, 3, 4, 5)},
        {"batch_dims": 1},
        {"i": i64([[[0, 1], [2, -1]], [[-1, 3], [1, 0]]])},
        opset=12,
    ),
    case(
        "GatherND",
        {"x": rand(2, 3, 4)},
        {"batch_dims": 2},
        {"i": i64([[[1], [3], [0]], [[2], [2], [-1]]])},
        13,
    ),
    case(
        "GatherND",
        {"x": i64(RNG.integers(-9, 9, (3, 4, 2)))},
        {},
        {"i": i64([[2], [0], [-1]])},
        opset=13,
        tag="-int",
    ),
    case("ScatterND", {"x": rand(4, 3, 2)}, {}, {"i": i64([[0, 1], [3, -1]]), "u": rand(2, 2)}, opset=11),
    case("ScatterND", {"x": rand(5, 3)}, {}, {"i": i64([[4], [-5]]), "u": rand(2, 3)}, opset=13, tag="-rows"),
    *[
        case(
            "ScatterND",
            {"x": rand(4, 3, 2)},
            {"reduction": r},
            {"i": i64([[[0, 1], [3, 2]], [[0, 1], [1, 0]]]), "u": rand(2, 2, 2)},
            opset=16 if r in ("add", "mul") else 18,
            tag=f"-{r}",
        )
        for r in ("add", "mul", "max", "min")
    ],
    case("ScatterElements", {"x": rand(3, 4)}, {}, {"i": i64([[1, 0, 2, 0]]), "u": rand(1, 4)}, opset=11),
    case(
        "ScatterElements",
        {"x": rand(3, 5)},
        {"axis": -1},
        {"i": i64([[4, -1], [0, 2], [-5, 1]]), "u": rand(3, 2)},
        opset=13,
    ),
    *[
        case(
            "ScatterElements",
            {"x": rand(3, 4, 2)},
            {"axis": 1, "reduction": r},
            {"i": i64(RNG.integers(-4, 4, (3, 5, 2))), "u": rand(3, 5, 2)},
            opset=16 if r in ("add", "mul") else 18,
            tag=f"-{r}",
        )
        for r in ("add", "mul", "max", "min")
    ],
    case(
        "Scatter", {"x": rand(3, 4)}, {"axis": 1}, {"i": i64([[1, 3], [0, 2], [3, 0]]), "u": rand(3, 2)}, 10
    ),
    # normalization
    case(
        "GroupNormalization",
        {"x": rand(2, 6, 5)},
        {"num_groups": 2, "epsilon": 1e-2},
        {"s": rand(6), "b": rand(6)},
        opset=21,
        rank=3,
    ),
    case(
        "GroupNormalization",
        {"x": rand(2, 4, 3, 3)},
        {"num_groups": 4},
        {"s": rand(4), "b": rand(4)},
        opset=21,
        tag="-per-channel-groups",
        rank=4,
    ),
    case("RMSNormalization", {"x": rand(2, 3, 8)}, {}, {"s": rand(8)}, opset=23),
    case("RMSNormalization", {"x": rand(2, 3, 8)}, {"axis": 1, "epsilon": 1e-3}, {"s": rand(3, 8)}, 23),
    case("RMSNormalization", {"x": rand(2, 3, 4, 5)}, {"axis": -2}, {"s": rand(4, 5)}, 23),
    case("LRN", {"x": X4}, {"size": 3}, opset=7),
    case("LRN", {"x": X4}, {"size": 5, "alpha": 0.02, "beta": 0.5, "bias": 2.0}, opset=13),
    # onnxruntime takes odd sizes only; onnx.reference loops its channels over range(N): N = C
    case("LRN", {"x": rand(4, 4, 3, 3)}, {"size": 4, "alpha": 0.1}, opset=13, tag="-even", reference=True),
]


@pytest.mark.parametrize("op", ["ReduceL1", "ReduceSumSquare", "ReduceLogSumExp", "ReduceLogSum"])
def test_reduction_over_an_empty_set(op):
    """An empty axis reduces to the reduction's identity (0, or log 0 = -inf); the data is an initializer
    (a zero-size input reads as a symbolic dimension) and a run-time input is added."""
    z = rand(2, 1, 4)
    nodes = [helper.make_node(op, ["data", "axes"], ["r"]), helper.make_node("Add", ["r", "z"], ["y"])]
    init = {"data": np.zeros((2, 0, 4), np.float32), "axes": i64([1])}
    check(model_of(nodes, {"z": z}, init, opset=18), {"z": z})


@pytest.mark.parametrize("op,inputs,attrs,initializers,opset,options", CASES)
def test_op_matches_onnxruntime(op, inputs, attrs, initializers, opset, options):
    model = single(op, inputs, attrs, initializers, opset, rank=options["rank"])
    check(model, inputs, reference=options["reference"])


# ---------------------------------------------------------------------------------------------------------
# RNN, GRU, LSTM

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def recurrent(
    op,
    *,
    direction="forward",
    layout=0,
    bias=True,
    initial=False,
    lengths=None,
    lengths_input=False,
    peepholes=False,
    attrs=None,
    opset=14,
    seed=0,
):
    """A one-node RNN/GRU/LSTM model (4 steps, batch 3, 4 features, hidden 6) and its inputs; optional
    inputs are left out (empty names) or given. The values depend on `seed` only, not on `layout`: a
    batchwise model holds the sequence-first one's values transposed."""
    rng = np.random.default_rng(seed)
    seq, batch, size, hidden = 4, 3, 4, 6
    dirs = 2 if direction == "bidirectional" else 1
    gates = GATES[op]

    def values(*shape, batch_axis=None):
        v = rng.uniform(-1, 1, size=shape).astype(np.float32)
        return np.ascontiguousarray(v.swapaxes(0, 1)) if layout and batch_axis else v

    inputs = {"x": values(seq, batch, size, batch_axis=1)}
    init = {"w": values(dirs, gates * hidden, size), "r": values(dirs, gates * hidden, hidden)}
    names = ["x", "w", "r", "", "", ""] + (["", ""] if op == "LSTM" else [])
    if bias:
        init["b"] = values(dirs, 2 * gates * hidden)
        names[3] = "b"
    if lengths is not None:
        (inputs if lengths_input else init)["lens"] = np.array(lengths, np.int32)
        names[4] = "lens"
    if initial:
        inputs["h0"] = values(dirs, batch, hidden, batch_axis=1)
        names[5] = "h0"
        if op == "LSTM":
            init["c0"] = values(dirs, batch, hidden, batch_axis=1)
            names[6] = "c0"
    if peepholes:
        init["p"] = values(dirs, 3 * hidden)
        names[7] = "p"
    while not names[-1]:
        names.pop()
    outputs = ("y", "y_h", "y_c") if op == "LSTM" else ("y", "y_h")
    node_attrs = {"hidden_size": hidden, "direction": direction, **(attrs or {})}
    if opset >= 14:
        node_attrs["layout"] = layout
    node = helper.make_node(op, names, list(outputs), **node_attrs)
    return model_of([node], inputs, init, outputs, opset), inputs


RECURRENT = [
    ("defaults", {"bias": False, "opset": 7}),
    ("bias-initial", {"initial": True, "opset": 22}),
    ("reverse", {"direction": "reverse", "initial": True}),
    ("bidirectional", {"direction": "bidirectional", "initial": True}),
    ("lengths", {"direction": "bidirectional", "lengths": [4, 2, 0]}),
    ("lengths-input", {"direction": "reverse", "lengths": [3, 4, 1], "lengths_input": True}),
    ("clip", {"attrs": {"clip": 0.4}, "initial": True}),
]


@pytest.mark.parametrize("variant,options", RECURRENT, ids=[v for v, _ in RECURRENT])
@pytest.mark.parametrize("op", list(GATES))
def test_recurrent_matches_onnxruntime(op, variant, options):
    check(*recurrent(op, **options), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "op,options",
    [
        ("LSTM", {"peepholes": True, "initial": True, "direction": "bidirectional"}),
        ("LSTM", {"attrs": {"input_forget": 1}, "initial": True}),
        ("GRU", {"attrs": {"linear_before_reset": 1}, "direction": "bidirectional", "initial": True}),
        ("RNN", {"attrs": {"activations": ["Relu"]}}),
        ("RNN", {"attrs": {"activations": ["LeakyRelu", "Sigmoid"], "activation_alpha": [0.3]}, "direction": "bidirectional"}),
        ("GRU", {"attrs": {"activations": ["HardSigmoid", "Softsign"], "activation_alpha": [0.3], "activation_beta": [0.4]}}),
        ("GRU", {"attrs": {"activations": ["Sigmoid", "ScaledTanh"], "activation_alpha": [0.9], "activation_beta": [1.5]}}),
        ("LSTM", {"attrs": {"activations": ["HardSigmoid", "Elu", "Softplus"], "activation_alpha": [0.25, 0.8]}}),
        ("LSTM", {"attrs": {"activations": ["Sigmoid", "Tanh", "Relu", "Sigmoid", "Tanh", "Tanh"]}, "direction": "bidirectional"}),
    ],
    ids=["peepholes", "input-forget", "linear-before-reset", "relu", "leaky-sigmoid", "hardsigmoid-softsign", "scaledtanh", "elu-softplus", "per-direction"],
)  # fmt: skip
def test_recurrent_attributes_match_onnxruntime(op, options):
    check(*recurrent(op, **options), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", list(GATES))
def test_recurrent_batchwise_layout(op):
    """layout=1 ([batch, seq, …], which onnxruntime refuses) against onnxruntime's layout 0 on the same
    values: each output is the sequence-first one with its first two axes swapped."""
    options = {"direction": "bidirectional", "initial": True, "lengths": [1, 4, 3], "seed": 3}
    batchwise, inputs = recurrent(op, layout=1, **options)
    seqwise, seq_inputs = recurrent(op, layout=0, **options)
    expected = ort.InferenceSession(seqwise.SerializeToString()).run(None, seq_inputs)
    with torch.no_grad():
        got = from_model(batchwise, source="test").module()(*(torch.from_numpy(a) for a in inputs.values()))
    y, *states = expected
    np.testing.assert_allclose(got[0].numpy(), y.transpose(2, 0, 1, 3), rtol=1e-4, atol=1e-5)
    for g, e in zip(got[1:], states, strict=True):
        np.testing.assert_allclose(g.numpy(), e.swapaxes(0, 1), rtol=1e-4, atol=1e-5)


def test_recurrent_refuses_an_unknown_activation():
    model, _ = recurrent("RNN", attrs={"activations": ["Swoosh"]})
    with pytest.raises(UnsupportedOp, match=r"RNN: activation 'Swoosh'"):
        from_model(model, source="m.onnx")


# ---------------------------------------------------------------------------------------------------------
# If


def branch(name, nodes, output):
    return helper.make_graph(nodes, name, [], [onnx.ValueInfoProto(name=output)])


def if_node(cond, then_nodes, then_out, else_nodes, else_out, output="y", name="choose"):
    return helper.make_node(
        "If",
        [cond],
        [output],
        name=name,
        then_branch=branch("then", then_nodes, then_out),
        else_branch=branch("else", else_nodes, else_out),
    )


def two_ways(cond, output="y", name="choose"):
    """then: Relu(x)·2 and else: Mish(x)-1, both through a branch-local value named `t`."""
    return if_node(
        cond,
        [helper.make_node("Relu", ["x"], ["t"]), helper.make_node("Add", ["t", "t"], ["then_out"])],
        "then_out",
        [helper.make_node("Mish", ["x"], ["t"]), helper.make_node("Sub", ["t", "one"], ["else_out"])],
        "else_out",
        output,
        name,
    )


@pytest.mark.parametrize("taken", [True, False])
@pytest.mark.parametrize("source", ["initializer", "Constant", "folded"])
def test_if_with_a_known_condition_runs_the_taken_branch(source, taken):
    x = rand(3, 4, low=-3, high=3)
    init = {"one": np.array(1.0, np.float32)}
    nodes = []
    if source == "initializer":
        init["cond"] = np.array(taken)
    elif source == "Constant":
        nodes.append(
            helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(taken)))
        )
    else:  # from the input's shape, as function-expanded ops (AffineGrid) branch on the rank
        init["rank"] = i64(2 if taken else 3)
        nodes += [
            helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Size", ["shape"], ["n"]),
            helper.make_node("Equal", ["n", "rank"], ["cond"]),
        ]
    model = model_of([*nodes, two_ways("cond")], {"x": x}, init, opset=18)
    program = check(model, {"x": x})
    ops = {str(n.target) for n in program.exported.graph.nodes if n.op == "call_function"}
    assert any("relu" in t for t in ops) == taken and any("tanh" in t for t in ops) != taken


def test_if_branches_reuse_names_and_nest():
    """Two Ifs whose branches define the same names, the second holding an If that reads its branch's value;
    their outputs feed later nodes."""
    x = rand(2, 5, low=-2, high=2)
    inner = if_node(
        "no",
        [helper.make_node("Neg", ["t"], ["inner_then"])],
        "inner_then",
        [helper.make_node("Softsign", ["t"], ["inner_else"])],
        "inner_else",
        "u",
        "inner",
    )
    outer = if_node(
        "yes",
        [helper.make_node("Selu", ["a"], ["t"]), inner],
        "u",
        [helper.make_node("Identity", ["a"], ["t"])],
        "t",
        "b",
        "outer",
    )
    nodes = [two_ways("yes", "a", "first"), outer, helper.make_node("Mul", ["a", "b"], ["y"])]
    init = {"one": np.array(1.0, np.float32), "yes": np.array(True), "no": np.array(False)}
    check(model_of(nodes, {"x": x}, init, opset=18), {"x": x})


def test_if_on_a_runtime_value_is_refused_by_node_name():
    x = rand(3, 4)
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"]),
        two_ways("cond", name="sign_switch"),
    ]
    init = {"zero": np.array(0.0, np.float32), "one": np.array(1.0, np.float32)}
    with pytest.raises(UnsupportedOp) as info:
        from_model(model_of(nodes, {"x": x}, init, opset=18), source="m.onnx")
    text = str(info.value)
    assert text.startswith("m.onnx: If node 'sign_switch' branches on 'cond'") and "known at import" in text
    assert "\n" not in text and "Traceback" not in text


def test_ops_inside_branches_are_checked():
    x = rand(2, 3)
    node = if_node(
        "c",
        [helper.make_node("Hardmax", ["x"], ["h"])],
        "h",
        [helper.make_node("LpNormalization", ["x"], ["l"])],
        "l",
    )
    with pytest.raises(UnsupportedOp, match=r"Hardmax, LpNormalization"):
        from_model(model_of([node], {"x": x}, {"c": np.array(True)}, opset=18), source="m.onnx")


# ---------------------------------------------------------------------------------------------------------
# Refusals: one paragraph naming the op and what is missing


@pytest.mark.parametrize(
    "op,inputs,attrs,initializers,opset,message",
    [
        ("Upsample", {"x": rand(1, 1, 2, 2), "s": np.ones(4, np.float32)}, {}, {}, 9, "Upsample: scales is computed"),
        ("ReduceL1", {"x": rand(2, 3), "a": i64([1])}, {}, {}, 18, "ReduceL1: axes is computed"),
        ("ScatterND", {"x": rand(3)}, {"reduction": "xor"}, {"i": i64([[1]]), "u": rand(1)}, 18, "reduction 'xor'"),
        ("ScatterElements", {"x": rand(3)}, {"reduction": "or"}, {"i": i64([1]), "u": rand(1)}, 18, "reduction 'or'"),
        ("DepthToSpace", {"x": rand(1, 4, 2, 2)}, {"blocksize": 2, "mode": "RDC"}, {}, 13, "mode 'RDC'"),
        ("Upsample", {"x": rand(1, 1, 2, 2)}, {"mode": "cubic", "scales": [1.0, 1.0, 2.0, 2.0]}, {}, 7, "mode 'cubic'"),
    ],
)  # fmt: skip
def test_unsupported_modes_and_inputs_are_refused(op, inputs, attrs, initializers, opset, message):
    model = single(op, inputs, attrs, initializers, opset, rank=next(iter(inputs.values())).ndim)
    with pytest.raises(ModelLoadError, match=message) as info:
        from_model(model, source="m.onnx")
    assert str(info.value).startswith("m.onnx: ") and "Traceback" not in str(info.value)


# ---------------------------------------------------------------------------------------------------------
# End to end through TVM


def test_compiled_model_with_new_ops_matches_onnxruntime(tmp_path):
    """Conv → DepthToSpace (CRD) → GroupNormalization → Mish → LRN → ReduceSumSquare, compiled for x86 with
    cascc.compile: the artifact's self-test passes and its output matches onnxruntime's."""
    import cascc

    x = rand(1, 3, 6, 6)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("DepthToSpace", ["c"], ["d"], blocksize=2, mode="CRD"),
        helper.make_node("GroupNormalization", ["d", "s", "b"], ["g"], num_groups=2),
        helper.make_node("Mish", ["g"], ["m"]),
        helper.make_node("LRN", ["m"], ["n"], size=3),
        helper.make_node("ReduceSumSquare", ["n", "axes"], ["y"], keepdims=0),
    ]
    init = {"w": rand(16, 3, 3, 3), "s": rand(4), "b": rand(4), "axes": i64([1])}
    model = model_of(nodes, {"x": x}, init, opset=21, rank=3)
    # onnx infers no type for GroupNormalization-21's output: declared, as exporters write value_info
    model.graph.value_info.append(helper.make_tensor_value_info("g", TensorProto.FLOAT, [1, 4, 12, 12]))
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    out = tmp_path / "art"
    cascc.compile(path, target="x86", out=out)
    assert cascc.selftest(out).passed
    (got,) = cascc.run(out, [x])
    (expected,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
