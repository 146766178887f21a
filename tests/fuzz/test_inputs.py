"""Fuzz: out-of-range and inapplicable options, budget files, data files, output paths and malformed ONNX
files. Every case exits 2 with one paragraph (naming the file where there is one), no traceback, no
output left behind, before the expensive work."""

import json

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import cascc
from support import assert_clean_error, invoke, model_ref

MLP = model_ref("mlp")


def no_error_traceback(code, text):
    assert code == 2, text
    assert "Traceback" not in text and "internal error" not in text, text


OPTIONS = {
    "seed 2**64": ["--seed", str(2**64)],
    "seed negative": ["--seed", "-1"],
    "huge block": ["--criterion", "block", "--block", "99999999999x1", "--sparsity", "0.5"],
    "superscript N:M": ["--criterion", "nm", "--nm", "²:⁴"],
    "N > M": ["--criterion", "nm", "--nm", "5:4"],
    "--nm without nm": ["--nm", "x", "--sparsity", "0.5"],
    "--block without block": ["--block", "garbage", "--sparsity", "0.5"],
    "--margin without cascade": ["--margin", "2", "--sparsity", "0.5"],
    "--margin nan": ["--allocator", "cascade", "--margin", "nan", "--sparsity", "0.5"],
    "--lr nan": ["--finetune", "--data", "digits", "--lr", "nan"],
    "--lr inf": ["--finetune", "--data", "digits", "--lr", "inf"],
    "--data garbage": ["--data", "garbage", "--criterion", "snip", "--sparsity", "0.5"],
    "--data unused": ["--data", "digits", "--sparsity", "0.5"],
    "--input-shape on a factory": ["--input-shape", "x=1x2"],
    "sparsity 1": ["--sparsity", "1"],
    "sparsity nan": ["--sparsity", "nan"],
}


@pytest.mark.parametrize("case", sorted(OPTIONS))
def test_bad_compile_option_is_refused_up_front(tmp_path, monkeypatch, case):
    import cascc.lower

    monkeypatch.setattr(cascc.lower, "lower", lambda *a, **k: pytest.fail("reached lowering"))
    code, text = invoke("compile", MLP, *OPTIONS[case], "-o", tmp_path / "out")
    no_error_traceback(code, text)
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())


def test_empty_csv_is_one_paragraph(artifact, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    code, text = invoke("check", artifact, "--min-accuracy", "0", "--data", f"csv:{path}")
    assert_clean_error(code, text, 2, "empty.csv")
    assert "Warning" not in text


def test_absurd_process_count_is_refused(tmp_path):
    code, text = invoke("train", "--model", MLP, "--nproc", str(2**70), "-o", tmp_path / "t.pt2")
    assert code == 2 and "Traceback" not in text, text


def test_bad_rendezvous_endpoint(tmp_path):
    code, text = invoke(
        "train", "--model", MLP, "--nnodes", "2", "--rdzv-endpoint", "garbage:::", "-o", tmp_path / "t.pt2"
    )
    assert_clean_error(code, text, 2, "--rdzv-endpoint", "HOST:PORT")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("inputs") / "mlp"
    cascc.compile(MLP, sparsity=0.5, out=out)
    return out


BUDGET_FILES = {
    "max_size inf": "max_size = inf",
    "max_size true": "max_size = true",
    "max_size 1.2.3MB": 'max_size = "1.2.3MB"',
    "latency ..ms": 'max_latency = "..ms"',
    "runs 0": "runs = 0\nmax_size = 1e9",
    "runs 1e9": "runs = 1000000000\nmax_latency = 1",
    "accuracy 2": 'min_accuracy = 2.0\ndata = "digits"',
    "baseline bogus": 'baseline = "bogus"\nmax_latency_ratio = 2',
    "unknown key": "max_sise = 1",
    "not toml": "[check\nmax_size = 1",
    "not utf-8": b"\xff\xfe[check]",
    "deep nesting": "[check]\nx = " + "[" * 5000,
}


@pytest.mark.parametrize("case", sorted(BUDGET_FILES))
def test_bad_budget_file(artifact, tmp_path, case):
    text = BUDGET_FILES[case]
    config = tmp_path / "cascc.toml"
    body = text if isinstance(text, bytes) else ("" if text.startswith("[check") else "[check]\n") + text
    config.write_bytes(body if isinstance(body, bytes) else body.encode())
    code, out = invoke("check", artifact, "--config", config)
    assert_clean_error(code, out, 2, "cascc.toml")


@pytest.mark.parametrize(
    "option, value",
    [
        ("--max-size", "1.2.3MB"),
        ("--max-size", "-5MB"),
        ("--max-latency", "..ms"),
        ("--max-latency", "5 parsecs"),
    ],
)
def test_bad_budget_option(artifact, option, value):
    code, text = invoke("check", artifact, option, value)
    no_error_traceback(code, text)


def data_file(tmp_path, case):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 20)).astype(np.float32), rng.integers(0, 3, 20)
    path = tmp_path / "data.npz"
    arrays = {"x_train": x, "y_train": y, "x_test": x, "y_test": y}
    if case == "labels out of range":
        arrays["y_train"] = y + 10**6
    elif case == "labels 2-D":
        arrays["y_train"] = np.stack([y, y], 1)
    elif case == "string features":
        arrays["x_train"] = np.array([["a"] * 20] * 20)
    elif case == "complex features":
        arrays["x_train"] = x + 1j
    elif case == "missing key":
        arrays.pop("y_test")
    elif case == "NaN features":
        arrays["x_train"] = np.full_like(x, np.nan)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "case",
    [
        "labels out of range",
        "labels 2-D",
        "string features",
        "complex features",
        "missing key",
        "NaN features",
    ],
)
def test_bad_data_file(artifact, tmp_path, case):
    path = data_file(tmp_path, case)
    code, text = invoke("check", artifact, "--min-accuracy", "0", "--data", f"npz:{path}")
    assert_clean_error(code, text, 2, "data.npz")


