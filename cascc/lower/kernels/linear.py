"""TIR kernels for y = act(x · Wᵀ + b) with a constant weight: packed dense and tiled-ELL sparse.

Both are hand-scheduled TVMScript (parallel over output tiles, vectorized over the tile's lanes, several
independent accumulators to hide FMA latency) and carry `tirx.is_scheduled`, so no rule touches them.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

SCHEDULED = {"tirx.noalias": True, "tirx.is_scheduled": True}


def dense_linear(batch: int, k: int, tiles: int, tile: int, batch_tile: int, relu: bool) -> tirx.PrimFunc:
    """Y[b, n] = act(Σ_k X[b, k] · Wp[n // T, k, n % T] + bias[n]) over padded N = tiles · T.

    Each task owns one tile of T output columns and `batch_tile` rows of X: per k it broadcasts
    `batch_tile` scalars of x against one contiguous T-vector of weights.
    """
    npad = tiles * tile
    bt = batch_tile
    assert batch % bt == 0

    @T.prim_func
    def kernel(X: T.Buffer((batch, k), "float32"), W: T.Buffer((tiles, k, tile), "float32"),
               bias: T.Buffer((npad,), "float32"), Y: T.Buffer((batch, npad), "float32")):
        T.func_attr(SCHEDULED)
        for task in T.parallel(tiles * (batch // bt)):
            t = task % tiles
            b0 = (task // tiles) * bt
            acc = T.alloc_local((bt, tile), "float32")
            for i in T.unroll(bt):
                for u in T.vectorized(tile):
                    acc[i, u] = bias[t * tile + u]
            for kk in range(k):
                for i in T.unroll(bt):
                    for u in T.vectorized(tile):
                        acc[i, u] = acc[i, u] + X[b0 + i, kk] * W[t, kk, u]
            for i in T.unroll(bt):
                for u in T.vectorized(tile):
                    if relu:
                        Y[b0 + i, t * tile + u] = T.max(acc[i, u], T.float32(0))
                    else:
                        Y[b0 + i, t * tile + u] = acc[i, u]

    return kernel


def tiled_ell_linear(batch: int, k: int, tiles: int, rows: int, slots: int, unroll: int, shared: bool,
                     relu: bool) -> tirx.PrimFunc:
    """Sparse Y = act(X · Wᵀ + b) from the tiled-ELL packing (see formats.TiledEll).

    One task per tile of `rows` output rows; per slot, a vector of `rows` weights times x gathered by each
    lane's column (or broadcast when the tile's rows share columns), `unroll` independent accumulators.
    """
    npad = tiles * rows
    u_ = unroll
    col_shape = (slots,) if shared else (slots, rows)

    @T.prim_func
    def kernel(X: T.Buffer((batch, k), "float32"), data: T.Buffer((slots, rows), "float32"),
               cols: T.Buffer(col_shape, "int32"), ptr: T.Buffer((tiles + 1,), "int32"),
               bias: T.Buffer((npad,), "float32"), Y: T.Buffer((batch, npad), "float32")):
        T.func_attr(SCHEDULED)
        for t in T.parallel(tiles):
            for b in range(batch):
                acc = T.alloc_local((u_, rows), "float32")
                for j in T.unroll(u_):
                    for r in T.vectorized(rows):
                        acc[j, r] = T.float32(0)
                j0 = ptr[t]
                for i in range((ptr[t + 1] - j0) // u_):
                    for j in T.unroll(u_):
                        for r in T.vectorized(rows):
                            if shared:
                                acc[j, r] = acc[j, r] + data[j0 + i * u_ + j, r] * X[b, cols[j0 + i * u_ + j]]
                            else:
                                acc[j, r] = acc[j, r] + data[j0 + i * u_ + j, r] * X[b, cols[j0 + i * u_ + j, r]]
                for j in T.unroll(u_ - 1):
                    for r in T.vectorized(rows):
                        acc[0, r] = acc[0, r] + acc[j + 1, r]
                for r in T.vectorized(rows):
                    if relu:
                        Y[b, t * rows + r] = T.max(acc[0, r] + bias[t * rows + r], T.float32(0))
                    else:
                        Y[b, t * rows + r] = acc[0, r] + bias[t * rows + r]

    return kernel
