"""cascc prune / analyze and the recipe options of compile, end to end through the CLI."""

import json

import pytest
import torch

from cascc import frontends, passes
from cascc.frontends.torch import save_pt2
from cascc.ir import layers
from support import EXAMPLES, assert_clean_error, invoke, model_ref


def test_prune_writes_a_pt2_that_keeps_masks_and_history(tmp_path):
    out = tmp_path / "pruned.pt2"
    code, text = invoke(
        "prune",
        model_ref("cnn"),
        "--sparsity",
        "0.8",
        "--allocator",
        "erk",
        "--criterion",
        "random",
        "--reparam",
        "rescale",
        "-o",
        out,
    )
    assert code == 0, text
    loaded = frontends.load(out)
    reference = passes.run(
        frontends.load(model_ref("cnn")),
        [
            ("prune.random", {"sparsity": 0.8, "allocator": "erk", "seed": 0}),
            ("reparam.rescale", {"data": None}),
        ],
    )
    assert [r.name for r in loaded.history] == ["prune.random", "reparam.rescale"]
    for layer in layers(reference):
        assert torch.equal(loaded.masks[layer.name], reference.masks[layer.name]), layer.name
    x = reference.example_inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded.module()(*x), reference.module()(*x))
    assert [p.name for p in tmp_path.iterdir()] == ["pruned.pt2"]  # nothing half-written left behind


def test_pt2_round_trip_preserves_masks(tmp_path, mlp_program):
    pruned = passes.run(mlp_program, [("prune.magnitude", {"sparsity": 0.6})])
    loaded = frontends.load(save_pt2(pruned, tmp_path / "m.pt2"))
    assert all(torch.equal(loaded.masks[n], pruned.masks[n]) for n in pruned.masks)


def test_prune_output_must_be_pt2(tmp_path):
    code, text = invoke("prune", model_ref("mlp"), "--sparsity", "0.5", "-o", tmp_path / "x.onnx")
    assert_clean_error(code, text, 2, "x.onnx", ".pt2")
    assert not list(tmp_path.iterdir())


def test_analyze_prints_the_table_and_writes_the_html(tmp_path):
    html = tmp_path / "report.html"
    code, text = invoke(
        "analyze",
        f"{EXAMPLES / 'digits.py'}:mlp",
        "--sparsity",
        "0.99",
        "--allocator",
        "uniform",
        "--data",
        "digits",
        "--html",
        html,
    )
    assert code == 0, text
    assert "cascade analysis" in text and "fc1.weight" in text and "degraded" in text
    assert html.read_text().count("data:image/png;base64,") == 3


def test_analyze_json(tmp_path):
    code, text = invoke("analyze", model_ref("mlp"), "--sparsity", "0.9", "--allocator", "cascade", "--json")
    assert code == 0, text
    report = json.loads(text[text.index("{") :])
    assert report["status"] in ("healthy", "degraded", "collapsed")
    assert [row["name"] for row in report["layers"]] == ["0.weight", "2.weight", "4.weight"]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--dense-ends", "--allocator", "erk", "--sparsity", "0.5"], ["--dense-ends", "uniform"]),
        (["--criterion", "nm", "--nm", "2-4"], ["2-4", "N:M"]),
        (["--criterion", "nm", "--nm", "2:4", "--sparsity", "0.9"], ["fixes the sparsity"]),
        (["--criterion", "block", "--block", "4by1", "--sparsity", "0.5"], ["4by1", "ROWSxCOLS"]),
        (["--criterion", "snip", "--data", "nope", "--sparsity", "0.5"], ["unknown data set", "digits"]),
        (
            ["--criterion", "snip", "--data", "npz:/no/such.npz", "--sparsity", "0.5"],
            ["/no/such.npz", "no such data file"],
        ),
    ],
)
def test_bad_recipe_options(tmp_path, args, fragments):
    code, text = invoke("prune", model_ref("mlp"), *args, "-o", tmp_path / "p.pt2")
    assert_clean_error(code, text, 2, *fragments)
    assert not (tmp_path / "p.pt2").exists()


def test_data_with_the_wrong_sample_shape_is_a_clear_error(tmp_path):
    import numpy as np

    data = tmp_path / "d.npz"
    np.savez(data, x_train=np.zeros((8, 7)), y_train=np.zeros(8), x_test=np.zeros((2, 7)), y_test=np.zeros(2))
    code, text = invoke("analyze", model_ref("mlp"), "--data", f"npz:{data}")
    assert_clean_error(code, text, 2, "7 values", "20 per sample")


def test_compile_with_a_recipe_runs_and_passes_its_selftest(tmp_path):
    out = tmp_path / "art"
    code, text = invoke(
        "compile",
        model_ref("cnn"),
        "--sparsity",
        "0.9",
        "--allocator",
        "cascade",
        "--criterion",
        "magnitude",
        "--reparam",
        "rescale",
        "--shrink",
        "-o",
        out,
    )
    assert code == 0, text
    manifest = json.loads((out / "manifest.json").read_text())
    assert [p["name"] for p in manifest["passes"]] == [
        "prune.magnitude",
        "reparam.rescale",
        "shrink.dead_units",
    ]
    code, text = invoke("run", out, "--selftest")
    assert code == 0 and "passed" in text
