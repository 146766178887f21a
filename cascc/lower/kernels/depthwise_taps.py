"""Sparse depthwise convolution over a zero-bordered tile: each channel's nonzero taps only, for the forms
the flat same-size kernel (`conv.depthwise_same_sparse`) does not take: large images, stride 2, padding
that changes the size, other strides."""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from .cache import cached
from .conv import _evens, _fill, _load_tile, _padded_grid, _row, _store_chunk
from .linear import SCHEDULED, _activate
from .tasks import task_jobs


@cached
def depthwise_sparse(
    batch: int,
    channels: int,
    height: int,
    width: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    out_hw: tuple[int, int],
    taps: int,
    act: str | None,
    parallel: bool = True,
    *,
    lanes: int,
) -> tirx.PrimFunc:
    """`depthwise` and `depthwise_stride2` over each channel's nonzero taps only (`depthwise_taps` CSR with
    offsets p·Wp + q in the zero-bordered tile): a channel without taps writes act(bias) and builds no tile.
    Stride 1 runs on the flat padded grid, stride 2 over ≥ `lanes` output columns deinterleaves (one 2·lanes
    load and an even-lane shuffle per tap), other strides compute each output row as one vector."""
    kh, kw = kernel
    sh, sw = stride
    top, left = padding[0], padding[1]
    hp, wp = _padded_grid(height, width, padding)
    oh_, ow_ = out_hw
    flat = (sh, sw) == (1, 1)
    deinterleave = (sh, sw) == (2, 2) and ow_ >= lanes
    owc = -(-ow_ // lanes)
    if flat:  # row i's last chunk reads up to owc·lanes past the row start, and the taps below it
        size = max(hp * wp, (oh_ - 1) * wp + owc * lanes + (kh - 1) * wp + kw)
    else:
        size = hp * wp + 2 * lanes * owc + 2 * lanes if deinterleave else hp * wp
    plane = oh_ * ow_

    loop, jobs, per = task_jobs(batch * channels, parallel)

    @T.prim_func
    def kernel_(
        X: T.Buffer((batch, channels, height, width), "float32"),
        tap_ptr: T.Buffer((channels + 1,), "int32"),
        tap_value: T.Buffer((taps,), "float32"),
        tap_offset: T.Buffer((taps,), "int32"),
        bias: T.Buffer((channels,), "float32"),
        Y: T.Buffer((batch, channels, oh_, ow_), "float32"),
    ):
        T.func_attr(SCHEDULED)
        Yf = T.decl_buffer((batch * channels * plane,), "float32", data=Y.data)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * channels:
                    b = task // channels
                    c = task % channels
                    if tap_ptr[c] == tap_ptr[c + 1]:
                        _fill(Yf, task * plane, plane, _activate(bias[c], act), lanes)
                    else:
                        tile = T.alloc_local((size,), "float32")
                        _load_tile(tile, X, b, c, height, width, top, left, wp, size, T.float32(0), lanes)
                        if flat:
                            for i in range(oh_):
                                for jc in range(owc):
                                    acc = T.alloc_local((lanes,), "float32")
                                    for v in T.vectorized(lanes):
                                        acc[v] = bias[c]
                                    for s in range(tap_ptr[c], tap_ptr[c + 1]):
                                        for v in T.vectorized(lanes):
                                            acc[v] = (
                                                acc[v]
                                                + tap_value[s] * tile[i * wp + jc * lanes + v + tap_offset[s]]
                                            )
                                    _store_chunk(Yf, acc, (task * oh_ + i) * ow_, jc * lanes, ow_, lanes, act)
                        elif deinterleave:
                            for i in range(oh_):
                                for jc in range(owc):
                                    acc = T.alloc_local((lanes,), "float32")
                                    for v in T.vectorized(lanes):
                                        acc[v] = bias[c]
                                    for s in range(tap_ptr[c], tap_ptr[c + 1]):
                                        acc[T.Ramp(0, 1, lanes)] = acc[T.Ramp(0, 1, lanes)] + tap_value[
                                            s
                                        ] * _evens(tile, 2 * i * wp + 2 * jc * lanes + tap_offset[s], lanes)
                                    _store_chunk(Yf, acc, (task * oh_ + i) * ow_, jc * lanes, ow_, lanes, act)
                        else:
                            for i in range(oh_):
                                row = T.alloc_local((ow_,), "float32")
                                for j in _row(ow_):
                                    row[j] = bias[c]
                                for s in range(tap_ptr[c], tap_ptr[c + 1]):
                                    for j in _row(ow_):
                                        row[j] = (
                                            row[j] + tap_value[s] * tile[i * sh * wp + j * sw + tap_offset[s]]
                                        )
                                for j in _row(ow_):
                                    Y[b, c, i, j] = _activate(row[j], act)

    return kernel_
