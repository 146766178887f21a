"""The wide kernels' operand layout: activations [rows, k] transposed into k rows of `pitch` floats.

A linear layer over many tokens runs the wide kernel on xᵀ, each operand row padded to an odd number of
cache lines (`strategies/wide.py` operand_pitch). As Relax ops (permute_dims, pad, reshape to flat) TVM
fuses it into one loop over the flat output whose every lane computes its row and column by div/mod and
tests the pad: scalar code, 22.7 µs per ViT-tiny layer input (197×192). Here it goes through `lanes`×`lanes`
register tiles: rows loaded as vectors, columns stored as vectors (7.2 µs, Zen 4).
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from .cache import cached
from .linear import SCHEDULED
from .tasks import task_jobs


@cached
def transposed_rows(rows: int, k: int, pitch: int, lanes: int, parallel: bool = False) -> tirx.PrimFunc:
    """Y[0, c · pitch + t] = X[t, c] for t < rows, and `fill` for rows ≤ t < pitch; any rows and k (edge
    tiles read clamped elements and store only what exists). `pitch` is a multiple of `lanes`. `fill` is
    an input on purpose: TVM's RewriteDataflowReshape analyses every call_tir reading exactly one tensor
    as a possible reshape, which fails on hand-written kernels."""
    assert pitch % lanes == 0 and pitch >= rows, (pitch, lanes, rows)
    row_tiles, col_tiles = pitch // lanes, -(-k // lanes)
    loop, jobs, per = task_jobs(row_tiles * col_tiles, parallel)

    ragged = k % lanes != 0  # edge column tiles: clamped reads, guarded stores (a static choice: the guard
    # on every column of a 197×192 operand tripled the kernel's time)

    @T.prim_func
    def kernel(
        X: T.Buffer((rows, k), "float32"),
        fill: T.Buffer((1,), "float32"),
        Y: T.Buffer((1, k * pitch), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < row_tiles * col_tiles:
                    t0 = task // col_tiles * lanes
                    c0 = task % col_tiles * lanes
                    tile = T.alloc_local((lanes, lanes), "float32")
                    for r in T.unroll(lanes):
                        for v in T.vectorized(lanes):
                            if ragged:
                                tile[r, v] = X[T.min(t0 + r, rows - 1), T.min(c0 + v, k - 1)]
                            else:
                                tile[r, v] = X[T.min(t0 + r, rows - 1), c0 + v]
                    for c in T.unroll(lanes):
                        if not ragged or c0 + c < k:
                            for v in T.vectorized(lanes):
                                Y[0, (c0 + c) * pitch + t0 + v] = T.Select(t0 + v < rows, tile[v, c], fill[0])

    return kernel


@cached
def pitched_rows(k: int, rows: int, pitch: int, lanes: int, parallel: bool = False) -> tirx.PrimFunc:
    """Y[0, c · pitch + t] = X[c, t] for t < rows, and `fill` up to `pitch`: a layer's transposed output
    (the wide kernel's C) as the next wide layer's operand, without transposing it twice. Whole vectors
    are copied; the one vector the row's end falls in selects lane by lane."""
    assert pitch % lanes == 0 and pitch >= rows, (pitch, lanes, rows)
    whole, chunks = rows // lanes, pitch // lanes
    loop, jobs, per = task_jobs(k, parallel)

    @T.prim_func
    def kernel(
        X: T.Buffer((k, rows), "float32"),
        fill: T.Buffer((1,), "float32"),
        Y: T.Buffer((1, k * pitch), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                c = job * per + step
                if c < k:
                    for j in range(whole):
                        for v in T.vectorized(lanes):
                            Y[0, c * pitch + j * lanes + v] = X[c, j * lanes + v]
                    for j in range(whole, chunks):
                        for v in T.vectorized(lanes):
                            Y[0, c * pitch + j * lanes + v] = T.Select(
                                j * lanes + v < rows, X[c, T.min(j * lanes + v, rows - 1)], fill[0]
                            )

    return kernel
