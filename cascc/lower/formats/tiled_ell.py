"""Tiled ELL for narrow layers (kernels/formats.py `TiledEll`): tiles of output rows advancing one slot at a
time, x gathered per lane by each row's own column, or — for r×1 blocks, where a tile's rows share their
columns — one column per slot and x broadcast."""

from __future__ import annotations

import numpy as np

from ..kernels.formats import ell_lanes, nonempty, pack_tiled_ell, scalar_index
from ..kernels.linear import tiled_ell_linear
from . import Format, Operand, Option, Work, register


def _kernel(work: Work, option: Option, packed, parallel: bool):
    unroll, shared = work.costs.sparse_unroll, option.format is BROADCAST
    data, cols = nonempty(packed, unroll, scalar_index(work.k) if shared else np.int32)
    func = tiled_ell_linear(
        work.batch,
        work.k,
        len(packed.ptr) - 1,
        option.rows,
        len(data),
        unroll,
        shared,
        work.act,
        parallel,
        str(cols.dtype),
    )
    return func, (data, cols, packed.ptr, packed.bias, packed.order)


def _lanes(weight: np.ndarray, rows: int, _width: int, costs, *, shared: bool) -> int:
    return ell_lanes(weight, rows, costs.sparse_unroll, shared)


def _option(fmt: Format, work: Work, rows: int, ns: float) -> Option:
    lanes = fmt.stored_lanes(work.weight, rows, 1, work.costs)
    return Option(fmt, rows, 1, ns, lanes, work.batch / 1e3 * ns * lanes)  # ns per row of x → µs per batch


GATHER = register(
    Format(
        name="tiled-ell.gather",
        operand=Operand.NARROW,
        sparse=True,
        rank=0,
        options=lambda w: [_option(GATHER, w, w.costs.sparse_rows, w.costs.gather_ns_per_lane)],
        stored_lanes=lambda w, r, c, costs: _lanes(w, r, c, costs, shared=False),
        pack=lambda w, o: pack_tiled_ell(w.weight, w.bias, o.rows, w.costs.sparse_unroll, False),
        kernel=_kernel,
        label=lambda o: f"tiled-ELL {o.rows}-row gather",
    )
)

BROADCAST = register(
    Format(
        name="tiled-ell.broadcast",
        operand=Operand.NARROW,
        sparse=True,
        rank=1,
        options=lambda w: [_option(BROADCAST, w, r, ns) for r, ns in w.costs.broadcast_ns_per_lane],
        stored_lanes=lambda w, r, c, costs: _lanes(w, r, c, costs, shared=True),
        pack=lambda w, o: pack_tiled_ell(w.weight, w.bias, o.rows, w.costs.sparse_unroll, True),
        kernel=_kernel,
        label=lambda o: f"tiled-ELL {o.rows}-row r×1 broadcast",
    )
)
