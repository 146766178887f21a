"""ONNX ops whose torch form TVM 0.27 cannot import or schedule by itself, compiled through cascc against
onnxruntime: the reductions that become aten.amax/amin (converted by cascc/lower/importer.py), the scatters
that become TOPI's loop-written kernels (scheduled by cascc/lower/schedules/extern.py), and the shapes TVM's
scatter kernel would address wrong, refused in one paragraph."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from cascc import api
from cascc.errors import LoweringError
from cascc.runtime.session import Session

RNG = np.random.default_rng(23)


def rand(*shape):
    return RNG.uniform(-1.0, 1.0, size=shape).astype(np.float32)


def i64(values):
    return np.array(values, np.int64)


def single(op, x, attrs=None, initializers=(), opset=18):
    """A shape-inferred one-node model: run-time input `x`, then the initializers, in that order."""
    names = ["x", *dict(initializers)]
    graph = helper.make_graph(
        [helper.make_node(op, names, ["y"], **(attrs or {}))],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [onnx.ValueInfoProto(name="y")],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in dict(initializers).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    return onnx.shape_inference.infer_shapes(model)


def compiled(model, tmp_path, target="x86"):
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    return api.compile(path, target=target, out=tmp_path / "o")


def assert_matches_onnxruntime(model, x, tmp_path):
    result = compiled(model, tmp_path)
    assert api.selftest(result.path).passed
    (got,) = Session(result.path / "model.so").run([x])
    (expected,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


X = rand(2, 3, 4, 5)

# Scatter indices: repeated along the axis where a reduction folds them together (the accumulation order of
# the spec's loop), distinct where the spec leaves duplicates undefined (reduction none).
DUPLICATES = RNG.integers(-3, 3, size=(2, 5, 4, 5))  # negative indices count from the end
DISTINCT = np.argsort(RNG.random((2, 3, 4, 5)), axis=1)[:, :2]
ROWS = i64([[1, 0], [0, 2], [1, -1]])  # ScatterND: (row, column) tuples into the leading dims
ROWS_REPEATED = i64([[1, 0], [0, 2], [1, 0], [1, -3]])  # [1, 0] three times ([1, -3] is [1, 0])

CASES = [
    pytest.param("ReduceMax", {"keepdims": 1}, {"axes": i64([1, -1])}, 18, id="ReduceMax-axes-keepdims"),
    pytest.param("ReduceMax", {"keepdims": 1}, {}, 18, id="ReduceMax-all-axes"),
    pytest.param(
        "ReduceMax",
        {"keepdims": 0},
        {},
        18,
        id="ReduceMax-all-axes-scalar",  # a 0-d output: the self-test case keeps its shape
    ),
    pytest.param("ReduceMax", {"axes": [2], "keepdims": 0}, {}, 13, id="ReduceMax-13-attribute"),
    pytest.param("ReduceMin", {"keepdims": 0}, {"axes": i64([0, 2])}, 18, id="ReduceMin"),
    pytest.param("GlobalMaxPool", {}, {}, 18, id="GlobalMaxPool"),
    pytest.param("ReduceLogSumExp", {"keepdims": 1}, {"axes": i64([3])}, 18, id="ReduceLogSumExp"),
    pytest.param("ScatterND", {}, {"i": ROWS, "u": rand(3, 4, 5)}, 18, id="ScatterND"),
    pytest.param(
        "ScatterND", {"reduction": "add"}, {"i": ROWS_REPEATED, "u": rand(4, 4, 5)}, 18, id="ScatterND-add"
    ),
    pytest.param(
        "ScatterElements", {"axis": 1}, {"i": DISTINCT, "u": rand(2, 2, 4, 5)}, 18, id="ScatterElements"
    ),
    *(
        pytest.param(
            "ScatterElements",
            {"axis": 1, "reduction": reduction},
            {"i": DUPLICATES, "u": rand(2, 5, 4, 5)},
            18,
            id=f"ScatterElements-{reduction}",
        )
        for reduction in ("add", "mul", "max", "min")
    ),
]


@pytest.mark.parametrize("op, attrs, initializers, opset", CASES)
def test_compiled_op_matches_onnxruntime(op, attrs, initializers, opset, tmp_path):
    """Compiled for x86 with cascc.compile, the artifact passes its self-test and its output matches
    onnxruntime's (scatter reductions with repeated and negative indices)."""
    assert_matches_onnxruntime(single(op, X, attrs, initializers, opset), X, tmp_path)


