"""Convolution kernels: im2col into the wide-GEMM operand layout, and direct depthwise convolution.

Both first copy one channel into a zero-bordered local tile (flattened, row pitch Wp), so the inner loops
read it without bounds checks and no separate pad op runs.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from .cache import cached
from .linear import SCHEDULED, _activate
from .tasks import task_jobs

# LLVM's vector lane count is 16-bit: one vector over a whole plane (tens of thousands of pixels) aborts
# inside LLVM ("scalable size"), and past 65535 lanes the count wraps and leaves most of the plane unwritten.
# Fills and copies of plane-sized extents therefore go in `chunk`-wide vectors (the target's kernel width)
# plus a static tail.


# A row loop is one vector up to this many lanes (a 224-px image row: 14 zmm registers); a wider row (a
# Conv1d over 16,000 audio samples is a 1-high conv of that width) is a serial loop LLVM's loop vectorizer
# widens to the register. One 3,200-lane vector took LLVM over a minute to legalize.
MAX_ROW_LANES = 256


def _row(n: int):
    """The loop over one row of n pixels: vectorized when n fits MAX_ROW_LANES, else serial."""
    return T.vectorized(n) if n <= MAX_ROW_LANES else T.serial(n)


@T.macro
def _fill(buf, start, count, value, chunk):
    """buf[start + f] = value for f < count (count a Python int), in chunk-wide vector stores."""
    for f in range(count // chunk):
        for v in T.vectorized(chunk):
            buf[start + f * chunk + v] = value
    if count % chunk != 0:
        for v in T.vectorized(count % chunk):
            buf[start + count // chunk * chunk + v] = value


@T.macro
def _copy(dst, dst_start, src, src_start, count, chunk):
    """dst[dst_start + f] = src[src_start + f] for f < count (count a Python int), in chunk-wide vectors."""
    for f in range(count // chunk):
        for v in T.vectorized(chunk):
            dst[dst_start + f * chunk + v] = src[src_start + f * chunk + v]
    if count % chunk != 0:
        for v in T.vectorized(count % chunk):
            dst[dst_start + count // chunk * chunk + v] = src[src_start + count // chunk * chunk + v]


@T.macro
def _load_tile(tile, X, b, c, height, width, top, left, wp, size, fill, chunk):
    """tile[(i + top)·Wp + j + left] = X[b, c, i, j]; every other element of the tile = fill."""
    _fill(tile, 0, size, fill, chunk)
    for i in range(height):
        for j in _row(width):
            tile[(i + top) * wp + j + left] = X[b, c, i, j]


@T.macro
def _load_flat_tile(tile, Xf, base, hw, lead, size, chunk):
    """tile[lead + f] = Xf[base + f] for one channel's hw pixels, zeros before and after (up to size)."""
    _fill(tile, 0, lead, T.float32(0), chunk)
    _fill(tile, lead + hw, size - lead - hw, T.float32(0), chunk)
    _copy(tile, lead, Xf, base, hw, chunk)


@T.macro
def _store_chunk(Yf, acc, base, start, count, lanes, act):
    """Yf[base + start + v] = act(acc[v]) for the v with start + v < count: one vector store when the chunk
    is whole, a scalar loop on the last, partial one."""
    if start + lanes <= count:
        for v in T.vectorized(lanes):
            Yf[base + start + v] = _activate(acc[v], act)
    else:
        for v in range(lanes):
            if start + v < count:
                Yf[base + start + v] = _activate(acc[v], act)


def _evens(tile, start, lanes: int):
    """tile[start + 2v] for v < lanes, from two contiguous lanes-wide loads and one shuffle (stride-2 reads)."""
    return T.Shuffle(
        [tile[T.Ramp(start, 1, lanes)], tile[T.Ramp(start + lanes, 1, lanes)]], [2 * v for v in range(lanes)]
    )


def _padded_grid(height: int, width: int, padding) -> tuple[int, int]:
    """(Hp, Wp): the image's size with its zero border (padding = top, left, bottom, right)."""
    return height + padding[0] + padding[2], width + padding[1] + padding[3]


