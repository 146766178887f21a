"""The public library API: compile a model to an artifact, run an artifact, self-test it."""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import artifact as artifacts
from .errors import ArtifactError, ModelLoadError, OptionError, PassWarning
from .ir import Program
from .recipe import Recipe
from .selftesting import CALLS, SelfTest, judge

Stage = Callable[[str], None]


@dataclass(frozen=True)
class CompileResult:
    """What `compile` produced: the final Program, the artifact directory and its manifest."""

    program: Program
    path: Path
    manifest: dict[str, Any]
    digest: str  # sha256 of manifest.json, which pins every file: pass it to --expect-digest


def load_model(
    model: str | Path | Program,
    *,
    seed: int = 0,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    strict: bool = False,
) -> Program:
    """`model` itself if it is a Program, else the Program its frontend imports. Weights holding NaN or
    Inf are a warning naming them, or with `strict` an error."""
    if isinstance(model, Program):
        return model
    from . import frontends

    program = frontends.load(model, seed=seed, input_shapes=input_shapes)
    empty = [spec.name for spec in program.inputs if 0 in spec.shape]
    if empty:
        raise ModelLoadError(
            model,
            f"input(s) {', '.join(empty)} have a zero-size dimension",
            "give every input at least one element",
        )
    bad = [name for name, w in program.weights.items() if w.is_floating_point() and not w.isfinite().all()]
    if bad:
        problem = f"weight(s) {', '.join(bad[:5])}{' …' if len(bad) > 5 else ''} hold NaN or Inf"
        if strict:
            raise ModelLoadError(
                model, problem, "fix the model's weights, or drop --strict to compile anyway"
            )
        warnings.warn(
            f"{model}: {problem}; the compiled model will propagate them", PassWarning, stacklevel=2
        )
    return program


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
) -> Program:
    """Sparsify `model` with `recipe` and save it as a `.pt2` (masks and history kept) at `out`."""
    from .frontends.torch import save_pt2

    program = sparsify(model, recipe, seed=seed, stage=stage, input_shapes=input_shapes, strict=strict)
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
        program = program_of_artifact(art, needs_model(model, "exporting an artifact to ONNX", "--model"))
    else:
        from . import frontends

        program = frontends.load(source, seed=seed, input_shapes=input_shapes)
    write_onnx(program, Path(out), sparse_initializers=sparse_initializers)
    return program


def needs_model(model: str | None, purpose: str, option: str) -> str:
    """`model`, or a clear error: the source an artifact's manifest names is never imported, since anyone
    who can edit the manifest could point it at any Python file."""
    if model is None:
        raise OptionError(
            None,
            f"{purpose} needs the artifact's source model, and cascc never imports the code an artifact's "
            "manifest names",
            f"pass the model the artifact was compiled from with {option} (e.g. {option} model.py:factory)",
        )
    return model


def source_program(art: artifacts.Artifact, model: str) -> Program:
    """An artifact's source `model` (given by the caller) as imported, before any pass; an ONNX model's
    symbolic dimensions are fixed by the compiled signature, as `--input-shape` fixed them at compile."""
    from . import frontends

    seed = int(art.manifest["source"]["seed"])
    shapes = None
    if str(model).lower().endswith(".onnx"):
        from .frontends.onnx import input_names

        shapes = {name: spec.shape for name, spec in zip(input_names(Path(model)), art.inputs)}
    return frontends.load(model, seed=seed, input_shapes=shapes)


