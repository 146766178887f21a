"""arm64: a real aarch64 shared library, NEON code in the kernels, entry points exported; not run here."""

import shutil
import subprocess

import numpy as np
import pytest

import cascc
from cascc.errors import ArtifactError
from support import model_ref

pytestmark = pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-gcc") is None,
    reason="needs the aarch64 cross linker: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross "
    "(.ci/run installs it)",
)

EM_AARCH64 = 183


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("arm") / "cnn"
    cascc.compile(model_ref("cnn"), target="arm64", cpu="cortex-a72", sparsity=0.8, out=out)
    return out


def test_library_is_aarch64_elf(artifact):
    header = (artifact / "model.so").read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and header[4] == 2  # 64-bit
    assert int.from_bytes(header[18:20], "little") == EM_AARCH64


def test_library_exports_entry_points_and_uses_neon(artifact):
    symbols = subprocess.run(
        ["aarch64-linux-gnu-nm", "-D", "--defined-only", str(artifact / "model.so")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "__tvm_ffi__library_bin" in symbols  # the VM program and constants
    assert "__tvm_ffi_cascc_" in symbols  # cascc's kernels
    asm = subprocess.run(
        ["aarch64-linux-gnu-objdump", "-d", str(artifact / "model.so")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "fmla" in asm and ".4s" in asm  # NEON fused multiply-add on 4 fp32 lanes


def test_manifest_records_the_arm_target(artifact):
    manifest = cascc.runtime.artifact.open_artifact(artifact).manifest
    assert manifest["target"]["tvm"]["mtriple"] == "aarch64-linux-gnu"
    assert manifest["target"]["tvm"]["mcpu"] == "cortex-a72"
    assert "+neon" in manifest["target"]["tvm"]["mattr"]


def test_running_it_here_is_refused_clearly(artifact):
    with pytest.raises(ArtifactError, match="built for arm64 and cannot run on this machine"):
        cascc.run(artifact, [np.zeros((2, 3, 8, 8), np.float32)])
