"""cascc check: every gate passes and fails on purpose, JSON/JUnit outputs, budget files, tampering."""

import json
from xml.etree import ElementTree

import pytest

from support import EXAMPLES, assert_clean_error, invoke


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("check") / "digits"
    code, text = invoke("compile", f"{EXAMPLES / 'digits.py'}:mlp", "--sparsity", "0.5", "-o", out)
    assert code == 0, text
    return out


@pytest.mark.parametrize(
    "passing, failing",
    [
        (["--max-size", "5MB"], ["--max-size", "10KB"]),
        (["--max-latency", "1s"], ["--max-latency", "0.001us"]),
        (
            ["--max-latency-ratio", "1000", "--model", f"{EXAMPLES / 'digits.py'}:mlp"],
            ["--max-latency-ratio", "0.0001", "--model", f"{EXAMPLES / 'digits.py'}:mlp"],
        ),
        (["--min-accuracy", "0.9", "--data", "digits"], ["--min-accuracy", "1.0", "--data", "digits"]),
        (
            ["--max-class-drop", "0.5", "--data", "digits", "--model", f"{EXAMPLES / 'digits.py'}:mlp"],
            ["--max-class-drop", "0", "--data", "digits", "--model", f"{EXAMPLES / 'digits.py'}:mlp"],
        ),
    ],
    ids=["size", "latency", "latency-ratio", "accuracy", "class-drop"],
)
def test_each_gate_passes_and_fails(artifact, passing, failing):
    code, text = invoke("check", artifact, *passing, "--runs", "3")
    assert code == 0, text
    code, text = invoke("check", artifact, *failing, "--runs", "3")
    budget = failing[0].removeprefix("--").replace("-", "_")
    assert code == 1, text
    assert f"FAIL {budget}" in text and "Traceback" not in text


def test_accuracy_gate_matches_torch_eager(artifact, tmp_path):
    """The measured accuracy is the masked model's, computed independently in torch eager."""
    import torch

    from cascc import frontends, passes
    from cascc.data import load

    data = load("digits")
    program = passes.run(
        frontends.load(f"{EXAMPLES / 'digits.py'}:mlp"), [("prune.magnitude", {"sparsity": 0.5})]
    )
    module = program.module()
    with torch.no_grad():
        predicted = torch.cat([module(x[None]) for x in data.x_test]).argmax(1)  # compiled at batch 1
    expected = float((predicted == data.y_test).float().mean())
    out = tmp_path / "r.json"
    invoke("check", artifact, "--min-accuracy", "0", "--data", "digits", "--json", out)
    measured = json.loads(out.read_text())["checks"][0]["measured"]
    assert measured == pytest.approx(expected, abs=1e-6)  # same predictions; float32 mean vs float64


def test_json_and_junit_reports(artifact, tmp_path):
    code, _ = invoke(
        "check",
        artifact,
        "--max-size",
        "10KB",
        "--max-latency",
        "1s",
        "--runs",
        "3",
        "--json",
        tmp_path / "r.json",
        "--junit",
        tmp_path / "r.xml",
    )
    assert code == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["passed"] is False
    assert [(c["name"], c["passed"]) for c in report["checks"]] == [
        ("max_size", False),
        ("max_latency", True),
    ]
    suite = ElementTree.parse(tmp_path / "r.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failed = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failed == ["max_size"]


def test_budget_file_and_override(artifact, tmp_path):
    config = tmp_path / "cascc.toml"
    config.write_text('[check]\nmax_size = "10KB"\nmax_latency = "1s"\nruns = 3\n')
    code, text = invoke("check", artifact, "--config", config)
    assert code == 1 and "FAIL max_size" in text
    code, text = invoke("check", artifact, "--config", config, "--max-size", "5MB")
    assert code == 0, text


@pytest.mark.parametrize(
    "args, fragments",
    [
        ([], ["no budget to check"]),
        (["--max-size", "lots"], ["'lots'", "2MB"]),
        (["--max-latency", "fast"], ["'fast'", "5ms"]),
        (["--min-accuracy", "0.9"], ["accuracy budgets need data", "--data digits"]),
    ],
)
def test_bad_usage_exits_2(artifact, args, fragments):
    code, text = invoke("check", artifact, *args)
    assert_clean_error(code, text, 2, *fragments)


def test_bad_budget_file(artifact, tmp_path):
    config = tmp_path / "cascc.toml"
    config.write_text("[check]\nmax_sise = 1\n")
    code, text = invoke("check", artifact, "--config", config)
    assert_clean_error(code, text, 2, "cascc.toml", "max_sise")


def test_tampered_library_is_detected_before_loading(artifact, tmp_path):
    import shutil

    copy = tmp_path / "tampered"
    shutil.copytree(artifact, copy)
    library = copy / "model.so"
    data = bytearray(library.read_bytes())
    data[len(data) // 2] ^= 0xFF
    library.write_bytes(bytes(data))
    code, text = invoke("check", copy, "--max-size", "5MB")
    assert_clean_error(code, text, 2, "model.so", "sha256")


def test_example_budget_file_is_valid():
    from cascc.runtime.check import load_budgets

    budgets = load_budgets(EXAMPLES / "ci" / "cascc.toml")
    assert {"max_size", "min_accuracy", "data"} <= set(budgets)


def test_class_drop_on_an_onnx_model_compiled_with_input_shape(tmp_path):
    """The dense reference is the ONNX source with the compiled signature's shapes, as --input-shape fixed
    them at compile time (imported without them, the symbolic batch failed): check's per-class drop equals
    one computed here with onnxruntime as the dense model, and `replay` agrees with onnxruntime."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from cascc.data import load
    from cascc.frontends.torch import call_factory
    from cascc.runtime.artifact import open_artifact
    from cascc.runtime.replay import replay
    from cascc.runtime.running import run

    module, _ = call_factory(EXAMPLES / "digits.py", "mlp")
    path = tmp_path / "mlp.onnx"
    torch.onnx.export(
        module,
        (torch.randn(1, 64),),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["x"],
        dynamic_axes={"x": {0: "batch"}},
    )
    out = tmp_path / "art"
    code, text = invoke("compile", path, "--input-shape", "x=1x64", "--sparsity", "0.5", "-o", out)
    assert code == 0, text
    report = tmp_path / "check.json"
    code, text = invoke(
        "check", out, "--max-class-drop", "1", "--data", "digits", "--model", path, "--json", report
    )
    assert code == 0 and "max_class_drop" in text, text
    (gate,) = json.loads(report.read_text())["checks"]

    data = load("digits")
    x, labels = data.x_test.numpy().astype(np.float32), data.y_test.numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dense = session.run(None, {"x": x})[0].argmax(1)
    sparse = np.array([run(out, [row[None]])[0].argmax() for row in x])
    drops = [(dense[labels == c] == c).mean() - (sparse[labels == c] == c).mean() for c in np.unique(labels)]
    assert gate["measured"] == pytest.approx(max(drops))

    rebuilt = replay(open_artifact(out), str(path), purpose="the test", passes=False)
    assert [spec.shape for spec in rebuilt.inputs] == [(1, 64)]
    with torch.no_grad():
        got = rebuilt.module()(torch.from_numpy(x[:1])).numpy()
    np.testing.assert_allclose(got, session.run(None, {"x": x[:1]})[0], rtol=1e-5, atol=1e-5)
