"""Formats of wide operands (conv pixels, tokens; `kernels/linear.py` wide_sparse / wide_dense): tiled ELL with
one column per stored weight, or shared by a tile's rows (r×1 blocks: one operand vector load for all of
them), and dense weights packed in row tiles. Wide options are priced per operand column (`ns` × `lanes`):
the operand's width is known only once the strategy has laid it out."""

from __future__ import annotations

import numpy as np

from ..kernels.formats import ell_lanes, nonempty, pack_dense, pack_tiled_ell, padded, scalar_index
from ..kernels.linear import wide_dense, wide_sparse
from . import Format, Operand, Option, Work, register


def _sparse_kernel(work: Work, option: Option, ell, parallel: bool):
    data, cols = nonempty(ell, 1)
    offsets = np.ascontiguousarray(work.koff[cols]).astype(scalar_index(work.alen))
    func = wide_sparse(
        work.batch,
        work.m,
        work.n,
        ell.rows,
        work.lanes,
        work.alen,
        work.act,
        parallel=parallel,
        index_dtype=str(offsets.dtype),
        shared=ell.shared,
    )
    return func, (data, offsets, ell.ptr, ell.bias, ell.order)


def _sparse(name: str, rank: int, shared: bool, ns_field: str) -> Format:
    def options(work: Work) -> list[Option]:
        rows = work.costs.wide_rows
        lanes = ell_lanes(work.weight.reshape(work.n, work.k), rows, 1, shared)
        return [Option(fmt, rows, 1, getattr(work.costs, ns_field), lanes, None)]

    fmt = Format(
        name=name,
        operand=Operand.WIDE,
        sparse=True,
        rank=rank,
        options=options,
        stored_lanes=lambda w, rows, _c, _costs: ell_lanes(w, rows, 1, shared),
        pack=lambda w, o: pack_tiled_ell(w.weight.reshape(w.n, w.k), w.bias, o.rows, 1, shared=shared),
        kernel=_sparse_kernel,
        label=lambda o: f"wide tiled-ELL {o.rows}-row{' r×1 broadcast' if shared else ''}",
    )
    return register(fmt)


# the shared form only where it prices strictly lower: cheaper per stored weight, but a tile then stores the
# union of its rows' columns (r×1 blocks: no more than per row; unstructured: far more)
WIDE_ELL = _sparse("wide.tiled-ell", 0, False, "wide_sparse_ns_per_mac")
WIDE_ELL_SHARED = _sparse("wide.tiled-ell.broadcast", 1, True, "wide_shared_ns_per_mac")


def _dense_tile(work: Work) -> tuple[int, int]:
    """(rows, lanes) of the dense register tile: the target's wide tile for layers with that many rows."""
    c = work.costs
    rows, lanes = c.wide_dense_tile if work.n >= c.wide_dense_tile[0] else (c.wide_rows, work.lanes)
    return rows, min(lanes, work.lanes)  # the operand was laid out for `work.lanes`-wide chunks


def _dense_kernel(work: Work, option: Option, packed, parallel: bool):
    rows, lanes = _dense_tile(work)
    func = wide_dense(work.batch, work.k, work.m, work.n, rows, lanes, work.alen, work.act, parallel=parallel)
    return func, (packed.weights, work.koff, packed.bias)


def _dense_options(work: Work) -> list[Option]:
    rows = _dense_tile(work)[0]
    return [
        Option(WIDE_DENSE, rows, 1, work.costs.wide_dense_ns_per_mac, work.k * padded(work.n, rows), None)
    ]


WIDE_DENSE = register(
    Format(
        name="wide.dense",
        operand=Operand.WIDE,
        sparse=False,
        rank=0,
        options=_dense_options,
        stored_lanes=lambda w, rows, _c, _costs: w.shape[1] * padded(w.shape[0], rows),
        pack=lambda w, o: pack_dense(w.weight.reshape(w.n, w.k), w.bias, o.rows),
        kernel=_dense_kernel,
        label=lambda o: f"wide {o.rows}-row",
    )
)
