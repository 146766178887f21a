"""PyTorch frontend: a `file.py:factory`, an in-memory nn.Module, or a `.pt2` torch.export file."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import torch

from ..errors import ModelLoadError, first_paragraph
from ..files import atomic_file
from ..ir import PassRecord, Program, from_exported, verify
from ..ir.quant import LayerPrecision

# Extra file in a cascc-written .pt2: which weights are masked (their zeros are the mask) and the history.
CASCC_EXTRA = "cascc.json"


def from_module(
    module: torch.nn.Module, example_inputs: tuple, *, source: str = "<module>", seed: int = 0
) -> Program:
    """Export an nn.Module in eval mode to core ATen and wrap it as a Program."""
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(
            source,
            f"expected a torch.nn.Module, got {type(module).__name__}",
            "return (module, example_inputs) from the factory",
        )
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if not isinstance(example_inputs, tuple) or not all(isinstance(t, torch.Tensor) for t in example_inputs):
        raise ModelLoadError(
            source,
            f"example_inputs must be a tuple of tensors (got {type(example_inputs).__name__})",
            "return (module, (x,)) from the factory",
        )
    try:  # eager first: a wrong input width or dtype is the user's to fix, said plainly (export logs it)
        with torch.no_grad():
            module.eval()(*example_inputs)
    except Exception as exc:
        raise ModelLoadError(
            source,
            f"the model fails on its own example inputs: {type(exc).__name__}: {first_paragraph(exc)}",
            "return example inputs of the shape and dtype forward() takes",
        ) from exc
    try:
        ep = torch.export.export(module.eval(), example_inputs)
        ep = ep.run_decompositions()
    except Exception as exc:  # torch raises many types here; show its reason once, in one paragraph
        raise ModelLoadError(
            source,
            f"torch.export rejected the model: {first_paragraph(exc)}",
            "make forward() traceable (no data-dependent Python control flow, no "
            "unsupported ops), or export it yourself and pass the .pt2",
        ) from exc
    return _wrap(ep, source, seed)


def load_factory(path: Path, factory: str, *, seed: int = 0) -> Program:
    """Import `path` as a module and call `factory()`, which returns (module, example_inputs)."""
    module, example_inputs = call_factory(path, factory, seed=seed)
    return from_module(module, example_inputs, source=f"{path}:{factory}", seed=seed)


def call_factory(path: Path, factory: str, *, seed: int = 0) -> tuple[torch.nn.Module, tuple]:
    """Import `path` and return what `factory()` returns, checked to be (module, example_inputs)."""
    ref = f"{path}:{factory}"
    if not path.is_file():
        raise ModelLoadError(path, "no such file", "check the path of the model file")
    module_name = "cascc_user_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(path, "cannot be imported as a Python module", "pass a .py file")
    user = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = user
    try:
        with contextlib.redirect_stdout(sys.stderr):  # the model's prints never corrupt --json on stdout
            spec.loader.exec_module(user)
    except (Exception, SystemExit) as exc:  # a file that calls sys.exit() must not end cascc with its code
        raise ModelLoadError(
            path,
            f"importing the file raised {type(exc).__name__}: {first_paragraph(exc)}",
            "fix the error in the model file",
        ) from exc
    fn = getattr(user, factory, None)
    if not callable(fn):
        available = sorted(
            n
            for n, v in vars(user).items()
            if callable(v) and not n.startswith("_") and getattr(v, "__module__", None) == module_name
        )
        hint = f"available: {', '.join(available)}" if available else "the file defines no functions"
        raise ModelLoadError(
            path,
            f"has no factory function {factory!r} ({hint})",
            f"write the model reference as `{path}:NAME`",
        )
    torch.manual_seed(seed)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = fn()
    except (Exception, SystemExit) as exc:
        raise ModelLoadError(
            ref,
            f"the factory raised {type(exc).__name__}: {first_paragraph(exc)}",
            "fix the factory so it runs without arguments",
        ) from exc
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ModelLoadError(
            ref,
            f"the factory returned {_describe(result)}, expected (module, example_inputs)",
            "return a pair: the nn.Module and a tuple of example input tensors",
        )
    module, example_inputs = result
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(
            ref,
            f"the factory returned {_describe(module)} as the module, expected a torch.nn.Module",
            "return (module, example_inputs) from the factory",
        )
    return module, example_inputs


def load_pt2(path: Path, *, seed: int = 0) -> Program:
    """Load a torch.export `.pt2` file (torch.export.save) and decompose it to core ATen.

    The archive is untrusted: nothing in it is unpickled, a graph calling anything but registered
    operators is refused before it runs, and cascc's own metadata is checked field by field."""
    from .safe_pt2 import PickleRefused, foreign_targets, without_pickle

    if not path.is_file():
        raise ModelLoadError(path, "no such file", "check the path of the .pt2 file")
    extra = {CASCC_EXTRA: ""}
    logged: list[str] = []
    try:
        with without_pickle() as logged:
            ep = torch.export.load(path, extra_files=extra)
    except PickleRefused as exc:
        raise ModelLoadError(
            path,
            f"the archive needs Python unpickling to load ({exc}), which can run arbitrary code; cascc "
            "never unpickles a model file",
            "re-save it with torch.export.save from a plain-tensor model (no pickled weights, constants or "
            "sample inputs)",
        ) from exc
    except Exception as exc:
        # torch's own message may only point at the warnings it logged: show their cause instead
        reason = logged[-1] if logged and "warnings above" in str(exc) else first_paragraph(exc)
        raise ModelLoadError(
            path,
            f"not a readable torch.export archive: {first_paragraph(ValueError(reason), 300)}",
            "write it with torch.export.save(torch.export.export(model, args), path)",
        ) from exc
    foreign = foreign_targets(ep.graph)
    if foreign:
        raise ModelLoadError(
            path,
            f"the graph calls {', '.join(foreign[:5])}, which are not registered operators",
            "export the model with torch.export from a current torch; cascc runs ATen operators only",
        )
    # The archive's input guards are Python source that torch compiles when it unlifts the program: code.
    # torch.export writes none for the programs cascc compiles (static shapes; dynamic ones too, today).
    if ep._guards_code:
        raise ModelLoadError(
            path,
            f"the archive carries {len(ep._guards_code)} input guard(s), Python source that torch would "
            "compile and run; cascc never runs code from a model file",
            "re-export the model with torch.export.save (which writes none for static-shape programs)",
        )
    try:
        with without_pickle():  # decomposition logs too, and must not reach a pickle or sympy string either
            ep = ep.run_decompositions()
    except Exception as exc:
        raise ModelLoadError(
            path,
            f"decomposing to core ATen failed: {first_paragraph(exc)}",
            "re-export the model with a current torch",
        ) from exc
    program = _wrap(ep, str(path), seed)
    if not extra[CASCC_EXTRA]:
        return program
    masked, history, transposed, precisions = _cascc_metadata(path, extra[CASCC_EXTRA], program)
    program = dataclasses.replace(
        program,
        masks={name: program.weights[name] != 0 for name in masked},
        history=history,
        transposed=program.transposed | transposed,
        precisions=precisions,
    )
    try:
        verify(program)
    except ValueError as exc:
        raise ModelLoadError(
            path, f"its cascc metadata does not fit the model: {exc}", "re-create it with `cascc prune`"
        ) from exc
    return program


