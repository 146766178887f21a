"""benchmarks/peers.py: the peer protocol end to end with onnxruntime and cascc workers on a tiny model."""

import json
import sys
import types

import onnx
import peers
import pytest
from onnx import numpy_helper

import zoo


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny MLP pruned to 10%, its files, and onnxruntime + cascc workers (the main venv has both)."""
    tmp = tmp_path_factory.mktemp("peers")
    meta = {"versions": {}, "skipped": {}, "density": 0.1, "rounds": 3, "cpu": "test"}
    chosen = peers.runtimes(["onnxruntime", "cascc"])
    workers = peers.start_workers(chosen, tmp, meta, say=print, python=sys.executable)  # not .peers/
    module, example = zoo.small_mlp()
    kinds = {w.runtime.model for w in workers.values()}
    files = peers.prepare(module, example, 0.1, tmp / "mlp", kinds, "small_mlp")
    yield types.SimpleNamespace(tmp=tmp, workers=workers, files=files, meta=meta)
    for w in workers.values():
        w.close()


def test_every_runtime_is_checked_and_timed_in_one_run(setup):
    args = types.SimpleNamespace(rounds=3, profile=False, out=setup.tmp, runtimes=["onnxruntime", "cascc"])
    row = peers.measure_config("small_mlp", 3, 1, setup.files, setup.workers, setup.meta, args, say=print)
    assert set(row["runtimes"]) == {"onnxruntime", "cascc dense", "cascc sparse"}
    for info in row["runtimes"].values():
        assert info["median_us"] > 0 and info["error_vs_torch"] <= 1e-4
    assert row["runtimes"]["onnxruntime"]["ratio_to_onnxruntime"] == 1.0
    assert row["cascc_sparse_layers"] > 0
    assert abs(row["density"] - 0.1) < 0.01
    assert set(setup.meta["versions"]) == set(row["runtimes"])
    args.no_doc, args.doc = True, None
    peers.write([row], setup.meta, args)
    saved = json.loads((setup.tmp / "peers.json").read_text())
    assert (
        saved["rows"][0]["runtimes"]["cascc sparse"]["median_us"]
        == row["runtimes"]["cascc sparse"]["median_us"]
    )


def test_a_wrong_output_fails_the_check_naming_the_runtime(setup):
    """onnxruntime given the masked model with its largest weight scaled must fail the check."""
    model = onnx.load(setup.files["onnx"])
    weight = max(model.graph.initializer, key=lambda t: numpy_helper.to_array(t).size)
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.5, weight.name))
    path = setup.tmp / "perturbed.onnx"
    onnx.save(model, path)
    files = {**setup.files, "onnx": str(path)}
    ort = {"onnxruntime": setup.workers["onnxruntime"]}
    with pytest.raises(peers.PeerError, match=r"^onnxruntime: output differs from torch eager"):
        peers.load_all(ort, files, 1, setup.tmp / "perturbed", setup.meta, say=print)


def test_a_missing_peer_is_skipped_with_how_to_install(tmp_path):
    meta = {"skipped": {}}
    lines = []
    absent = peers.Runtime("Nowhere", "no-such-peer", "onnxruntime", "onnx")
    assert peers.start_workers([absent], tmp_path, meta, say=lines.append) == {}
    assert lines == [f"skipping Nowhere: {meta['skipped']['Nowhere']}"]
    assert "setup_peers.sh no-such-peer" in lines[0]
