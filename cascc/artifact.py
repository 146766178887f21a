"""The artifact: a directory holding `model.so`, `selftest.npz` and `manifest.json`, written atomically.

The manifest records versions, target, signature, per-layer density and kernel decisions, the passes run,
and the size and sha256 of every file; `open_artifact` checks those hashes before anything is loaded.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import selftesting as selftests
from .digest import file_sha256
from .errors import ArtifactError, OptionError
from .ir import Program, TensorSpec, density, layers

MANIFEST = "manifest.json"
LIBRARY = "model.so"
SELFTEST = "selftest.npz"
FORMAT_VERSION = 1


def versions() -> dict[str, str]:
    """Versions of the packages that shaped the artifact."""
    return {pkg: _version(pkg) for pkg in ("cascc", "apache-tvm", "torch", "numpy")}


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """np.savez with a fixed timestamp, so the same arrays always give the same bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())


def _default_mode(base: int) -> int:
    """`base` (0o666 files, 0o777 directories) under the process umask: what open()/mkdir() would give."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces `path` (with normal permissions), on failure
    it is removed, so a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _default_mode(0o666))  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(out: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces `out`, on failure it is removed."""
    out = Path(out)
    if out.exists() and not force:
        raise OptionError(
            out, "the output directory already exists", "pass --force to replace it, or choose another -o"
        )
    if out.exists() and not out.is_dir():
        raise OptionError(out, "exists and is not a directory", "choose another -o")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        out.rename(old)
    os.chmod(tmp, _default_mode(0o777))  # mkdtemp creates 0700
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def layer_table(program: Program, decisions: Sequence[Any]) -> list[dict[str, Any]]:
    """Per-layer facts for the manifest: shape, weights kept, density and the kernel decision."""
    by_name = {d.layer: d for d in decisions}
    rows = []
    for layer in layers(program):
        mask = program.masks.get(layer.name)
        kept = layer.size if mask is None else int(mask.sum())
        decision = by_name.get(layer.name)
        rows.append(
            {
                "name": layer.name,
                "kind": layer.kind.value,
                "shape": list(layer.weight_shape),
                "weights": layer.size,
                "nonzero": kept,
                "density": density(program, layer.name),
                "kernel": decision.kernel if decision else None,
                "reason": decision.reason if decision else None,
                "dense_us": decision.dense_us if decision else None,
                "sparse_us": decision.sparse_us if decision else None,
                **({"measured_us": dict(decision.measured_us)} if decision and decision.measured_us else {}),
            }
        )
    return rows


def write(
    out: Path,
    program: Program,
    lowered: Any,
    *,
    force: bool = False,
    evaluation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the artifact directory atomically and return its manifest.

    The self-test cases are the program's example input and a second input of the same kind, each with
    the output of torch eager on the masked model, an independent reference for the compiled code; their
    tolerance follows the network's accumulation depth and each output's scale (`cascc.selftesting`).
    """
    inputs = [t.numpy() for t in program.example_inputs()]
    cases = [inputs, selftests.second_input(program, inputs)]
    expected = [_torch_outputs(program, case) for case in cases]
    tol = selftests.tolerance(selftests.accumulation_depth(program), expected)
    arrays = {}
    for c, (xs, ys) in enumerate(zip(cases, expected)):
        prefix = f"case{c}_" if c else ""  # case 0 keeps the plain names `run` and `bench` read
        arrays.update({f"{prefix}input_{i}": x for i, x in enumerate(xs)})
        arrays.update({f"{prefix}output_{i}": y for i, y in enumerate(ys)})
    with atomic_directory(out, force=force) as tmp:
        lowered.export(tmp / LIBRARY)
        write_npz(tmp / SELFTEST, arrays)
        manifest = {
            "format": FORMAT_VERSION,
            "versions": versions(),
            "target": {
                "name": lowered.target.name,
                "tvm": lowered.target_spec,
                "device": lowered.target.device,
            },
            "inputs": [s.to_json() for s in program.inputs],
            "outputs": [s.to_json() for s in program.outputs],
            "source": {"model": program.source, "frontend": program.frontend, "seed": program.seed},
            "passes": [r.to_json() for r in program.history],
            "layers": layer_table(program, lowered.decisions),
            "selftest": {"file": SELFTEST, "cases": len(cases), **tol.to_json()},
            "files": {
                name: {"bytes": (tmp / name).stat().st_size, "sha256": file_sha256(tmp / name)}
                for name in (LIBRARY, SELFTEST)
            },
        }
        device_modules = lowered.device_code()
        if device_modules:
            manifest["target"]["device_code"] = device_modules
        if evaluation is not None:
            manifest["evaluation"] = dict(evaluation)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _torch_outputs(program: Program, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        out = program.module()(*[torch.from_numpy(x) for x in inputs])
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.detach().numpy() for o in outs]


@dataclass(frozen=True)
class Artifact:
    """An artifact directory whose files matched their manifest hashes when opened."""

    path: Path
    manifest: Mapping[str, Any]

    @property
    def library(self) -> Path:
        return self.path / LIBRARY

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(s["name"], tuple(s["shape"]), s["dtype"]) for s in self.manifest["inputs"])

    def selftest_data(self, case: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(inputs, torch-eager outputs) of one stored self-test case; case 0 is the example input."""
        prefix = f"case{case}_" if case else ""
        with np.load(self.path / SELFTEST, allow_pickle=False) as data:
            n_in, n_out = len(self.manifest["inputs"]), len(self.manifest["outputs"])
            return (
                [data[f"{prefix}input_{i}"] for i in range(n_in)],
                [data[f"{prefix}output_{i}"] for i in range(n_out)],
            )

    @property
    def tolerance(self) -> selftests.Tolerance:
        facts = self.manifest["selftest"]
        return selftests.Tolerance(
            float(facts["rtol"]), tuple(float(a) for a in facts["atol"]), int(facts["accumulation_depth"])
        )


def open_artifact(path: Path) -> Artifact:
    """Read the manifest and check every listed file's size and sha256 before anything is loaded."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise ArtifactError(path, "no such artifact directory", "pass the -o directory of `cascc compile`")
    if not manifest_path.is_file():
        raise ArtifactError(
            path, f"no {MANIFEST} in the directory", "pass a directory written by `cascc compile`"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ArtifactError(manifest_path, f"unreadable manifest ({exc})", "recompile the artifact") from exc
    for name, facts in files.items():
        file = path / name
        if not file.is_file():
            raise ArtifactError(file, "listed in the manifest but missing", "recompile the artifact")
        if file_sha256(file) != facts["sha256"]:
            raise ArtifactError(
                file,
                "sha256 does not match the manifest: the file was changed after compilation",
                "recompile the artifact; never edit its files",
            )
    return Artifact(path, manifest)
