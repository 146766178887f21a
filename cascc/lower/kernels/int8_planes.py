"""Direct int8 convolutions of stride 1 over channel-interleaved code planes: no packed-tap operand.

`quantize_planes4` writes P[b, g·L + (y + top)·Wp + x + left] = the uint8 codes of channels 4g … 4g + 3 at
(y, x) as one int32 word (byte j: channel 4g + j), with the zero point on the border, in the channels past
C and in each group's slack. A reduction word is (channel group g, tap row r, tap column s) and its weight
word the 4 codes of those channels at that tap, so the operand of word (g, r, s) at output pixel (oy, ox) is
the plane word at g·L + (oy + r·dy)·Wp + ox + s·dx. For a stride-1 conv, `width` consecutive output pixels
of one row then read `width` consecutive plane words: one vector load per word, read in place, where the
`kernels/int8_conv.py` path first copies every tap into a packed operand (an im2col pass as long as the
GEMM itself on ResNet-20's layers).

Each output row is computed in whole vectors; the last one of a row reads past the row's end into the
border and the next row (or the slack), and stores only its valid lanes. The kernels' dot products are
those of `kernels/int8.py` (`_dot`), accumulating in int32 from the unit's zero-point correction.

- `int8_planes_dense`: register tiles of `ROWS` output channels × `vectors` pixel vectors of one row;
- `int8_planes_sparse`: per output channel only its nonzero words, each stored with its plane offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from .cache import cached
from .int8 import DOT_LANES, _dot, code_value
from .int8_conv import ROWS, WORD_LANES
from .linear import SCHEDULED, _activate
from .tasks import task_jobs


@dataclass(frozen=True)
class PlaneGeometry:
    """One stride-1 conv's code planes: input C × H × W, padding (top, left), padded Hp × Wp, output
    OH × OW, the kernel's taps and dilation, and `group_len` words per 4-channel group (plane and slack)."""

    channels: int
    height: int
    width: int
    top: int
    left: int
    hp: int
    wp: int
    out_h: int
    out_w: int
    kernel: tuple[int, int]
    dil: tuple[int, int]
    group_len: int

    @property
    def groups(self) -> int:
        return -(-self.channels // 4)

    @property
    def kwords(self) -> int:
        return self.groups * self.kernel[0] * self.kernel[1]

    @property
    def size(self) -> int:
        return self.groups * self.group_len

    def chunks(self, width: int) -> int:
        """Pixel vectors of `width` lanes per output row."""
        return -(-self.out_w // width)

    def word_offsets(self) -> np.ndarray:
        """Plane offset of every reduction word, in (group, tap row, tap column) order."""
        kh, kw = self.kernel
        g, r, s = np.meshgrid(np.arange(self.groups), np.arange(kh), np.arange(kw), indexing="ij")
        offsets = g * self.group_len + r * self.dil[0] * self.wp + s * self.dil[1]
        return offsets.reshape(-1).astype(np.int32)


def plane_geometry(channels: int, height: int, width: int, pad, kernel, dil) -> PlaneGeometry:
    """The planes of a stride-1 conv with padding (top, left, bottom, right): room for whole pixel vectors
    (16 lanes, the widest dot) on every output row, rounded up to 64-byte lines."""
    hp, wp = height + pad[0] + pad[2], width + pad[1] + pad[3]
    oh, ow = hp - (kernel[0] - 1) * dil[0], wp - (kernel[1] - 1) * dil[1]
    reach = hp * wp + -(-ow // WORD_LANES) * WORD_LANES - ow
    group_len = -(-reach // WORD_LANES) * WORD_LANES
    return PlaneGeometry(
        channels, height, width, pad[0], pad[1], hp, wp, oh, ow, tuple(kernel), tuple(dil), group_len
    )


@cached
def quantize_planes4(batch: int, geom: PlaneGeometry) -> tirx.PrimFunc:
    """P[b, g·L + (y + top)·Wp + x + left] = Σ_j code(X[b, 4g + j, y, x]) << 8j, the zero point elsewhere
    (`params` = (inv, zero))."""
    c, h, w = geom.channels, geom.height, geom.width
    size, plane, wp = geom.size, geom.group_len, geom.wp
    top, left = geom.top, geom.left
    chunks, tail = divmod(w, WORD_LANES)

    def code(X, params, b, ch, y, x):
        inside = code_value(X[b, T.min(ch, c - 1), y, x], params[0], params[1])
        return T.if_then_else(ch < c, inside, T.Cast("int32", params[1]))

    def word(X, params, b, g, y, x):
        return (
            code(X, params, b, g * 4, y, x)
            | T.shift_left(code(X, params, b, g * 4 + 1, y, x), 8)
            | T.shift_left(code(X, params, b, g * 4 + 2, y, x), 16)
            | T.shift_left(code(X, params, b, g * 4 + 3, y, x), 24)
        )

    @T.prim_func
    def kernel(
        X: T.Buffer((batch, c, h, w), "float32"),
        params: T.Buffer((2,), "float32"),
        P: T.Buffer((batch, size), "int32"),
    ):
        T.func_attr(SCHEDULED)
        for b in range(batch):
            zero = T.Cast("int32", params[1])
            for f in range(size // WORD_LANES):
                for v in T.vectorized(WORD_LANES):
                    P[b, f * WORD_LANES + v] = zero | (zero << 8) | (zero << 16) | (zero << 24)
            for g in range(geom.groups):
                for y in range(h):
                    for f in range(chunks):
                        for v in T.vectorized(WORD_LANES):
                            P[b, g * plane + (y + top) * wp + left + f * WORD_LANES + v] = word(
                                X, params, b, g, y, f * WORD_LANES + v
                            )
                    if tail != 0:
                        for v in T.vectorized(tail):
                            P[b, g * plane + (y + top) * wp + left + chunks * WORD_LANES + v] = word(
                                X, params, b, g, y, chunks * WORD_LANES + v
                            )

    return kernel


def _divisor(count: int, most: int) -> int:
    """The largest divisor of `count` that is ≤ `most` (at least 1)."""
    return next(v for v in range(max(min(most, count), 1), 0, -1) if count % v == 0)


def tile_shape(geom: PlaneGeometry, width: int, most: int) -> tuple[int, int]:
    """(output rows, pixel vectors per row) of one task's register tile, at most `most` vectors in all: the
    vectors divide a row's chunks and the rows the output's height, so no task is partial."""
    vectors = _divisor(geom.chunks(width), most)
    return _divisor(geom.out_h, most // vectors), vectors


@T.macro
def _store_row(Y, acc, r, u0, b, n, oy, ox0, width, tail, ow, act, scale, bias):
    """Y[b, n, oy, ox0 + v] = act(acc[r, u0 + v] · scale + bias): a whole vector, or on a row's last, partial
    vector its `tail` valid lanes."""
    if ox0 + width <= ow:
        for v in T.vectorized(width):
            Y[b, n, oy, ox0 + v] = _activate(T.Cast("float32", acc[r, u0 + v]) * scale + bias, act)
    else:
        for v in T.vectorized(tail):
            Y[b, n, oy, ox0 + v] = _activate(T.Cast("float32", acc[r, u0 + v]) * scale + bias, act)


def _layout(geom: PlaneGeometry, dot: str, rows: int, vectors: int):
    """(lanes, tasks per image and output channel tile, valid lanes of a row's last vector)."""
    width = DOT_LANES[dot]
    chunks = geom.chunks(width)
    assert chunks % vectors == 0 and geom.out_h % rows == 0
    tail = geom.out_w - (chunks - 1) * width
    return width, (geom.out_h // rows) * (chunks // vectors), tail


@cached
def int8_planes_dense(
    batch: int,
    geom: PlaneGeometry,
    n: int,
    tile: tuple[int, int],
    act: str | None,
    dot: str,
    parallel: bool = True,
) -> tirx.PrimFunc:
    """Dense direct int8 conv: W[tile, word, ROWS] (channels padded to ROWS), each task ROWS channels ×
    `tile` = (output rows, pixel vectors per row); per word one load of each pixel vector and one broadcast
    per channel."""
    ry, vectors = tile
    width, spans, tail = _layout(geom, dot, ry, vectors)
    segments = geom.chunks(width) // vectors
    oh, ow, wp, kwords, size = geom.out_h, geom.out_w, geom.wp, geom.kwords, geom.size
    ntiles = -(-n // ROWS)
    npad = ntiles * ROWS
    px = width * vectors
    total = batch * spans * ntiles
    loop, jobs, per = task_jobs(total, parallel)

    @T.prim_func
    def kernel(
        P: T.Buffer((batch, size), "int32"),
        offsets: T.Buffer((kwords,), "int32"),
        W: T.Buffer((ntiles, kwords, ROWS), "int32"),
        offset: T.Buffer((npad,), "int32"),
        scale: T.Buffer((npad,), "float32"),
        bias: T.Buffer((npad,), "float32"),
        Y: T.Buffer((batch, n, oh, ow), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < total:
                    t = task % ntiles
                    seg = (task // ntiles) % segments
                    oy0 = (task // (ntiles * segments)) % (oh // ry) * ry
                    b = task // (ntiles * spans)
                    acc = T.alloc_local((ROWS, ry * px), "int32")
                    for r in T.unroll(ROWS):
                        for u in T.vectorized(ry * px):
                            acc[r, u] = offset[t * ROWS + r]
                    for i in range(kwords):
                        for j in T.unroll(ry):
                            for v in T.unroll(vectors):
                                for r in T.unroll(ROWS):
                                    acc[r, T.ramp((j * vectors + v) * width, 1, width)] = _dot(
                                        acc[r, T.ramp((j * vectors + v) * width, 1, width)],
                                        P[
                                            b,
                                            T.ramp(
                                                offsets[i] + (oy0 + j) * wp + seg * px + v * width, 1, width
                                            ),
                                        ],
                                        T.broadcast(W[t, i, r], width),
                                        dot,
                                    )
                    for r in T.unroll(ROWS):
                        if t * ROWS + r < n:
                            for j in T.unroll(ry):
                                for v in T.unroll(vectors):
                                    _store_row(
                                        Y,
                                        acc,
                                        r,
                                        (j * vectors + v) * width,
                                        b,
                                        t * ROWS + r,
                                        oy0 + j,
                                        seg * px + v * width,
                                        width,
                                        tail,
                                        ow,
                                        act,
                                        scale[t * ROWS + r],
                                        bias[t * ROWS + r],
                                    )

    return kernel


@cached
def int8_planes_sparse(
    batch: int,
    geom: PlaneGeometry,
    n: int,
    tile: tuple[int, int],
    act: str | None,
    dot: str,
    parallel: bool = True,
) -> tirx.PrimFunc:
    """Sparse direct int8 conv over each output channel's nonzero words (`data`, each word's plane offset
    in `cols`, rows delimited by `ptr`): per stored word one broadcast against the task's `tile` = (output
    rows, pixel vectors per row). The count of stored words is a runtime size, so layers of one shape share
    the code."""
    ry, vectors = tile
    width, spans, tail = _layout(geom, dot, ry, vectors)
    segments = geom.chunks(width) // vectors
    oh, ow, wp, size = geom.out_h, geom.out_w, geom.wp, geom.size
    px = width * vectors
    total = batch * spans * n
    loop, jobs, per = task_jobs(total, parallel)

    @T.prim_func
    def kernel(
        P: T.Buffer((batch, size), "int32"),
        data_handle: T.handle,
        cols_handle: T.handle,
        ptr: T.Buffer((n + 1,), "int32"),
        offset: T.Buffer((n,), "int32"),
        scale: T.Buffer((n,), "float32"),
        bias: T.Buffer((n,), "float32"),
        Y: T.Buffer((batch, n, oh, ow), "float32"),
    ):
        T.func_attr(SCHEDULED)
        nnz = T.int32()
        data = T.match_buffer(data_handle, (nnz,), "int32")
        cols = T.match_buffer(cols_handle, (nnz,), "int32")
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < total:
                    row = task % n
                    seg = (task // n) % segments
                    oy0 = (task // (n * segments)) % (oh // ry) * ry
                    b = task // (n * spans)
                    acc = T.alloc_local((1, ry * px), "int32")
                    for u in T.vectorized(ry * px):
                        acc[0, u] = offset[row]
                    for s in range(ptr[row], ptr[row + 1]):
                        for j in T.unroll(ry):
                            for v in T.unroll(vectors):
                                acc[0, T.ramp((j * vectors + v) * width, 1, width)] = _dot(
                                    acc[0, T.ramp((j * vectors + v) * width, 1, width)],
                                    P[b, T.ramp(cols[s] + (oy0 + j) * wp + seg * px + v * width, 1, width)],
                                    T.broadcast(data[s], width),
                                    dot,
                                )
                    for j in T.unroll(ry):
                        for v in T.unroll(vectors):
                            _store_row(
                                Y,
                                acc,
                                0,
                                (j * vectors + v) * width,
                                b,
                                row,
                                oy0 + j,
                                seg * px + v * width,
                                width,
                                tail,
                                ow,
                                act,
                                scale[row],
                                bias[row],
                            )

    return kernel
