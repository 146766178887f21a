"""CPU conv2d layers (not depthwise) as wide kernels: a 1×1 conv reads its input in place (a reshape), a
stride-1 k×k conv reads taps of the padded image in place (direct, no im2col) where that is predicted
cheaper, a stride-2 k×k conv runs direct over the four phases of its input where that is predicted cheaper,
other convs go through im2col. Grouped convs run their full block-diagonal weight, whose zeros
between groups the sparse kernels skip like pruned ones. Strided dilated convs stay with TVM."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from tvm import relax

from .. import cost
from ..context import symbol
from ..decision import Decline
from ..epilogue import Epilogue, block_diagonal
from ..kernels import conv as conv_kernels
from ..kernels.formats import padded
from . import ConvLayer
from .wide import emit_wide, operand_pitch, rows_at, wide_packing, wide_us


class Conv:
    """A conv2d layer through the wide kernels (see the module docstring)."""

    def lower(self, ctx, layer: ConvLayer) -> relax.Expr | None:
        if layer.quant is not None and layer.groups == 1:
            from .int8_conv import lower_int8_conv

            return lower_int8_conv(ctx, layer)
        c = ctx.costs
        batch, channels, height, width = layer.shape
        (kh, kw), stride, pad, dil = layer.kernel, layer.stride, layer.pad, layer.dil
        oh, ow = layer.out_hw
        k, mcols = channels * kh * kw, oh * ow
        mpad = operand_pitch(mcols, c.wide_lanes, ctx.target.line_floats)
        # a 1×1 conv reads its input in place when its pixels fill at least one vector (full or half width)
        plain_lanes = next((w for w in (c.wide_lanes, c.wide_lanes // 2) if mcols >= w), None)
        as_reshape = (
            (kh, kw) == (1, 1) and stride == (1, 1) and pad == (0, 0, 0, 0) and plain_lanes is not None
        )
        direct = stride == (1, 1) and (kh, kw) != (1, 1) and c.direct_conv
        if dil != (1, 1) and not (as_reshape or direct):
            return ctx.why(layer.name, layer.ep.density, Decline.DILATED_STRIDED)
        ep = layer.ep
        if layer.groups > 1:  # the zeros between groups are skipped like pruned ones
            ep = dataclasses.replace(ep, weight=block_diagonal(ep.weight, layer.groups), groups=layer.groups)
        x, name, out_c = layer.x, layer.name, layer.out_c
        if as_reshape:
            a = relax.op.reshape(x, (batch, channels * mcols))
            via = f" (1×1 conv{_grouped(ep)})"
            koff = rows_at(channels, mcols)
            out = emit_wide(ctx, name, a, k * mcols, batch, k, mcols, out_c, ep, via, koff, plain_lanes)
            return relax.op.reshape(out, (batch, out_c, oh, ow))
        packing = wide_packing(ctx, ep, out_c, k)
        wp = width + pad[1] + pad[3]
        if direct and (dil != (1, 1) or self._direct_pays(ctx, batch, k, (oh, ow), wp, ep, packing)):
            return self._direct(ctx, layer, ep, packing)
        copy_us = cost.copy_us(c, batch * k * mpad)
        polyphase = self._polyphase_plan(ctx, layer, ep)
        if polyphase is not None and self._polyphase_pays(ctx, layer, ep, packing, polyphase):
            return self._polyphase(ctx, layer, polyphase)
        im2col = conv_kernels.im2col(
            batch,
            channels,
            height,
            width,
            (kh, kw),
            stride,
            pad,
            (oh, ow),
            mpad,
            parallel=ctx.parallel(copy_us),
            lanes=ctx.target.kernel_lanes,
        )
        gv = ctx.add_kernel(im2col, f"{symbol(name)}_im2col")
        a = relax.call_tir(
            gv, [x, relax.const(np.zeros(1, np.float32))], relax.TensorType((batch, k, mpad), "float32")
        )
        a = relax.op.reshape(a, (batch, k * mpad))
        via = f" (conv {kh}×{kw} via im2col{_grouped(ep)})"
        out = emit_wide(
            ctx, name, a, k * mpad, batch, k, mcols, out_c, ep, via, rows_at(k, mpad), packing=packing
        )
        return relax.op.reshape(out, (batch, out_c, oh, ow))

    def _direct_pays(self, ctx, batch, k, out_hw, wp, ep: Epilogue, packing) -> bool:
        """Direct (OH·Wp columns, no copy) against im2col (OH·OW columns after a K·OH·OW copy), judged with
        the kernel (dense or sparse) the layer will get: direct wins unless its border columns cost more
        than the copy (small images, e.g. 8×8 with Wp = 10: 25% more columns)."""
        n, (oh, ow) = ep.weight.shape[0], out_hw
        direct_us = _kernel_us(ctx, ep, packing, batch * oh * wp, k, n)
        return direct_us <= _im2col_us(ctx, ep, packing, batch, k, oh * ow)

    def _direct(self, ctx, layer: ConvLayer, ep: Epilogue, packing) -> relax.Expr:
        """Stride-1 conv without im2col on the zero-padded image (`_on_planes`)."""
        batch, channels, height, width = layer.shape
        (kh, kw), pad, dil, name = layer.kernel, layer.pad, layer.dil, layer.name
        wp = width + pad[1] + pad[3]
        hp = _plane_rows(ctx, height + pad[0] + pad[2], wp, (kh, kw), dil, layer.out_hw[0])
        pad_us = cost.copy_us(ctx.costs, batch * channels * hp * wp)
        planes = conv_kernels.pad_planes(
            batch, channels, height, width, pad[0], pad[1], (hp, wp), parallel=ctx.parallel(pad_us)
        )
        gv = ctx.add_kernel(planes, f"{symbol(name)}_pad")
        xp = relax.call_tir(gv, [layer.x, _FILL()], relax.TensorType((batch, channels, hp, wp), "float32"))
        via = f" (conv {kh}×{kw} direct{_grouped(ep)})"
        return _on_planes(ctx, layer, xp, (channels, hp, wp), (kh, kw), dil, ep, packing, via)

    def _polyphase_plan(self, ctx, layer: ConvLayer, ep: Epilogue) -> _Phases | None:
        """The phases of a stride-2 k×k conv (k > 1, ungrouped, undilated), else None."""
        plain = layer.dil == (1, 1) and layer.kernel != (1, 1) and layer.groups == 1
        if layer.stride != (2, 2) or not plain or not ctx.costs.direct_conv:
            return None
        (kh, kw), (oh, ow) = layer.kernel, layer.out_hw
        half = (-(-kh // 2), -(-kw // 2))
        weight = conv_kernels.polyphase_weight(ep.weight)
        inflation = weight[0].size / ep.weight[0].size
        phased = dataclasses.replace(ep, weight=weight, inflation=ep.inflation * inflation)
        wq = ow + half[1] - 1
        hq = _plane_rows(ctx, oh + half[0] - 1, wq, half, (1, 1), oh)
        k = 4 * layer.shape[1] * half[0] * half[1]
        copy_us = cost.copy_us(ctx.costs, layer.shape[0] * 4 * layer.shape[1] * hq * wq)
        return _Phases(phased, wide_packing(ctx, phased, layer.out_c, k), half, k, hq, wq, copy_us)

    def _polyphase_pays(self, ctx, layer: ConvLayer, ep: Epilogue, packing, plan: _Phases) -> bool:
        """The phases (OH·Wq columns of a 4C·⌈kh/2⌉·⌈kw/2⌉ reduction, zero taps included, after one copy
        of the image) against im2col (OH·OW columns of C·kh·kw after a K·OH·OW copy), each judged with the
        kernel (dense or sparse) the layer would get: sparse kernels skip the added zero taps."""
        batch, channels = layer.shape[:2]
        (kh, kw), (oh, ow), n = layer.kernel, layer.out_hw, layer.out_c
        phased_us = _kernel_us(ctx, plan.ep, plan.packing, batch * oh * plan.wq, plan.k, n) + plan.copy_us
        return phased_us < _im2col_us(ctx, ep, packing, batch, channels * kh * kw, oh * ow)

    def _polyphase(self, ctx, layer: ConvLayer, plan: _Phases) -> relax.Expr:
        """Stride-2 conv as a stride-1 one over the four phases of each channel (`polyphase_planes`)."""
        batch, channels, height, width = layer.shape
        (kh, kw), pad, name = layer.kernel, layer.pad, layer.name
        planes = conv_kernels.polyphase_planes(
            batch,
            channels,
            height,
            width,
            pad[0],
            pad[1],
            (plan.hq, plan.wq),
            parallel=ctx.parallel(plan.copy_us),
        )
        gv = ctx.add_kernel(planes, f"{symbol(name)}_phases")
        shape = (batch, 4 * channels, plan.hq, plan.wq)
        xq = relax.call_tir(gv, [layer.x, _FILL()], relax.TensorType(shape, "float32"))
        via = f" (conv {kh}×{kw} stride 2 direct over 4 phases)"
        return _on_planes(ctx, layer, xq, shape[1:], plan.half, (1, 1), plan.ep, plan.packing, via)


@dataclasses.dataclass(frozen=True)
class _Phases:
    """A stride-2 conv over the phases of its input: the phase epilogue (zero taps added) and its packing,
    the ⌈kh/2⌉×⌈kw/2⌉ kernel, the reduction length 4C·⌈kh/2⌉·⌈kw/2⌉, the phase planes' rows and columns,
    and the µs of copying the image into them."""

    ep: Epilogue
    packing: Any
    half: tuple[int, int]
    k: int
    hq: int
    wq: int
    copy_us: float


def _FILL() -> relax.Expr:
    """The padding value a plane kernel takes as its second input (see `kernels/conv.py` im2col)."""
    return relax.const(np.zeros(1, np.float32))


def _kernel_us(ctx, ep: Epilogue, packing, columns: int, k: int, n: int) -> float:
    """Predicted µs of the kernel (dense or sparse) the layer would get on `columns` operand columns."""
    dense_us, sparse_us = wide_us(ctx, packing, columns, k, n)
    return sparse_us if cost.choose(ctx.costs, dense_us, sparse_us, ep.density, "").sparse else dense_us


def _im2col_us(ctx, ep: Epilogue, packing, batch: int, k: int, m: int) -> float:
    """Predicted µs of the im2col route: the copy of K·M floats per image, the kernel on M columns, and
    the operand's re-reads from memory when it outgrows the cache."""
    n, c = ep.weight.shape[0], ctx.costs
    tiles = -(-n // (c.wide_dense_tile[0] if n >= c.wide_dense_tile[0] else c.wide_rows))
    operand = batch * k * m
    return (
        cost.copy_us(c, operand)
        + _kernel_us(ctx, ep, packing, batch * m, k, n)
        + cost.spill_us(c, operand, tiles)
    )


def _plane_rows(ctx, rows: int, wp: int, kernel, dil, oh: int) -> int:
    """Rows of a direct conv's planes: the padded image's, or more so the last tap's last chunk
    (`wide_lanes` wide) stays inside its channel's plane."""
    reach = (kernel[0] - 1) * dil[0] * wp + (kernel[1] - 1) * dil[1] + padded(oh * wp, ctx.costs.wide_lanes)
    return max(rows, -(-reach // wp))


def _on_planes(ctx, layer: ConvLayer, planes, plane_shape, kernel, dil, ep, packing, via) -> relax.Expr:
    """A stride-1 conv read in place from zero-bordered planes [B, C, Hp, Wp] (no im2col): output pixel
    f = i·Wp + j reads tap (c, p, q) at c·Hp·Wp + p·dil·Wp + q·dil + f, so each tap is a contiguous row of
    the operand at a fixed offset. The kernel computes the Wp − OW border columns too; a crop drops them."""
    batch, (channels, hp, wp), (kh, kw) = layer.shape[0], plane_shape, kernel
    oh, ow = layer.out_hw
    m, out_c = oh * wp, layer.out_c
    a = relax.op.reshape(planes, (batch, channels * hp * wp))
    taps = np.add.outer(np.arange(kh) * dil[0] * wp, np.arange(kw) * dil[1])  # [kh, kw]
    koff = (np.arange(channels)[:, None, None] * (hp * wp) + taps).reshape(-1).astype(np.int32)
    k = channels * kh * kw
    out = emit_wide(
        ctx, layer.name, a, channels * hp * wp, batch, k, m, out_c, ep, via, koff, packing=packing
    )
    if wp == ow:
        return relax.op.reshape(out, (batch, out_c, oh, ow))
    copy_us = cost.copy_us(ctx.costs, batch * out_c * m)
    crop = conv_kernels.crop_planes(batch, out_c, oh, wp, ow, parallel=ctx.parallel(copy_us))
    gv = ctx.add_kernel(crop, f"{symbol(layer.name)}_crop")
    return relax.call_tir(gv, [out, _FILL()], relax.TensorType((batch, out_c, oh, ow), "float32"))


def _grouped(ep: Epilogue) -> str:
    return f", {ep.groups} groups block-diagonal" if ep.groups > 1 else ""
