"""CPU depthwise conv2d layers: direct kernels (flat for stride-1 same-size images, deinterleaved for wide
stride-2 outputs, the zero-bordered grid otherwise), each also in a sparse form over the nonzero taps,
priced against the dense one."""

from __future__ import annotations

import numpy as np
from tvm import relax

from .. import cost
from ..context import Candidate
from ..kernels import conv as conv_kernels
from ..kernels import depthwise_taps
from . import ConvLayer


class Depthwise:
    """One filter per channel (see the module docstring)."""

    def lower(self, ctx, layer: ConvLayer) -> relax.Expr:
        c, lanes = ctx.costs, ctx.target.kernel_lanes
        shape, kernel, stride, pad, out_hw, ep = (
            layer.shape,
            layer.kernel,
            layer.stride,
            layer.pad,
            layer.out_hw,
            layer.ep,
        )
        batch, channels, height, width = shape
        name, x = layer.name, layer.x
        work_us = cost.depthwise_dense(c, batch, channels, out_hw, kernel)
        parallel = ctx.parallel(work_us)
        bias = ep.bias if ep.bias is not None else np.zeros(channels, np.float32)
        weight = ep.weight.reshape(channels, *kernel)
        same = stride == (1, 1) and out_hw == (height, width)
        out_shape = (batch, channels, *out_hw)
        if same and height * width <= c.depthwise_same_max_pixels:
            masks = conv_kernels.column_mask(height, width, kernel[1], pad[1], lanes)
            nnz = int(np.count_nonzero(weight))
            sparse_us = cost.depthwise_sparse(c, batch, channels, height, width, nnz)
            choice = cost.choose(c, work_us, sparse_us, ep.density, "depthwise taps")

            def sparse() -> Candidate:
                ptr, *taps = conv_kernels.depthwise_taps(weight, width)
                func = conv_kernels.depthwise_same_sparse(
                    batch,
                    channels,
                    height,
                    width,
                    kernel,
                    (pad[0], pad[1]),
                    len(taps[0]),
                    ep.act,
                    parallel=ctx.parallel(sparse_us),
                    lanes=lanes,
                )
                return Candidate(
                    "sparse depthwise flat taps", func, (ptr, *taps, bias, masks), shape, out_shape
                )

            def dense() -> Candidate:
                func = conv_kernels.depthwise_same(
                    batch,
                    channels,
                    height,
                    width,
                    kernel,
                    (pad[0], pad[1]),
                    ep.act,
                    parallel=parallel,
                    lanes=lanes,
                )
                return Candidate("dense depthwise flat", func, (weight, bias, masks), shape, out_shape)

            chosen = ctx.choose(name, ep, choice, sparse, dense)
            return ctx.call(chosen, name, choice.sparse, x)
        if stride == (2, 2) and out_hw[1] >= lanes:  # below one vector of outputs half of it is wasted
            func = conv_kernels.depthwise_stride2(
                batch, channels, height, width, kernel, pad, out_hw, ep.act, parallel=parallel, lanes=lanes
            )
            cand = Candidate("dense depthwise stride-2 deinterleaved", func, (weight, bias), shape, out_shape)
        else:
            # the flat stride-1 grid is computed in chunks of four vectors' worth of accumulators
            func = conv_kernels.depthwise(
                batch,
                channels,
                height,
                width,
                kernel,
                stride,
                pad,
                out_hw,
                ep.act,
                parallel=parallel,
                lanes=4 * lanes,
                chunk=lanes,
            )
            cand = Candidate("dense depthwise direct", func, (weight, bias), shape, out_shape)
        nnz = int(np.count_nonzero(weight))
        sparse_us = _tile_taps_us(c, batch, channels, (height, width), pad, out_hw, weight, nnz)
        choice = cost.choose(c, work_us, sparse_us, ep.density, "depthwise taps")

        def tile_taps() -> Candidate:
            ptr, value, offset, _ = conv_kernels.depthwise_taps(weight, width + pad[1] + pad[3])
            func = depthwise_taps.depthwise_sparse(
                batch,
                channels,
                height,
                width,
                kernel,
                stride,
                pad,
                out_hw,
                len(value),
                ep.act,
                parallel=ctx.parallel(sparse_us),
                lanes=lanes,
            )
            return Candidate(
                f"sparse depthwise taps ({nnz} of {weight.size})",
                func,
                (ptr, value, offset, bias),
                shape,
                out_shape,
            )

        chosen = ctx.choose(name, ep, choice, tile_taps, lambda: cand)
        return ctx.call(chosen, name, choice.sparse, x)


def _tile_taps_us(c, batch: int, channels: int, size, pad, out_hw, weight: np.ndarray, nnz: int) -> float:
    """µs of the tile-based tap kernel over `nnz` stored taps: the fitted per-tap and per-channel work at
    output resolution, plus one zero-bordered tile copy per channel that has taps (tapless ones only write
    their bias)."""
    live = int(np.count_nonzero(weight.reshape(channels, -1).any(axis=1)))
    taps_us = cost.depthwise_sparse(c, batch, live, *out_hw, nnz)
    tile = (size[0] + pad[0] + pad[2]) * (size[1] + pad[1] + pad[3])
    return taps_us + cost.copy_us(c, batch * live * tile)
