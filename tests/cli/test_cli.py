"""The CLI: every bad input gets one paragraph naming the file and the fix, the right exit code, no traceback."""

import json

import pytest
from click.testing import CliRunner

from cascc.cli.main import main
from support import EXAMPLES, assert_clean_error, invoke, model_ref


@pytest.mark.parametrize(
    "ref, fragments",
    [
        ("missing.py:mlp", ["missing.py", "no such file", "check the path"]),
        (model_ref("nope"), ["no factory function 'nope'", "available:", "mlp"]),
        (model_ref("only_module"), ["returned a Linear", "expected (module, example_inputs)"]),
        (model_ref("wrong_inputs"), ["example_inputs must be a tuple of tensors"]),
        (model_ref("raises"), ["factory raised RuntimeError", "dataset not found"]),
        (model_ref("untraceable"), ["torch.export rejected the model", "traceable"]),
        ("model.bin", ["unrecognized model reference", ".pt2"]),
        (str(EXAMPLES / "digits.py"), ["needs a factory name", ":FACTORY"]),
    ],
)
def test_compile_bad_model(tmp_path, ref, fragments):
    out = tmp_path / "out"
    code, text = invoke("compile", ref, "-o", out)
    assert_clean_error(code, text, 2, *fragments)
    assert not out.exists()


def test_corrupt_pt2(tmp_path):
    bad = tmp_path / "model.pt2"
    bad.write_bytes(b"not a zip archive")
    code, text = invoke("compile", bad, "-o", tmp_path / "out")
    assert_clean_error(code, text, 2, "model.pt2", "not a readable torch.export archive")


@pytest.mark.parametrize("sparsity", ["1.0", "-0.1", "abc"])
def test_sparsity_out_of_range(tmp_path, sparsity):
    code, text = invoke("compile", model_ref("mlp"), "--sparsity", sparsity, "-o", tmp_path / "o")
    assert code == 2 and "Traceback" not in text and "--sparsity" in text


def test_unknown_target(tmp_path):
    code, text = invoke("compile", model_ref("mlp"), "--target", "riscv", "-o", tmp_path / "o")
    assert code == 2 and "x86" in text


def test_compile_pt2_and_run_cli(tmp_path):
    import torch

    import models

    module, args = models.mlp()
    path = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(module, args), path)
    out = tmp_path / "art"
    code, text = invoke("compile", path, "--sparsity", "0.5", "-o", out)
    assert code == 0, text
    assert "kept (density 0.50" in text
    code, text = invoke("run", out, "--selftest", "--json")
    assert code == 0, text
    assert json.loads(text)["selftest"] == "pass"

    code, text = invoke("compile", path, "-o", out)
    assert_clean_error(code, text, 2, "already exists", "--force")
    code, text = invoke("compile", path, "-o", out, "--force")
    assert code == 0, text

    import numpy as np

    x = tmp_path / "x.npy"
    np.save(x, np.ones((3, 20), np.float32))
    y = tmp_path / "y.npy"
    code, text = invoke("run", out, "--input", x, "--output", y)
    assert code == 0, text
    expected = module(torch.ones(3, 20)).detach().numpy()
    np.testing.assert_allclose(np.load(y), expected, atol=1e-5)

    np.save(x, np.ones((4, 20), np.float32))
    code, text = invoke("run", out, "--input", x)
    assert_clean_error(code, text, 2, "must be float32[3, 20]")


def test_run_on_a_non_artifact(tmp_path):
    code, text = invoke("run", tmp_path)
    assert_clean_error(code, text, 2, "no manifest.json", "cascc compile")
    code, text = invoke("run", tmp_path / "nowhere", "--selftest")
    assert_clean_error(code, text, 2, "no such artifact directory")


def test_internal_error_exit_101_and_debug(monkeypatch, tmp_path):
    from cascc import api as pipeline

    def boom(*_a, **_k):
        raise KeyError("unexpected")

    monkeypatch.setattr(pipeline, "compile", boom)
    code, text = invoke("compile", model_ref("mlp"), "-o", tmp_path / "o")
    assert code == 101 and "internal error" in text and "--debug" in text and "Traceback" not in text
    result = CliRunner().invoke(main, ["--debug", "compile", model_ref("mlp"), "-o", str(tmp_path / "o")])
    assert isinstance(result.exception, KeyError)


def test_version_and_targets():
    code, text = invoke("--version")
    assert code == 0 and "cascc" in text
    code, text = invoke("targets", "--json")
    assert code == 0 and json.loads(text)["x86"]["tvm"]["mtriple"] == "x86_64-linux-gnu"
    code, text = invoke("--help")
    assert "101" in text and "Exit codes" in text


def test_unknown_cpu_is_refused(tmp_path):
    code, text = invoke(
        "compile", model_ref("mlp"), "--target", "arm64", "--cpu", "cortex-a27", "-o", tmp_path / "o"
    )
    assert_clean_error(code, text, 2, "cortex-a27", "not a CPU LLVM knows", "cortex-a72")  # close matches
    assert not (tmp_path / "o").exists()
    code, text = invoke("compile", model_ref("mlp"), "--cpu", "notacpu", "-o", tmp_path / "o")
    assert_clean_error(code, text, 2, "notacpu", "x86_64-linux-gnu", "it knows, e.g.")
    assert not (tmp_path / "o").exists()


def test_the_command_tree_loads_without_torch_or_tvm():
    """`cascc --help` stays fast because building the commands imports neither torch nor TVM (each takes
    seconds): option choices are read from the registries only when an option is parsed or shown."""
    import subprocess
    import sys

    probe = (
        "import sys, cascc, cascc.cli\n"
        "from click.testing import CliRunner\n"
        "result = CliRunner().invoke(cascc.cli.main, ['--help'])\n"
        "assert result.exit_code == 0 and 'compile' in result.output, result.output\n"
        "heavy = sorted(m for m in ('torch', 'tvm', 'onnx', 'numpy') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"cascc --help imported {done.stdout.strip()}"
