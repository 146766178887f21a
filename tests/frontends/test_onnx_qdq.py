"""QDQ ONNX: models quantized by onnxruntime import with the file's int8 grids and compute what onnxruntime
computes; cascc's int8 Programs export as QDQ and import back unchanged; malformed Q/DQ is a clear error."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from cascc import passes
from cascc.frontends import load_model
from cascc.frontends.onnx import UnsupportedOp, from_model, load_onnx, sanitize
from cascc.onnx_export import export_onnx
from cascc.passes.batched import batched
from cascc.runtime.session import Session
from int8 import ort_quantize
from support import EXAMPLES, assert_clean_error, invoke

IMAGE = (1, 3, 8, 8)


def unoptimized(path_or_bytes) -> ort.InferenceSession:
    """onnxruntime computing the QDQ graph as written. Its fused integer kernels round differently, and on
    AVX2 without VNNI their u8×s8 pair sums saturate at int16 (9% off on one output of the NNCF test)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    model = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    return ort.InferenceSession(model, options)


def run_each(session: ort.InferenceSession, xs: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[None]})[0] for x in xs])


@pytest.fixture(scope="module")
def ort_quantized(tmp_path_factory):
    """A conv-conv-linear net exported by torch, quantized by onnxruntime as the int8 benchmark does (QDQ,
    per-channel int8 weights, uint8 activations calibrated on 16 random images). Returns (float path,
    QDQ path)."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 10),
    ).eval()
    folder = tmp_path_factory.mktemp("qdq")
    fp32, qdq = folder / "float.onnx", folder / "qdq.onnx"
    torch.onnx.export(net, (torch.randn(IMAGE),), fp32, dynamo=False, opset_version=17, input_names=["image"])
    rng = np.random.default_rng(0)
    images = [torch.from_numpy(rng.standard_normal(IMAGE, np.float32)) for _ in range(16)]
    ort_quantize(fp32, qdq, images)
    return fp32, qdq


def parameter(onnx_name: str) -> str:
    return sanitize(onnx_name, set())


def file_grids(path):
    """What the file says, read independently of the importer: {weight: its scales}, {weight: the grid
    (scale, zero point) of the value its layer reads} and {dequantized value: its grid}."""
    model = onnx.load(path)
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    weights, activations = {}, {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear":
            if node.input[0] in init and init[node.input[0]].ndim >= 2:
                weights[node.output[0]] = init[node.input[1]]
            elif node.input[0] not in init:
                activations[node.output[0]] = (float(init[node.input[1]]), int(init[node.input[2]]))
    readers = [n for n in model.graph.node if len(n.input) > 1 and n.input[1] in weights]
    inputs = {n.input[1]: activations[n.input[0]] for n in readers}
    named = {w.removesuffix("_DequantizeLinear_Output"): s for w, s in weights.items()}
    by_input = {w.removesuffix("_DequantizeLinear_Output"): g for w, g in inputs.items()}
    return named, by_input, activations


def test_an_onnxruntime_quantized_model_keeps_the_files_grids_and_computes_what_onnxruntime_does(
    ort_quantized,
):
    fp32, qdq = ort_quantized
    program = load_onnx(qdq)
    weights, layer_inputs, activations = file_grids(qdq)
    assert set(program.int8_layers) == {parameter(name) for name in weights}
    model = onnx.load(qdq)
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for name, scales in weights.items():
        spec = program.int8_layers[parameter(name)]
        np.testing.assert_array_equal(np.asarray(spec.weight_scales, np.float32), scales)
        assert (spec.input_scale, spec.input_zero) == layer_inputs[name]
        # the weights are the file's dequantized codes, exactly (Conv and Gemm(transB) store [out, in, …])
        codes = init[f"{name}_quantized"].astype(np.float32)
        along = scales.reshape(-1, *[1] * (codes.ndim - 1))
        np.testing.assert_array_equal(program.weights[parameter(name)].numpy(), codes * along)

    xs = np.random.default_rng(1).standard_normal((8, *IMAGE[1:]), np.float32)
    reference = run_each(unoptimized(qdq), xs)
    with torch.no_grad():
        simulated = batched(program)(torch.from_numpy(xs)).numpy()
    float_model = run_each(ort.InferenceSession(str(fp32)), xs)
    # cascc rounds each layer's input as the file does; the pair on the output it only saturates, so the two
    # differ by at most half of the output's step
    (output_step, _) = activations[model.graph.output[0].name]
    assert np.abs(simulated - reference).max() <= output_step / 2 + 1e-6
    assert np.abs(float_model - reference).max() > 4 * output_step  # the rounding is really there


@pytest.mark.slow
def test_an_onnxruntime_quantized_model_compiles_to_int8_kernels_and_self_tests(tmp_path, ort_quantized):
    _, qdq = ort_quantized
    out = tmp_path / "art"
    code, text = invoke("compile", qdq, "-o", out)
    assert code == 0, text
    rows = json.loads((out / "manifest.json").read_text())["layers"]
    assert rows and all(r["precision"] == "int8" and "int8" in r["kernel"] for r in rows), rows
    code, text = invoke("run", out, "--selftest")
    assert code == 0 and "passed" in text, text
    xs = np.random.default_rng(2).standard_normal((4, *IMAGE[1:]), np.float32)
    session = Session(out / "model.so")
    got = np.concatenate([session.run([x[None]])[0] for x in xs])
    with torch.no_grad():
        simulated = batched(load_onnx(qdq))(torch.from_numpy(xs)).numpy()
    np.testing.assert_allclose(got, simulated, rtol=1e-4, atol=1e-4 * np.abs(simulated).max())


@pytest.mark.parametrize("factory", ["mlp", "cnn"])
def test_an_int8_program_exports_as_qdq_that_onnxruntime_computes_and_imports_back(tmp_path, factory):
    program = load_model(f"{EXAMPLES / 'digits.py'}:{factory}")
    program = passes.run(
        program, [("prune.magnitude", {"sparsity": 0.9}), ("quantize.ptq", {"data": "digits"})]
    )
    path = export_onnx(program, tmp_path / "int8.onnx")
    model = onnx.load(path)
    kinds = [n.op_type for n in model.graph.node]
    assert kinds.count("DequantizeLinear") == 2 * len(program.int8_layers)
    codes = {t.name for t in model.graph.initializer if t.data_type == TensorProto.INT8 and len(t.dims) >= 2}
    assert codes == {f"{name}_quantized" for name in program.int8_layers}

    shape = tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)[1:]
    xs = np.random.default_rng(0).random((6, *shape), np.float32)
    with torch.no_grad():
        simulated = batched(program)(torch.from_numpy(xs)).numpy()
    got = run_each(unoptimized(path), xs)
    np.testing.assert_allclose(got, simulated, rtol=1e-5, atol=1e-5 * np.abs(simulated).max())

    back = load_onnx(path)
    assert len(back.int8_layers) == len(program.int8_layers)
    original = {parameter(name): spec for name, spec in program.int8_layers.items()}
    for name, spec in back.int8_layers.items():
        assert spec.to_json() == original[name].to_json()
    with torch.no_grad():
        again = batched(back)(torch.from_numpy(xs)).numpy()
    np.testing.assert_allclose(again, simulated, rtol=1e-5, atol=1e-5 * np.abs(simulated).max())


def qdq_graph(*, scale=0.1, zero=None, computed_scale=False, q_reader="DequantizeLinear", attrs=None):
    """x → Q → DQ → Relu, with one thing to break."""
    inits = [numpy_helper.from_array(np.asarray(scale, np.float32), "s")]
    inits.append(numpy_helper.from_array(np.asarray(3 if zero is None else zero), "z"))
    if zero is None:
        inits[-1] = numpy_helper.from_array(np.asarray(3, np.uint8), "z")
    nodes = []
    scale_name = "s"
    if computed_scale:
        nodes.append(helper.make_node("Identity", ["s"], ["s2"], name="id"))
        scale_name = "s2"
    nodes.append(helper.make_node("QuantizeLinear", ["x", scale_name, "z"], ["q"], name="q", **(attrs or {})))
    if q_reader == "DequantizeLinear":
        nodes.append(helper.make_node("DequantizeLinear", ["q", scale_name, "z"], ["d"], name="dq"))
        nodes.append(helper.make_node("Relu", ["d"], ["y"], name="relu"))
    else:
        nodes.append(helper.make_node("Relu", ["q"], ["y"], name="relu"))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def test_a_pair_on_a_value_is_its_saturation():
    model = qdq_graph(scale=0.5, zero=np.asarray(10, np.uint8))
    program = from_model(model, source="pair.onnx")
    x = torch.tensor([[-20.0, -1.0, 50.0, 200.0]])
    with torch.no_grad():
        got = program.module()(x)
    # the grid spans (0 - 10) × 0.5 … (255 - 10) × 0.5; the Relu follows
    np.testing.assert_allclose(got.numpy(), torch.relu(x.clamp(-5.0, 122.5)).numpy())


@pytest.mark.parametrize(
    "broken, fragment",
    [
        ({"scale": -0.5}, "positive finite"),
        ({"scale": np.float32("nan")}, "positive finite"),
        ({"computed_scale": True}, "computed"),
        ({"q_reader": "Relu"}, "other than DequantizeLinear"),
        ({"zero": np.asarray(3, np.int16)}, "int16 codes"),
        ({"scale": np.full(4, 0.1, np.float32), "zero": np.full(4, 3, np.uint8)}, "per-channel activation"),
        ({"attrs": {"block_size": 2}}, "block_size"),
    ],
)
def test_malformed_qdq_is_a_clear_error(broken, fragment):
    with pytest.raises(UnsupportedOp, match=fragment) as error:
        from_model(qdq_graph(**broken), source="broken.onnx")
    assert "broken.onnx" in str(error.value)
    assert any(f"node {name!r}" in str(error.value) for name in ("q", "dq")), error.value


def test_a_dequantize_of_a_graph_input_is_a_clear_cli_error(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["x", "s"], ["y"], name="dq")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.asarray(0.1, np.float32), "s")],
    )
    path = tmp_path / "codes_in.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    code, text = invoke("compile", path, "-o", tmp_path / "out")
    assert_clean_error(code, text, 2, "codes_in.onnx", "DequantizeLinear", "quantize it with")
    assert not (tmp_path / "out").exists()


def test_a_pair_without_zero_point_saturates_in_the_codes_output_dtype_names():
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s"], ["q"], name="q", output_dtype=TensorProto.INT8),
        helper.make_node("DequantizeLinear", ["q", "s"], ["y"], name="dq"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.asarray(0.5, np.float32), "s")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    x = np.asarray([[-100.0, -1.0, 50.0, 100.0]], np.float32)
    reference = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    with torch.no_grad():
        got = from_model(model, source="int8.onnx").module()(torch.from_numpy(x)).numpy()
    # both saturate to [-64, 63.5]; only onnxruntime rounds to the grid, and these values lie on it
    np.testing.assert_array_equal(got, reference)


def gemm_model(weight_nodes, inits, opset=17):
    """x → Q → DQ → Gemm(·, w, transB=1), the weight given by `weight_nodes` producing "wd"."""
    inits = [
        *inits,
        numpy_helper.from_array(np.asarray(0.02, np.float32), "x_scale"),
        numpy_helper.from_array(np.asarray(128, np.uint8), "x_zero"),
    ]
    nodes = [
        *weight_nodes,
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["xq"], name="xq"),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zero"], ["xd"], name="xd"),
        helper.make_node("Gemm", ["xd", "wd"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_a_fake_quantized_float_weight_is_computed_to_codes_as_nncf_writes_it():
    """NNCF keeps float weights behind a Q → DQ pair: the weight becomes its rounded grid values, the layer
    int8 with that grid, and the output is onnxruntime's."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((4, 6)).astype(np.float32)
    scales = (np.abs(weight).max(axis=1) / 127).astype(np.float32)
    model = gemm_model(
        [
            helper.make_node("QuantizeLinear", ["w", "w_scale", "w_zero"], ["wq"], name="wq", axis=0),
            helper.make_node("DequantizeLinear", ["wq", "w_scale", "w_zero"], ["wd"], name="wd", axis=0),
        ],
        [
            numpy_helper.from_array(weight, "w"),
            numpy_helper.from_array(scales, "w_scale"),
            numpy_helper.from_array(np.zeros(4, np.int8), "w_zero"),
        ],
    )
    reference_session = unoptimized(model.SerializeToString())
    program = from_model(model, source="nncf.onnx")
    (spec,) = program.int8_layers.values()
    np.testing.assert_array_equal(np.asarray(spec.weight_scales, np.float32), scales)
    assert (spec.input_scale, spec.input_zero) == (np.float32(0.02), 128)
    codes = np.clip(np.rint(weight / scales[:, None]), -128, 127)
    np.testing.assert_array_equal(program.weights["w"].numpy(), codes * scales[:, None])
    x = rng.standard_normal((1, 6)).astype(np.float32)
    reference = reference_session.run(None, {"x": x})[0]
    with torch.no_grad():
        simulated = batched(program)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(simulated, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("codes_name", ["w", "w_quantized"])
@pytest.mark.parametrize("scale_shape", [(4,), (1,), ()])
def test_weight_codes_of_any_name_and_scale_shape_import_as_onnxruntime_reads_them(codes_name, scale_shape):
    rng = np.random.default_rng(3)
    codes = rng.integers(-127, 128, (4, 6)).astype(np.int8)
    scales = np.full(scale_shape, 0.01, np.float32) if scale_shape != (4,) else rng.random(4, np.float32) / 50
    model = gemm_model(
        [helper.make_node("DequantizeLinear", [codes_name, "w_scale"], ["wd"], name="wd", axis=0)],
        [numpy_helper.from_array(codes, codes_name), numpy_helper.from_array(scales, "w_scale")],
    )
    reference_session = unoptimized(model.SerializeToString())
    program = from_model(model, source="codes.onnx")
    (spec,) = program.int8_layers.values()
    assert len(spec.weight_scales) == 4
    x = rng.standard_normal((1, 6)).astype(np.float32)
    with torch.no_grad():
        simulated = batched(program)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(simulated, reference_session.run(None, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_one_fake_quantized_weight_read_by_two_dequantizes_is_computed_once():
    weight = np.random.default_rng(4).standard_normal((4, 6)).astype(np.float32)
    model = gemm_model(
        [
            helper.make_node("QuantizeLinear", ["w", "w_scale"], ["wq"], name="wq"),
            helper.make_node("DequantizeLinear", ["wq", "w_scale"], ["wd0"], name="wd0"),
            helper.make_node("DequantizeLinear", ["wq", "w_scale"], ["wd1"], name="wd1"),
            helper.make_node("Add", ["wd0", "wd1"], ["wd"], name="twice"),
        ],
        [
            numpy_helper.from_array(weight, "w"),
            numpy_helper.from_array(np.asarray(0.02, np.float32), "w_scale"),
        ],
    )
    reference_session = unoptimized(model.SerializeToString())
    program = from_model(model, source="twice.onnx")
    # on the input's grid, where the float saturation of a pair that feeds no int8 layer is exact
    x = np.rint(np.random.default_rng(5).standard_normal((1, 6)) / 0.02).astype(np.float32) * 0.02
    with torch.no_grad():
        got = program.module()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, reference_session.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_a_sparse_int8_export_imports_back_with_its_masks(tmp_path):
    program = load_model(f"{EXAMPLES / 'digits.py'}:mlp")
    program = passes.run(
        program, [("prune.magnitude", {"sparsity": 0.9}), ("quantize.ptq", {"data": "digits"})]
    )
    path = export_onnx(program, tmp_path / "sparse.onnx", sparse_initializers=True)
    model = onnx.load(path)
    assert {t.values.name for t in model.graph.sparse_initializer} >= {
        f"{name}_quantized" for name in program.int8_layers
    }
    back = load_onnx(path)
    for name in program.masks:
        assert torch.equal(back.masks[parameter(name)], program.masks[name]), name
    assert {parameter(n): s.to_json() for n, s in program.int8_layers.items()} == {
        n: s.to_json() for n, s in back.int8_layers.items()
    }


def test_weight_scales_that_do_not_match_the_axis_are_a_clear_error():
    model = gemm_model(
        [helper.make_node("DequantizeLinear", ["w", "w_scale"], ["wd"], name="wd", axis=0)],
        [
            numpy_helper.from_array(np.ones((4, 6), np.int8), "w"),
            numpy_helper.from_array(np.full(3, 0.1, np.float32), "w_scale"),
        ],
    )
    with pytest.raises(UnsupportedOp, match="3 scales along axis 0 of a \\[4, 6\\] tensor"):
        from_model(model, source="axis.onnx")


def test_a_scale_given_by_a_value_float_constant_is_read():
    model = qdq_graph(scale=0.5, zero=np.asarray(10, np.uint8))
    model.graph.initializer.pop(0)  # the scale "s", now a Constant node
    model.graph.node.insert(0, helper.make_node("Constant", [], ["s"], name="scale", value_float=0.5))
    program = from_model(model, source="constant.onnx")
    x = torch.tensor([[-20.0, -1.0, 50.0, 200.0]])
    with torch.no_grad():
        np.testing.assert_allclose(program.module()(x).numpy(), torch.relu(x.clamp(-5.0, 122.5)).numpy())
