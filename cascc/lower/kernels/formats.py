"""Weight packings for cascc's linear kernels (numpy only, no TVM).

Every packing pads the output dimension N to a multiple of its row tile; padded rows hold zero weights,
and the Relax rewrite slices them off.

- `PackedDense`: W[N, K] as Wp[N/T, K, T] so the kernel streams T contiguous output weights per k.
- `TiledEll`: rows grouped in tiles of R; in each tile every row's nonzeros are listed slot by slot, padded
  to the tile's longest row (rounded up to U slots) with zero weights at column 0. Lane r of slot j holds
  row r's j-th nonzero, so a vector of R lanes advances R rows at once. When every row of a tile has the
  same columns (r×1 blocks) the column index is stored once per slot (`shared`) and x is broadcast instead
  of gathered. Otherwise rows are first sorted by their count of nonzeros, so a tile holds rows of equal
  length and the padding all but vanishes (at 10% density, 1024 columns: 18% padding unsorted, 2% sorted);
  `order[p]` is the output row packed at position p, and the kernels store through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def padded(n: int, tile: int) -> int:
    return -(-n // tile) * tile


@dataclass(frozen=True, eq=False)
class PackedDense:
    weights: np.ndarray  # [NT, K, T]
    bias: np.ndarray  # [NT * T]
    n: int

    @property
    def tile(self) -> int:
        return self.weights.shape[2]


def pack_dense(w: np.ndarray, bias: np.ndarray | None, tile: int) -> PackedDense:
    n, k = w.shape
    npad = padded(n, tile)
    wp = np.zeros((npad, k), np.float32)
    wp[:n] = w
    packed = np.ascontiguousarray(wp.reshape(npad // tile, tile, k).transpose(0, 2, 1))
    return PackedDense(packed, _pad_bias(bias, n, npad), n)


@dataclass(frozen=True, eq=False)
class TiledEll:
    data: np.ndarray  # [S, R] float32
    cols: np.ndarray  # [S, R] int32, or [S] when shared
    ptr: np.ndarray  # [NT + 1] int32, slot offsets per tile (multiples of U)
    bias: np.ndarray  # [NT * R], in packed order
    order: np.ndarray  # [NT * R] int32, output row of each packed position (≥ n: a padded row)
    n: int
    nnz: int

    @property
    def rows(self) -> int:
        return self.data.shape[1]

    @property
    def shared(self) -> bool:
        return self.cols.ndim == 1

    @property
    def slots(self) -> int:
        return self.data.shape[0]


def pack_tiled_ell(w: np.ndarray, bias: np.ndarray | None, rows: int, unroll: int) -> TiledEll:
    """Pack a masked weight matrix (zeros are pruned) into the tiled-ELL layout described above."""
    n, k = w.shape
    npad = padded(n, rows)
    full = np.zeros((npad, k), np.float32)
    full[:n] = w
    nonzero = (full != 0).reshape(npad // rows, rows, k)
    shared = bool((nonzero == nonzero[:, :1, :]).all())
    order = np.arange(npad, dtype=np.int32)
    if not shared:
        order = balanced_order(np.count_nonzero(full, axis=1), rows)
    tiles = full[order].reshape(npad // rows, rows, k)
    nonzero = tiles != 0
    per_row = nonzero.sum(axis=2)  # [NT, R]
    slots = np.array([padded(int(m), unroll) for m in per_row.max(axis=1)], np.int64)
    ptr = np.zeros(len(slots) + 1, np.int32)
    ptr[1:] = np.cumsum(slots)
    total = int(ptr[-1])
    data = np.zeros((total, rows), np.float32)
    cols = np.zeros((total,) if shared else (total, rows), np.int32)
    for t in range(tiles.shape[0]):
        base = ptr[t]
        for r in range(rows):
            idx = np.flatnonzero(nonzero[t, r])
            data[base : base + len(idx), r] = tiles[t, r, idx]
            if shared:
                cols[base : base + len(idx)] = idx
            else:
                cols[base : base + len(idx), r] = idx
    bias_packed = _pad_bias(bias, n, npad)[order]
    return TiledEll(data, cols, ptr, bias_packed, order, n, int(nonzero.sum()))


def balanced_order(row_nnz: np.ndarray, rows: int) -> np.ndarray:
    """Rows sorted by nonzero count (stable, longest first), then whole tiles dealt alternately from the long
    and the short end, so any contiguous run of tiles (a thread's share) carries an even share of the work."""
    by_length = np.argsort(-row_nnz, kind="stable").astype(np.int32)
    tiles = [by_length[i : i + rows] for i in range(0, len(by_length), rows)]
    dealt = [tiles[i // 2] if i % 2 == 0 else tiles[-1 - i // 2] for i in range(len(tiles))]
    return np.concatenate(dealt) if dealt else by_length


def _pad_bias(bias: np.ndarray | None, n: int, npad: int) -> np.ndarray:
    out = np.zeros(npad, np.float32)
    if bias is not None:
        out[:n] = bias
    return out
