"""`cascc bench`: interleaved timings of the artifact and its peers on the same masked model."""

import json

import pytest
import torch
from click.testing import CliRunner

import cascc
from cascc.cli.main import main
from cascc.errors import OptionError
from cascc.runtime.bench import measure
from support import model_ref


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "mlp"
    cascc.compile(model_ref("mlp"), sparsity=0.9, out=out)
    return out


def test_measure_orders_runners_by_their_real_cost():
    import time

    timings = measure({"fast": lambda: None, "slow": lambda: time.sleep(0.002)}, rounds=3, target_s=0.005)
    assert timings["slow"].median_us > 1500 > timings["fast"].median_us
    assert timings["slow"].p90_us >= timings["slow"].median_us


def test_bench_with_baselines(artifact):
    result = cascc.api.bench(
        artifact, rounds=3, threads=1, baselines=("onnxruntime", "torch"), model=model_ref("mlp")
    )
    runners = result["runners"]
    assert set(runners) == {"cascc", "onnxruntime", "torch"}
    assert runners["cascc"]["ratio_to_cascc"] == 1.0
    assert all(r["median_us"] > 0 for r in runners.values())


def test_baseline_is_the_same_masked_model(artifact):
    from cascc.runtime.artifact import open_artifact
    from cascc.runtime.replay import baseline_module

    art = open_artifact(artifact)
    inputs, expected = art.selftest_data()
    with torch.no_grad():
        got = baseline_module(art, model_ref("mlp"))(torch.from_numpy(inputs[0])).numpy()
    assert abs(got - expected[0]).max() < 1e-5


def test_bench_cli_json(artifact):
    result = CliRunner().invoke(main, ["bench", str(artifact), "--rounds", "3", "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["runners"]["cascc"]["median_us"] > 0


def test_baseline_needs_a_factory(tmp_path):
    import models

    module, args = models.mlp()
    path = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(module, args), path)
    cascc.compile(str(path), out=tmp_path / "art")
    with pytest.raises(OptionError, match="needs the model's Python factory"):
        cascc.api.bench(tmp_path / "art", rounds=3, baselines=("onnxruntime",), model=str(path))


def test_baseline_never_imports_the_manifests_model(artifact, tmp_path):
    """The manifest's source.model is data anyone editing the artifact controls: a baseline without an
    explicit --model is refused, and the file the manifest names is never executed."""
    import shutil

    from support import assert_clean_error, invoke

    marker = tmp_path / "ran"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w')\ndef mlp():\n    raise SystemExit(0)\n")
    copy = tmp_path / "copy"
    shutil.copytree(artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["source"]["model"] = f"{evil}:mlp"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    code, text = invoke("bench", copy, "--rounds", "3", "--baseline", "torch")
    assert_clean_error(code, text, 2, "--model")
    assert not marker.exists()


def test_missing_cross_compiler_is_a_clear_error(tmp_path, monkeypatch):
    from cascc.lower import export as runtime

    monkeypatch.setattr(runtime.shutil, "which", lambda _name: None)
    result = CliRunner().invoke(
        main, ["compile", model_ref("mlp"), "--target", "arm64", "-o", str(tmp_path / "a")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "aarch64-linux-gnu-gcc" in result.output and "apt-get install" in result.output
    assert not (tmp_path / "a").exists()
