"""cuda: the artifact carries CUDA kernels (dlight-scheduled dense ops, cascc's CSR kernel) for the chosen arch.

Without a GPU the library is checked structurally: its embedded CUDA source matches the manifest, names the
kernels, and nvcc compiles it to PTX for the arch. Execution tests are marked `gpu` and skip without one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import numpy as np
import pytest

import cascc
from cascc.lower.export import embedded_cuda_source
from cascc.runtime.session import device_present
from support import assert_clean_error, invoke, model_ref

has_gpu = device_present("cuda")
gpu = pytest.mark.skipif(not has_gpu, reason="needs an NVIDIA GPU with a CUDA driver")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("cuda") / "mlp"
    cascc.compile(model_ref("gpu_mlp"), target="cuda", sparsity=0.95, out=out)
    return out


@pytest.fixture(scope="module")
def manifest(artifact):
    return json.loads((artifact / "manifest.json").read_text())


def test_sparse_hidden_layer_gets_the_csr_kernel_and_small_ones_stay_dense(manifest):
    kernels = {row["name"]: row["kernel"] for row in manifest["layers"]}
    assert kernels["0.weight"].startswith("sparse CSR")
    assert kernels["2.weight"].startswith("dense (dlight")  # 4096×10: one launch dominates either way
    typed = {row["name"]: (row["kernel_kind"], row["decline"]) for row in manifest["layers"]}
    # both decided by the GPU bandwidth model: one sparse, one declined by it
    assert typed == {"0.weight": ("sparse", None), "2.weight": ("generic", "COST_MODEL")}


def test_library_embeds_the_cuda_kernels_the_manifest_lists(artifact, manifest):
    (module,) = manifest["target"]["device_code"]
    assert module["kind"] == "cuda" and module["format"] == "source"
    source = embedded_cuda_source(artifact / "model.so")
    assert hashlib.sha256(source.encode()).hexdigest() == module["sha256"]
    assert any(name.startswith("cascc_csr_0") for name in module["kernels"])
    for name in module["kernels"]:
        assert f"{name}(" in source
    assert manifest["target"]["tvm"]["arch"] == "sm_80"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc (the CUDA toolkit)")
def test_embedded_source_compiles_to_ptx_for_the_arch(artifact, manifest, tmp_path):
    source = tmp_path / "kernels.cu"
    source.write_text(embedded_cuda_source(artifact / "model.so"))
    ptx = tmp_path / "kernels.ptx"
    subprocess.run(["nvcc", "--ptx", "-w", "-arch=sm_80", str(source), "-o", str(ptx)], check=True)
    text = ptx.read_text()
    assert ".target sm_80" in text
    for name in manifest["target"]["device_code"][0]["kernels"]:
        assert f".entry {name}(" in text


def test_arch_is_selectable_and_checked(tmp_path):
    out = tmp_path / "a"
    code, text = invoke("compile", model_ref("mlp"), "--target", "cuda", "--arch", "sm_86", "-o", out)
    assert code == 0, text
    assert json.loads((out / "manifest.json").read_text())["target"]["tvm"]["arch"] == "sm_86"
    code, text = invoke(
        "compile", model_ref("mlp"), "--target", "cuda", "--arch", "sm_1", "-o", tmp_path / "b"
    )
    assert_clean_error(code, text, 2, "sm_1", "sm_80")
    assert not (tmp_path / "b").exists()


@pytest.mark.skipif(has_gpu, reason="this machine has a GPU")
def test_running_without_a_gpu_is_refused_clearly(artifact):
    code, text = invoke("run", artifact, "--selftest")
    assert_clean_error(code, text, 2, "cuda", "cannot run on this machine")


@pytest.mark.gpu
@gpu
def test_gpu_selftest_matches_torch(artifact):
    assert cascc.selftest(artifact).passed


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("density", [1.0, 0.5, 0.1, 0.02, 0.0])
@pytest.mark.parametrize("batch", [1, 7, 32])
def test_gpu_csr_kernel_matches_numpy(density, batch):
    import tvm

    from cascc.lower.formats.csr import csr_linear

    rng = np.random.default_rng(0)
    n, k = 37, 53
    weight = (rng.standard_normal((n, k)) * (rng.random((n, k)) < density)).astype(np.float32)
    x = rng.standard_normal((batch, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    rows = weight != 0
    ptr = np.concatenate([[0], np.cumsum(rows.sum(1))]).astype(np.int32)
    cols, data = np.nonzero(rows)[1].astype(np.int32), weight[rows]
    if data.size == 0:
        cols, data = np.zeros(1, np.int32), np.zeros(1, np.float32)
    major, minor = tvm.cuda(0).compute_version.split(".")
    target = {
        "kind": "cuda",
        "arch": f"sm_{major}{minor}",
        "host": {"kind": "llvm", "mtriple": "x86_64-linux-gnu"},
    }
    lib = tvm.compile(tvm.IRModule({"main": csr_linear(batch, k, n, data.size, "relu")}), target=target)
    dev = tvm.cuda(0)
    args = [tvm.runtime.tensor(a, dev) for a in (x, data, cols, ptr, bias)]
    out = tvm.runtime.empty((batch, n), "float32", dev)
    lib["main"](*args, out)
    np.testing.assert_allclose(out.numpy(), np.maximum(x @ weight.T + bias, 0), rtol=1e-5, atol=1e-5)


def test_rows_ops_keep_tvms_gpu_lowering():
    """Softmax, layer norm and pooling get cascc's CPU row kernels on CPU targets; on CUDA they must stay with
    TVM's lowering (scheduled by dlight's GPU rules), or the build would carry unbound CPU loops."""
    import torch
    from torch import nn

    from cascc.frontends.torch import from_module
    from cascc.lower import lower
    from cascc.targets import TARGETS

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(32)

        def forward(self, x):
            return torch.softmax(self.norm(x), dim=-1).mean(dim=1)

    lowered = lower(from_module(Head().eval(), (torch.randn(2, 16, 32),)), TARGETS["cuda"])
    kernels = {k for m in lowered.device_code() if m["kind"] == "cuda" for k in m["kernels"]}
    assert {"fast_softmax_kernel", "layer_norm_kernel", "mean_kernel"} <= kernels  # all three run on the GPU