def _flat_tile(height: int, width: int, kernel, padding, lanes: int) -> tuple[int, int, int, int]:
    """(pixels, chunks, lead, size) of the flat per-channel tile of `depthwise_same`: the image at `lead`,
    zeros around it so every tap of every lanes-wide chunk reads inside."""
    (kh, kw), (top, left) = kernel, padding
    hw = height * width
    chunks = -(-hw // lanes)
    lead = top * width + left
    return hw, chunks, lead, lead + chunks * lanes + (kh - 1 - top) * width + (kw - 1 - left)


@cached
def im2col(
    batch: int,
    channels: int,
    height: int,
    width: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    out_hw: tuple[int, int],
    m_padded: int,
    parallel: bool = True,
    *,
    lanes: int,
) -> tirx.PrimFunc:
    """A[b, (c, p, q), m] = Xpad[b, c, oh·s + p, ow·s + q] with m = oh·OW + ow; the columns m ≥ OH·OW are zero
    (so the GEMM needs no tail). Every row of A is a plain (strided for s > 1) copy from the channel's tile;
    at column stride 2 with ≥ `lanes` output columns, `lanes` outputs come from one 2·lanes-wide load and a
    shuffle that keeps the even elements (as in `depthwise_stride2`)."""
    kh, kw = kernel
    sh, sw = stride
    top, left = padding[0], padding[1]
    hp, wp = _padded_grid(height, width, padding)
    oh_, ow_ = out_hw
    m = oh_ * ow_
    deinterleave = sw == 2 and ow_ >= lanes
    owc = -(-ow_ // lanes)
    size = hp * wp + 2 * lanes * owc + 2 * lanes if deinterleave else hp * wp
    rows = channels * kh * kw

    # `fill` (the padding value, zero) is a second input on purpose: TVM's RewriteDataflowReshape analyses
    # every call_tir reading exactly one tensor as a possible reshape, which fails on hand-written kernels.
    loop, jobs, per = task_jobs(batch * channels, parallel)

    @T.prim_func
    def kernel_(
        X: T.Buffer((batch, channels, height, width), "float32"),
        fill: T.Buffer((1,), "float32"),
        A: T.Buffer((batch, channels * kh * kw, m_padded), "float32"),
    ):
        T.func_attr(SCHEDULED)
        Af = T.decl_buffer((batch * rows * m_padded,), "float32", data=A.data)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * channels:
                    b = task // channels
                    c = task % channels
                    tile = T.alloc_local((size,), "float32")
                    _load_tile(tile, X, b, c, height, width, top, left, wp, size, fill[0], lanes)
                    for p in range(kh):
                        for q in range(kw):
                            for i in range(oh_):
                                if deinterleave:
                                    for jc in range(owc):
                                        row = T.alloc_local((lanes,), "float32")
                                        row[T.Ramp(0, 1, lanes)] = _evens(
                                            tile, (i * sh + p) * wp + 2 * jc * lanes + q, lanes
                                        )
                                        base = (b * rows + (c * kh + p) * kw + q) * m_padded + i * ow_
                                        _store_chunk(Af, row, base, jc * lanes, ow_, lanes, None)
                                else:
                                    for j in _row(ow_):
                                        A[b, (c * kh + p) * kw + q, i * ow_ + j] = tile[
                                            (i * sh + p) * wp + j * sw + q
                                        ]
                            for j in range(m_padded - m):
                                A[b, (c * kh + p) * kw + q, m + j] = fill[0]

    return kernel_


@cached
def pad_planes(
    batch: int,
    channels: int,
    height: int,
    width: int,
    top: int,
    left: int,
    out_hw: tuple[int, int],
    parallel: bool = True,
) -> tirx.PrimFunc:
    """P[b, c] = X[b, c] placed at (top, left) in a zeroed Hp × Wp plane: the operand of a direct conv.
    TVM's generic pad tests every element against the border; this zeroes the plane and copies whole rows."""
    hp, wp = out_hw

    loop, jobs, per = task_jobs(batch * channels, parallel)

    @T.prim_func
    def kernel_(
        X: T.Buffer((batch, channels, height, width), "float32"),
        fill: T.Buffer((1,), "float32"),
        P: T.Buffer((batch, channels, hp, wp), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * channels:
                    b = task // channels
                    c = task % channels
                    for i in range(hp):
                        for j in _row(wp):
                            P[b, c, i, j] = fill[0]
                    for i in range(height):
                        for j in _row(width):
                            P[b, c, i + top, j + left] = X[b, c, i, j]

    return kernel_


def phase_span(size: int, pad: int, phase: int, out: int) -> tuple[int, int]:
    """[first, last) indices u < out of one stride-2 phase whose source 2u + phase − pad lies in [0, size)."""
    first = max(0, -(-(pad - phase) // 2))
    last = min(out, (size - 1 + pad - phase) // 2 + 1)
    return first, max(first, last)


@T.macro
def _copy_phase(P, X, b, c, phase, a, e, top, left, rows, cols):
    """P[b, 4c + phase, u, v] = X[b, c, 2u + a − top, 2v + e − left] over the phase's in-image span."""
    for u in range(rows[1] - rows[0]):
        for v in _row(cols[1] - cols[0]):
            P[b, 4 * c + phase, rows[0] + u, cols[0] + v] = X[
                b, c, 2 * (rows[0] + u) + a - top, 2 * (cols[0] + v) + e - left
            ]


@cached
def polyphase_planes(
    batch: int,
    channels: int,
    height: int,
    width: int,
    top: int,
    left: int,
    out_hw: tuple[int, int],
    parallel: bool = True,
) -> tirx.PrimFunc:
    """P[b, 4c + 2a + e, u, v] = Xpad[b, c, 2u + a, 2v + e], zero outside the image: a stride-2 conv's input
    as the four stride-1 phases of each channel, so the conv runs direct (stride 1, kernel ⌈k/2⌉) on them
    instead of through an im2col copy K times the image (`strategies/conv.py` _polyphase)."""
    hq, wq = out_hw
    spans = [
        (a, e, phase_span(height, top, a, hq), phase_span(width, left, e, wq)) for a in (0, 1) for e in (0, 1)
    ]

    loop, jobs, per = task_jobs(batch * channels, parallel)

    @T.prim_func
    def kernel_(
        X: T.Buffer((batch, channels, height, width), "float32"),
        fill: T.Buffer((1,), "float32"),
        P: T.Buffer((batch, 4 * channels, hq, wq), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * channels:
                    b = task // channels
                    c = task % channels
                    for ph in range(4):
                        for i in range(hq):
                            for j in _row(wq):
                                P[b, 4 * c + ph, i, j] = fill[0]
                    _copy_phase(P, X, b, c, 0, 0, 0, top, left, spans[0][2], spans[0][3])
                    _copy_phase(P, X, b, c, 1, 0, 1, top, left, spans[1][2], spans[1][3])
                    _copy_phase(P, X, b, c, 2, 1, 0, top, left, spans[2][2], spans[2][3])
                    _copy_phase(P, X, b, c, 3, 1, 1, top, left, spans[3][2], spans[3][3])

    return kernel_


def polyphase_weight(weight: np.ndarray) -> np.ndarray:
    """W'[o, 4c + 2a + e, p, q] = W[o, c, 2p + a, 2q + e] (zero past the kernel): the stride-2 weight over
    `polyphase_planes`, a ⌈kh/2⌉ × ⌈kw/2⌉ stride-1 kernel."""
    out_c, channels, kh, kw = weight.shape
    hh, hw = -(-kh // 2), -(-kw // 2)
    padded_w = np.zeros((out_c, channels, 2 * hh, 2 * hw), weight.dtype)
    padded_w[:, :, :kh, :kw] = weight
    # [o, c, p, a, q, e] -> [o, c, a, e, p, q]
    phases = padded_w.reshape(out_c, channels, hh, 2, hw, 2).transpose(0, 1, 3, 5, 2, 4)
    return np.ascontiguousarray(phases.reshape(out_c, 4 * channels, hh, hw))


@cached
def crop_planes(batch: int, channels: int, height: int, pitch: int, width: int, parallel: bool = True):
    """Y[b, c, i, j] = G[b, c, i · pitch + j] for j < width: a direct conv's output grid without its border
    columns (TVM's generic strided_slice ran ~5 µs on a 64 × 25 × 7 grid; this copies whole rows)."""

    loop, jobs, per = task_jobs(batch * channels, parallel)

    @T.prim_func
    def kernel_(
        G: T.Buffer((batch, channels, height * pitch), "float32"),
        fill: T.Buffer((1,), "float32"),
        Y: T.Buffer((batch, channels, height, width), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * channels:
                    b = task // channels
                    c = task % channels
                    for i in range(height):
                        for j in _row(width):
                            Y[b, c, i, j] = G[b, c, i * pitch + j] + fill[0]

    return kernel_


@cached
def depthwise(
    batch: int,
    channels: int,
    height: int,
    width: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    out_hw: tuple[int, int],
    act: str | None,
    parallel: bool = True,
    *,
    lanes: int,
    chunk: int,
) -> tirx.PrimFunc:
    """Y[b, c] = act(bias[c] + Σ_pq W[c, p, q] · Xpad[b, c, oh·s + p, ow·s + q]), one task per (image, channel).

    Stride 1 runs on the flattened padded grid: output f = i·Wp + j reads tile[f + p·Wp + q], contiguous for
    every tap, so whole `lanes`-wide chunks are computed at once (columns j ≥ OW are computed, then
    dropped); the tile is filled in `chunk`-wide vectors. Other strides compute one output row as a (strided-read) vector at a time.
    """
    kh, kw = kernel
    sh, sw = stride
    top, left = padding[0], padding[1]
    hp, wp = _padded_grid(height, width, padding)
    oh_, ow_ = out_hw
    flat = (sh, sw) == (1, 1)
    chunks = -(-(oh_ * wp) // lanes)
    # the flat loop reads up to (kh-1)·Wp + kw past the last chunk start: size the tile so it stays inside
    size = max(hp * wp, chunks * lanes + (kh - 1) * wp + kw) if flat else hp * wp

    loop, jobs, per = task_jobs(batch * channels, parallel)

    @T.prim_func
    def kernel_(
        X: T.Buffer((batch, channels, height, width), "float32"),
        W: T.Buffer((channels, kh, kw), "float32"),
        bias: T.Buffer((channels,), "float32"),
        Y: T.Buffer((batch, channels, oh_, ow_), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * channels:
                    b = task // channels
                    c = task % channels
                    tile = T.alloc_local((size,), "float32")
                    _load_tile(tile, X, b, c, height, width, top, left, wp, size, T.float32(0), chunk)
                    if flat:
                        out = T.alloc_local((chunks * lanes,), "float32")
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
                            for j in _row(ow_):
                                Y[b, c, i, j] = _activate(out[i * wp + j], act)
                    else:
                        for i in range(oh_):
                            acc = T.alloc_local((ow_,), "float32")
                            for j in _row(ow_):
                                acc[j] = bias[c]
                            for p in T.unroll(kh):
                                for q in T.unroll(kw):
                                    for j in _row(ow_):
                                        acc[j] = acc[j] + W[c, p, q] * tile[(i * sh + p) * wp + j * sw + q]
                            for j in _row(ow_):
                                Y[b, c, i, j] = _activate(acc[j], act)

    return kernel_


@cached
def depthwise_same(
    batch: int,
    channels: int,
    height: int,
    width: int,
    kernel: tuple[int, int],
    padding: tuple[int, int],
    act: str | None,
    parallel: bool = True,
    *,
    lanes: int,
) -> tirx.PrimFunc:
    """Stride-1 depthwise conv whose output has the input's size (padding (kh−1)/2-style, top/left given).

    Works on the channel's unpadded image, flattened: output f reads X[f + (p − top)·W + (q − left)] for
    every tap, so each tap is one contiguous `lanes`-wide load. Rows outside the image read the zero lead
    and tail of the per-channel tile; columns that wrap into a neighbouring row are dropped per tap column q
    by `colmask[q, f]` (a select, so no inf/NaN leaks in). Against the zero-bordered grid of `depthwise`:
    no border columns computed, no output copy (measured 1.4× on 64×25×5 and 96×12×12 channels).
    """
    kh, kw = kernel
    hw, chunks, lead, size = _flat_tile(height, width, kernel, padding, lanes)

    loop, jobs, per = task_jobs(batch * channels, parallel)

    @T.prim_func
    def kernel_(
        X: T.Buffer((batch, channels, height, width), "float32"),
        W: T.Buffer((channels, kh, kw), "float32"),
        bias: T.Buffer((channels,), "float32"),
        colmask: T.Buffer((kw, chunks * lanes), "float32"),
        Y: T.Buffer((batch, channels, height, width), "float32"),
    ):
        T.func_attr(SCHEDULED)
        Xf = T.decl_buffer((batch * channels * hw,), "float32", data=X.data)
        Yf = T.decl_buffer((batch * channels * hw,), "float32", data=Y.data)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * channels:
                    c = task % channels
                    tile = T.alloc_local((size,), "float32")
                    _load_flat_tile(tile, Xf, task * hw, hw, lead, size, lanes)
                    for ch in range(chunks):
                        cols = T.alloc_local((kw, lanes), "float32")  # per tap column: Σ over tap rows
                        acc = T.alloc_local((lanes,), "float32")
                        for q in T.unroll(kw):
                            for v in T.vectorized(lanes):
                                cols[q, v] = T.float32(0)
                        for p in T.unroll(kh):
                            for q in T.unroll(kw):
                                for v in T.vectorized(lanes):
                                    cols[q, v] = (
                                        cols[q, v] + W[c, p, q] * tile[ch * lanes + v + p * width + q]
                                    )
                        for v in T.vectorized(lanes):
                            acc[v] = bias[c]
                        for q in T.unroll(kw):
                            for v in T.vectorized(lanes):
                                acc[v] = acc[v] + T.Select(
                                    colmask[q, ch * lanes + v] > T.float32(0), cols[q, v], T.float32(0)
                                )
                        _store_chunk(Yf, acc, task * hw, ch * lanes, hw, lanes, act)

    return kernel_


def column_mask(height: int, width: int, kw: int, left: int, lanes: int) -> np.ndarray:
    """colmask[q, f] = 1 where tap column q of output pixel f = (i, j) lands inside the row: 0 ≤ j + q − left < W."""
    chunks = -(-(height * width) // lanes)
    j = np.arange(chunks * lanes) % width
    src = j[None, :] + np.arange(kw)[:, None] - left
    return ((src >= 0) & (src < width)).astype(np.float32)


@cached
def depthwise_stride2(
    batch: int,
    channels: int,
    height: int,
    width: int,
    kernel: tuple[int, int],
    padding: tuple[int, int, int, int],
    out_hw: tuple[int, int],
    act: str | None,
    parallel: bool = True,
    *,
    lanes: int,
) -> tirx.PrimFunc:
    """Stride-2 depthwise conv for wide outputs: each tap loads 2·lanes contiguous inputs and keeps the even
    ones with one shuffle, where `depthwise` reads every other element one by one (measured 1.6–1.9× on
    48×48 and 96×96 images; slower below 16 output columns, where half the vector is wasted)."""
    kh, kw = kernel
    top, left = padding[0], padding[1]
    hp, wp = _padded_grid(height, width, padding)
    oh_, ow_ = out_hw
    owc = -(-ow_ // lanes)
    size = hp * wp + 2 * lanes * owc + 2 * lanes  # the last chunk's 2·lanes-wide reads stay inside

    loop, jobs, per = task_jobs(batch * channels, parallel)

    @T.prim_func
    def kernel_(
        X: T.Buffer((batch, channels, height, width), "float32"),
        W: T.Buffer((channels, kh, kw), "float32"),
        bias: T.Buffer((channels,), "float32"),
        Y: T.Buffer((batch, channels, oh_, ow_), "float32"),
    ):
        T.func_attr(SCHEDULED)
        Yf = T.decl_buffer((batch * channels * oh_ * ow_,), "float32", data=Y.data)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * channels:
                    b = task // channels
                    c = task % channels
                    tile = T.alloc_local((size,), "float32")
                    _load_tile(tile, X, b, c, height, width, top, left, wp, size, T.float32(0), lanes)
                    for i in range(oh_):
                        for jc in range(owc):
                            acc = T.alloc_local((lanes,), "float32")
                            for v in T.vectorized(lanes):
                                acc[v] = bias[c]
                            for p in T.unroll(kh):
                                for q in T.unroll(kw):
                                    acc[T.Ramp(0, 1, lanes)] = acc[T.Ramp(0, 1, lanes)] + W[c, p, q] * _evens(
                                        tile, (2 * i + p) * wp + 2 * jc * lanes + q, lanes
                                    )
                            _store_chunk(Yf, acc, (task * oh_ + i) * ow_, jc * lanes, ow_, lanes, act)

    return kernel_


@cached
def depthwise_same_sparse(
    batch: int,
    channels: int,
    height: int,
    width: int,
    kernel: tuple[int, int],
    padding: tuple[int, int],
    taps: int,
    act: str | None,
    parallel: bool = True,
    *,
    lanes: int,
) -> tirx.PrimFunc:
    """`depthwise_same` over each channel's nonzero taps only (CSR over channels: tap_ptr, and per tap its
    value, its offset p·W + q in the channel's tile and its column q for the wrap mask). A channel without
    taps writes act(bias) without building its tile."""
    kw = kernel[1]
    hw, chunks, lead, size = _flat_tile(height, width, kernel, padding, lanes)

    loop, jobs, per = task_jobs(batch * channels, parallel)

    @T.prim_func
    def kernel_(
        X: T.Buffer((batch, channels, height, width), "float32"),
        tap_ptr: T.Buffer((channels + 1,), "int32"),
        tap_value: T.Buffer((taps,), "float32"),
        tap_offset: T.Buffer((taps,), "int32"),
        tap_column: T.Buffer((taps,), "int32"),
        bias: T.Buffer((channels,), "float32"),
        colmask: T.Buffer((kw, chunks * lanes), "float32"),
        Y: T.Buffer((batch, channels, height, width), "float32"),
    ):
        T.func_attr(SCHEDULED)
        Xf = T.decl_buffer((batch * channels * hw,), "float32", data=X.data)
        Yf = T.decl_buffer((batch * channels * hw,), "float32", data=Y.data)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * channels:
                    c = task % channels
                    if tap_ptr[c] == tap_ptr[c + 1]:
                        _fill(Yf, task * hw, hw, _activate(bias[c], act), lanes)
                    else:
                        tile = T.alloc_local((size,), "float32")
                        _load_flat_tile(tile, Xf, task * hw, hw, lead, size, lanes)
                        for ch in range(chunks):
                            acc = T.alloc_local((lanes,), "float32")
                            for v in T.vectorized(lanes):
                                acc[v] = bias[c]
                            for s in range(tap_ptr[c], tap_ptr[c + 1]):
                                for v in T.vectorized(lanes):
                                    acc[v] = acc[v] + T.Select(
                                        colmask[tap_column[s], ch * lanes + v] > T.float32(0),
                                        tap_value[s] * tile[ch * lanes + v + tap_offset[s]],
                                        T.float32(0),
                                    )
                            _store_chunk(Yf, acc, task * hw, ch * lanes, hw, lanes, act)

    return kernel_


def depthwise_taps(weight: np.ndarray, width: int) -> tuple[np.ndarray, ...]:
    """CSR of a depthwise weight [C, kh, kw] over channels: (ptr, value, offset p·W + q, column q); at least
    one (zero) tap is stored so the buffers are never empty."""
    channels = weight.shape[0]
    c, p, q = np.nonzero(weight)
    ptr = np.zeros(channels + 1, np.int32)
    np.add.at(ptr, c + 1, 1)
    ptr = np.cumsum(ptr).astype(np.int32)
    value, offset, column = (
        weight[c, p, q].astype(np.float32),
        (p * width + q).astype(np.int32),
        q.astype(np.int32),
    )
    if not len(value):
        value, offset, column = np.zeros(1, np.float32), np.zeros(1, np.int32), np.zeros(1, np.int32)
    return ptr, value, offset, column


@cached
def max_pool(
    batch: int,
    channels: int,
    height: int,
    width: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    out_hw: tuple[int, int],
    parallel: bool = True,
    *,
    lanes: int,
) -> tirx.PrimFunc:
    """Y[b, c, i, j] = max over taps (p, q) of X[b, c, i·s + p − top, j·s + q − left], taps outside the image
    excluded (ceil-mode windows included): one task per (image, channel) on a tile bordered with the lowest
    float. Stride-2 windows over ≥ `lanes` output columns load 2·lanes inputs and keep the even ones with
    one shuffle (as `depthwise_stride2`); other strides compute each output row as one vector (TVM's pool
    tested every tap against the border, scalar: 1 ms on ResNet's 64×112×112 stem pool)."""
    kh, kw = kernel
    sh, sw = stride
    top, left = padding[0], padding[1]
    oh_, ow_ = out_hw
    # the tile covers every window, ceil-mode ones past the bottom/right padding included
    hp = max(height + padding[0] + padding[2], (oh_ - 1) * sh + kh)
    wp = max(width + padding[1] + padding[3], (ow_ - 1) * sw + kw)
    deinterleave = sw == 2 and ow_ >= lanes
    owc = -(-ow_ // lanes)
    size = hp * wp + 2 * lanes * owc + 2 * lanes if deinterleave else hp * wp
    lowest = T.min_value("float32")

    loop, jobs, per = task_jobs(batch * channels, parallel)

    @T.prim_func
    def kernel_(
        X: T.Buffer((batch, channels, height, width), "float32"),
        fill: T.Buffer((1,), "float32"),
        Y: T.Buffer((batch, channels, oh_, ow_), "float32"),
    ):
        T.func_attr(SCHEDULED)
        Yf = T.decl_buffer((batch * channels * oh_ * ow_,), "float32", data=Y.data)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * channels:
                    b = task // channels
                    c = task % channels
                    tile = T.alloc_local((size,), "float32")
                    _load_tile(tile, X, b, c, height, width, top, left, wp, size, lowest + fill[0], lanes)
                    for i in range(oh_):
                        if deinterleave:
                            for jc in range(owc):
                                acc = T.alloc_local((lanes,), "float32")
                                for v in T.vectorized(lanes):
                                    acc[v] = lowest
                                for p in T.unroll(kh):
                                    for q in T.unroll(kw):
                                        acc[T.Ramp(0, 1, lanes)] = T.max(
                                            acc[T.Ramp(0, 1, lanes)],
                                            _evens(tile, (2 * i + p) * wp + 2 * jc * lanes + q, lanes),
                                        )
                                _store_chunk(Yf, acc, (task * oh_ + i) * ow_, jc * lanes, ow_, lanes, None)
                        else:
                            row = T.alloc_local((ow_,), "float32")
                            for j in _row(ow_):
                                row[j] = lowest
                            for p in T.unroll(kh):
                                for q in T.unroll(kw):
                                    for j in _row(ow_):
                                        row[j] = T.max(row[j], tile[(i * sh + p) * wp + j * sw + q])
                            for j in _row(ow_):
                                Y[b, c, i, j] = row[j]

    return kernel_