def test_scatter_accumulation_runs_serially_and_its_copy_in_parallel():
    """TOPI's index_put adds each update from a parallel loop; repeated index tuples would race there, so
    that loop runs serially while the copy of the data (stores at loop indices only) stays parallel."""
    import tvm
    import tvm_ffi
    from tvm import tirx

    from cascc.frontends.onnx import from_model
    from cascc.lower.pipeline import schedule, to_relax
    from cascc.lower.target import target_dict
    from cascc.targets import TARGETS

    x = rand(64, 1024)  # the copy's 65,536 elements: TOPI parallelizes it whatever its size
    model = single("ScatterND", x, {"reduction": "add"}, {"i": i64([[3], [3]]), "u": rand(2, 1024)})
    target = TARGETS["x86"]
    mod = schedule(
        to_relax(from_model(model, source="m.onnx").exported), tvm.target.Target(target_dict(target)), target
    )
    (func,) = [f for gv, f in mod.functions_items() if gv.name_hint.startswith("index_put")]
    loops: list = []
    tvm_ffi.structural_walk(func.body, (tirx.For, loops.append))
    assert [loop.kind for loop in loops] == [tirx.ForKind.PARALLEL, tirx.ForKind.SERIAL]


def test_extern_rule_leaves_other_kernels_to_the_other_rules():
    """The rule takes only a te.extern's loop-written body; a compute kernel (GenericCPU's) is declined."""
    import tvm
    from tvm import te

    from cascc.lower.schedules.extern import ExternCPU, is_extern
    from cascc.lower.target import target_dict
    from cascc.targets import TARGETS

    a = te.placeholder((16,), name="a")
    func = te.create_prim_func([a, te.compute((16,), lambda i: a[i] + 1.0, name="b")])
    assert not is_extern(func)
    assert ExternCPU().apply(func, tvm.target.Target(target_dict(TARGETS["x86"])), False) is None


@pytest.mark.parametrize(
    "indices, axis",
    [
        pytest.param(RNG.integers(0, 2, size=(2, 2, 2, 2)), 0, id="trailing-dims-smaller"),
        pytest.param(RNG.integers(0, 4, size=(2, 2, 4, 5)), 2, id="inner-leading-dim-smaller"),
    ],
)
def test_scatter_shapes_tvm_addresses_wrong_are_refused(indices, axis, tmp_path):
    """Indices smaller than the data in a dim TVM's scatter_elements kernel flattens with the data's
    extent would compile and give wrong numbers: refused in one paragraph naming the op and the shapes."""
    model = single("ScatterElements", X, {"axis": axis}, {"i": indices, "u": rand(*indices.shape)})
    with pytest.raises(LoweringError, match="scatter_elements") as info:
        compiled(model, tmp_path)
    message = str(info.value)
    assert str(tuple(indices.shape)) in message and "\n" not in message and "Traceback" not in message


class ScatterMean(torch.nn.Module):
    def forward(self, x):
        return x.scatter_reduce(0, torch.tensor([[0, 1, 0]]), x[:1], "mean")


def test_scatter_reduce_without_a_relax_equivalent_is_refused_by_name(tmp_path):
    """torch's scatter_reduce "mean" averages all updates at once (relax's pairwise): refused, naming it."""
    from cascc.frontends.torch import from_module

    program = from_module(ScatterMean().eval(), (torch.randn(2, 3),), source="m.py")
    with pytest.raises(LoweringError, match=r"m\.py: .*scatter_reduce.*'mean'"):
        api.compile(program, target="x86", out=tmp_path / "o")


@pytest.mark.parametrize("target", ["arm64", "cuda"])
def test_builds_for_the_other_targets(target, tmp_path):
    """The same ops build for arm64 (cross-linked) and cuda (CUDA source, no GPU here): a shared object of
    the target's architecture, with its device code for cuda."""
    import shutil

    from cascc.targets import TARGETS

    tgt = TARGETS[target]
    if tgt.cross_compiler and shutil.which(tgt.cross_compiler) is None:
        pytest.skip(f"{target} builds link with {tgt.cross_compiler}: {tgt.notes.get('install')}")
    nodes = [
        helper.make_node("ReduceMax", ["x", "axes"], ["m"], keepdims=1),
        helper.make_node("ScatterND", ["x", "rows", "u"], ["s"], reduction="add"),
        helper.make_node("ScatterElements", ["s", "i", "v"], ["e"], axis=1, reduction="mul"),
        helper.make_node("Add", ["e", "m"], ["y"]),
    ]
    init = {
        "axes": i64([1]),
        "rows": ROWS_REPEATED,
        "u": rand(4, 4, 5),
        "i": DUPLICATES,
        "v": rand(2, 5, 4, 5),
    }
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, X.shape)],
        [onnx.ValueInfoProto(name="y")],
        [numpy_helper.from_array(a, n) for n, a in init.items()],
    )
    model = onnx.shape_inference.infer_shapes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    )
    result = compiled(model, tmp_path, target)
    header = (result.path / "model.so").read_bytes()[:20]
    machine = {"aarch64": 183, "x86_64": 62}[
        tgt.tvm_target.get("host", tgt.tvm_target)["mtriple"].split("-")[0]
    ]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == machine
    kinds = [m["kind"] for m in result.manifest["target"].get("device_code", [])]
    assert kinds == ([] if tgt.device == "cpu" else [tgt.device])
