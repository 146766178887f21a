"""ONNX through the CLI: compile an exported torch CNN and self-test it, export back, bad shapes."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from support import assert_clean_error, invoke


@pytest.fixture(scope="module")
def cnn_onnx(tmp_path_factory):
    import models

    module, (x,) = models.cnn()
    path = tmp_path_factory.mktemp("onnx") / "cnn.onnx"
    torch.onnx.export(
        module.eval(),
        (x,),
        path,
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        dynamic_axes={"image": {0: "batch"}},
    )
    return path


def test_compile_onnx_and_selftest_then_export_back(tmp_path, cnn_onnx):
    out = tmp_path / "art"
    code, text = invoke("compile", cnn_onnx, "--sparsity", "0.8", "--input-shape", "image=2x3x8x8", "-o", out)
    assert code == 0, text
    assert "0.200" in text  # the imported conv/linear weights were pruned
    code, text = invoke("run", out, "--selftest")
    assert code == 0 and "passed" in text
    back = tmp_path / "back.onnx"
    code, text = invoke("export-onnx", out, "-o", back, "--sparse-initializers")
    assert_clean_error(code, text, 2, "--model")  # the manifest's source is never loaded on its own
    code, text = invoke("export-onnx", out, "-o", back, "--sparse-initializers", "--model", cnn_onnx)
    assert code == 0, text
    model = onnx.load(back)
    assert len(model.graph.sparse_initializer) == 5
    data = np.load(out / "selftest.npz")
    session = ort.InferenceSession(str(back))
    got = session.run(None, {session.get_inputs()[0].name: data["input_0"]})[0]
    np.testing.assert_allclose(got, data["output_0"], rtol=1e-5, atol=1e-6)


def test_symbolic_dimension_without_input_shape(tmp_path, cnn_onnx):
    code, text = invoke("compile", cnn_onnx, "-o", tmp_path / "o")
    assert_clean_error(code, text, 2, "cnn.onnx", "symbolic", "--input-shape image=1x3x8x8")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("shape", ["image", "image=2xAx8", "=2x3"])
def test_malformed_input_shape(tmp_path, cnn_onnx, shape):
    code, text = invoke("compile", cnn_onnx, "--input-shape", shape, "-o", tmp_path / "o")
    assert code == 2 and "NAME=DxDx" in text and "Traceback" not in text


def test_unsupported_op_is_one_paragraph(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Hardmax", ["x"], ["a"]), helper.make_node("LpNormalization", ["a"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    path = tmp_path / "odd.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    code, text = invoke("compile", path, "-o", tmp_path / "o")
    assert_clean_error(code, text, 2, "odd.onnx", "Hardmax", "LpNormalization")
