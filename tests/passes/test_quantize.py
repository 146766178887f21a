"""int8 post-training quantization: the pass's scales and rules, the simulated module, the compiled int8
artifact against it and against fp32, the .pt2 round trip and the CLI's refusals."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from cascc import api, passes
from cascc.data import load
from cascc.errors import ModelLoadError
from cascc.frontends import load_model
from cascc.frontends.torch import load_pt2, save_pt2
from cascc.ir import LayerKind, layers
from cascc.ir.quant import quantize_weight, weight_scales
from cascc.passes.batched import batched
from cascc.passes.evaluate import evaluate
from cascc.runtime.session import Session
from support import EXAMPLES, assert_clean_error, invoke


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def pruned():
    program = load_model(f"{EXAMPLES / 'digits.py'}:mlp")
    return passes.run(program, [("prune.magnitude", {"sparsity": 0.9})])


def quantized(program, **options):
    return passes.run(program, [("quantize.ptq", {"data": "digits", **options})])


def accuracy(program, data) -> float:
    return evaluate(program, data, noise=(), fgsm=()).accuracy


def test_ptq_scales_every_unit_keeps_masks_and_says_why_a_layer_stays_float(pruned):
    q = quantized(pruned)
    assert set(q.precisions) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    assert not q.precisions["fc3.weight"].int8 and "output layer" in q.precisions["fc3.weight"].reason
    weights = pruned.masked_weights()
    for name, spec in q.int8_layers.items():
        w = weights[name].numpy()
        assert len(spec.weight_scales) == w.shape[0]
        codes = quantize_weight(w, spec.weight_scales)
        assert np.abs(codes).max(axis=1).tolist() == [127 if row.any() else 0 for row in w]
        assert not codes[~pruned.masks[name].numpy()].any()  # a pruned weight stays exactly zero
        assert 0 <= spec.input_zero <= 255 and spec.input_scale > 0
    assert all(torch.equal(q.masks[n], pruned.masks[n]) for n in pruned.masks)
    again = quantized(pruned)
    assert {n: s.to_json() for n, s in again.precisions.items()} == {
        n: s.to_json() for n, s in q.precisions.items()
    }


def test_percentile_ranges_lie_within_minmax_and_probes_warn(pruned):
    pct, mm = quantized(pruned, calibrator="percentile"), quantized(pruned, calibrator="minmax")
    for name in pct.int8_layers:
        a, b = pct.precisions[name], mm.precisions[name]
        assert a.input_scale <= b.input_scale
    with pytest.warns(passes.PassWarning, match="Gaussian probes"):
        passes.run(pruned, [("quantize.ptq", {})])


def test_simulated_int8_stays_within_half_a_point_of_fp32_on_digits(pruned, digits):
    """The PTQ target on the digits MLP, dense and at 90%, on the simulated module."""
    dense = load_model(f"{EXAMPLES / 'digits.py'}:mlp")
    for program in (dense, pruned):
        fp32, int8 = accuracy(program, digits), accuracy(quantized(program), digits)
        assert int8 >= fp32 - 0.005, (fp32, int8)


def test_the_int8_artifact_computes_the_simulated_int8_model(tmp_path, pruned, digits):
    q = quantized(pruned)
    result = api.compile(q, out=tmp_path / "int8")
    rows = {r["name"]: r for r in result.manifest["layers"]}
    assert rows["fc1.weight"]["precision"] == "int8" and "int8" in rows["fc1.weight"]["kernel"]
    assert (
        rows["fc3.weight"]["precision"] == "fp32" and "output layer" in rows["fc3.weight"]["precision_reason"]
    )
    assert api.selftest(result.path).passed
    session = Session(result.path / "model.so")
    x = digits.x_test[:64].numpy()
    got = np.concatenate([session.run([x[i : i + 1]])[0] for i in range(len(x))])
    with torch.no_grad():
        simulated = batched(q)(torch.from_numpy(x)).numpy()
        fp32 = batched(pruned)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, simulated, rtol=1e-4, atol=1e-4 * np.abs(simulated).max())
    assert np.abs(got - fp32).max() > 1e-4  # it really computed in int8, not in fp32
    assert (got.argmax(1) == fp32.argmax(1)).mean() > 0.9


@pytest.mark.parametrize("sparsity", [0.0, 0.9])
def test_the_int8_cnn_computes_its_convs_in_int8_within_half_a_point(tmp_path, digits, sparsity):
    """The digits CNN (3×3 convs with BatchNorm, a residual add, max pool): every conv runs an int8 kernel,
    the artifact computes the simulated model, and PTQ stays within 0.5 points of fp32."""
    program = load_model(f"{EXAMPLES / 'digits.py'}:cnn")
    if sparsity:
        program = passes.run(program, [("prune.magnitude", {"sparsity": sparsity})])
    q = quantized(program)
    convs = [layer.name for layer in layers(q) if layer.kind is LayerKind.CONV]
    assert convs and set(convs) <= set(q.int8_layers)
    assert accuracy(q, digits) >= accuracy(program, digits) - 0.005
    result = api.compile(q, out=tmp_path / "int8")
    rows = {r["name"]: r for r in result.manifest["layers"]}
    for name in convs:
        assert rows[name]["precision"] == "int8" and "int8 conv" in rows[name]["kernel"], rows[name]
    session = Session(result.path / "model.so")
    x = digits.x_test[:32].numpy()
    got = np.concatenate([session.run([x[i : i + 1]])[0] for i in range(len(x))])
    with torch.no_grad():
        simulated = batched(q)(torch.from_numpy(x)).numpy()
        fp32 = batched(program)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, simulated, rtol=1e-4, atol=1e-4 * np.abs(simulated).max())
    assert np.abs(got - fp32).max() > 1e-4


def test_quantization_aware_finetuning_recovers_half_of_what_ptq_lost(digits):
    """The digits CNN calibrated on Gaussian probes (no data: its ranges describe N(0, 1), not digits) loses
    accuracy; fine-tuning on the simulated int8 model, ranges fixed and weights rounded every forward,
    recovers at least half of it. Masks stay, and the result's recorded scales are the ones it trained with."""
    program = load_model(f"{EXAMPLES / 'digits.py'}:cnn")
    with pytest.warns(passes.PassWarning, match="Gaussian probes"):
        ptq = passes.run(program, [("quantize.ptq", {})])
    qat = passes.run(ptq, [("train.finetune", {"data": "digits"})])
    fp32, before, after = (accuracy(p, digits) for p in (program, ptq, qat))
    assert fp32 - before > 0.05, (fp32, before)  # the probes' ranges really cost accuracy
    assert after - before >= 0.5 * (fp32 - before), (fp32, before, after)
    weights = qat.masked_weights()
    for name, spec in qat.int8_layers.items():
        assert spec.input_scale == ptq.precisions[name].input_scale  # activation grids as calibrated
        assert spec.weight_scales == weight_scales(weights[name])  # weight grids follow the weights
    x = digits.x_test[:32]
    with torch.no_grad():
        np.testing.assert_array_equal(batched(qat)(x).numpy(), batched(qat, trainable_int8=True)(x).numpy())


