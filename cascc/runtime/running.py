"""Run an artifact here: its inputs checked against the signature, its library loaded, its self-test."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ArtifactError, OptionError
from .artifact import LIBRARY, Artifact, open_artifact
from .selftesting import CALLS, SelfTest, judge


def run(
    path: str | Path, inputs: Sequence[np.ndarray], *, expect_digest: str | None = None
) -> list[np.ndarray]:
    """Run an artifact on numpy inputs (checked against its signature) and return its outputs."""
    art = open_artifact(Path(path), expect_digest=expect_digest)
    check_inputs(art, inputs)
    return open_session(art).run(inputs)


def open_session(art: Artifact, threads: int | None = None):
    """The artifact's library loaded with the TVM runtime (refused for targets this machine cannot run)."""
    from .session import Session

    check_runs_here(art)
    sha = art.manifest["files"][LIBRARY]["sha256"]
    return Session(art.library, art.manifest["target"]["device"], sha256=sha, threads=threads)


def selftest(path: str | Path, *, expect_digest: str | None = None) -> SelfTest:
    """Run the artifact on its sample input, its second stored input and the sample again, each against
    the torch-eager output stored at compile time, at the artifact's tolerance (`cascc.selftesting`)."""
    art = open_artifact(Path(path), expect_digest=expect_digest)
    session = open_session(art)
    cases = [art.selftest_data(case) for case in range(int(art.manifest["selftest"]["cases"]))]
    got = [session.run(cases[case][0]) for case, _ in CALLS]
    return judge(got, [cases[case][1] for case, _ in CALLS], art.tolerance, [label for _, label in CALLS])


def load_inputs(
    path: str | Path, art_path: str | Path, *, expect_digest: str | None = None
) -> list[np.ndarray]:
    """Inputs from a `.npy` (single-input models) or a `.npz` keyed by input name, in signature order."""
    art = open_artifact(Path(art_path), expect_digest=expect_digest)
    file = Path(path)
    if not file.is_file():
        raise OptionError(file, "no such input file", "pass a .npy array or a .npz keyed by input name")
    names = [s.name for s in art.inputs]
    try:
        data = np.load(file, allow_pickle=False)
    except Exception as exc:
        raise OptionError(
            file, f"not a numpy .npy/.npz file ({exc})", "save inputs with numpy.save or numpy.savez"
        ) from exc
    if isinstance(data, np.ndarray):
        if len(names) != 1:
            raise OptionError(
                file,
                f"the model has {len(names)} inputs ({', '.join(names)}) but a .npy holds one",
                "pass a .npz with one array per input name",
            )
        return [data]
    with data:
        missing = [n for n in names if n not in data.files]
        if missing:
            raise OptionError(
                file,
                f"missing input(s) {', '.join(missing)} (file has {', '.join(data.files) or 'none'})",
                "name the arrays after the model's inputs",
            )
        return [data[n] for n in names]


def check_runs_here(art: Artifact) -> None:
    from ..targets import TARGETS
    from .session import device_present

    name = art.manifest["target"]["name"]
    device = art.manifest["target"]["device"]
    on_device = device != "cpu" and device_present(device)
    if name in TARGETS and not TARGETS[name].runs_on_host and not on_device:
        raise ArtifactError(
            art.path,
            f"this artifact is built for {name} and cannot run on this machine",
            f"copy it to the {name} device and run it there (or under emulation, see the README)",
        )


def check_inputs(art: Artifact, inputs: Sequence[np.ndarray]) -> None:
    specs = art.inputs
    if len(inputs) != len(specs):
        raise OptionError(
            art.path, f"expected {len(specs)} input(s), got {len(inputs)}", "pass one array per model input"
        )
    for spec, x in zip(specs, inputs, strict=True):
        if tuple(x.shape) != spec.shape or str(x.dtype) != spec.dtype:
            raise OptionError(
                art.path,
                f"input {spec.name!r} must be {spec.dtype}{list(spec.shape)}, got {x.dtype}{list(x.shape)}",
                "reshape/cast the input to the compiled signature",
            )
