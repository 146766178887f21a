"""The wide operand shared by linear layers with many rows and by convolutions: C[b, n, m] = W · A[b, :, m],
A flat per image with row k at koff[k] (see `kernels/linear.py` wide_dense), vectorized over m."""

from __future__ import annotations

import numpy as np
from tvm import relax

from .. import cost
from ..context import Candidate
from ..epilogue import Epilogue
from ..formats import Operand, Option, Work, cheapest, of, priced
from ..kernels.formats import TiledEll, padded


def wide_packing(ctx, ep: Epilogue, n: int, k: int) -> tuple[Option, TiledEll]:
    """The layer's cheapest sparse wide format (priced per stored lane and operand column) and its packing:
    packed once, for the direct-vs-im2col weighing and the kernel both."""
    work = Work(ctx.costs, 0, k, n, ep.weight, ep.bias, ep.act)
    option = cheapest(priced(work, Operand.WIDE), lambda o: o.ns * o.lanes)
    return option, option.format.pack(work, option)


def wide_us(ctx, packing: tuple[Option, TiledEll], columns: int, k: int, n: int) -> tuple[float, float]:
    """(dense, sparse) µs on an operand of `columns` columns (pixels × images, tokens)."""
    option, packed = packing
    return cost.wide_dense(ctx.costs, columns, k, n), cost.wide_sparse(option.ns, columns, packed)


def emit_wide(
    ctx,
    name: str,
    a,
    alen: int,
    batch: int,
    k: int,
    m: int,
    n: int,
    ep: Epilogue,
    via: str,
    koff,
    lanes=None,
    packing=None,
) -> relax.Expr:
    """The wide kernel on the flat operand A[b, alen] whose row k starts at koff[k], vectorized `lanes` wide
    (default: the target's); returns C[b, n, m]."""
    lanes = lanes or ctx.costs.wide_lanes
    option, packed = packing or wide_packing(ctx, ep, n, k)
    dense_us, sparse_us = wide_us(ctx, (option, packed), batch * m, k, n)
    choice = cost.choose(ctx.costs, dense_us, sparse_us, ep.density, "wide")
    work = Work(ctx.costs, batch, k, n, ep.weight, ep.bias, ep.act, m, alen, koff, lanes)
    shapes = ((batch, alen), (batch, n, m))

    def sparse():
        func, consts = option.format.kernel(work, option, packed, ctx.parallel(sparse_us))
        return _candidate(f"sparse {option.label}{via}", func, consts, shapes)

    def dense():
        fmt = of(Operand.WIDE, sparse=False)[0]
        (dense_option,) = fmt.options(work)
        func, consts = fmt.kernel(work, dense_option, fmt.pack(work, dense_option), ctx.parallel(dense_us))
        return _candidate(f"dense {dense_option.label}{via}", func, consts, shapes)

    return ctx.call(ctx.choose(name, ep, choice, sparse, dense), name, choice.sparse, a)


def _candidate(kernel, func, consts, shapes):
    return Candidate(kernel, func, consts, *shapes)


def operand_pitch(m: int, lanes: int, line: int) -> int:
    """Floats per row of a wide kernel's operand: room for m columns and for one whole vector, in an odd
    number of cache lines (`line` floats each). At an even number (worst: a multiple of 4 KB) the rows a
    sparse tile reads at one column fall into few L1 sets and evict each other: 512×128 at 20% over 2048
    tokens ran 2.5× slower at pitch 2048 than at 2064 (dense: no difference)."""
    pitch = padded(max(m, lanes), line)
    return pitch if (pitch // line) % 2 else pitch + line


def rows_at(rows: int, pitch: int) -> np.ndarray:
    """Offsets of the rows of a [rows, pitch] operand in its flat layout."""
    return (np.arange(rows) * pitch).astype(np.int32)
