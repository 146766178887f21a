"""The reduced zoo: every architecture of benchmarks/zoo.py at small width and resolution compiles for x86
dense and at 90%, self-tests against torch eager, and runs each claimed layer kind on cascc's kernels; the
ONNX export (TorchScript exporter, opset 17) of one architecture per family imports, matches onnxruntime
and self-tests too.

Needs the `zoo` extra (transformers); the full-size zoo runs in `python benchmarks/zoo.py`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import zoo
from cascc import api
from cascc.frontends.torch import from_module

pytest.importorskip("transformers")


def check_build(result) -> None:
    """Self-test passes; no claimed layer kind on TVM's generic lowering; code and constants reported."""
    outcome = api.selftest(result.path)
    assert outcome.passed, outcome
    generic = [
        (row["name"], row["kind"], row["reason"])
        for row in result.manifest["layers"]
        if row["kernel_kind"] == "generic" and row["kind"] in zoo.CLAIMED
    ]
    assert not generic, generic
    size = result.manifest["size"]
    assert 0 < size["code"] < size["library"] and 0 < size["weights"] < size["library"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_zoo_model_compiles_and_self_tests(tmp_path, name):
    module, example = zoo.ZOO[name][0](small=True)
    program = from_module(module, example, source=f"zoo:{name}")
    for sparsity in (0.0, 0.9):
        result = api.compile(program, target="x86", sparsity=sparsity, out=tmp_path / f"s{sparsity}")
        check_build(result)
        rows = [r for r in result.manifest["layers"] if r["kind"] in zoo.CLAIMED]
        kept = sum(r["nonzero"] for r in rows) / sum(r["weights"] for r in rows)
        assert kept == pytest.approx(1.0 - sparsity, abs=0.02)
        if sparsity:
            assert any(r["kernel_kind"] == "sparse" for r in rows)


# One architecture per family through ONNX here (the suite's time budget); `python benchmarks/zoo.py`
# imports and self-tests every zoo model's export.
ONNX_FAMILIES = ["resnet18", "efficientnet-b0", "vit-tiny", "bert-tiny", "gpt2", "whisper-tiny-encoder"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ONNX_FAMILIES)
def test_zoo_model_onnx_export_imports_and_self_tests(tmp_path, name):
    import onnxruntime as ort

    module, example = zoo.ZOO[name][0](small=True)
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, path, dynamo=False, opset_version=17)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: x.numpy() for i, x in zip(session.get_inputs(), example, strict=True)}
    expected = session.run(None, feeds)[0]
    result = api.compile(path, target="x86", out=tmp_path / "out")
    with torch.no_grad():
        imported = result.program.module()(*example)
    imported = imported[0] if isinstance(imported, tuple | list) else imported
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(imported.numpy(), expected, rtol=1e-4, atol=1e-4 * scale)
    check_build(result)
