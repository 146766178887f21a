"""The artifact: a directory holding `model.so`, `selftest.npz` and `manifest.json`, written atomically.

The manifest records versions, target, signature, per-layer density and kernel decisions, the passes run,
and the size and sha256 of every file; `open_artifact` checks those hashes before anything is loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArtifactError, OptionError, first_paragraph
from ..files import _default_mode, file_sha256, write_npz
from ..ir import Program, TensorSpec, density, layers
from . import selftesting as selftests
from .manifest_schema import FORMAT_VERSION, LIBRARY, SELFTEST, validate

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 64 << 20


def versions() -> dict[str, str]:
    """Versions of the packages that shaped the artifact."""
    return {pkg: _version(pkg) for pkg in ("cascc", "apache-tvm", "torch", "numpy")}


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


def _is_artifact(path: Path) -> bool:
    """Whether `path` is a directory holding a cascc manifest (the only kind `--force` may replace)."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(manifest, dict) and "format" in manifest and isinstance(manifest.get("files"), dict)


def _backups(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.old.*"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(out: Path) -> list[str]:
    """Undo what a killed `compile -o out` left: a backup of the previous artifact is put back where `out`
    is missing, and temporary build folders of processes no longer running are removed. Returns what was
    done, one line each, for the caller to report."""
    out = Path(out)
    done = []
    if out.parent.is_dir():
        backups = [b for b in _backups(out) if not _pid_alive(_pid_of(b, out))]
        if backups and not out.exists() and _is_artifact(backups[-1]):
            backups[-1].rename(out)
            done.append(f"restored the previous artifact at {out} from {backups[-1].name}")
            backups = backups[:-1]
        for leftover in backups + [
            t for t in out.parent.glob(f".{out.name}.tmp.*") if not _pid_alive(_pid_of(t, out))
        ]:
            shutil.rmtree(leftover, ignore_errors=True)
            done.append(f"removed {leftover.name}, left by a killed build")
    return done


def _pid_of(path: Path, out: Path) -> int:
    """The pid in `.NAME.tmp.PID.XXXX` / `.NAME.old.PID` (0, never alive, if unreadable): read right after
    the kind, since NAME and mkdtemp's random suffix may hold digits too."""
    found = re.match(r"(?:tmp|old)\.([0-9]+)(?:\.|$)", path.name[len(out.name) + 2 :])
    return int(found[1]) if found else 0


def check_output(out: Path, *, force: bool = False, inputs: Sequence[Path] = ()) -> None:
    """Refuse an output directory before any work starts: one that exists without --force, one that
    --force may not replace (anything but a cascc artifact, or a folder holding an input), a path under
    a file, or a parent that cannot be written."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        if not force:
            raise OptionError(
                out, "the output directory already exists", "pass --force to replace it, or choose another -o"
            )
        if out.is_symlink() or not out.is_dir():
            raise OptionError(out, "exists and is not a directory", "choose another -o")
        if not _is_artifact(out):
            raise OptionError(
                out,
                "is not a cascc artifact (no cascc manifest.json), and --force replaces only artifacts",
                "choose an empty or new -o directory; remove the folder yourself if it really should go",
            )
        resolved = out.resolve()
        held = [p for p in inputs if resolved in Path(p).resolve().parents]
        if held:
            raise OptionError(out, f"holds an input of this command ({held[0]})", "choose another -o")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OptionError(out, f"{parent} is a file, so the directory cannot be made", "choose another -o")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OptionError(out, f"{parent} is not writable", "choose a -o you can write to")


@contextlib.contextmanager
def atomic_directory(out: Path, *, force: bool = False, inputs: Sequence[Path] = ()) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces `out`, on failure it is removed.

    Replacing keeps an artifact at `out` as long as possible: the old one is renamed to a backup, the new
    one renamed into place, then the backup deleted; `recover` puts a backup back if a kill came between."""
    out = Path(out)
    check_output(out, force=force, inputs=inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp.{os.getpid()}.", dir=out.parent))
    try:
        yield tmp
    except OSError as exc:  # a full disk or a folder that turned read-only mid-write
        shutil.rmtree(tmp, ignore_errors=True)
        raise OptionError(
            out,
            f"writing the artifact failed ({exc.strerror or exc})",
            "free disk space or choose another -o",
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        check_output(out, force=force, inputs=inputs)  # still an artifact after the build
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
        rule = program.precisions.get(layer.name)
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
                # the typed decision: DecisionKind's value, and the Decline's name where it ran dense
                "kernel_kind": decision.kind.value if decision else None,
                "decline": decision.decline.name if decision and decision.decline else None,
                "precision": decision.precision if decision else "fp32",
                **({"precision_reason": rule.reason} if rule is not None and rule.reason else {}),
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
    protect: Sequence[Path] = (),
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
    for c, (xs, ys) in enumerate(zip(cases, expected, strict=True)):
        prefix = f"case{c}_" if c else ""  # case 0 keeps the plain names `run` and `bench` read
        arrays.update({f"{prefix}input_{i}": x for i, x in enumerate(xs)})
        arrays.update({f"{prefix}output_{i}": y for i, y in enumerate(ys)})
    with atomic_directory(out, force=force, inputs=protect) as tmp:
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
        manifest["size"] = lowered.sizes()
        device_modules = lowered.device_code()
        if device_modules:
            manifest["target"]["device_code"] = device_modules
        if evaluation is not None:
            manifest["evaluation"] = dict(evaluation)
        validate(json.loads(json.dumps(manifest)), str(out / MANIFEST))  # the writer keeps to the schema
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _torch_outputs(program: Program, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        out = program.module()(*[torch.from_numpy(x) for x in inputs])
    # outputs in torch.export's order: a dict or nested tuple flattens as the exported graph returns it
    return [o.detach().numpy() for o in torch.utils._pytree.tree_leaves(out)]


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
        try:
            with np.load(self.path / SELFTEST, allow_pickle=False) as data:
                inputs = [data[f"{prefix}input_{i}"] for i in range(len(self.manifest["inputs"]))]
                outputs = [data[f"{prefix}output_{i}"] for i in range(len(self.manifest["outputs"]))]
            for x, spec in zip(inputs, self.inputs, strict=True):
                if tuple(x.shape) != spec.shape or str(x.dtype) != spec.dtype:
                    raise ValueError(f"an input is {x.dtype}{list(x.shape)}, not the signature's")
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
            raise ArtifactError(
                self.path / SELFTEST,
                f"unusable self-test data ({first_paragraph(exc, 200)})",
                "recompile the artifact",
            ) from exc
        return inputs, outputs

    @property
    def digest(self) -> str:
        """sha256 of manifest.json: it lists every file's sha256, so it pins the whole artifact."""
        return manifest_digest(self.path)

    @property
    def tolerance(self) -> selftests.Tolerance:
        """The self-test tolerance, recomputed from the recorded accumulation depth (range-checked) and the
        stored (hashed) expected outputs, so an edited rtol or atol in the manifest changes nothing."""
        cases = range(int(self.manifest["selftest"]["cases"]))
        depth = int(self.manifest["selftest"]["accumulation_depth"])
        return selftests.tolerance(depth, [self.selftest_data(c)[1] for c in cases])


def manifest_digest(path: Path) -> str:
    return "sha256:" + file_sha256(Path(path) / MANIFEST)


def open_artifact(path: Path, *, expect_digest: str | None = None) -> Artifact:
    """Check the artifact before anything in it is used: the manifest's digest (when `expect_digest` pins
    it), its schema, that it lists exactly the artifact's files as plain files inside the directory (no
    extra files, no links), and every file's size and sha256."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise ArtifactError(path, "no such artifact directory", "pass the -o directory of `cascc compile`")
    if not manifest_path.is_file() or manifest_path.is_symlink():
        raise ArtifactError(
            path, f"no {MANIFEST} in the directory", "pass a directory written by `cascc compile`"
        )
    if expect_digest is not None:
        digest = manifest_digest(path)
        if digest != _normal_digest(expect_digest):
            raise ArtifactError(
                manifest_path,
                f"its digest is {digest}, not the expected {_normal_digest(expect_digest)}: this is not "
                "the artifact you pinned",
                "use the artifact whose digest `cascc compile` printed, or update the pinned digest",
            )
    if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ArtifactError(manifest_path, "the manifest is implausibly large", "recompile the artifact")
    try:
        manifest = json.loads(manifest_path.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ArtifactError(
            manifest_path, f"unreadable manifest ({type(exc).__name__})", "recompile the artifact"
        ) from exc
    validate(manifest, str(manifest_path))
    present = {entry.name for entry in path.iterdir()} - {MANIFEST}
    extra = sorted(present - set(manifest["files"]))
    if extra:
        raise ArtifactError(
            path,
            f"holds files its manifest does not list: {', '.join(extra[:5])}",
            "use the directory exactly as `cascc compile` wrote it",
        )
    for name, facts in manifest["files"].items():
        file = path / name
        if file.is_symlink() or not file.is_file():
            raise ArtifactError(
                file, "listed in the manifest but missing or not a plain file", "recompile the artifact"
            )
        if file.stat().st_size != facts["bytes"] or file_sha256(file) != facts["sha256"]:
            raise ArtifactError(
                file,
                "size or sha256 does not match the manifest: the file was changed after compilation",
                "recompile the artifact; never edit its files",
            )
    return Artifact(path, manifest)


def _normal_digest(text: str) -> str:
    text = text.strip().lower()
    return text if text.startswith("sha256:") else f"sha256:{text}"
