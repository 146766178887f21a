"""CPU conv2d layers (not depthwise) as wide kernels: a 1×1 conv reads its input in place (a reshape), a
stride-1 k×k conv reads taps of the padded image in place (direct, no im2col) where that is predicted
cheaper, other convs go through im2col. Grouped convs run their full block-diagonal weight, whose zeros
between groups the sparse kernels skip like pruned ones. Strided dilated convs stay with TVM."""

from __future__ import annotations

import dataclasses

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
        the kernel (dense or sparse) the layer will get."""
        c, n = ctx.costs, ep.weight.shape[0]
        oh, ow = out_hw

        def kernel_us(m: int) -> float:  # the predicted time of the kernel the layer will get
            dense_us, sparse_us = wide_us(ctx, packing, batch * m, k, n)
            return sparse_us if cost.choose(c, dense_us, sparse_us, ep.density, "").sparse else dense_us

        return cost.direct_pays(kernel_us(oh * wp), kernel_us(oh * ow), cost.copy_us(c, batch * k * oh * ow))

    def _direct(self, ctx, layer: ConvLayer, ep: Epilogue, packing) -> relax.Expr:
        """Stride-1 conv without im2col: on the zero-padded image flattened per channel, output pixel
        f = i·Wp + j reads tap (c, p, q) at c·plane + p·dil·Wp + q·dil + f, so each tap is a contiguous row
        of the operand at a fixed offset. The kernel computes the Wp − OW border columns too; a crop drops
        them."""
        batch, channels, height, width = layer.shape
        (kh, kw), pad, dil, name = layer.kernel, layer.pad, layer.dil, layer.name
        oh, ow = layer.out_hw
        wp = width + pad[1] + pad[3]
        m = oh * wp
        # rows below the image so the last tap's last chunk (`wide_lanes` wide) stays inside its channel's plane
        reach = (kh - 1) * dil[0] * wp + (kw - 1) * dil[1] + padded(m, ctx.costs.wide_lanes)
        hp = max(height + pad[0] + pad[2], -(-reach // wp))
        pad_us = cost.copy_us(ctx.costs, batch * channels * hp * wp)
        planes = conv_kernels.pad_planes(
            batch, channels, height, width, pad[0], pad[1], (hp, wp), parallel=ctx.parallel(pad_us)
        )
        gv = ctx.add_kernel(planes, f"{symbol(name)}_pad")
        fill = relax.const(np.zeros(1, np.float32))
        xp = relax.call_tir(gv, [layer.x, fill], relax.TensorType((batch, channels, hp, wp), "float32"))
        a = relax.op.reshape(xp, (batch, channels * hp * wp))
        taps = np.add.outer(np.arange(kh) * dil[0] * wp, np.arange(kw) * dil[1])  # [kh, kw]
        koff = (np.arange(channels)[:, None, None] * (hp * wp) + taps).reshape(-1).astype(np.int32)
        out_c = layer.out_c
        via = f" (conv {kh}×{kw} direct{_grouped(ep)})"
        k = channels * kh * kw
        out = emit_wide(ctx, name, a, channels * hp * wp, batch, k, m, out_c, ep, via, koff, packing=packing)
        if wp == ow:
            return relax.op.reshape(out, (batch, out_c, oh, ow))
        copy_us = cost.copy_us(ctx.costs, batch * out_c * m)
        crop = conv_kernels.crop_planes(batch, out_c, oh, wp, ow, parallel=ctx.parallel(copy_us))
        gv = ctx.add_kernel(crop, f"{symbol(name)}_crop")
        return relax.call_tir(gv, [out, fill], relax.TensorType((batch, out_c, oh, ow), "float32"))


def _grouped(ep: Epilogue) -> str:
    return f", {ep.groups} groups block-diagonal" if ep.groups > 1 else ""
