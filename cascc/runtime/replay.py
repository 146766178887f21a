"""Rebuild the Program an artifact was compiled from: its source model (given by the caller, never read
from the manifest) and the passes its manifest records. `replay` is the one place this happens: export of
an artifact, the bench/check baselines and check's dense reference all go through it."""

from __future__ import annotations

from pathlib import Path

from ..errors import OptionError
from ..ir import Program
from .artifact import Artifact


def replay(art: Artifact, model: str | None, *, purpose: str, passes: bool = True) -> Program:
    """The Program artifact `art` was compiled from, rebuilt from its source `model` (given by the caller:
    None is an error saying `purpose` needs it) imported as at compile time — the manifest's seed, and an
    ONNX model's symbolic dimensions fixed by the compiled signature as `--input-shape` fixed them — then,
    with `passes`, the recorded passes it does not carry yet (without: the dense reference)."""
    from .. import frontends
    from .. import passes as registry

    if model is None:
        raise OptionError(
            None,
            f"{purpose} needs the artifact's source model, and cascc never imports the code an artifact's "
            "manifest names",
            "pass the model the artifact was compiled from with --model (e.g. --model model.py:factory)",
        )
    seed = int(art.manifest["source"]["seed"])
    shapes = None
    if str(model).lower().endswith(".onnx"):
        from ..frontends.onnx import input_names

        names = input_names(Path(model))
        if len(names) != len(art.inputs):
            raise OptionError(
                model,
                f"the model has {len(names)} input(s) and the artifact {len(art.inputs)}: it is not the model the "
                "artifact was compiled from",
                "pass the ONNX file the artifact was compiled from",
            )
        shapes = {name: spec.shape for name, spec in zip(names, art.inputs, strict=True)}
    program = frontends.load(model, seed=seed, input_shapes=shapes)
    if not passes:
        return program
    recorded = [(p["name"], p["options"]) for p in art.manifest["passes"]]
    return registry.run(program, recorded[len(program.history) :])


def baseline_module(art: Artifact, model: str | None):
    """The original nn.Module with the artifact's masks: its factory `model` (given by the caller, never
    read from the manifest) called as at compile time, holding the weights `replay` rebuilds."""
    from ..frontends import torch as torch_frontend
    from .baselines import masked_module

    head, sep, factory = str(model).rpartition(":")
    if model is not None and not (sep and head.endswith(".py")):
        raise OptionError(
            model,
            "a baseline needs the model's Python factory (file.py:factory)",
            "pass --model file.py:factory, or drop --baseline",
        )
    program = replay(art, model, purpose="a baseline")
    module, _ = torch_frontend.call_factory(Path(head), factory, seed=int(art.manifest["source"]["seed"]))
    return masked_module(module, program)
