"""Legalizations cascc does differently from TVM's defaults (see each function), per kernel family.

CPU families get cascc's row kernels (hand-scheduled CPU TIR, `kernel_lanes` wide); GPU families keep TVM's
lowering for dlight's GPU rules to schedule, with softmax's exp made vectorizable.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tvm import relax

from cascc.targets import Target

from .context import add_kernel, static_shape
from .schedules.generic import MIN_PARALLEL_WORK

Legalization = Callable[[relax.BlockBuilder, relax.Call], relax.Expr]


def _fast_softmax(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """TVM's topi.nn.fast_softmax (a vectorizable polynomial exp instead of scalar expf calls)."""
    from tvm import topi

    return bb.call_te(topi.nn.fast_softmax, call.args[0], int(call.attrs.axis))


def _softmax(bb: relax.BlockBuilder, call: relax.Call, lanes: int) -> relax.Expr:
    """Softmax over the last axis, any width, as cascc's row kernel (kernels/norm.py: vectorized polynomial exp,
    2.8× faster than fast_softmax on the transformer's 256×64 scores, 15× on Whisper's 9000×1500, whose width
    is not a vector multiple); other axes with `_fast_softmax`."""
    from .kernels.norm import softmax

    x = call.args[0]
    rows_width = softmax_rows(x, int(call.attrs.axis))
    if rows_width is None:
        return _fast_softmax(bb, call)
    rows, width = rows_width
    func = softmax(rows, width, parallel=rows * width >= MIN_PARALLEL_WORK, lanes=lanes)
    zero = relax.const(np.zeros(1, np.float32))
    return _call_rows(bb, func, f"cascc_softmax_{rows}x{width}", x, rows_width, [zero])


def softmax_rows(x: relax.Expr, axis: int) -> tuple[int, int] | None:
    """(rows, width) of a softmax over `axis` that cascc's row kernel computes, which gives fully −inf rows
    zeros; None where TVM's fast_softmax runs instead."""
    return _rows(x, [axis])


def _rows(x: relax.Expr, axes: list[int]) -> tuple[int, int] | None:
    """(rows, width) of a static fp32 tensor reduced over its last axis only (the row kernels take any
    width: whole vectors, then a scalar tail); None for any other form."""
    dims = static_shape(x)
    if dims is None or str(x.ty.dtype) != "float32":
        return None
    if axes not in ([len(dims) - 1], [-1]):
        return None
    return int(np.prod(dims[:-1])), dims[-1]


def _call_rows(
    bb: relax.BlockBuilder, func, symbol: str, x: relax.Expr, rows_width, params: list, reduced_to=None
) -> relax.Expr:
    """Call a row kernel on x viewed as [rows, width], then view the result in x's shape; a reducing kernel
    (one value per row) is viewed in the shape `reduced_to` instead."""
    rows, width = rows_width
    gv = add_kernel(bb, func, "".join(ch if ch.isalnum() else "_" for ch in symbol))
    flat = bb.emit(relax.op.reshape(x, (rows, width)))
    out_shape = (rows, width) if reduced_to is None else (rows,)
    out = bb.emit(relax.call_tir(gv, [flat, *params], relax.TensorType(out_shape, "float32")))
    return relax.op.reshape(out, x.ty.shape if reduced_to is None else reduced_to)


def _layer_norm(bb: relax.BlockBuilder, call: relax.Call, lanes: int) -> relax.Expr:
    """Layer norm over the last axis as cascc's row kernel (kernels/norm.py); other forms keep TVM's."""
    from tvm.relax.transform.legalize_ops.nn import _nn_layer_norm

    from .kernels.norm import layer_norm

    x, gamma, beta = call.args
    rows_width = _rows(x, [int(a) for a in call.attrs.axes])
    if rows_width is None or not (call.attrs.center and call.attrs.scale):
        return _nn_layer_norm(bb, call)
    rows, width = rows_width
    eps = float(call.attrs.epsilon)
    func = layer_norm(rows, width, eps, parallel=rows * width >= MIN_PARALLEL_WORK, lanes=lanes)
    return _call_rows(bb, func, f"cascc_layer_norm_{rows}x{width}_{eps:g}", x, rows_width, [gamma, beta])


