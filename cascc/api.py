"""The public library API: compile a model to an artifact; running, self-testing and benchmarking one
come from `cascc.runtime` and are re-exported here."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ArtifactError, ModelLoadError, OptionError, PassWarning
from .frontends import load_model
from .ir import Program
from .recipe import Recipe
from .runtime import artifact as artifacts
from .runtime.bench import BASELINES, bench
from .runtime.replay import replay
from .runtime.running import load_inputs, run, selftest
from .runtime.selftesting import SelfTest

Stage = Callable[[str], None]


@dataclass(frozen=True)
class CompileResult:
    """What `compile` produced: the final Program, the artifact directory and its manifest."""

    program: Program
    path: Path
    manifest: dict[str, Any]
    digest: str  # sha256 of manifest.json, which pins every file: pass it to --expect-digest


def sparsify(
    model: str | Path | Program,
    recipe: Recipe,
    *,
    seed: int = 0,
    stage: Stage | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    strict: bool = False,
) -> Program:
    """Import `model` (unless it is already a Program) and run the recipe's passes on it."""
    from . import passes

    say = stage or (lambda _msg: None)
    passes.density.check_sparsity(recipe.sparsity)
    steps = recipe.steps()  # option errors before the costly import
    say("importing the model")
    program = load_model(model, seed=seed, input_shapes=input_shapes, strict=strict)
    if steps:
        say(f"running {', '.join(name for name, _ in steps)}")
    return passes.run(program, steps)


def prune(
    model: str | Path | Program,
    recipe: Recipe,
    *,
    out: str | Path,
    seed: int = 0,
    stage: Stage | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    strict: bool = False,
    quantize: Mapping[str, Any] | None = None,
) -> Program:
    """Sparsify `model` with `recipe` and save it as a `.pt2` (masks, precisions and history kept) at
    `out`; `quantize` (the `quantize.ptq` options) makes its linear and conv layers int8."""
    from .frontends.torch import save_pt2

    program = sparsify(model, recipe, seed=seed, stage=stage, input_shapes=input_shapes, strict=strict)
    program = _quantize(program, quantize, stage)
    save_pt2(program, Path(out))
    return program


def export_onnx(
    source: str | Path,
    out: str | Path,
    *,
    sparse_initializers: bool = False,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    seed: int = 0,
    model: str | None = None,
) -> Program:
    """Write a model (`file.py:factory`, `.pt2`, `.onnx`) or a compiled artifact's Program as ONNX; for an
    artifact, `model` is its source model, given by the caller (never read from the manifest)."""
    from .onnx_export import export_onnx as write_onnx

    if Path(source).is_dir():
        art = artifacts.open_artifact(Path(source))
        program = replay(art, model, purpose="exporting an artifact to ONNX")
    else:
        from . import frontends

        program = frontends.load(source, seed=seed, input_shapes=input_shapes)
    write_onnx(program, Path(out), sparse_initializers=sparse_initializers)
    return program


def analyze(
    model: str | Path | Program,
    recipe: Recipe | None = None,
    *,
    data: str | None = None,
    html: str | Path | None = None,
    seed: int = 0,
    stage: Stage | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
):
    """Cascade analysis of `model` after `recipe` (if given); optionally writes the HTML report."""
    from .passes.analysis import analyze as cascade_analysis

    program = sparsify(model, recipe or Recipe(), seed=seed, stage=stage, input_shapes=input_shapes)
    if stage:
        stage("analyzing the cascade")
    report = cascade_analysis(program, data=data)
    if html is not None:
        from .report_html import write_html

        if stage:
            stage("writing the HTML report")
        write_html(report, Path(html))
    return report


