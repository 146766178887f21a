"""The Relax pipeline: a TVM backend's passes (the target's `backend`, e.g. cpu_generic or cuda), split so
cascc can schedule and check every PrimFunc between fusion and VM lowering."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import tvm
from tvm import relax

from .schedules import apply_rules, check_scheduled


def to_relax(exported: torch.export.ExportedProgram) -> tvm.IRModule:  # noqa: F821
    """Import a (masked) core-ATen program into Relax with the weights as constants."""
    from tvm.relax.frontend.torch import from_exported_program

    mod = from_exported_program(exported, keep_params_as_input=False)
    return relax.transform.DeadCodeElimination()(mod)


def _fast_softmax(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Softmax with TVM's vectorizable polynomial exp (topi.nn.fast_softmax) instead of scalar expf calls."""
    from tvm import topi

    return bb.call_te(topi.nn.fast_softmax, call.args[0], int(call.attrs.axis))


# Ops cascc legalizes differently from TVM's defaults, and why (see each function).
LEGALIZE = {"relax.nn.softmax": _fast_softmax}


def backend(name: str):
    """TVM's pipeline module of the Relax backend `name` (its dispatch, lowering and finalize passes)."""
    return importlib.import_module(f"tvm.relax.backend.{name}.pipeline")


def legalize_passes() -> list[tvm.transform.Pass]:
    """TVM's legalization and fusion passes, with cascc's legalizations for the ops in LEGALIZE."""
    return [
        relax.transform.LegalizeOps(customize_legalize_map=LEGALIZE),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
    ]


def schedule(
    mod: tvm.IRModule, target: tvm.target.Target, rules: Sequence[str], backend_name: str = "cpu_generic"
) -> tvm.IRModule:
    """dispatch → legalize/fuse → apply the schedule rules; raises if any PrimFunc is left unscheduled."""
    with target:
        seq = tvm.transform.Sequential(
            backend(backend_name).library_dispatch_passes(target) + legalize_passes() + [apply_rules(rules)]
        )
        mod = seq(mod)
    check_scheduled(mod)
    return mod


def finish(target: tvm.target.Target, backend_name: str = "cpu_generic") -> tvm.transform.Pass:
    """The rest of the backend's pipeline: dataflow lowering and VM finalization."""
    passes = backend(backend_name)

    @tvm.transform.module_pass(opt_level=0, name="CasccFinish")
    def _finish(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        with target:
            return tvm.transform.Sequential(
                passes.dataflow_lower_passes(target) + passes.finalize_passes(target)
            )(mod)

    return _finish
