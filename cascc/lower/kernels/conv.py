"""Convolution helpers: im2col into the wide-GEMM operand layout, and a direct depthwise kernel."""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from .linear import SCHEDULED, _activate


def im2col(batch: int, channels: int, height: int, width: int, kernel: tuple[int, int], stride: tuple[int, int],
           padding: tuple[int, int, int, int], out_hw: tuple[int, int], m_padded: int,
           parallel: bool = True) -> tirx.PrimFunc:
    """A[b, (c, p, q), m] = Xpad[b, c, oh·s + p, ow·s + q] with m = oh·OW + ow; the columns m ≥ OH·OW are zero
    (so the GEMM needs no tail). Each channel is first copied into a zero-bordered local tile, so every row
    of A is a plain (strided for s > 1) copy with no bounds checks."""
    kh, kw = kernel
    sh, sw = stride
    top, left = padding[0], padding[1]
    hp, wp = height + padding[0] + padding[2], width + padding[1] + padding[3]
    oh_, ow_ = out_hw
    m = oh_ * ow_
    tasks = T.parallel if parallel else T.serial

    # `fill` (the padding value, zero) is a second input on purpose: TVM's RewriteDataflowReshape analyses
    # every call_tir reading exactly one tensor as a possible reshape, which fails on hand-written kernels.
    @T.prim_func
    def kernel_(X: T.Buffer((batch, channels, height, width), "float32"), fill: T.Buffer((1,), "float32"),
                A: T.Buffer((batch, channels * kh * kw, m_padded), "float32")):
        T.func_attr(SCHEDULED)
        for task in tasks(batch * channels):
            b = task // channels
            c = task % channels
            tile = T.alloc_local((hp * wp,), "float32")
            for f in T.vectorized(hp * wp):
                tile[f] = fill[0]
            for i in range(height):
                for j in T.vectorized(width):
                    tile[(i + top) * wp + j + left] = X[b, c, i, j]
            for p in range(kh):
                for q in range(kw):
                    for i in range(oh_):
                        for j in T.vectorized(ow_):
                            A[b, (c * kh + p) * kw + q, i * ow_ + j] = tile[(i * sh + p) * wp + j * sw + q]
                    for j in range(m_padded - m):
                        A[b, (c * kh + p) * kw + q, m + j] = fill[0]

    return kernel_


def depthwise(batch: int, channels: int, height: int, width: int, kernel: tuple[int, int],
              stride: tuple[int, int], padding: tuple[int, int, int, int], out_hw: tuple[int, int],
              act: str | None, parallel: bool = True) -> tirx.PrimFunc:
    """Y[b, c] = act(bias[c] + Σ_pq W[c, p, q] · Xpad[b, c, oh·s + p, ow·s + q]).

    One task per (image, channel): the channel is first copied into a zero-bordered local tile (no separate
    pad op, no bounds checks in the inner loop), then each output row is computed as one vector.
    """
    kh, kw = kernel
    sh, sw = stride
    top, left = padding[0], padding[1]
    hp, wp = height + padding[0] + padding[2], width + padding[1] + padding[3]
    oh_, ow_ = out_hw
    if (sh, sw) == (1, 1):
        return _depthwise_flat(batch, channels, height, width, kernel, (top, left), (hp, wp), out_hw, act,
                               parallel=parallel)

    tasks = T.parallel if parallel else T.serial

    @T.prim_func
    def kernel_(X: T.Buffer((batch, channels, height, width), "float32"), W: T.Buffer((channels, kh, kw), "float32"),
                bias: T.Buffer((channels,), "float32"), Y: T.Buffer((batch, channels, oh_, ow_), "float32")):
        T.func_attr(SCHEDULED)
        for task in tasks(batch * channels):
            b = task // channels
            c = task % channels
            tile = T.alloc_local((hp, wp), "float32")
            for i in range(hp):
                for j in T.vectorized(wp):
                    tile[i, j] = T.float32(0)
            for i in range(height):
                for j in T.vectorized(width):
                    tile[i + top, j + left] = X[b, c, i, j]
            for i in range(oh_):
                acc = T.alloc_local((ow_,), "float32")
                for j in T.vectorized(ow_):
                    acc[j] = bias[c]
                for p in T.unroll(kh):
                    for q in T.unroll(kw):
                        for j in T.vectorized(ow_):
                            acc[j] = acc[j] + W[c, p, q] * tile[i * sh + p, j * sw + q]
                for j in T.vectorized(ow_):
                    Y[b, c, i, j] = _activate(acc[j], act)

    return kernel_


def _depthwise_flat(batch, channels, height, width, kernel, offset, padded_hw, out_hw, act, lanes: int = 64,
                    parallel: bool = True):
    """Stride-1 depthwise on the flattened padded grid: output position f = i·Wp + j reads tile[f + p·Wp + q],
    contiguous for every tap, so whole 64-lane chunks are computed at once (the columns j ≥ OW are computed
    and dropped). Four independent registers per chunk hide the FMA latency."""
    kh, kw = kernel
    top, left = offset
    hp, wp = padded_hw
    oh_, ow_ = out_hw
    chunks = -(-(oh_ * wp) // lanes)
    size = chunks * lanes + (kh - 1) * wp + kw  # reads past the last row stay inside the tile (zeros)

    tasks = T.parallel if parallel else T.serial

    @T.prim_func
    def kernel_(X: T.Buffer((batch, channels, height, width), "float32"), W: T.Buffer((channels, kh, kw), "float32"),
                bias: T.Buffer((channels,), "float32"), Y: T.Buffer((batch, channels, oh_, ow_), "float32")):
        T.func_attr(SCHEDULED)
        for task in tasks(batch * channels):
            b = task // channels
            c = task % channels
            tile = T.alloc_local((size,), "float32")
            out = T.alloc_local((chunks * lanes,), "float32")
            for f in T.vectorized(size):
                tile[f] = T.float32(0)
            for i in range(height):
                for j in T.vectorized(width):
                    tile[(i + top) * wp + j + left] = X[b, c, i, j]
            for ch in range(chunks):
                acc = T.alloc_local((lanes,), "float32")
                for v in T.vectorized(lanes):
                    acc[v] = bias[c]
                for p in T.unroll(kh):
                    for q in T.unroll(kw):
                        for v in T.vectorized(lanes):
                            acc[v] = acc[v] + W[c, p, q] * tile[ch * lanes + v + p * wp + q]
                for v in T.vectorized(lanes):
                    out[ch * lanes + v] = acc[v]
            for i in range(oh_):
                for j in T.vectorized(ow_):
                    Y[b, c, i, j] = _activate(out[i * wp + j], act)

    return kernel_
