"""Relax rewrite: every linear layer with a constant weight becomes a call to a cascc kernel.

`matmul(x, permute_dims(W))`, optionally followed by a constant bias add and a ReLU, is replaced by
`call_tir` to the tiled-ELL sparse kernel or the packed dense kernel, whichever the target's cost model
predicts faster; bias and ReLU are fused into the kernel's epilogue. Each rewrite records a Decision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from cascc.targets import KernelCosts

from . import cost
from .decision import Decision
from .kernels.formats import pack_dense, pack_tiled_ell
from .kernels.linear import dense_linear, tiled_ell_linear


def weight_key(w: np.ndarray) -> str:
    """Identity of a weight matrix by content: Relax constants carry no parameter names."""
    return hashlib.sha256(np.ascontiguousarray(w, dtype=np.float32).tobytes()).hexdigest()


class _Patterns:
    """`[relu](add(bias, matmul(x, permute_dims(W))))`, longest first so epilogues fuse."""

    def __init__(self) -> None:
        self.x, self.w, self.bias = wildcard(), is_const(), is_const()
        self.wt = is_op("relax.permute_dims")(self.w)
        self.matmul = is_op("relax.matmul")(self.x, self.wt)
        biased = is_op("relax.add")(self.bias, self.matmul) | is_op("relax.add")(self.matmul, self.bias)
        self.ordered = (
            ("relu", "bias", is_op("relax.nn.relu")(biased)),
            (None, "bias", biased),
            ("relu", None, is_op("relax.nn.relu")(self.matmul)),
            (None, None, self.matmul),
        )


@tvm.transform.module_pass(opt_level=0, name="CasccLinearKernels")
class LinearKernels:
    """Replace linear layers of `main` by cascc kernels; `decisions` fills with one entry per layer."""

    def __init__(self, costs: KernelCosts, names: Mapping[str, str]):
        self.costs = costs
        self.names = names  # weight_key -> layer name
        self.decisions: dict[str, Decision] = {}

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        bb = relax.BlockBuilder(mod)
        pats = _Patterns()
        main = mod["main"]
        for act, bias, pattern in pats.ordered:
            main = rewrite_call(pattern, lambda expr, m, a=act, b=bias: self._rewrite(bb, pats, expr, m, a, b), main)
        out = bb.get()
        out[out.get_global_var("main")] = main
        return relax.transform.DeadCodeElimination()(out)

    def _rewrite(self, bb, pats, expr, m, act, bias_kind):
        if [int(a) for a in m[pats.wt].attrs.axes] != [1, 0]:
            return expr
        x_shape = [int(d) for d in m[pats.x].ty.shape]
        weight = m[pats.w].value.numpy()
        if len(x_shape) != 2 or weight.ndim != 2 or weight.dtype != np.float32:
            return expr
        n, k = weight.shape
        bias = m[pats.bias].value.numpy().reshape(-1) if bias_kind else None
        if bias is not None and bias.shape != (n,):
            return expr
        batch = x_shape[0]
        name = self.names.get(weight_key(weight), f"linear_{len(self.decisions)}")
        gv, args, width, choice, kernel = self._kernel(bb, name, batch, k, weight, bias, act == "relu")
        density = float(np.count_nonzero(weight)) / weight.size
        self.decisions[name] = Decision(name, density, kernel, choice.reason, round(choice.dense_us, 3),
                                        None if choice.sparse_us is None else round(choice.sparse_us, 3))
        call = relax.call_tir(gv, [m[pats.x], *(relax.const(a) for a in args)],
                              relax.TensorType((batch, width), "float32"))
        if width != n:
            call = relax.op.strided_slice(call, axes=[1], begin=[0], end=[n])
        return call

    def _kernel(self, bb, name, batch, k, weight, bias, relu):
        c = self.costs
        ell = pack_tiled_ell(weight, bias, c.sparse_rows, c.sparse_unroll)
        choice = cost.choose(c, batch, weight, ell)
        symbol = "cascc_" + "".join(ch if ch.isalnum() else "_" for ch in name)
        if choice.sparse:
            slots = max(ell.slots, c.sparse_unroll)  # an all-zero layer still needs non-empty buffers
            data = np.zeros((slots, ell.rows), np.float32)
            data[: ell.slots] = ell.data
            cols = np.zeros((slots,) + ell.cols.shape[1:], np.int32)
            cols[: ell.slots] = ell.cols
            tiles = len(ell.ptr) - 1
            func = tiled_ell_linear(batch, k, tiles, ell.rows, slots, c.sparse_unroll, ell.shared, relu)
            kernel = f"sparse tiled-ELL {ell.rows}-row {'r×1 broadcast' if ell.shared else 'gather'}"
            gv = _add(bb, func, symbol + "_sparse")
            return gv, (data, cols, ell.ptr, ell.bias), tiles * ell.rows, choice, kernel
        packed = pack_dense(weight, bias, c.dense_tile)
        bt = cost.batch_tile(c, batch)
        func = dense_linear(batch, k, packed.weights.shape[0], c.dense_tile, bt, relu)
        gv = _add(bb, func, symbol + "_dense")
        width = packed.bias.shape[0]
        return gv, (packed.weights, packed.bias), width, choice, f"dense packed {c.dense_tile}-wide"


def _add(bb: relax.BlockBuilder, func: tvm.tirx.PrimFunc, symbol: str) -> tvm.ir.GlobalVar:
    """Add a kernel under a unique exported symbol (TVMScript names every generated function `kernel`)."""
    return bb.add_func(func.with_attr("global_symbol", symbol), symbol)
