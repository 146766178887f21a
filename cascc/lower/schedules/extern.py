"""Kernels TOPI writes as loops (te.extern: scatter_elements, index_put), kept as written except where their
loops would race or cannot run on the device.

Such a PrimFunc is one opaque block with no iteration domain, so no block-based rule (GenericCPU's
normalization included) can take it. TOPI's CPU index_put with accumulate adds every update from one parallel
loop: two updates aimed at the same element (ScatterND's add with repeated index tuples) would
read-modify-write it at once. Serial, the updates land in order, as the ONNX spec's loop applies them.
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm import s_tir, tirx
from tvm.s_tir.dlight.cpu.base import CPUScheduleRule
from tvm.s_tir.dlight.gpu.base import GPUScheduleRule
from tvm.target import Target

# threads per block of a parallel loop moved onto the GPU (TOPI's own GPU kernels use the target's maximum)
GPU_THREADS = 256


class ExternCPU(CPUScheduleRule):
    """TOPI's loop nest as written; a parallel loop stays parallel only where no store under it writes at an
    index read from memory (TOPI's own choice of parallel loop is trusted otherwise)."""

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target) or not is_extern(func):
            return None
        bound = _let_bound(func)

        def serialize(loop: tirx.For) -> tirx.For:
            if loop.kind == tirx.ForKind.PARALLEL and indirect_stores(loop, bound):
                return _with_kind(loop, tirx.ForKind.SERIAL)
            return loop

        return s_tir.Schedule(func.with_body(tvm_ffi.structural_map(func.body, (tirx.For, serialize))))


class ExternGPU(GPUScheduleRule):
    """TOPI's GPU kernels (they bind their own threads) as written. A CPU-written extern (TOPI has no GPU
    index_put) runs each of its top-level loops as one launch: a parallel loop with direct stores over
    threads, anything else on a single thread with its parallel loops serial."""

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool) -> s_tir.Schedule | None:
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target) or not is_extern(func):
            return None
        launches = _find(func.body, tirx.AttrStmt, lambda a: a.attr_key == "thread_extent")
        parallel = _find(func.body, tirx.For, lambda lp: lp.kind == tirx.ForKind.PARALLEL)
        if launches:
            return s_tir.Schedule(func) if not parallel else None
        bound = _let_bound(func)
        block = func.body.block
        wrappers, body = [], block.body
        while isinstance(body, tirx.AttrStmt):  # TOPI's pragma_scope: kept around the launches
            wrappers.append(body)
            body = body.body
        stmts = list(body.seq) if isinstance(body, tirx.SeqStmt) else [body]
        launched: tirx.Stmt = tirx.SeqStmt([_launch(s, bound) for s in stmts])
        for attr in reversed(wrappers):
            launched = tirx.AttrStmt(attr.node, attr.attr_key, attr.value, launched)
        realize = func.body
        new_block = s_tir.SBlock(
            block.iter_vars, block.reads, block.writes, block.name_hint, launched, block.init,
            block.alloc_buffers, block.match_buffers, block.annotations,
        )  # fmt: skip
        new_body = s_tir.SBlockRealize(realize.iter_values, realize.predicate, new_block)
        return s_tir.Schedule(func.with_body(new_body))


def is_extern(func: tirx.PrimFunc) -> bool:
    """Whether `func` is a te.extern's body: one block without iteration variables holding no other block."""
    body = func.body
    if not isinstance(body, s_tir.SBlockRealize) or len(body.block.iter_vars):
        return False
    return not _find(body.block.body, s_tir.SBlock)


def indirect_stores(stmt: tirx.Stmt, bound: list[tirx.Var]) -> list[tirx.BufferStore]:
    """The stores under `stmt` whose index reads memory: a load, or one of the `bound` variables."""

    def reads_memory(node) -> bool:
        return isinstance(node, tvm.ir.expr.TensorLoad) or (
            isinstance(node, tirx.Var) and any(node.same_as(v) for v in bound)
        )

    return _find(stmt, tirx.BufferStore, lambda s: any(_find(i, object, reads_memory) for i in s.indices))


def _let_bound(func: tirx.PrimFunc) -> list[tirx.Var]:
    """Variables bound by lets: each counts as read from memory wherever it appears (TOPI binds loaded
    indices to lets as often as it inlines them)."""
    return [node.var for node in _find(func.body, (tirx.LetStmt, tirx.Let))]


def _launch(stmt: tirx.Stmt, bound: list[tirx.Var]) -> tirx.Stmt:
    """`stmt` as one GPU kernel launch (see ExternGPU)."""
    loop = stmt
    if (
        isinstance(loop, tirx.For)
        and loop.kind == tirx.ForKind.PARALLEL
        and isinstance(loop.min, tirx.IntImm)
        and loop.min.value == 0
        and not indirect_stores(loop, bound)
    ):
        var = loop.loop_var
        bx, tx = tirx.Var("blockIdx.x", "int32"), tirx.Var("threadIdx.x", "int32")
        index = bx.astype(var.ty.dtype) * GPU_THREADS + tx.astype(var.ty.dtype)
        body = tvm_ffi.structural_map(loop.body, (tirx.Var, lambda v: index if v.same_as(var) else v))
        body = tirx.IfThenElse(index < loop.extent, body, None)
        blocks = tirx.Cast("int32", tirx.ceildiv(loop.extent, GPU_THREADS))
        return _thread(bx, blocks, _thread(tx, GPU_THREADS, body))
    serial = tvm_ffi.structural_map(
        stmt,
        (
            tirx.For,
            lambda lp: _with_kind(lp, tirx.ForKind.SERIAL) if lp.kind == tirx.ForKind.PARALLEL else lp,
        ),
    )
    return _thread(tirx.Var("blockIdx.x", "int32"), 1, _thread(tirx.Var("threadIdx.x", "int32"), 1, serial))


def _thread(var: tirx.Var, extent, body: tirx.Stmt) -> tirx.AttrStmt:
    extent = tirx.const(extent, "int32") if isinstance(extent, int) else extent
    axis = tirx.IterVar(tvm.ir.Range(tirx.const(0, "int32"), extent), var, tirx.IterVar.ThreadIndex, var.name)
    return tirx.AttrStmt(axis, "thread_extent", extent, body)


def _with_kind(loop: tirx.For, kind: tirx.ForKind) -> tirx.For:
    return tirx.For(
        loop.loop_var, loop.min, loop.extent, kind, loop.body, loop.thread_binding, loop.annotations
    )


def _find(root, kind, keep=lambda _node: True) -> list:
    """The nodes of type `kind` under `root` for which `keep` holds."""
    found: list = []
    tvm_ffi.structural_walk(root, (kind, lambda node: found.append(node) if keep(node) else None))
    return found
