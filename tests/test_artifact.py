"""Artifact directory: determinism, atomic writes, tamper detection."""

import json

import numpy as np
import pytest

import cascc
from cascc.errors import ArtifactError, OptionError
from cascc.runtime.artifact import open_artifact, write_npz
from support import model_ref


@pytest.fixture(scope="module")
def twice(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    results = [cascc.compile(model_ref("mlp"), sparsity=0.9, seed=3, out=root / name) for name in ("a", "b")]
    return root, results


def test_same_seed_gives_same_masks_and_same_bytes(twice):
    root, (a, b) = twice
    assert a.program.masks.keys() == b.program.masks.keys()
    assert all(np.array_equal(a.program.masks[k], b.program.masks[k]) for k in a.program.masks)
    assert a.manifest["files"] == b.manifest["files"]  # sizes and sha256 of model.so and selftest.npz
    assert (root / "a" / "manifest.json").read_bytes() == (root / "b" / "manifest.json").read_bytes()


def test_manifest_contents(twice):
    root, (_a, _) = twice
    m = json.loads((root / "a" / "manifest.json").read_text())
    assert m["target"]["name"] == "x86" and m["target"]["tvm"]["mtriple"] == "x86_64-linux-gnu"
    assert m["target"]["tvm"]["mcpu"] not in ("", "generic")
    assert m["inputs"] == [
        {"name": "input", "shape": [3, 20], "dtype": "float32"}
    ]  # nn.Sequential names it `input`
    assert m["passes"] == [{"name": "prune.magnitude", "options": {"sparsity": 0.9, "allocator": "uniform"}}]
    assert set(m["versions"]) == {"cascc", "apache-tvm", "torch", "numpy"}
    assert m["source"]["seed"] == 3
    assert set(m["files"]) == {"model.so", "selftest.npz"}


def test_npz_writer_is_byte_stable(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3)}
    write_npz(tmp_path / "x.npz", arrays)
    first = (tmp_path / "x.npz").read_bytes()
    write_npz(tmp_path / "x.npz", arrays)
    assert (tmp_path / "x.npz").read_bytes() == first
    with np.load(tmp_path / "x.npz") as data:
        np.testing.assert_array_equal(data["a"], arrays["a"])


def test_failing_compile_leaves_no_output(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(cascc.CasccError):
        cascc.compile(model_ref("untraceable"), out=out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_failure_during_write_leaves_no_output(tmp_path, monkeypatch, mlp_program):
    from cascc.runtime import artifact

    def broken_export(*_args, **_kw):
        raise RuntimeError("disk full")

    monkeypatch.setattr(artifact, "write_npz", broken_export)
    with pytest.raises(RuntimeError, match="disk full"):
        cascc.compile(mlp_program, out=tmp_path / "art")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force(twice):
    root, _ = twice
    with pytest.raises(OptionError, match="already exists"):
        cascc.compile(model_ref("mlp"), out=root / "a")


def test_tampered_library_is_detected_before_loading(twice, tmp_path):
    import shutil

    root, _ = twice
    copy = tmp_path / "copy"
    shutil.copytree(root / "a", copy)
    lib = copy / "model.so"
    data = bytearray(lib.read_bytes())
    data[len(data) // 2] ^= 0xFF
    lib.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 does not match"):
        open_artifact(copy)
    with pytest.raises(ArtifactError, match="sha256"):
        cascc.run(copy, [np.zeros((3, 20), np.float32)])


def test_run_checks_the_input_signature(twice):
    root, _ = twice
    with pytest.raises(OptionError, match=r"must be float32\[3, 20\]"):
        cascc.run(root / "a", [np.zeros((2, 20), np.float32)])


def test_written_files_get_normal_permissions(tmp_path, mlp_program):
    """Atomic writes go through mkstemp/mkdtemp (0600/0700); the results must not stay private."""
    import os

    from cascc import passes
    from cascc.frontends.torch import save_pt2

    mask = os.umask(0)
    os.umask(mask)
    path = save_pt2(passes.run(mlp_program, [("prune.magnitude", {"sparsity": 0.5})]), tmp_path / "m.pt2")
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt2"]
