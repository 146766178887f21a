"""int8 convolutions over pixels: Y[b, n, p] = act((offset[n] + Σ_i dot(Q[b, i, p], W[n, i])) · scale[n]
+ bias[n]) with the words of `kernels/int8.py` (4 uint8 or int8 codes per int32), vectorized over output
pixels p with each weight word broadcast.

- `quantize_planes`: the input once to uint8 codes (held in int32) on zero-point-bordered planes, so a tap
  outside the image reads the zero point, which dequantizes to exactly 0 (the float conv's zero padding);
- `pack_taps`: word i of pixel p holds the codes of the reduction indices 4i..4i + 3 (channel, tap row, tap
  column in OIHW order) at p, read in place from the planes (a strided read for a strided conv);
- `int8_conv_dense`: register tiles of `ROWS` output channels × `vectors` pixel vectors;
- `int8_conv_sparse`: per output channel only its nonzero words (1×4 blocks over K), each one broadcast
  against `vectors` pixel vectors, the XNNPACK-style sparse GEMM without a gather.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from .cache import cached
from .int8 import DOT_LANES, SPLIT_DOTS, _dot, code_value, split_dot
from .linear import SCHEDULED, _activate
from .tasks import task_jobs

WORD_LANES = 16  # int32 lanes per vector of the quantizer and the tap packer
ROWS = 4  # output channels per register tile of the dense kernel


def pixel_pitch(m: int, tile: int) -> int:
    """int32 words per operand row for m pixels: whole `tile`s plus one vector the packer may spill into,
    in an odd number of 64-byte lines (see `strategies/wide.py` operand_pitch)."""
    pitch = -(-m // tile) * tile + WORD_LANES
    lines = -(-pitch // 16)
    return (lines if lines % 2 else lines + 1) * 16


def planes_layout(channels: int, height: int, width: int, pad, out_w: int, stride_w: int):
    """(Hp, Wp, slack, size) of the code planes for a conv with padding (top, left, bottom, right): `slack`
    trailing words cover the reads of `pack_taps`' last, spilling vector."""
    hp, wp = height + pad[0] + pad[2], width + pad[1] + pad[3]
    slack = -(-out_w // WORD_LANES) * WORD_LANES * stride_w + wp
    return hp, wp, slack, channels * hp * wp + slack


@cached
def quantize_planes(
    batch: int, channels: int, height: int, width: int, top: int, left: int, hp: int, wp: int, slack: int
) -> tirx.PrimFunc:
    """P[b, c·Hp·Wp + (y + top)·Wp + x + left] = code(X[b, c, y, x]); the border and `slack` trailing words
    per image hold the zero point. `params` = (inv, zero)."""
    plane = hp * wp
    size = channels * plane + slack
    chunks, tail = divmod(width, WORD_LANES)

    @T.prim_func
    def kernel(
        X: T.Buffer((batch, channels, height, width), "float32"),
        params: T.Buffer((2,), "float32"),
        P: T.Buffer((batch, size), "int32"),
    ):
        T.func_attr(SCHEDULED)
        for b in range(batch):
            zero = T.Cast("int32", params[1])
            for f in range(size // WORD_LANES):
                for v in T.vectorized(WORD_LANES):
                    P[b, f * WORD_LANES + v] = zero
            if size % WORD_LANES != 0:
                for v in T.vectorized(size % WORD_LANES):
                    P[b, size // WORD_LANES * WORD_LANES + v] = zero
            for c in range(channels):
                for y in range(height):
                    # the row's start is written out in each index: bound to a local, it kept TVM from
                    # vectorizing a one-chunk row (LLVM then scalarized it into gathers and scatters)
                    for f in range(chunks):
                        for v in T.vectorized(WORD_LANES):
                            P[b, c * plane + (y + top) * wp + left + f * WORD_LANES + v] = code_value(
                                X[b, c, y, f * WORD_LANES + v], params[0], params[1]
                            )
                    if tail != 0:
                        for v in T.vectorized(tail):
                            P[b, c * plane + (y + top) * wp + left + chunks * WORD_LANES + v] = code_value(
                                X[b, c, y, chunks * WORD_LANES + v], params[0], params[1]
                            )

    return kernel


@cached
def pack_taps(
    batch: int,
    size: int,
    channels: int,
    plane: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dil: tuple[int, int],
    out_hw: tuple[int, int],
    kwords: int,
    pitch: int,
    parallel: bool = True,
    split: bool = False,
) -> tirx.PrimFunc:
    """Q[b, i, oy·OW + ox] = Σ_j P[b, tap(4i + j) + oy·sy·Wp + ox·sx] << 8j over the planes of
    `quantize_planes`; a reduction index past K repeats the last one (its weight code is 0). Each row of
    pixels is written in whole vectors: the last one spills into the next row, which rewrites it; the
    columns past the image then get zero-point words (`params` = (inv, zero)), so every word is defined.
    `split`: word i is stored as rows 2i (codes 0 and 2 as int16 pairs) and 2i + 1 (codes 1 and 3).
    """
    hp, wp = plane
    kh, kw = kernel
    sy, sx = stride
    dy, dx = dil
    oh, ow = out_hw
    taps = channels * kh * kw
    chunks = -(-ow // WORD_LANES)
    rows = 2 if split else 1
    loop, jobs, per = task_jobs(batch * kwords, parallel)

    def tap(k):
        k = T.min(k, taps - 1)
        return (k // (kh * kw)) * (hp * wp) + ((k // kw) % kh) * dy * wp + (k % kw) * dx

    @T.prim_func
    def kernel_(
        P: T.Buffer((batch, size), "int32"),
        params: T.Buffer((2,), "float32"),
        Q: T.Buffer((batch, kwords * rows, pitch), "int32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * kwords:
                    b = task // kwords
                    i = task % kwords
                    t0 = tap(i * 4)
                    t1 = tap(i * 4 + 1)
                    t2 = tap(i * 4 + 2)
                    t3 = tap(i * 4 + 3)
                    for y in range(oh):
                        row = y * sy * wp
                        for f in range(chunks):
                            if split:
                                for v in T.vectorized(WORD_LANES):
                                    Q[b, 2 * i, y * ow + f * WORD_LANES + v] = P[
                                        b, t0 + row + (f * WORD_LANES + v) * sx
                                    ] | T.shift_left(P[b, t2 + row + (f * WORD_LANES + v) * sx], 16)
                                for v in T.vectorized(WORD_LANES):
                                    Q[b, 2 * i + 1, y * ow + f * WORD_LANES + v] = P[
                                        b, t1 + row + (f * WORD_LANES + v) * sx
                                    ] | T.shift_left(P[b, t3 + row + (f * WORD_LANES + v) * sx], 16)
                            else:
                                for v in T.vectorized(WORD_LANES):
                                    Q[b, i, y * ow + f * WORD_LANES + v] = (
                                        P[b, t0 + row + (f * WORD_LANES + v) * sx]
                                        | T.shift_left(P[b, t1 + row + (f * WORD_LANES + v) * sx], 8)
                                        | T.shift_left(P[b, t2 + row + (f * WORD_LANES + v) * sx], 16)
                                        | T.shift_left(P[b, t3 + row + (f * WORD_LANES + v) * sx], 24)
                                    )
                    zero = T.Cast("int32", params[1])
                    for r in range(rows):  # pixels past the image: zero-point words
                        for v in T.vectorized(pitch - oh * ow):
                            Q[b, i * rows + r, oh * ow + v] = (
                                (zero | (zero << 16))
                                if split
                                else (zero | (zero << 8) | (zero << 16) | (zero << 24))
                            )

    return kernel_


def operand_rows(dot: str) -> int:
    """Rows of the packed-tap operand per 4-input word: 2 where the dot reads it pre-split."""
    return 2 if dot in SPLIT_DOTS else 1


def _word_dot(acc, Q, b, i, p, w, dot: str):
    """acc + the dot of operand word i at pixels p… (one row, or its two pre-split rows) with weight word w."""
    width = DOT_LANES[dot]
    if dot in SPLIT_DOTS:
        return split_dot(
            acc, Q[b, 2 * i, T.ramp(p, 1, width)], Q[b, 2 * i + 1, T.ramp(p, 1, width)], w, width
        )
    return _dot(acc, Q[b, i, T.ramp(p, 1, width)], w, dot)


@T.macro
def _store_pixels(Y, acc, r, b, n, p0, count, m, act, scale, bias):
    """Y[b, n, p0 + v] = act(acc[r, v] · scale + bias) for the v < count with p0 + v < m: one vector store
    when the tile is whole, a scalar loop on the last, partial one."""
    if p0 + count <= m:
        for v in T.vectorized(count):
            Y[b, n, p0 + v] = _activate(T.Cast("float32", acc[r, v]) * scale + bias, act)
    else:
        for v in range(count):
            if p0 + v < m:
                Y[b, n, p0 + v] = _activate(T.Cast("float32", acc[r, v]) * scale + bias, act)


@cached
def int8_conv_dense(
    batch: int,
    kwords: int,
    pitch: int,
    m: int,
    n: int,
    vectors: int,
    act: str | None,
    dot: str,
    parallel: bool = True,
) -> tirx.PrimFunc:
    """Dense int8 conv GEMM: W[tile, word, ROWS] (output channels padded to ROWS), each task one tile of
    ROWS channels × `vectors` pixel vectors, per word one load of each pixel vector and one broadcast per
    channel."""
    width = DOT_LANES[dot]
    px = width * vectors
    ptiles = -(-m // px)
    ntiles = -(-n // ROWS)
    npad = ntiles * ROWS
    loop, jobs, per = task_jobs(batch * ptiles * ntiles, parallel)
    assert ptiles * px <= pitch

    @T.prim_func
    def kernel(
        Q: T.Buffer((batch, kwords * operand_rows(dot), pitch), "int32"),
        W: T.Buffer((ntiles, kwords, ROWS), "int32"),
        offset: T.Buffer((npad,), "int32"),
        scale: T.Buffer((npad,), "float32"),
        bias: T.Buffer((npad,), "float32"),
        Y: T.Buffer((batch, n, m), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * ptiles * ntiles:
                    t = task % ntiles
                    pt = (task // ntiles) % ptiles
                    b = task // (ntiles * ptiles)
                    p0 = pt * px
                    acc = T.alloc_local((ROWS, px), "int32")
                    for r in T.unroll(ROWS):
                        for u in T.vectorized(px):
                            acc[r, u] = offset[t * ROWS + r]
                    for i in range(kwords):
                        for v in T.unroll(vectors):
                            for r in T.unroll(ROWS):
                                acc[r, T.ramp(v * width, 1, width)] = _word_dot(
                                    acc[r, T.ramp(v * width, 1, width)],
                                    Q,
                                    b,
                                    i,
                                    p0 + v * width,
                                    T.broadcast(W[t, i, r], width),
                                    dot,
                                )
                    for r in T.unroll(ROWS):
                        if t * ROWS + r < n:
                            _store_pixels(
                                Y,
                                acc,
                                r,
                                b,
                                t * ROWS + r,
                                p0,
                                px,
                                m,
                                act,
                                scale[t * ROWS + r],
                                bias[t * ROWS + r],
                            )

    return kernel


@cached
def int8_conv_sparse(
    batch: int,
    kwords: int,
    pitch: int,
    m: int,
    n: int,
    vectors: int,
    act: str | None,
    dot: str,
    parallel: bool = True,
    index_dtype: str = "int16",
) -> tirx.PrimFunc:
    """Sparse int8 conv GEMM over each output channel's nonzero words (`data`, their word index in
    `cols` as `index_dtype`, rows delimited by `ptr`): per stored word one broadcast against `vectors`
    pixel vectors. The count of stored words is a runtime size, so layers of one shape share the kernel's
    code."""
    width = DOT_LANES[dot]
    px = width * vectors
    ptiles = -(-m // px)
    loop, jobs, per = task_jobs(batch * ptiles * n, parallel)
    assert ptiles * px <= pitch

    @T.prim_func
    def kernel(
        Q: T.Buffer((batch, kwords * operand_rows(dot), pitch), "int32"),
        data_handle: T.handle,
        cols_handle: T.handle,
        ptr: T.Buffer((n + 1,), "int32"),
        offset: T.Buffer((n,), "int32"),
        scale: T.Buffer((n,), "float32"),
        bias: T.Buffer((n,), "float32"),
        Y: T.Buffer((batch, n, m), "float32"),
    ):
        T.func_attr(SCHEDULED)
        nnz = T.int32()
        data = T.match_buffer(data_handle, (nnz,), "int32")
        cols = T.match_buffer(cols_handle, (nnz,), index_dtype)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * ptiles * n:
                    row = task % n
                    pt = (task // n) % ptiles
                    b = task // (n * ptiles)
                    p0 = pt * px
                    acc = T.alloc_local((1, px), "int32")
                    for u in T.vectorized(px):
                        acc[0, u] = offset[row]
                    for s in range(ptr[row], ptr[row + 1]):
                        for v in T.unroll(vectors):
                            acc[0, T.ramp(v * width, 1, width)] = _word_dot(
                                acc[0, T.ramp(v * width, 1, width)],
                                Q,
                                b,
                                T.Cast("int32", cols[s]),
                                p0 + v * width,
                                T.broadcast(data[s], width),
                                dot,
                            )
                    _store_pixels(Y, acc, 0, b, row, p0, px, m, act, scale[row], bias[row])

    return kernel
