"""Schedule rules by name (CPU and GPU): cascc's own rules and dlight's, tried in the order a Target lists them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tvm
from tvm import tirx
from tvm.s_tir import dlight

from ...errors import LoweringError
from ...registry import Registry
from .extern import ExternCPU, ExternGPU
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
RULES.register("cpu.extern")(ExternCPU)
RULES.register("gpu.matmul")(_dlight(dlight.gpu.Matmul))
RULES.register("gpu.gemv")(_dlight(dlight.gpu.GEMV))
RULES.register("gpu.reduction")(_dlight(dlight.gpu.Reduction))
RULES.register("gpu.general_reduction")(_dlight(dlight.gpu.GeneralReduction))
RULES.register("gpu.fallback")(_dlight(dlight.gpu.Fallback))
RULES.register("gpu.extern")(ExternGPU)

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
    wide = {name: lanes for name, lanes in vector_extents(mod).items() if lanes > MAX_VECTOR_LANES}
    if wide:
        raise LoweringError(
            None,
            "kernel(s) vectorize a loop wider than "
            f"{MAX_VECTOR_LANES} lanes: {', '.join(f'{n} ({v} lanes)' for n, v in sorted(wide.items()))}; "
            "TVM's lane count is 16-bit (it wraps past 65,535 and leaves outputs unwritten) and LLVM "
            "aborted on a 51,076-lane vector",
            "this is a cascc bug (a kernel must split such loops into register-wide chunks); report it",
        )


# The widest vectorized loop a kernel may hand LLVM: 64 fp32 zmm registers' worth is already far past any
# useful width; the limit exists because one whole-plane vector (51,076 lanes) aborted LLVM inside
# TypeSize ("Cannot implicitly convert a scalable size"), a 3,200-lane one took LLVM over a minute, and
# past 65,535 lanes TVM's count wraps.
MAX_VECTOR_LANES = 1024


def vector_extents(mod: tvm.IRModule) -> dict[str, int]:
    """Per PrimFunc, the largest constant extent of its vectorized loops (0 where it has none)."""
    found: dict[str, int] = {}
    for gv, func in mod.functions_items():
        if not isinstance(func, tirx.PrimFunc):
            continue
        found[gv.name_hint] = max((int(n.extent.value) for n in _vector_loops(func.body)), default=0)
    return found


def _vector_loops(stmt):
    """The vectorized For nodes with constant extents under `stmt` (walks every statement's children)."""
    stack = [stmt]
    while stack:
        node = stack.pop()
        if (
            isinstance(node, tirx.For)
            and node.kind == tirx.ForKind.VECTORIZED
            and isinstance(node.extent, tirx.IntImm)
        ):
            yield node
        for field in ("body", "then_case", "else_case", "block"):
            child = getattr(node, field, None)
            if isinstance(child, tirx.Stmt):
                stack.append(child)
        if isinstance(node, tirx.SeqStmt):
            stack.extend(node.seq)
