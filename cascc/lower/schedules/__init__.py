"""Schedule rules by name (CPU and GPU): cascc's own rules and dlight's, tried in the order a Target lists them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tvm
from tvm import tirx
from tvm.s_tir import dlight

from ...errors import LoweringError
from ...registry import Registry
from .generic import GenericCPU

RULES: Registry[Callable[[], dlight.ScheduleRule]] = Registry("schedule rule")
RULES.register("cpu.gemv")(dlight.cpu.GEMV)
RULES.register("cpu.reduction")(dlight.cpu.Reduction)
RULES.register("cpu.generic")(GenericCPU)
RULES.register("gpu.matmul")(dlight.gpu.Matmul)
RULES.register("gpu.gemv")(dlight.gpu.GEMV)
RULES.register("gpu.reduction")(dlight.gpu.Reduction)
RULES.register("gpu.general_reduction")(dlight.gpu.GeneralReduction)
RULES.register("gpu.fallback")(dlight.gpu.Fallback)

SCHEDULED = "tirx.is_scheduled"


def apply_rules(names: Sequence[str]) -> tvm.transform.Pass:
    """A module pass applying the named rules to every PrimFunc not yet scheduled."""
    return dlight.ApplyDefaultSchedule(*(RULES[name]() for name in names))


def check_scheduled(mod: tvm.IRModule) -> None:
    """Fail loudly if any PrimFunc would reach codegen without a schedule."""
    missing = sorted(
        gv.name_hint
        for gv, func in mod.functions_items()
        if isinstance(func, tirx.PrimFunc) and not bool(func.attrs and func.attrs.get(SCHEDULED, False))
    )
    if missing:
        raise LoweringError(
            None,
            f"no schedule rule applied to {len(missing)} kernel(s): {', '.join(missing)}",
            "this is a cascc bug; report it with the model",
        )
