"""Attention masks that are zero everywhere are dropped.

`transformers` builds an attention mask even where nothing is masked: ViT's and Wav2Vec2's SDPA path
compares position ids (an `arange`) with 0 and selects 0 or −inf, and adds the result to every score
matrix. Every position passes, so the mask is all zeros, yet the add ran on TVM's scalar elementwise kernel
over each layer's scores (5% of ViT-tiny at 90%). Relax's FoldConstant does not evaluate `arange`, so
the mask stays a computation. Here each add operand that depends on constants and position ranges alone is
evaluated at compile time; where it is all zeros and the add's result has the other operand's type, the add
is the other operand. A causal mask (GPT-2) holds −inf and stays.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from .context import static_shape
from .main_rewrite import rewrite_main

X, M = wildcard(), wildcard()
ADD = is_op("relax.add")(X, M)


def _as_constant(binding: relax.VarBinding) -> relax.VarBinding:
    """An `arange` binding with its value as a constant (its bounds are immediates); others unchanged."""
    call = binding.value
    if not (isinstance(call, relax.Call) and getattr(call.op, "name", "") == "relax.arange"):
        return binding
    dtype = str(call.attrs.dtype)
    start, end, step = (a.value for a in call.args)
    return relax.VarBinding(binding.var, relax.const(np.arange(start, end, step, dtype=dtype), dtype))


def _uses_arange(order: list) -> bool:
    return any(getattr(getattr(b.value, "op", None), "name", "") == "relax.arange" for b in order)


def _fold(order: list, masks: list) -> list:
    """The values of `masks` as a function of no parameters folded by TVM: a Constant, or None where TVM
    left a computation."""
    out = relax.Var("masks", relax.TupleType([m.ty for m in masks]))
    body = relax.SeqExpr([relax.DataflowBlock([*order, relax.VarBinding(out, relax.Tuple(masks))])], out)
    module = tvm.IRModule({"main": relax.Function([], body, out.ty)})
    folded = relax.transform.FoldConstant()(module)["main"]
    var2val = relax.analysis.get_var2val(folded)
    value = folded.body.body if isinstance(folded.body, relax.SeqExpr) else folded.body
    value = var2val.get(value, value)
    fields = value.fields if isinstance(value, relax.Tuple) else [None] * len(masks)
    fields = [var2val.get(f, f) if isinstance(f, relax.Var) else f for f in fields]
    return [f if isinstance(f, tvm.ir.expr.Constant) else None for f in fields]


def _free_bindings(main: relax.Function) -> dict:
    """`main`'s bindings whose values depend on no parameter, by variable, in binding order: one pass
    (a walk back from each add would recurse through the whole network for a residual add)."""
    free: dict = {}

    def is_free(arg) -> bool:
        if isinstance(arg, relax.Var):
            return arg in free
        if isinstance(arg, (relax.Tuple, relax.Call)):
            return all(is_free(a) for a in (arg.fields if isinstance(arg, relax.Tuple) else arg.args))
        return isinstance(arg, (tvm.ir.expr.Constant, relax.ShapeExpr))  # immediates are Constants too

    for block in main.body.blocks:
        for binding in block.bindings:
            if isinstance(binding, relax.VarBinding) and is_free(binding.value):
                free[binding.var] = binding
    return free


def _needed(var: relax.Var, free: dict) -> list:
    """The free bindings `var` is computed from, in binding order."""
    seen, stack = set(), [var]
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        relax.analysis.post_order_visit(
            free[v].value, lambda e: stack.append(e) if isinstance(e, relax.Var) and e in free else None
        )
    return [b for v, b in free.items() if v in seen]


def _zero_operands(mod: tvm.IRModule) -> set:
    """The add operands of `main` that are computed from constants and ranges alone and are all zeros,
    evaluated in one folded function (a 12-layer ViT has one mask per layer)."""
    main = mod["main"]
    free = _free_bindings(main)
    operands: dict = {}  # insertion-ordered: the folded function is the same on every run

    def visit(expr):
        if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == "relax.add":
            operands.update((a, None) for a in expr.args if isinstance(a, relax.Var) and a in free)

    relax.analysis.post_order_visit(main, visit)
    masks, used = [], set()
    for var in operands:
        own = _needed(var, free)
        if str(var.ty.dtype).startswith("float") and _uses_arange(own):  # constants alone: FoldConstant's
            masks.append(var)
            used.update(b.var for b in own)
    if not masks:
        return set()
    order = [_as_constant(b) for v, b in free.items() if v in used]
    try:
        values = _fold(order, masks)
    except RuntimeError:
        return set()  # an op TVM cannot fold at compile time: the masks stay computations
    return {v for v, c in zip(masks, values, strict=True) if c is not None and not np.any(c.value.numpy())}


def _same_type(a: relax.Expr, b: relax.Expr) -> bool:
    shape = static_shape(a)
    return shape is not None and shape == static_shape(b) and str(a.ty.dtype) == str(b.ty.dtype)


@tvm.transform.module_pass(opt_level=0, name="CasccDropZeroMasks")
class DropZeroMasks:
    """Drop `main`'s additions of masks that are zero everywhere (see the module docstring)."""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        zeros = _zero_operands(mod)
        if not zeros:
            return mod

        def drop(expr: relax.Call, _matches) -> relax.Expr:
            x, m = expr.args  # the bound operands (dpl's matches may be the calls bound to them)
            if m in zeros and _same_type(x, expr):
                return x
            if x in zeros and _same_type(m, expr):
                return m
            return expr

        return rewrite_main(mod, [(ADD, drop)], drop_dead=True)