def _cascc_metadata(path: Path, text: str, program: Program):
    """(masked names, history, transposed names, precisions) from a cascc-written .pt2's metadata, every
    field checked."""
    from ..passes import PASSES

    def bad(problem: str) -> ModelLoadError:
        return ModelLoadError(
            path, f"its cascc metadata ({CASCC_EXTRA}) {problem}", "re-create it with `cascc prune`"
        )

    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise bad(f"is not JSON ({first_paragraph(exc, 120)})") from exc
    if not isinstance(meta, dict):
        raise bad("is not a JSON object")
    names = {key: meta.get(key, []) for key in ("masked", "transposed")}
    for key, value in names.items():
        if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
            raise bad(f"has a {key!r} that is not a list of names")
        unknown = sorted(set(value) - set(program.weights))
        if unknown:
            raise bad(f"lists {key} weights the model does not have: {', '.join(unknown[:5])}")
    records = meta.get("history", [])
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and isinstance(r.get("name"), str) and isinstance(r.get("options"), dict)
        for r in records
    ):
        raise bad("has a 'history' that is not a list of {name, options} records")
    unknown = sorted({r["name"] for r in records} - set(PASSES))
    if unknown:
        raise bad(f"names passes this cascc does not have: {', '.join(unknown)}")
    history = tuple(PassRecord(r["name"], r["options"]) for r in records)
    precisions = meta.get("precisions", {})
    if not isinstance(precisions, dict) or not set(precisions) <= set(program.weights):
        raise bad("has 'precisions' that are not a map from the model's weights")
    try:
        precisions = {name: LayerPrecision.from_json(p) for name, p in precisions.items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise bad(f"has a layer precision out of range ({first_paragraph(exc, 120)})") from exc
    return names["masked"], history, frozenset(names["transposed"]), precisions


def save_pt2(program: Program, path: Path) -> Path:
    """Write `program` as a `.pt2` with masked weights zeroed; cascc's loader restores masks and history.

    Written to a temporary file and renamed, so a failed save never leaves a half-written file.
    """
    path = Path(path)
    if path.suffix.lower() != ".pt2":
        raise ModelLoadError(path, "the output must be a .pt2 file", "name it e.g. pruned.pt2")
    exported = program.with_weights({n: w for n, w in program.masked_weights().items() if n in program.masks})
    meta = {
        "masked": sorted(program.masks),
        "history": [r.to_json() for r in program.history],
        "transposed": sorted(program.transposed),
        "precisions": {name: p.to_json() for name, p in program.precisions.items()},
    }
    with atomic_file(path) as tmp:
        torch.export.save(exported.exported, tmp, extra_files={CASCC_EXTRA: json.dumps(meta, sort_keys=True)})
    return path


def _wrap(ep: torch.export.ExportedProgram, source: str, seed: int) -> Program:
    from .cleanup import clean

    try:
        ep = clean(ep)
        program = from_exported(ep, source=source, frontend="torch", seed=seed)
    except TypeError as exc:
        raise ModelLoadError(
            source, str(exc), "export with static example shapes (no dynamic_shapes)"
        ) from exc
    if not program.outputs:
        raise ModelLoadError(
            source, "the model returns no tensors", "return the output tensor(s) from forward()"
        )
    return program


def _describe(value: object) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return f"a {type(value).__name__}"
