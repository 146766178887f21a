"""Lowering: masked Program → Relax → scheduled TIR → TVM executable. The only package that imports tvm.

tvm is imported lazily inside functions so `cascc --help`, `cascc targets` and every pass run without it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cascc.errors import LoweringError, OptionError, first_paragraph
from cascc.ir import Program, density, layers
from cascc.targets import Target

from .decision import Decision, DecisionKind, Decline, declined


@dataclass(frozen=True, eq=False)
class Lowered:
    """A compiled program: its linked library (built in a child process, `build.py`), the resolved target,
    one decision per prunable layer and the device code the library carries."""

    library: Path
    target: Target
    target_spec: dict[str, Any]
    decisions: tuple[Decision, ...]
    device_modules: tuple[dict[str, Any], ...] = ()
    weight_bytes: int = 0  # constants the kernels read: weights, sparse indices, folded biases
    kernels: int = 0  # PrimFuncs in the library (layers of one shape class share one)
    scratch: Any = None  # the temporary directory holding `library`, removed with this object

    def sizes(self) -> dict[str, int]:
        """The library's bytes: in all, its code (.text), the constants its kernels read, kernel count."""
        from .export import section_sizes

        return {
            "library": self.library.stat().st_size,
            "code": section_sizes(self.library).get(".text", 0),
            "weights": self.weight_bytes,
            "kernels": self.kernels,
        }

    @property
    def executable(self) -> Any:
        """The library loaded into this process (host targets only), for a relax.VirtualMachine."""
        import tvm

        return tvm.runtime.load_module(str(self.library))

    def export(self, path: Path) -> None:
        """Write the shared library (kernels, VM code and constants) to `path`."""
        import shutil

        shutil.copyfile(self.library, path)

    def device_code(self) -> list[dict[str, Any]]:
        """Device modules (e.g. CUDA) the library carries: kind, source or binary, kernel names, hash."""
        return [dict(m) for m in self.device_modules]


def decide(program: Program, rewritten: dict[str, Decision]) -> tuple[Decision, ...]:
    """One decision per prunable layer: the rewrite's where it saw the layer (taken, or declined with its
    reason), else TVM's generic kernel for a layer no cascc pattern matched."""
    result = []
    for layer in layers(program):
        if layer.name in rewritten:
            result.append(rewritten[layer.name])
        else:
            result.append(declined(layer.name, density(program, layer.name), Decline.NOT_MATCHED))
    return tuple(result)


def lower(program: Program, target: Target, *, measure: bool = False) -> Lowered:
    """Compile a Program for a target; every PrimFunc gets a schedule or the build fails.

    With `measure`, each rewritten layer's chosen kernel and its alternative are timed in isolation and the
    decisions carry the measured µs (host targets only)."""
    import tvm

    from .pipeline import finish, schedule, to_relax
    from .rewrite import LayerRewrite, weight_key
    from .target import for_cpu, target_dict

    target = for_cpu(target)  # tiles for the CPU's real vector width (e.g. AVX2 without AVX-512)
    if measure and not target.runs_on_host:
        raise OptionError(
            target.name,
            "--measure times kernels on this machine, which cannot run this target",
            "drop --measure, or measure on the device with `cascc bench`",
        )
    weights = program.masked_weights()
    masked = program.with_weights(weights).exported
    try:
        mod = to_relax(masked)
    except Exception as exc:
        raise LoweringError(
            program.source,
            f"TVM's torch importer failed: {first_paragraph(exc)}",
            "the model uses an op TVM 0.27 cannot import; report it with the model",
        ) from exc
    spec = target_dict(target)
    tvm_target = tvm.target.Target(spec)
    names: dict[str, list[str]] = {}
    for ly in layers(program):
        names.setdefault(weight_key(weights[ly.name].numpy()), []).append(ly.name)
    int8 = program.int8_layers
    rewrite = LayerRewrite(
        target,
        names,
        cores=int(spec.get("num-cores", 1)),
        keep_candidates=measure,
        int8=int8,
        dot=target.int8_dot,
    )
    mod = rewrite(mod)
    _check_int8(program, rewrite.decisions)
    mod = schedule(mod, tvm_target, target)
    from .build import build

    library, device_modules, scratch = build(
        mod, tvm_target, target, finish(tvm_target, target.backend), program.source
    )
    decisions = rewrite.decisions
    if measure:
        from .measure import measure_candidates

        timings = measure_candidates(rewrite.candidates, tvm_target)
        decisions = {
            name: dataclasses.replace(d, measured_us=timings.get(name)) for name, d in decisions.items()
        }
    return Lowered(
        library,
        target,
        spec,
        decide(program, decisions),
        tuple(device_modules),
        weight_bytes=constant_bytes(mod),
        kernels=sum(isinstance(f, tvm.tirx.PrimFunc) for _, f in mod.functions_items()),
        scratch=scratch,
    )


def _check_int8(program: Program, decisions: dict[str, Decision]) -> None:
    """Every int8 layer got an int8 kernel: the simulated module, the self-test's reference, computes it in
    int8, so a layer left in fp32 would be a silent change of arithmetic."""
    for name in program.int8_layers:
        decision = decisions.get(name)
        if decision is None or decision.precision != "int8":
            why = decision.reason if decision is not None else "no cascc pattern matched it"
            raise LoweringError(
                program.source,
                f"int8 layer {name!r} did not get an int8 kernel ({why})",
                "compile with --precision fp32, or report the model so its form gets an int8 kernel",
            )


def constant_bytes(mod) -> int:
    """Bytes of the distinct constants a scheduled module's Relax functions pass to its kernels."""
    import tvm
    from tvm import relax

    seen: dict = {}  # keyed by the constant node itself (TVM objects hash by identity)

    def visit(expr) -> None:
        if isinstance(expr, tvm.ir.expr.Constant) and expr not in seen and hasattr(expr.value, "numpy"):
            seen[expr] = int(expr.value.numpy().nbytes)  # tensors (scalar immediates are code)

    for _, func in mod.functions_items():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func.body, visit)
    return sum(seen.values())


__all__ = ["Decision", "DecisionKind", "Decline", "Lowered", "decide", "lower"]
