"""Control flow: If, when its condition is known at import (an initializer, a Constant, or folded from shapes).
The importer checks that and runs the taken branch in the node's place, so no branch reaches the export."""

from __future__ import annotations

from .registry import Inline, op, scalar


@op()
def If(cond, *, else_branch, then_branch):
    return Inline(then_branch if bool(scalar(cond)) else else_branch)
