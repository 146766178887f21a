"""Convolution helpers: im2col into the wide-GEMM operand layout, and a direct depthwise kernel."""

from __future__ import annotations

from tvm import te, tirx
from tvm.script import tirx as T

from .linear import SCHEDULED, _activate


def im2col(batch: int, channels: int, height: int, width: int, kernel: tuple[int, int], stride: tuple[int, int],
           padding: tuple[int, int, int, int], dilation: tuple[int, int], out_hw: tuple[int, int],
           m_padded: int) -> tirx.PrimFunc:
    """A[b, (c, p, q), m] = x[b, c, oh·s + p·d − pad, ow·s + q·d − pad] with m = oh·OW + ow, zero outside the
    image and for the padding columns m ≥ OH·OW (so the GEMM needs no tail loop). Scheduled by cascc's rule."""
    kh, kw = kernel
    oh_, ow_ = out_hw
    top, left = padding[0], padding[1]
    x = te.placeholder((batch, channels, height, width), "float32", name="x")

    def value(b, k, m):
        c, p, q = k // (kh * kw), (k // kw) % kh, k % kw
        oh, ow = m // ow_, m % ow_
        h = oh * stride[0] + p * dilation[0] - top
        w = ow * stride[1] + q * dilation[1] - left
        inside = tirx.all(m < oh_ * ow_, h >= 0, h < height, w >= 0, w < width)
        return tirx.if_then_else(inside, x[b, c, tirx.max(tirx.min(h, height - 1), 0),
                                           tirx.max(tirx.min(w, width - 1), 0)], tirx.const(0, "float32"))

    a = te.compute((batch, channels * kh * kw, m_padded), value, name="im2col")
    return te.create_prim_func([x, a])


def depthwise(batch: int, channels: int, height: int, width: int, kernel: tuple[int, int],
              stride: tuple[int, int], out_hw: tuple[int, int], act: str) -> tirx.PrimFunc:
    """Y[b, c] = act(bias[c] + Σ_pq W[c, p, q] · Xpad[b, c, oh·s + p, ow·s + q]) on an already padded input;
    one task per (image, channel), a whole output row vectorized at a time."""
    kh, kw = kernel
    sh, sw = stride
    oh_, ow_ = out_hw

    @T.prim_func
    def kernel_(X: T.Buffer((batch, channels, height, width), "float32"), W: T.Buffer((channels, kh, kw), "float32"),
                bias: T.Buffer((channels,), "float32"), Y: T.Buffer((batch, channels, oh_, ow_), "float32")):
        T.func_attr(SCHEDULED)
        for task in T.parallel(batch * channels):
            b = task // channels
            c = task % channels
            for i in range(oh_):
                acc = T.alloc_local((ow_,), "float32")
                for j in T.vectorized(ow_):
                    acc[j] = bias[c]
                for p in T.unroll(kh):
                    for q in T.unroll(kw):
                        for j in T.vectorized(ow_):
                            acc[j] = acc[j] + W[c, p, q] * X[b, c, i * sh + p, j * sw + q]
                for j in T.vectorized(ow_):
                    Y[b, c, i, j] = _activate(acc[j], act)

    return kernel_
