"""The Relax pipeline: a TVM backend's passes (the target's `backend`, e.g. cpu_generic or cuda), split so
cascc can schedule and check every PrimFunc between fusion and VM lowering."""

from __future__ import annotations

import importlib

import tvm
from tvm import relax

from cascc.targets import Target

from .schedules import apply_rules, check_scheduled


def to_relax(exported: torch.export.ExportedProgram) -> tvm.IRModule:  # noqa: F821
    """Import a (masked) core-ATen program into Relax with the weights as constants; the ops TVM's importer
    lacks are converted by cascc (`importer.py`). Every frontend decomposed the program to core ATen already,
    so TVM's own pass over it (a full re-trace, a fifth of a zoo model's compile) is skipped."""
    from tvm.relax.frontend.torch import from_exported_program

    from .importer import CONVERTERS

    mod = from_exported_program(
        exported, keep_params_as_input=False, custom_convert_map=dict(CONVERTERS), run_ep_decomposition=False
    )
    return relax.transform.DeadCodeElimination()(mod)


def backend(name: str):
    """TVM's pipeline module of the Relax backend `name` (its dispatch, lowering and finalize passes)."""
    return importlib.import_module(f"tvm.relax.backend.{name}.pipeline")


def legalize_passes(target: Target) -> list[tvm.transform.Pass]:
    """TVM's legalization and fusion passes, with cascc's legalizations for the kernel family's ops."""
    from .family import family

    return [
        relax.transform.LegalizeOps(customize_legalize_map=family(target.kernels).legalizations(target)),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
    ]


def schedule(mod: tvm.IRModule, tvm_target: tvm.target.Target, target: Target) -> tvm.IRModule:
    """dispatch → legalize/fuse → apply the target's schedule rules; raises if an op would lower wrong or any
    PrimFunc is left unscheduled."""
    from .importer import refuse_misaddressed_scatters

    refuse_misaddressed_scatters(mod)
    with tvm_target:
        seq = tvm.transform.Sequential(
            backend(target.backend).library_dispatch_passes(tvm_target)
            + legalize_passes(target)
            + [apply_rules(target.schedule_rules)]
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