@pytest.mark.parametrize(
    "args, where",
    [
        (["run", "{art}", "-o", "{tmp}/missing/out.npy"], "missing"),
        (["run", "{art}", "-o", "{tmp}/out.txt"], "out.txt"),
        (["run", "{art}", "-o", "{tmp}/dir.npz"], "directory"),
        (["check", "{art}", "--max-size", "1GB", "--json", "{tmp}/missing/r.json"], "missing"),
        (["check", "{art}", "--max-size", "1GB", "--junit", "{tmp}/missing/r.xml"], "missing"),
    ],
)
def test_unwritable_outputs_are_refused_before_running(artifact, tmp_path, args, where):
    filled = [a.format(art=artifact, tmp=tmp_path) for a in args]
    if where == "directory":
        (tmp_path / "dir.npz").mkdir()
    code, text = invoke(*filled)
    no_error_traceback(code, text)
    assert where in text
    assert sorted(p.name for p in tmp_path.iterdir()) == (["dir.npz"] if where == "directory" else [])


def test_outputs_never_overwrite_an_input(artifact, tmp_path, monkeypatch):
    """`check --json` into the artifact (it replaced manifest.json) and `prune -o` onto its own model."""
    import hashlib
    import shutil

    copy = tmp_path / "art"
    shutil.copytree(artifact, copy)
    before = hashlib.sha256((copy / "manifest.json").read_bytes()).hexdigest()
    for args in (
        ["check", copy, "--max-size", "1GB", "--json", copy / "manifest.json"],
        ["run", copy, "-o", copy / "out.npz"],
    ):
        code, text = invoke(*args)
        assert code == 2 and "would overwrite the input" in text, text
    assert hashlib.sha256((copy / "manifest.json").read_bytes()).hexdigest() == before
    model = tmp_path / "m.pt2"
    code, text = invoke("prune", MLP, "-o", model)
    assert code == 0, text
    before = hashlib.sha256(model.read_bytes()).hexdigest()
    for command in ("prune", "train"):
        code, text = invoke(command, *(["--model"] if command == "train" else []), model, "-o", model)
        assert code == 2 and "would overwrite the input" in text, text
    assert hashlib.sha256(model.read_bytes()).hexdigest() == before


