"""The one way cascc's Relax rewrites replace `main`: dpl rules applied in order, the other functions kept."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tvm
from tvm import relax
from tvm.relax.dpl import DFPattern, rewrite_call

Rule = tuple[DFPattern, Callable]


def rewrite_main(mod: tvm.IRModule, rules: Sequence[Rule], *, drop_dead: bool = False) -> tvm.IRModule:
    """`mod` with each (pattern, callback) rule rewritten through `main` in order; `drop_dead` removes
    the bindings the rewrites left unused."""
    main = mod["main"]
    for pattern, callback in rules:
        main = rewrite_call(pattern, callback, main)
    out = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    out[out.get_global_var("main")] = main
    return relax.transform.DeadCodeElimination()(out) if drop_dead else out
