"""Dense packed weights for narrow layers (kernels/formats.py `PackedDense`): T contiguous output weights
per k, streamed once per batch tile."""

from __future__ import annotations

from .. import cost
from ..kernels.formats import pack_dense
from ..kernels.linear import dense_linear
from . import Format, Operand, Option, Work, register


def _kernel(work: Work, option: Option, packed, parallel: bool):
    func = dense_linear(
        work.batch,
        work.k,
        packed.weights.shape[0],
        option.rows,
        cost.batch_tile(work.costs, work.batch),
        work.act,
        parallel=parallel,
    )
    return func, (packed.weights, packed.bias)


def _options(work: Work) -> list[Option]:
    tile = work.costs.dense_tile
    us = cost.narrow_dense(work.costs, work.batch, work.k, work.n)
    return [Option(DENSE, tile, 1, work.costs.dense_ns_per_weight, work.k * (-(-work.n // tile) * tile), us)]


DENSE = register(
    Format(
        name="dense.packed",
        operand=Operand.NARROW,
        sparse=False,
        rank=0,
        options=_options,
        stored_lanes=lambda w, rows, _c, _costs: w.shape[1] * (-(-w.shape[0] // rows) * rows),
        pack=lambda w, o: pack_dense(w.weight, w.bias, o.rows),
        kernel=_kernel,
        label=lambda o: f"packed {o.rows}-wide",
    )
)