def test_run_output_is_written_where_asked(artifact, tmp_path):
    code, text = invoke("run", artifact, "-o", tmp_path / "y.npy")
    assert code == 0, text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.npy"]


def test_printing_factory_keeps_json_clean(tmp_path):
    model = tmp_path / "chatty.py"
    model.write_text(
        "import torch\nprint('hello from the model file')\n"
        "def f():\n    print('building')\n    return torch.nn.Linear(4, 2), (torch.randn(1, 4),)\n"
    )
    code, text = invoke("compile", f"{model}:f", "-o", tmp_path / "out", "--json")
    assert code == 0, text
    json.loads(text[text.index("{") :])  # stderr is mixed in by CliRunner; stdout holds only the JSON
    assert "hello from the model file" not in text[text.index("{") :]


def test_nan_weights_warn_and_strict_refuses(tmp_path):
    model = tmp_path / "nan.py"
    model.write_text(
        "import torch\ndef f():\n    m = torch.nn.Linear(4, 2)\n    with torch.no_grad():\n"
        "        m.weight[0, 0] = float('nan')\n    return m, (torch.randn(1, 4),)\n"
    )
    code, text = invoke("prune", f"{model}:f", "-o", tmp_path / "p.pt2")
    assert code == 0 and "warning:" in text and "weight" in text and "NaN" in text, text
    code, text = invoke("prune", f"{model}:f", "-o", tmp_path / "q.pt2", "--strict")
    assert_clean_error(code, text, 2, "nan.py", "NaN")
    assert not (tmp_path / "q.pt2").exists()


# --- ONNX files --------------------------------------------------------------------------------------------


def linear_onnx(weight: TensorProto, opset: int = 17) -> onnx.ModelProto:
    node = helper.make_node("MatMul", ["x", weight.name], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def good_weight():
    return helper.make_tensor("w", TensorProto.FLOAT, [4, 3], np.ones(12, np.float32).tobytes(), raw=True)


def onnx_case(case):
    if case == "opset 99":
        return linear_onnx(good_weight(), opset=99)
    weight = good_weight()
    if case == "raw data too short":
        weight.raw_data = weight.raw_data[:-4]
    elif case == "unknown data type":
        weight.data_type = 77
    elif case == "dims 2**62":
        del weight.dims[:]
        weight.dims.extend([2**62, 1])
    elif case == "complex":
        weight = helper.make_tensor(
            "w", TensorProto.COMPLEX64, [4, 3], np.ones(12, np.complex64).tobytes(), raw=True
        )
    model = linear_onnx(weight)
    if case.startswith("sparse"):
        del model.graph.initializer[:]
        values = helper.make_tensor("w", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
        index = {"sparse negative index": [0, -1, 2], "sparse index past the end": [0, 5, 99]}.get(case, [0])
        indices = helper.make_tensor("w_idx", TensorProto.INT64, [len(index)], index)
        model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4, 3]))
    return model


ONNX_CASES = [
    "opset 99",
    "raw data too short",
    "unknown data type",
    "dims 2**62",
    "complex",
    "sparse negative index",
    "sparse index past the end",
    "sparse one index for three values",
]


@pytest.mark.parametrize("case", ONNX_CASES)
def test_malformed_onnx_is_refused(tmp_path, case):
    path = tmp_path / "bad.onnx"
    path.write_bytes(onnx_case(case).SerializeToString())
    code, text = invoke("compile", path, "-o", tmp_path / "out")
    assert_clean_error(code, text, 2, "bad.onnx")
    assert not (tmp_path / "out").exists()


def test_well_formed_onnx_case_compiles(tmp_path):
    """The ONNX corpus is built from a model that does compile, so each refusal is the mutation's."""
    path = tmp_path / "good.onnx"
    path.write_bytes(linear_onnx(good_weight()).SerializeToString())
    code, text = invoke("compile", path, "-o", tmp_path / "out")
    assert code == 0, text


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=200))
def test_any_bytes_as_onnx(tmp_path_factory, blob):
    tmp_path = tmp_path_factory.mktemp("onnx")
    path = tmp_path / "blob.onnx"
    path.write_bytes(blob)
    code, text = invoke("analyze", path)
    assert code == 2 and "Traceback" not in text and "internal error" not in text, text
