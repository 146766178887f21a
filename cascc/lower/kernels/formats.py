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
  `order[p]` is the output row packed at position p, and the kernels store through it. With `shared=True`
  a tile's slots are the union of its rows' columns (a row lacking one stores a zero): r×1 blocks whose
  count was cut short in one block still pack shared.
- BSR with 1×C blocks lives with its kernel in `cascc/lower/formats/bsr.py` (`BlockRows`).
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
    return PackedDense(packed, pad_bias(bias, n, npad), n)


@dataclass(frozen=True, eq=False)
class RowTiles:
    """What every sparse packing holds: tiles of R output rows that advance one slot at a time."""

    data: np.ndarray  # [S, R, …] float32
    cols: np.ndarray  # int32 column indices (per format)
    ptr: np.ndarray  # [NT + 1] int32, slot offsets per tile
    bias: np.ndarray  # [NT * R], in packed order
    order: np.ndarray  # [NT * R] int32, output row of each packed position (≥ n: a padded row)
    n: int
    nnz: int

    @property
    def rows(self) -> int:
        return self.data.shape[1]

    @property
    def slots(self) -> int:
        return self.data.shape[0]


class TiledEll(RowTiles):
    """data [S, R]; cols [S, R], or [S] when shared; tile offsets are multiples of the unroll U."""

    @property
    def shared(self) -> bool:
        return self.cols.ndim == 1


def pack_tiled_ell(
    w: np.ndarray, bias: np.ndarray | None, rows: int, unroll: int, shared: bool | None = None
) -> TiledEll:
    """Pack a masked weight matrix (zeros are pruned) into the tiled-ELL layout described above; `shared`
    None packs shared only where every tile's rows have identical columns."""
    n, k = w.shape
    npad = padded(n, rows)
    full = padded_rows(w, npad)
    if shared is None:
        nonzero = (full != 0).reshape(npad // rows, rows, k)
        shared = bool((nonzero == nonzero[:, :1, :]).all())
    order = np.arange(npad, dtype=np.int32)
    if not shared:
        order = balanced_order(np.count_nonzero(full, axis=1), rows)
    tiles = full[order].reshape(npad // rows, rows, k)
    nonzero = tiles != 0
    if shared:
        nonzero = np.broadcast_to(nonzero.any(axis=1, keepdims=True), nonzero.shape)
    slots = np.array([padded(int(m), unroll) for m in nonzero.sum(axis=2).max(axis=1)], np.int64)
    ptr = offsets(slots)
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
    bias_packed = pad_bias(bias, n, npad)[order]
    return TiledEll(data, cols, ptr, bias_packed, order, n, int(np.count_nonzero(tiles)))


def ell_lanes(w: np.ndarray, rows: int, unroll: int, shared: bool) -> int:
    """Stored lanes (slots × rows, padding included) of `pack_tiled_ell(w, …, shared=shared)`, without
    packing: what the cost model weighs."""
    nonzero = padded_rows(w, padded(w.shape[0], rows)) != 0
    if shared:
        per_tile = nonzero.reshape(-1, rows, w.shape[1]).any(axis=1).sum(axis=1)
    else:
        per_tile = tile_max(nonzero.sum(axis=1), rows)
    return rows * int(sum(padded(int(m), unroll) for m in per_tile))


def tile_max(per_row: np.ndarray, rows: int) -> np.ndarray:
    """Slots per tile of sorted, dealt rows: the longest row of each tile."""
    return per_row[balanced_order(per_row, rows)].reshape(-1, rows).max(axis=1)


def offsets(slots: np.ndarray) -> np.ndarray:
    ptr = np.zeros(len(slots) + 1, np.int32)
    ptr[1:] = np.cumsum(slots)
    return ptr


def padded_rows(w: np.ndarray, npad: int) -> np.ndarray:
    full = np.zeros((npad, w.shape[1]), np.float32)
    full[: w.shape[0]] = w
    return full


def balanced_order(row_nnz: np.ndarray, rows: int) -> np.ndarray:
    """Rows sorted by nonzero count (stable, longest first), then whole tiles dealt alternately from the long
    and the short end, so any contiguous run of tiles (a thread's share) carries an even share of the work."""
    by_length = np.argsort(-row_nnz, kind="stable").astype(np.int32)
    tiles = [by_length[i : i + rows] for i in range(0, len(by_length), rows)]
    dealt = [tiles[i // 2] if i % 2 == 0 else tiles[-1 - i // 2] for i in range(len(tiles))]
    return np.concatenate(dealt) if dealt else by_length


def pad_bias(bias: np.ndarray | None, n: int, npad: int) -> np.ndarray:
    out = np.zeros(npad, np.float32)
    if bias is not None:
        out[:n] = bias
    return out


def nonempty(packed: RowTiles, min_slots: int, index=np.int32) -> tuple[np.ndarray, np.ndarray]:
    """Data and column arrays (columns as `index`) with at least `min_slots` slots (an all-zero layer still
    needs buffers)."""
    slots = max(packed.slots, min_slots)
    data = np.zeros((slots, *packed.data.shape[1:]), np.float32)
    data[: packed.slots] = packed.data
    cols = np.zeros((slots, *packed.cols.shape[1:]), index)
    cols[: packed.slots] = packed.cols
    return data, cols


def scalar_index(k: int):
    """Index type of a kernel that loads one column index at a time (r×1 broadcast, 1×C blocks): int16 where
    every column fits, which was 2–3% faster than int32 on a 1024×1024 layer. Per-lane gathered indices stay
    int32: there int16 ran at 86 µs against 42 µs on a 10%-dense 1024×1024 layer, as LLVM widens each index
    separately instead of loading a vector of them."""
    return np.int16 if k <= np.iinfo(np.int16).max + 1 else np.int32
