"""Load and run an artifact's library with the TVM runtime (the one runtime module that imports tvm)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cascc.errors import ArtifactError, first_paragraph
from cascc.files import file_sha256


def device_present(device: str) -> bool:
    """Whether this machine has a `device` (e.g. "cuda") the TVM runtime can use."""
    import tvm

    return bool(tvm.device(device, 0).exist)  # False without a driver or runtime support


def content_addressed(library: Path, sha256: str) -> Path:
    """A verified private copy of the library, named by its hash, to load in its place.

    dlopen caches handles by path, so a library replaced in place (`compile --force`) would otherwise keep
    running its old code inside one process. The copy lives in an owner-only directory that is checked
    (owner, mode, not a link) before every use, and its sha256 is checked against `sha256` (the
    manifest's) every time before it is loaded: a planted or replaced cached copy is never run."""
    cache = Path(tempfile.gettempdir()) / f"cascc-libs-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        cache.mkdir(mode=0o700)
    facts = os.lstat(cache)
    if not stat.S_ISDIR(facts.st_mode) or facts.st_uid != os.getuid() or facts.st_mode & 0o077:
        raise ArtifactError(
            cache,
            f"the library cache is not a private directory (owner uid {facts.st_uid}, mode "
            f"{stat.filemode(facts.st_mode)}), so a library in it could have been planted",
            "remove it; cascc recreates it owner-only (mode 0700)",
        )
    target = cache / f"{sha256}.so"
    if target.exists() and _verified(target, sha256):
        return target
    handle, name = tempfile.mkstemp(prefix=f".{sha256[:16]}.", suffix=".tmp", dir=cache)
    os.close(handle)
    tmp = Path(name)
    try:
        shutil.copyfile(library, tmp)
        if file_sha256(tmp) != sha256:
            raise ArtifactError(
                library,
                "its sha256 no longer matches the manifest: it changed after the artifact was verified",
                "recompile the artifact; never edit its files",
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _verified(path: Path, sha256: str) -> bool:
    """Whether `path` is a regular file of ours, writable by nobody else, holding exactly `sha256`."""
    facts = os.lstat(path)
    return (
        stat.S_ISREG(facts.st_mode)
        and facts.st_uid == os.getuid()
        and not facts.st_mode & 0o022
        and file_sha256(path) == sha256
    )


class Session:
    """A loaded artifact library bound to a device, ready to run."""

    def __init__(
        self, library: Path, device: str = "cpu", *, sha256: str | None = None, threads: int | None = None
    ):
        import tvm
        from tvm import relax

        if threads:
            set_threads(threads)
        path = content_addressed(library, sha256 or file_sha256(library))
        try:
            lib = tvm.runtime.load_module(str(path))
        except Exception as exc:
            raise ArtifactError(
                library,
                f"the TVM runtime cannot load it: {first_paragraph(exc)}",
                "rebuild the artifact for this machine's target",
            ) from exc
        self._tvm = tvm
        self.library = library
        self.device = tvm.device(device, 0)
        self.vm = relax.VirtualMachine(lib, self.device)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run `main` on numpy inputs and return the outputs as numpy arrays. The inputs were checked
        against the manifest's signature, so a library that rejects them is not the one it describes."""
        try:
            out = self.vm["main"](*self.to_device(inputs))
        except Exception as exc:
            raise ArtifactError(
                self.library,
                f"the library rejects inputs of its manifest's signature ({first_paragraph(exc, 200)}): it is "
                "not the library the manifest describes",
                "recompile the artifact; never swap its files",
            ) from exc
        return [t.numpy() for t in flatten(out)]

    def to_device(self, inputs: Sequence[np.ndarray]) -> list[Any]:
        return [self._tvm.runtime.tensor(np.ascontiguousarray(x), self.device) for x in inputs]

    def runner(self, inputs: Sequence[np.ndarray]):
        """A no-argument callable running `main` on inputs already on the device (for timing)."""
        args = self.to_device(inputs)
        main = self.vm["main"]
        sync = self.device.sync
        return lambda: (main(*args), sync())


def set_threads(threads: int) -> None:
    """Size TVM's CPU thread pool (TVM otherwise decides by itself, sometimes one thread on small VMs)."""
    import tvm_ffi

    tvm_ffi.get_global_func("runtime.config_threadpool")(0, int(threads))


def flatten(value: Any) -> list[Any]:
    """The tensors of a VM result, nested tuples flattened in order."""
    if hasattr(value, "numpy"):
        return [value]
    result = []
    for item in value:
        result.extend(flatten(item))
    return result