def _group_norm(bb: relax.BlockBuilder, call: relax.Call, lanes: int) -> relax.Expr:
    """Group norm over channels and trailing axes (channel axis 1, e.g. Wav2Vec2's Conv1d stem) as cascc's
    layer-norm row kernel over each group's (C/G)·S values, then the per-channel scale and shift; other
    forms keep TVM's (whose scalar reductions took half of Wav2Vec2's time)."""
    from tvm import te
    from tvm.relax.transform.legalize_ops.nn import _nn_group_norm

    from .kernels.norm import layer_norm

    x, gamma, beta = call.args
    attrs, dims = call.attrs, static_shape(x)
    groups = int(attrs.num_groups)
    trailing = dims is not None and [int(a) for a in attrs.axes] == list(range(2, len(dims)))
    if not trailing or int(attrs.channel_axis) != 1 or str(x.ty.dtype) != "float32" or dims[1] % groups:
        return _nn_group_norm(bb, call)
    rows, width = dims[0] * groups, int(np.prod(dims[1:])) // groups
    eps = float(attrs.epsilon)
    func = layer_norm(rows, width, eps, parallel=rows * width >= MIN_PARALLEL_WORK, lanes=lanes)
    ones, zeros = (relax.const(np.full(width, v, np.float32)) for v in (1.0, 0.0))
    normed = _call_rows(bb, func, f"cascc_group_norm_{rows}x{width}_{eps:g}", x, (rows, width), [ones, zeros])
    if not (attrs.center or attrs.scale):
        return normed
    normed = bb.emit(normed)

    def affine(y, g, b):
        return te.compute(
            y.shape,
            lambda *i: y(*i) * (g[i[1]] if attrs.scale else 1.0) + (b[i[1]] if attrs.center else 0.0),
            name="group_norm_affine",
        )

    return bb.call_te(affine, normed, gamma, beta)


def _mean(bb: relax.BlockBuilder, call: relax.Call, lanes: int) -> relax.Expr:
    """A mean over trailing axes (global average pooling) as cascc's row kernel; other means keep TVM's."""
    from tvm.relax.transform.legalize_ops.statistical import _mean as tvm_mean

    from .kernels.norm import row_mean

    x = call.args[0]
    try:
        dims = [int(d) for d in x.ty.shape]
        axes = sorted(int(a) % len(dims) for a in call.attrs.axis)
    except (TypeError, AttributeError):
        dims, axes = [], []
    trailing = list(range(len(dims) - len(axes), len(dims)))
    if not axes or axes != trailing or str(x.ty.dtype) != "float32":
        return tvm_mean(bb, call)
    width = int(np.prod([dims[a] for a in axes]))
    rows = int(np.prod(dims[: len(dims) - len(axes)]))
    scale = relax.const(np.array([1.0 / width], np.float32))
    symbol = f"cascc_mean_{rows}x{width}"
    return _call_rows(
        bb, row_mean(rows, width, lanes=lanes), symbol, x, (rows, width), [scale], reduced_to=call.ty.shape
    )


def _max_pool(bb: relax.BlockBuilder, call: relax.Call, lanes: int) -> relax.Expr:
    """An undilated NCHW fp32 max pool as cascc's windowed kernel (kernels/conv.py max_pool); other forms
    keep TVM's."""
    from tvm.relax.transform.legalize_ops.nn import _nn_max_pool2d

    from .kernels.conv import max_pool

    x, attrs = call.args[0], call.attrs
    shape, out = static_shape(x), static_shape(call)
    plain = attrs.layout == attrs.out_layout == "NCHW" and all(int(d) == 1 for d in attrs.dilation)
    if shape is None or out is None or not plain or str(x.ty.dtype) != "float32":
        return _nn_max_pool2d(bb, call)
    kernel, stride = tuple(int(k) for k in attrs.pool_size), tuple(int(s) for s in attrs.strides)
    padding = tuple(int(p) for p in attrs.padding)
    func = max_pool(
        *shape,
        kernel,
        stride,
        padding,
        tuple(out[2:]),
        parallel=int(np.prod(out)) >= MIN_PARALLEL_WORK,
        lanes=lanes,
    )
    symbol = f"cascc_max_pool_{'x'.join(map(str, shape))}_{kernel[0]}x{kernel[1]}_s{stride[0]}x{stride[1]}"
    gv = add_kernel(
        bb, func, "".join(ch if ch.isalnum() else "_" for ch in symbol + "_" + "_".join(map(str, padding)))
    )
    fill = relax.const(np.zeros(1, np.float32))
    return relax.call_tir(gv, [x, fill], relax.TensorType(tuple(out), "float32"))


def cpu(target: Target) -> dict[str, Legalization]:
    """Row kernels for softmax, layer and group norm and trailing-axis means, and the windowed max pool, at
    the target's kernel width."""
    lanes = target.kernel_lanes
    return {
        "relax.nn.softmax": lambda bb, call: _softmax(bb, call, lanes),
        "relax.nn.layer_norm": lambda bb, call: _layer_norm(bb, call, lanes),
        "relax.mean": lambda bb, call: _mean(bb, call, lanes),
        "relax.nn.max_pool2d": lambda bb, call: _max_pool(bb, call, lanes),
        "relax.nn.group_norm": lambda bb, call: _group_norm(bb, call, lanes),
    }


def gpu(_target: Target) -> dict[str, Legalization]:
    """TVM's lowering, softmax with a vectorizable exp."""
    return {"relax.nn.softmax": _fast_softmax}
