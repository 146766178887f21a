"""The arm64 artifact executed under qemu-aarch64 user emulation matches the x86 build. About 30 s with a
cold userland cache (built once: ~13 s), 20 s warm; `pytest -m arm_emulation` runs only this."""

from __future__ import annotations

import runpy
import shutil

import pytest

from support import TESTS, model_ref

pytestmark = [
    pytest.mark.arm_emulation,
    pytest.mark.skipif(
        any(shutil.which(t) is None for t in ("aarch64-linux-gnu-gcc", "qemu-aarch64-static", "mmdebstrap")),
        reason="needs gcc-aarch64-linux-gnu, qemu-user-static and mmdebstrap",
    ),
]


@pytest.mark.slow
def test_arm64_artifact_under_qemu_matches_the_x86_build(capsys):
    script = runpy.run_path(str(TESTS.parent / "scripts" / "arm64_emulation.py"))
    code = script["main"]([model_ref("cnn"), "--sparsity", "0.8", "--cpu", "cortex-a72"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "ok" in printed.splitlines()[-1]