def compile(
    model: str | Path | Program,
    *,
    target: str = "x86",
    sparsity: float = 0.0,
    recipe: Recipe | None = None,
    out: str | Path,
    seed: int = 0,
    force: bool = False,
    cpu: str | None = None,
    measure: bool = False,
    finetune: Mapping[str, Any] | None = None,
    stage: Stage | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    strict: bool = False,
    quantize: Mapping[str, Any] | None = None,
) -> CompileResult:
    """Import `model`, sparsify it (`recipe`, or magnitude pruning to `sparsity`), optionally fine-tune it
    with its masks fixed (`finetune`: `data` and train.finetune options), lower it for `target` and write the
    artifact to `out`. With fine-tuning, the manifest also holds the test-split comparison with the model as
    imported (accuracy per class and under noise/FGSM). `quantize` (the `quantize.ptq` options) makes the
    linear and conv layers int8; with fine-tuning it comes first, so the fine-tuning is quantization-aware
    (`train.finetune` on the simulated int8 model)."""
    from . import passes
    from .lower import lower
    from .targets import get as get_target

    say = stage or (lambda _msg: None)
    tgt = get_target(target, cpu=cpu)
    if quantize is not None and tgt.kernels != "cpu":
        raise OptionError(
            target,
            "cascc's int8 kernels are CPU kernels",
            "compile for x86 or arm64, or with --precision fp32",
        )
    recipe = recipe or Recipe(sparsity=sparsity)
    for line in artifacts.recover(Path(out)):
        warnings.warn(line, PassWarning, stacklevel=2)
    from .frontends import model_file

    inputs = [] if isinstance(model, Program) else [model_file(model)]
    artifacts.check_output(Path(out), force=force, inputs=inputs)  # before any of the costly work
    evaluation = None
    if finetune is None:
        program = sparsify(model, recipe, seed=seed, stage=say, input_shapes=input_shapes, strict=strict)
        program = _quantize(program, quantize, say)
    else:
        from .data import load
        from .passes.evaluate import compare

        if "data" not in finetune:
            raise OptionError(None, "fine-tuning needs a data set", "pass --data with --finetune")
        data = load(finetune["data"])
        recipe.steps()  # option errors before the costly import
        say("importing the model")
        start = load_model(model, seed=seed, input_shapes=input_shapes, strict=strict)
        program = sparsify(start, recipe, seed=seed, stage=say)
        program = _quantize(program, quantize, say)  # int8: fine-tuning is quantization-aware
        say(f"fine-tuning{' int8-aware' if program.int8_layers else ''} with the masks fixed")
        program = passes.run(program, [("train.finetune", {"seed": seed, **finetune})])
        say("evaluating against the imported model")
        evaluation = compare(start, program, data, seed=seed).to_json()
    _check_float32(program)
    say(f"lowering for {tgt.name} with TVM")
    lowered = lower(program, tgt, measure=measure)
    say("writing the artifact")
    manifest = artifacts.write(
        Path(out), program, lowered, force=force, evaluation=evaluation, protect=inputs
    )
    return CompileResult(program, Path(out), manifest, artifacts.manifest_digest(Path(out)))


def _quantize(program: Program, options: Mapping[str, Any] | None, stage: Stage | None) -> Program:
    """`program` after int8 post-training quantization with `options` (unchanged for None)."""
    from . import passes

    if options is None:
        return program
    if stage:
        stage("calibrating int8 ranges")
    return passes.run(program, [("quantize.ptq", dict(options))])


def _check_float32(program: Program) -> None:
    """cascc's kernels and TVM's import are float32: another float type is refused before lowering."""
    floats = {spec.dtype for spec in program.inputs if spec.dtype.startswith(("float", "bfloat"))}
    floats |= {str(w.dtype).removeprefix("torch.") for w in program.weights.values() if w.is_floating_point()}
    other = sorted(floats - {"float32"})
    if other:
        raise ModelLoadError(
            program.source,
            f"the model computes in {', '.join(other)}; cascc compiles float32 models",
            "convert it with model.float() and float32 example inputs",
        )


__all__ = [
    "BASELINES",
    "ArtifactError",
    "CompileResult",
    "SelfTest",
    "analyze",
    "bench",
    "compile",
    "load_inputs",
    "load_model",
    "prune",
    "run",
    "selftest",
    "sparsify",
]
