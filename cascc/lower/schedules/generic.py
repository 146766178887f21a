"""Generic CPU schedule: inline injective producers, parallelize the outer spatial loop, vectorize the inner one.

The rule of last resort for blocks no specialised rule takes (pooling, norms, reshapes, elementwise); it
guarantees no PrimFunc reaches codegen as a naive serial loop nest.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.analysis import normalize_prim_func
from tvm.s_tir.dlight.base import get_extent, try_inline
from tvm.s_tir.dlight.cpu.base import CPUScheduleRule
from tvm.target import Target
from tvm.target.codegen import llvm_get_vector_width

# A parallel loop costs ~4 µs to launch even on one thread (measured): below this many element-iterations
# the block runs serially.
MIN_PARALLEL_WORK = 1 << 18


def vector_lanes(target: Target, bits: int = 32) -> int:
    """fp32 lanes of the target's widest vector register (4 when LLVM cannot tell)."""
    width = llvm_get_vector_width(target)
    return max((width if width > 0 else 128) // bits, 4)


class GenericCPU(CPUScheduleRule):
    """Parallel outer spatial loop, vectorized inner spatial loop, reductions kept innermost."""

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        infos = normalize_prim_func(sch)
        if infos is None:
            return None
        infos = try_inline(sch, infos)
        lanes = vector_lanes(target)
        for info in infos:
            block = info.block_rv
            kinds = info.dom_kind()
            loops = sch.get_loops(block)
            if len(loops) != len(kinds) or "O" in kinds:
                continue  # opaque iteration: leave the block as written
            spatial = [lp for lp, k in zip(loops, kinds, strict=True) if k == "S"]
            reduce_ = [lp for lp, k in zip(loops, kinds, strict=True) if k == "R"]
            if not spatial:
                continue
            sch.reorder(*spatial, *reduce_)
            fused = sch.fuse(*spatial)
            extent = get_extent(sch, fused)
            if not isinstance(extent, int):
                sch.parallel(fused)
                continue
            inner = _divisor(extent, lanes) if not reduce_ else 1
            if inner > 1:
                outer, vec = sch.split(fused, factors=[None, inner])
                sch.vectorize(vec)
            else:
                outer = fused
            work = extent
            for loop in reduce_:
                r = get_extent(sch, loop)
                work *= r if isinstance(r, int) else 1
            if work >= MIN_PARALLEL_WORK and extent // inner >= 2:
                sch.parallel(outer)
        return sch


def _divisor(extent: int, lanes: int) -> int:
    """Largest of lanes, lanes/2, … ≥ 4 dividing extent (1 if none): no tail loop to vectorize."""
    width = lanes
    while width >= 4:
        if extent % width == 0:
            return width
        width //= 2
    return 1
