"""Weights computed from constants are computed at compile time.

A weight-normed layer (`nn.utils.parametrizations.weight_norm`: W = g · v / ‖v‖, Wav2Vec2's positional
conv) exports its weight as arithmetic on two constants, evaluated on every inference; the conv it feeds
has no constant weight, so no cascc kernel takes it and TVM's generic conv ran it (two thirds of
Wav2Vec2-base's time). Here each conv weight that depends on constants alone is folded into a constant, so
the layer reaches the layer rewrite like any other. Only these operands are folded: folding the whole graph
would also turn a Linear's `permute_dims(W)` into a new constant and hide the layer.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from .main_rewrite import rewrite_main

X, W = wildcard(), wildcard()
CONVS = [is_op(op)(X, W) for op in ("relax.nn.conv1d", "relax.nn.conv2d")]
LEAVES = (tvm.ir.expr.Constant, relax.ShapeExpr)


def _bindings(expr: relax.Expr, var2val, order: list, seen: set) -> bool:
    """Whether `expr` depends on constants alone (no parameter), appending the bindings it needs to `order`
    in dependency order."""
    if isinstance(expr, LEAVES):
        return True
    if isinstance(expr, relax.Var):
        if expr in seen:
            return True
        value = var2val.get(expr)
        if value is None or not _bindings(value, var2val, order, seen):
            return False
        seen.add(expr)
        order.append(relax.VarBinding(expr, value))
        return True
    if isinstance(expr, relax.Call):
        return all(_bindings(a, var2val, order, seen) for a in expr.args)
    return False


def _evaluate(order: list, weight: relax.Expr) -> tvm.ir.expr.Constant | None:
    """The constant `weight` evaluates to: it and its bindings as a function of no parameters, folded by
    TVM."""
    out = relax.Var("weight", weight.ty)
    body = relax.SeqExpr([relax.DataflowBlock([*order, relax.VarBinding(out, weight)])], out)
    module = tvm.IRModule({"main": relax.Function([], body, weight.ty)})
    folded = relax.transform.FoldConstant()(module)["main"]
    value = folded.body.body if isinstance(folded.body, relax.SeqExpr) else folded.body
    value = relax.analysis.get_var2val(folded).get(value, value) if isinstance(value, relax.Var) else value
    return value if isinstance(value, tvm.ir.expr.Constant) else None


def _rules(mod: tvm.IRModule) -> list:
    var2val = relax.analysis.get_var2val(mod["main"])

    def fold(expr: relax.Call, matches) -> relax.Expr:
        weight, order = matches[W], []  # the matched weight: a Var, or the call dpl found bound to it
        if isinstance(weight, tvm.ir.expr.Constant) or not _bindings(weight, var2val, order, set()):
            return expr
        const = _evaluate(order, weight)
        return expr if const is None else relax.Call(expr.op, [expr.args[0], const], expr.attrs)

    return [(p, fold) for p in CONVS]


@tvm.transform.module_pass(opt_level=0, name="CasccFoldComputedWeights")
class FoldComputedWeights:
    """Fold `main`'s conv weights computed from constants alone (see the module docstring)."""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return rewrite_main(mod, _rules(mod), drop_dead=True)