def program_of_artifact(art: artifacts.Artifact, model: str) -> Program:
    """Rebuild an artifact's Program from its source `model` (given by the caller), then the recorded passes
    it does not carry yet."""
    from . import passes

    program = source_program(art, model)
    recorded = [(p["name"], p["options"]) for p in art.manifest["passes"]]
    return passes.run(program, recorded[len(program.history) :])


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
) -> CompileResult:
    """Import `model`, sparsify it (`recipe`, or magnitude pruning to `sparsity`), optionally fine-tune it
    with its masks fixed (`finetune`: `data` and train.finetune options), lower it for `target` and write the
    artifact to `out`. With fine-tuning, the manifest also holds the test-split comparison with the model as
    imported (accuracy per class and under noise/FGSM)."""
    from . import passes
    from .lower import lower
    from .targets import get as get_target

    say = stage or (lambda _msg: None)
    tgt = get_target(target, cpu=cpu)
    recipe = recipe or Recipe(sparsity=sparsity)
    for line in artifacts.recover(Path(out)):
        warnings.warn(line, PassWarning, stacklevel=2)
    from .frontends import model_file

    inputs = [] if isinstance(model, Program) else [model_file(model)]
    artifacts.check_output(Path(out), force=force, inputs=inputs)  # before any of the costly work
    evaluation = None
    if finetune is None:
        program = sparsify(model, recipe, seed=seed, stage=say, input_shapes=input_shapes, strict=strict)
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
        say("fine-tuning with the masks fixed")
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


def run(
    path: str | Path, inputs: Sequence[np.ndarray], *, expect_digest: str | None = None
) -> list[np.ndarray]:
    """Run an artifact on numpy inputs (checked against its signature) and return its outputs."""
    art = artifacts.open_artifact(Path(path), expect_digest=expect_digest)
    _check_inputs(art, inputs)
    return _session(art).run(inputs)


def _session(art: artifacts.Artifact, threads: int | None = None):
    """The artifact's library loaded with the TVM runtime (refused for targets this machine cannot run)."""
    from .runtime.session import Session

    _check_runs_here(art)
    sha = art.manifest["files"][artifacts.LIBRARY]["sha256"]
    return Session(art.library, art.manifest["target"]["device"], sha256=sha, threads=threads)


def selftest(path: str | Path, *, expect_digest: str | None = None) -> SelfTest:
    """Run the artifact on its sample input, its second stored input and the sample again, each against
    the torch-eager output stored at compile time, at the artifact's tolerance (`cascc.selftesting`)."""
    art = artifacts.open_artifact(Path(path), expect_digest=expect_digest)
    session = _session(art)
    cases = [art.selftest_data(case) for case in range(int(art.manifest["selftest"]["cases"]))]
    got = [session.run(cases[case][0]) for case, _ in CALLS]
    return judge(got, [cases[case][1] for case, _ in CALLS], art.tolerance, [label for _, label in CALLS])


BASELINES = ("onnxruntime", "torch")


def bench(
    path: str | Path,
    *,
    rounds: int = 15,
    threads: int | None = None,
    baselines: Sequence[str] = (),
    rpc: str | None = None,
    key: str | None = None,
    model: str | None = None,
    expect_digest: str | None = None,
) -> dict[str, Any]:
    """Median/p90 latency of an artifact on its sample input, optionally interleaved with onnxruntime and
    torch eager running the same masked model (rebuilt from its source factory `model` and the recorded
    passes). With `rpc`
    (HOST:PORT of a TVM RPC server, or of a tracker when `key` names the device), the artifact runs and is
    timed on that remote device instead, after its self-test passed there."""
    import os

    import torch

    from .bench import measure

    art = artifacts.open_artifact(Path(path), expect_digest=expect_digest)
    if rpc is not None:
        return _bench_remote(art, rounds=rounds, rpc=rpc, key=key, baselines=baselines)
    if key is not None:
        raise OptionError(None, "--key names a device at a tracker", "pass the tracker with --rpc HOST:PORT")
    threads = threads or os.cpu_count() or 1
    inputs, _ = art.selftest_data()
    runners = {"cascc": _session(art, threads).runner(inputs)}
    if baselines:
        from .baselines import onnxruntime_runner, torch_runner

        module = _baseline_module(art, model)
        torch.set_num_threads(threads)
        example = [torch.from_numpy(x) for x in inputs]
        for name in baselines:
            if name not in BASELINES:
                raise OptionError(None, f"unknown baseline {name!r}", f"choose from {', '.join(BASELINES)}")
            runners[name] = (
                onnxruntime_runner(module, example, threads)
                if name == "onnxruntime"
                else torch_runner(module, example)
            )
    timings = measure(runners, rounds=rounds)
    base = timings["cascc"].median_us
    return {
        "artifact": str(path),
        "threads": threads,
        "rounds": rounds,
        "runners": {n: {**t.to_json(), "ratio_to_cascc": t.median_us / base} for n, t in timings.items()},
    }


