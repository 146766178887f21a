"""Zero padding before a conv becomes the conv's own padding: `conv2d(pad(x, 0), W)` → `conv2d(x, W)` with the
pad's border added to the conv's (asymmetric where the pad is).

Models ported from TensorFlow pad explicitly before their strided convs ("same" padding: one more row and
column at the bottom and right; Hugging Face's MobileNetV2 does so before all 52 of its convs). Left as
ops, each pad was a whole extra pass over the feature map in TVM's generic lowering, half the time of a
MobileNetV2 1.0 at 224 px; folded, the conv kernels read the border from their zero-bordered tiles.
Only constant-zero pads of the height and width of an NCHW conv are folded.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from .main_rewrite import rewrite_main

X, W = wildcard(), wildcard()
PAD = is_op("relax.nn.pad")(X)
CONV = is_op("relax.nn.conv2d")(PAD, W)


def _fold(expr: relax.Expr, matches) -> relax.Expr:
    pad, conv = matches[PAD].attrs, expr.attrs
    width = [int(p) for p in pad.pad_width]
    if (
        str(pad.pad_mode) != "constant"
        or float(pad.pad_value) != 0.0
        or len(width) != 8
        or any(width[:4])
        or min(width) < 0
        or conv.data_layout != "NCHW"
    ):
        return expr
    top, bottom, left, right = width[4:]
    old = [int(p) for p in conv.padding]  # top, left, bottom, right
    return relax.op.nn.conv2d(
        matches[X],
        matches[W],
        strides=[int(s) for s in conv.strides],
        padding=[old[0] + top, old[1] + left, old[2] + bottom, old[3] + right],
        dilation=[int(d) for d in conv.dilation],
        groups=int(conv.groups),
        data_layout=conv.data_layout,
        kernel_layout=conv.kernel_layout,
        out_layout=conv.out_layout,
        out_dtype=str(conv.out_dtype) or "float32",
    )


@tvm.transform.module_pass(opt_level=0, name="CasccFoldPadIntoConv")
class FoldPadIntoConv:
    """Fold zero pads into the conv2d layers of `main` that read them (see the module docstring)."""

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return rewrite_main(mod, [(CONV, _fold)], drop_dead=True)
