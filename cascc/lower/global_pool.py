"""An average pool whose one window covers the whole input becomes a mean over the plane.

Hugging Face's EfficientNet pools its last feature map with `AvgPool2d(1280, ceil_mode=True)`: a
1280 × 1280 window over a 7 × 7 map. TVM's pooling loops over the whole window with a bounds test per tap,
1.6 million taps per channel (29 ms of a 29.2 ms inference in the reduced zoo, 4 s at 224 px); the mean it
computes (only in-bounds taps count, and there is no padding) is the plane's mean, which cascc's row
kernel computes in one pass.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from .context import static_shape
from .main_rewrite import rewrite_main

X = wildcard()
POOL = is_op("relax.nn.avg_pool2d")(X)


def _as_mean(expr: relax.Expr, matches) -> relax.Expr:
    attrs, shape, out = expr.attrs, static_shape(matches[X]), static_shape(expr)
    if (
        shape is None
        or out is None
        or attrs.layout != "NCHW"
        or attrs.out_layout != "NCHW"
        or any(int(p) for p in attrs.padding)
        or out[2:] != [1, 1]
        or int(attrs.pool_size[0]) < shape[2]
        or int(attrs.pool_size[1]) < shape[3]
        or any(int(d) != 1 for d in attrs.dilation)
    ):
        return expr
    return relax.op.mean(matches[X], axis=[2, 3], keepdims=True)


@tvm.transform.module_pass(opt_level=0, name="CasccGlobalPoolAsMean")
class GlobalPoolAsMean:
    """Rewrite `main`'s whole-input average pools as means (see the module docstring)."""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return rewrite_main(mod, [(POOL, _as_mean)])