def _bench_remote(
    art: artifacts.Artifact, *, rounds: int, rpc: str, key: str | None, baselines: Sequence[str]
) -> dict[str, Any]:
    """Run the artifact on the remote device: its self-test first, then `rounds` timed repeats."""
    from .bench import Timing, quantile
    from .runtime.remote import Remote, measure

    if baselines:
        raise OptionError(
            None,
            "baselines run on this machine, not on the remote device, so their ratio would mean nothing",
            "drop --baseline with --rpc",
        )
    remote = Remote(rpc, key)
    inputs, expected = art.selftest_data()
    number = 10
    run = measure(remote, art.library, art.manifest["target"]["device"], inputs, rounds=rounds, number=number)
    check = judge([run.outputs], [expected], art.tolerance, ["sample input"])
    if not check.passed:
        raise ArtifactError(
            art.library,
            f"on the {remote.describe()} its outputs differ from the self-test reference "
            f"(max abs error {check.max_abs_error:.3g})",
            "rebuild it for the device's target (--target/--cpu) and rerun",
        )
    samples = list(run.samples_us)
    timing = Timing(statistics.median(samples), quantile(samples, 0.9), rounds, number)
    return {
        "artifact": str(art.path),
        "remote": remote.describe(),
        "selftest_max_abs_error": check.max_abs_error,
        "rounds": rounds,
        "runners": {"cascc": {**timing.to_json(), "ratio_to_cascc": 1.0}},
    }


def _baseline_module(art: artifacts.Artifact, model: str | None):
    """The original nn.Module with the artifact's masks, rebuilt from its factory `model` (given by the
    caller, never read from the manifest) and the recorded passes."""
    from . import passes
    from .baselines import masked_module
    from .frontends import torch as torch_frontend

    ref = needs_model(model, "a baseline", "--model")
    head, sep, factory = ref.rpartition(":")
    if not (sep and head.endswith(".py")):
        raise OptionError(
            ref,
            "a baseline needs the model's Python factory (file.py:factory)",
            "pass --model file.py:factory, or drop --baseline",
        )
    seed = int(art.manifest["source"]["seed"])
    module, example = torch_frontend.call_factory(Path(head), factory, seed=seed)
    program = torch_frontend.from_module(module, example, source=ref, seed=seed)
    program = passes.run(program, [(p["name"], p["options"]) for p in art.manifest["passes"]])
    return masked_module(module, program)


def load_inputs(
    path: str | Path, art_path: str | Path, *, expect_digest: str | None = None
) -> list[np.ndarray]:
    """Inputs from a `.npy` (single-input models) or a `.npz` keyed by input name, in signature order."""
    art = artifacts.open_artifact(Path(art_path), expect_digest=expect_digest)
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


def _check_runs_here(art: artifacts.Artifact) -> None:
    from .runtime.session import device_present
    from .targets import TARGETS

    name = art.manifest["target"]["name"]
    device = art.manifest["target"]["device"]
    on_device = device != "cpu" and device_present(device)
    if name in TARGETS and not TARGETS[name].runs_on_host and not on_device:
        raise ArtifactError(
            art.path,
            f"this artifact is built for {name} and cannot run on this machine",
            f"copy it to the {name} device and run it there (or under emulation, see the README)",
        )


def _check_inputs(art: artifacts.Artifact, inputs: Sequence[np.ndarray]) -> None:
    specs = art.inputs
    if len(inputs) != len(specs):
        raise OptionError(
            art.path, f"expected {len(specs)} input(s), got {len(inputs)}", "pass one array per model input"
        )
    for spec, x in zip(specs, inputs):
        if tuple(x.shape) != spec.shape or str(x.dtype) != spec.dtype:
            raise OptionError(
                art.path,
                f"input {spec.name!r} must be {spec.dtype}{list(spec.shape)}, got {x.dtype}{list(x.shape)}",
                "reshape/cast the input to the compiled signature",
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
    "prune",
    "run",
    "selftest",
    "sparsify",
]
