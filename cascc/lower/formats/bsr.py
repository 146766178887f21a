"""BSR with 1×C blocks for narrow layers: a row's nonzeros are covered by C-wide windows of columns on the
grid g·C (the last window pulled back to end at column K), and a window's C weights are stored together, so
the kernel reads C contiguous x with one vector load per block. Rows are sorted and dealt as in tiled ELL
(`kernels/formats.py`), and grouped in tiles of R rows that advance one block per slot.

The whole format — packing, stored-lane estimator, kernel, cost and label — is this one module.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from ..kernels.cache import cached
from ..kernels.formats import (
    RowTiles,
    balanced_order,
    nonempty,
    offsets,
    pad_bias,
    padded,
    padded_rows,
    scalar_index,
    tile_max,
)
from ..kernels.linear import SCHEDULED, _activate
from ..kernels.tasks import task_jobs
from . import Format, Operand, Option, Work, register


class BlockRows(RowTiles):
    """data [S, R, C]: slot s of a tile holds one block of each of its R rows; cols [S, R], the first column
    of each block's window."""

    @property
    def width(self) -> int:
        return self.data.shape[2]


def pack_block_rows(w: np.ndarray, bias: np.ndarray | None, rows: int, width: int) -> BlockRows:
    """Pack a masked weight matrix into 1×`width` blocks (K ≥ width), tiles of `rows` rows (see above)."""
    n, k = w.shape
    npad = padded(n, rows)
    full = padded_rows(w, npad)
    occupied = _occupied_blocks(full, width)  # [npad, G]
    order = balanced_order(occupied.sum(axis=1), rows)
    occupied = occupied[order]
    ptr = offsets(occupied.sum(axis=1).reshape(-1, rows).max(axis=1))
    starts = window_starts(k, width)
    data = np.zeros((int(ptr[-1]), rows, width), np.float32)
    cols = np.zeros((int(ptr[-1]), rows), np.int32)
    for p, row in enumerate(order):
        blocks = np.flatnonzero(occupied[p])
        slot = ptr[p // rows] + np.arange(len(blocks))
        window = starts[blocks, None] + np.arange(width)  # [B, C] columns each stored block covers
        own = (window >= blocks[:, None] * width) & (window < (blocks[:, None] + 1) * width)
        data[slot, p % rows] = np.where(own, full[row, window], 0)
        cols[slot, p % rows] = starts[blocks]
    return BlockRows(data, cols, ptr, pad_bias(bias, n, npad)[order], order, n, int(np.count_nonzero(w)))


def block_lanes(w: np.ndarray, rows: int, width: int) -> int:
    """Stored weights (blocks × width, padding included) of `pack_block_rows`, without packing."""
    occupied = _occupied_blocks(padded_rows(w, padded(w.shape[0], rows)), width)
    return rows * width * int(tile_max(occupied.sum(axis=1), rows).sum())


def window_starts(k: int, width: int) -> np.ndarray:
    """First column of the window of each 1×width block on the grid (the last one ends at column k)."""
    return np.minimum(np.arange(-(-k // width)) * width, k - width).astype(np.int32)


def _occupied_blocks(full: np.ndarray, width: int) -> np.ndarray:
    """[rows, G]: whether row r has a nonzero in grid block g (columns g·width … g·width + width − 1)."""
    n, k = full.shape
    cells = np.zeros((n, padded(k, width)), bool)
    cells[:, :k] = full != 0
    return cells.reshape(n, -1, width).any(axis=2)


@cached
def block_rows_linear(
    batch: int,
    k: int,
    tiles: int,
    rows: int,
    slots: int,
    width: int,
    act: str | None,
    parallel: bool = True,
    index_dtype: str = "int32",
) -> tirx.PrimFunc:
    """Sparse Y = act(X · Wᵀ + b) from 1×`width` blocks (see `BlockRows`).

    One task per tile of `rows` output rows: per slot, each row's block is one contiguous `width`-vector of
    x times its `width` weights, into that row's own vector accumulator (the rows are the independent
    chains that hide FMA latency); each row's lanes are summed at the end. Output row `order[p]` receives
    packed row p.
    """
    npad = tiles * rows

    loop, jobs, per = task_jobs(tiles, parallel)

    @T.prim_func
    def kernel(
        X: T.Buffer((batch, k), "float32"),
        data: T.Buffer((slots, rows, width), "float32"),
        cols: T.Buffer((slots, rows), index_dtype),
        ptr: T.Buffer((tiles + 1,), "int32"),
        bias: T.Buffer((npad,), "float32"),
        order: T.Buffer((npad,), "int32"),
        Y: T.Buffer((batch, npad), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                t = job * per + step
                if t < tiles:
                    for b in range(batch):
                        acc = T.alloc_local((rows, width), "float32")
                        total = T.alloc_local((rows,), "float32")
                        for r in T.unroll(rows):
                            for v in T.vectorized(width):
                                acc[r, v] = T.float32(0)
                        for s in range(ptr[t], ptr[t + 1]):
                            for r in T.unroll(rows):
                                for v in T.vectorized(width):
                                    acc[r, v] = (
                                        acc[r, v] + data[s, r, v] * X[b, T.Cast("int32", cols[s, r]) + v]
                                    )
                        for r in T.unroll(rows):
                            total[r] = bias[t * rows + r]
                            for v in T.unroll(width):
                                total[r] = total[r] + acc[r, v]
                            Y[b, order[t * rows + r]] = _activate(total[r], act)

    return kernel


def _kernel(work: Work, option: Option, packed: BlockRows, parallel: bool):
    data, cols = nonempty(packed, 1, scalar_index(work.k))
    func = block_rows_linear(
        work.batch,
        work.k,
        len(packed.ptr) - 1,
        option.rows,
        len(data),
        option.width,
        work.act,
        parallel,
        str(cols.dtype),
    )
    return func, (data, cols, packed.ptr, packed.bias, packed.order)


# (block width, tile rows, ns per stored weight and row of x), the tile height that ran fastest per width:
# about twice the warm-cache times of a 1024×1024 layer on x86 (0.068 ns for 1×8, 0.097 for 1×4), as the
# other narrow constants are. A target tunes it with KernelCosts.format_costs["bsr.1xC"].
PRICES = ((8, 4, 0.14), (4, 8, 0.2))


def _options(work: Work) -> list[Option]:
    """One geometry per (width, rows, ns) of the target's price table (default `PRICES`) that fits in K."""
    result = []
    for width, rows, ns in work.costs.format_cost(BSR.name, PRICES):
        if width <= work.weight.shape[1]:
            lanes = block_lanes(work.weight, rows, width)
            result.append(Option(BSR, rows, width, ns, lanes, work.batch / 1e3 * ns * lanes))
    return result


BSR = register(
    Format(
        name="bsr.1xC",
        operand=Operand.NARROW,
        sparse=True,
        rank=2,
        options=_options,
        stored_lanes=lambda w, rows, width, _costs: block_lanes(w, rows, width),
        pack=lambda w, o: pack_block_rows(w.weight, w.bias, o.rows, o.width),
        kernel=_kernel,
        label=lambda o: f"BSR 1×{o.width} ({o.rows}-row tiles)",
    )
)
