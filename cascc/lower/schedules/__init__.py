"""Schedule rules by name (CPU and GPU): cascc's own rules and dlight's, tried in the order a Target lists them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tvm
from tvm import tirx
from tvm.s_tir import dlight

from ...errors import LoweringError
from ...registry import Registry
from .generic import GenericCPU


class Tolerant(dlight.ScheduleRule):
    """A dlight rule that declines (returns None) where it raises: dlight's rules assert on forms their
    analysis does not cover (dlight.cpu.GEMV on a gemv whose reduction loop normalization removed, seen in
    MobileViT), and the next rule in the target's list then takes the PrimFunc. cascc's own rules are not
    wrapped: their errors are bugs and surface."""

    def __init__(self, rule: dlight.ScheduleRule):
        self.rule = rule

    def apply(self, func, target, tunable):
        try:
            return self.rule.apply(func, target, tunable)
        except Exception:
            return None

    def is_target_available(self, target) -> bool:
        return self.rule.is_target_available(target)


def _dlight(rule: type[dlight.ScheduleRule]) -> Callable[[], dlight.ScheduleRule]:
    return lambda: Tolerant(rule())


RULES: Registry[Callable[[], dlight.ScheduleRule]] = Registry("schedule rule")
RULES.register("cpu.gemv")(_dlight(dlight.cpu.GEMV))
RULES.register("cpu.reduction")(_dlight(dlight.cpu.Reduction))
RULES.register("cpu.generic")(GenericCPU)
RULES.register("gpu.matmul")(_dlight(dlight.gpu.Matmul))
RULES.register("gpu.gemv")(_dlight(dlight.gpu.GEMV))
RULES.register("gpu.reduction")(_dlight(dlight.gpu.Reduction))
RULES.register("gpu.general_reduction")(_dlight(dlight.gpu.GeneralReduction))
RULES.register("gpu.fallback")(_dlight(dlight.gpu.Fallback))

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