def test_train_precision_int8_calibrates_then_finetunes_aware(tmp_path):
    out = tmp_path / "t.pt2"
    code, text = invoke(
        "train", "--model", f"{EXAMPLES / 'digits.py'}:untrained_mlp", "--data", "digits", "--sparsity", "0.9",
        "--epochs", "2", "--precision", "int8", "--qat-epochs", "1", "--no-baseline", "-o", str(out), "--json",
    )  # fmt: skip
    assert code == 0, text
    report = json.loads(text[text.index("{") :])
    assert report["int8"]["int8_layers"] == 2 and set(report["int8"]["accuracy"]) == {"fp32", "ptq", "qat"}
    assert [p["name"] for p in report["passes"]][-2:] == ["quantize.ptq", "train.finetune"]
    saved = load_pt2(out)
    assert set(saved.int8_layers) == {"fc1.weight", "fc2.weight"}


def test_probe_calibration_of_a_token_model_feeds_valid_ids():
    """Integer inputs have no Gaussian probe: token ids are probed with ones (a valid id for any vocabulary),
    and the int8 layers are calibrated on what the embedding returns for them."""
    from cascc.frontends.torch import from_module

    class Tokens(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(11, 16)
            self.fc = torch.nn.Linear(16, 16)
            self.out = torch.nn.Linear(16, 3)

        def forward(self, ids):
            return self.out(self.fc(self.embed(ids)).relu().mean(1))

    torch.manual_seed(0)
    program = from_module(Tokens().eval(), (torch.randint(0, 11, (1, 5)),), source="tokens")
    with pytest.warns(passes.PassWarning, match="Gaussian probes"):
        q = passes.run(program, [("quantize.ptq", {})])
    assert set(q.int8_layers) == {"fc.weight"}
    assert not q.precisions["embed.weight"].int8 and not q.precisions["out.weight"].int8


def test_pt2_round_trip_keeps_precisions_and_refuses_tampered_scales(tmp_path, pruned):
    q = quantized(pruned)
    path = save_pt2(q, tmp_path / "q.pt2")
    back = load_pt2(path)
    assert {n: s.to_json() for n, s in back.precisions.items()} == {
        n: s.to_json() for n, s in q.precisions.items()
    }
    with zipfile.ZipFile(path) as zin:
        entries = {i.filename: zin.read(i) for i in zin.infolist()}
    (meta_name,) = [n for n in entries if n.endswith("cascc.json") or "cascc" in n.rsplit("/", 1)[-1]]
    meta = json.loads(entries[meta_name])
    meta["precisions"]["fc1.weight"]["input_scale"] = -1.0
    entries[meta_name] = json.dumps(meta).encode()
    bad = tmp_path / "bad.pt2"
    with zipfile.ZipFile(bad, "w") as zout:
        for name, data in entries.items():
            zout.writestr(name, data)
    with pytest.raises(ModelLoadError, match="precision out of range"):
        load_pt2(bad)


@pytest.mark.parametrize(
    "extra, fragments",
    [
        (["--precision", "bf16"], ["no bf16 kernels yet", "--precision fp32 or int8"]),
        (["--precision", "int8", "--target", "cuda"], ["int8 kernels are CPU kernels"]),
    ],
)
def test_precisions_not_offered_are_clear_errors(tmp_path, extra, fragments):
    out = tmp_path / "out"
    code, text = invoke("compile", f"{EXAMPLES / 'digits.py'}:mlp", "-o", out, *extra)
    assert_clean_error(code, text, 2, *fragments)
    assert not out.exists()


@pytest.mark.parametrize("sparsity", [0.0, 0.9])
def test_stride_one_int8_convs_read_their_planes_directly_and_strided_ones_pack_taps(tmp_path, sparsity):
    """A stride-1 conv on 32-wide rows takes the direct path (no packed-tap operand), a stride-2 one the
    packed taps, and the artifact computes the simulated int8 model either way."""
    from cascc.errors import PassWarning
    from cascc.frontends.torch import from_module

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(8, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 16 * 16, 10),
    ).eval()
    program = from_module(model, (torch.randn(1, 8, 32, 32),))
    if sparsity:
        program = passes.run(program, [("prune.magnitude", {"sparsity": sparsity})])
    with pytest.warns(PassWarning, match="Gaussian probes"):
        q = passes.run(program, [("quantize.ptq", {})])
    result = api.compile(q, out=tmp_path / "int8")
    rows = {r["name"]: r for r in result.manifest["layers"]}
    direct, strided = (rows[layer.name]["kernel"] for layer in layers(q) if layer.kind is LayerKind.CONV)
    assert "int8 conv direct" in direct and "taps packed" in strided, (direct, strided)
    assert ("sparse" in direct) == bool(sparsity), direct
    x = torch.randn(4, 8, 32, 32)
    got = np.concatenate([Session(result.path / "model.so").run([x[i : i + 1].numpy()])[0] for i in range(4)])
    with torch.no_grad():
        simulated = batched(q)(x).numpy()
    np.testing.assert_allclose(got, simulated, rtol=1e-4, atol=1e-4 * np.abs(simulated).max())
