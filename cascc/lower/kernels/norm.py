"""Row-wise kernels over the last axis: layer norm (TVM's generic lowering ran 15 µs on a 64×128 input), softmax, mean;
and softmax down columns, for attention scores computed transposed."""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from .cache import cached
from .linear import SCHEDULED
from .tasks import task_jobs

# Every row kernel takes its vector width `lanes` (a power of two, 4–64) from the target's `kernel_lanes`.


@T.macro
def _fold(part, g, half, op):
    for v in T.vectorized(half):
        part[g, v] = op(part[g, v], part[g, v + half])


@T.macro
def _tree(part, g, op, lanes):
    """part[g, 0] = op-reduction of row g's `lanes` lanes in log2(lanes) halving steps (shuffles, not a
    serial chain)."""
    if lanes >= 64:
        _fold(part, g, 32, op)
    if lanes >= 32:
        _fold(part, g, 16, op)
    if lanes >= 16:
        _fold(part, g, 8, op)
    if lanes >= 8:
        _fold(part, g, 4, op)
    if lanes >= 4:
        _fold(part, g, 2, op)
    part[g, 0] = op(part[g, 0], part[g, 1])


@T.macro
def _row_sums(part, X, task, group, chunks, lanes):
    """part[g, v] = Σ over the first chunks·lanes columns of row task·group + g, lane by lane."""
    for g in T.unroll(group):
        for v in T.vectorized(lanes):
            part[g, v] = T.float32(0)
    for ch in range(chunks):
        for g in T.unroll(group):
            for v in T.vectorized(lanes):
                part[g, v] = part[g, v] + X[task * group + g, ch * lanes + v]


def _add(a, b):
    return a + b


def _max(a, b):
    return T.max(a, b)


def row_group(rows: int) -> int:
    """Rows handled together (4, 2 or 1, dividing rows): their reductions are independent dependency
    chains, so short rows do not leave the core waiting on one row's latency (measured 2× on 64-wide rows)."""
    return next(g for g in (4, 2, 1) if rows % g == 0)


@cached
def layer_norm(rows: int, width: int, eps: float, parallel: bool = False, *, lanes: int) -> tirx.PrimFunc:
    """Y[r] = (X[r] − mean) / sqrt(var + eps) · gamma + beta over rows of `width` floats, any width.

    Two passes over each row (mean, then the centred sum of squares) in `lanes`-wide partial sums, so the
    variance keeps full precision; the last `width % lanes` columns (Wav2Vec2's group norm over 3199 samples
    leaves 15) are folded in scalar."""
    assert lanes in (4, 8, 16, 32, 64), lanes
    chunks, tail = divmod(width, lanes)
    group = row_group(rows)

    loop, jobs, per = task_jobs(rows // group, parallel)

    @T.prim_func
    def kernel(
        X: T.Buffer((rows, width), "float32"),
        gamma: T.Buffer((width,), "float32"),
        beta: T.Buffer((width,), "float32"),
        Y: T.Buffer((rows, width), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < rows // group:
                    part = T.alloc_local((group, lanes), "float32")
                    mean = T.alloc_local((group,), "float32")
                    _row_sums(part, X, task, group, chunks, lanes)
                    for g in T.unroll(group):
                        for v in range(tail):
                            part[g, v] = part[g, v] + X[task * group + g, chunks * lanes + v]
                        _tree(part, g, _add, lanes)
                        mean[g] = part[g, 0] / T.float32(width)
                        for v in T.vectorized(lanes):
                            part[g, v] = T.float32(0)
                    for ch in range(chunks):
                        for g in T.unroll(group):
                            for v in T.vectorized(lanes):
                                part[g, v] = part[g, v] + (X[task * group + g, ch * lanes + v] - mean[g]) * (
                                    X[task * group + g, ch * lanes + v] - mean[g]
                                )
                    for g in T.unroll(group):
                        for v in range(tail):
                            part[g, v] = part[g, v] + (X[task * group + g, chunks * lanes + v] - mean[g]) * (
                                X[task * group + g, chunks * lanes + v] - mean[g]
                            )
                        _tree(part, g, _add, lanes)
                        part[g, 0] = T.float32(1) / T.sqrt(part[g, 0] / T.float32(width) + T.float32(eps))
                    for ch in range(chunks):
                        for g in T.unroll(group):
                            for v in T.vectorized(lanes):
                                Y[task * group + g, ch * lanes + v] = (
                                    X[task * group + g, ch * lanes + v] - mean[g]
                                ) * part[g, 0] * gamma[ch * lanes + v] + beta[ch * lanes + v]
                    for g in T.unroll(group):
                        for v in range(tail):
                            Y[task * group + g, chunks * lanes + v] = (
                                X[task * group + g, chunks * lanes + v] - mean[g]
                            ) * part[g, 0] * gamma[chunks * lanes + v] + beta[chunks * lanes + v]

    return kernel


# Cephes-style expf: 2^n · p(r) with r = x − n·ln2 (ln2 split in a high and a low part), p a degree-7
# polynomial; relative error ~2e-7 where the result is a normal float. Inputs are clamped to [−88, 88]; at
# the low end 2^n underflows to exactly 0 (n = −127), so exp(−inf) = 0 as masked attention needs.
_LOG2E = 1.4426950408889634
_LN2_HI, _LN2_LO = 0.693359375, -2.12194440e-4
_EXP_POLY = (
    1.9875691500e-4,
    1.3981999507e-3,
    8.3334519073e-3,
    4.1665795894e-2,
    1.6666665459e-1,
    5.0000001201e-1,
)


def fast_exp(x):
    """exp(x) as vectorizable float32 arithmetic (LLVM's expf call is scalar)."""
    x = T.max(T.min(x, T.float32(88.0)), T.float32(-88.0))
    n = T.floor(x * T.float32(_LOG2E) + T.float32(0.5))
    r = x - n * T.float32(_LN2_HI) - n * T.float32(_LN2_LO)
    p = T.float32(_EXP_POLY[0])
    for c in _EXP_POLY[1:]:
        p = p * r + T.float32(c)
    p = p * r * r + r + T.float32(1)
    return p * T.reinterpret("float32", T.shift_left(T.Cast("int32", n) + 127, 23))


@cached
def softmax(rows: int, width: int, parallel: bool = False, *, lanes: int) -> tirx.PrimFunc:
    """Y[r] = exp(X[r] − max) / Σ exp(X[r] − max) over rows of `width` floats, any width: `lanes`-wide
    chunks, the last `width % lanes` columns (Whisper's 1500 tokens leave 12) folded in scalar.

    A row that is entirely −inf is scaled by `fill` (zero: torch's safe-softmax convention for fully
    masked attention rows, where plain torch.softmax gives NaN). `fill` is an input on purpose: TVM's
    RewriteDataflowReshape analyses every call_tir reading exactly one tensor as a possible reshape, which
    fails on hand-written kernels."""
    assert lanes in (4, 8, 16, 32, 64), lanes
    chunks, tail = divmod(width, lanes)
    group = row_group(rows)

    loop, jobs, per = task_jobs(rows // group, parallel)

    @T.prim_func
    def kernel(
        X: T.Buffer((rows, width), "float32"),
        fill: T.Buffer((1,), "float32"),
        Y: T.Buffer((rows, width), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < rows // group:
                    part = T.alloc_local((group, lanes), "float32")
                    top = T.alloc_local((group,), "float32")
                    peak = T.alloc_local((group,), "float32")
                    for g in T.unroll(group):
                        for v in T.vectorized(lanes):
                            part[g, v] = T.float32("-inf")
                    for ch in range(chunks):
                        for g in T.unroll(group):
                            for v in T.vectorized(lanes):
                                part[g, v] = T.max(part[g, v], X[task * group + g, ch * lanes + v])
                    for g in T.unroll(group):
                        for v in range(tail):
                            part[g, v] = T.max(part[g, v], X[task * group + g, chunks * lanes + v])
                        _tree(part, g, _max, lanes)
                        # a fully masked row subtracts 0 instead of −inf (no NaN) and is scaled by fill below
                        peak[g] = part[g, 0]
                        top[g] = T.Select(peak[g] == T.float32("-inf"), T.float32(0), peak[g])
                        for v in T.vectorized(lanes):
                            part[g, v] = T.float32(0)
                    for ch in range(chunks):
                        for g in T.unroll(group):
                            for v in T.vectorized(lanes):
                                Y[task * group + g, ch * lanes + v] = fast_exp(
                                    X[task * group + g, ch * lanes + v] - top[g]
                                )
                                part[g, v] = part[g, v] + Y[task * group + g, ch * lanes + v]
                    for g in T.unroll(group):
                        for v in range(tail):
                            Y[task * group + g, chunks * lanes + v] = fast_exp(
                                X[task * group + g, chunks * lanes + v] - top[g]
                            )
                            part[g, v] = part[g, v] + Y[task * group + g, chunks * lanes + v]
                        _tree(part, g, _add, lanes)
                        part[g, 0] = T.Select(
                            peak[g] == T.float32("-inf"), fill[0], T.float32(1) / part[g, 0]
                        )
                    for ch in range(chunks):
                        for g in T.unroll(group):
                            for v in T.vectorized(lanes):
                                Y[task * group + g, ch * lanes + v] = (
                                    Y[task * group + g, ch * lanes + v] * part[g, 0]
                                )
                    for g in T.unroll(group):
                        for v in range(tail):
                            Y[task * group + g, chunks * lanes + v] = (
                                Y[task * group + g, chunks * lanes + v] * part[g, 0]
                            )

    return kernel


@T.macro
def _column_softmax_chunks(X, fill, Y, b, first, group, vec, rows, width):
    """Softmax down `group` adjacent `vec`-wide column chunks of image b, from chunk `first` (the last one
    pulled back to end at `width`)."""
    start = T.alloc_local((group,), "int32")
    peak = T.alloc_local((group, vec), "float32")
    top = T.alloc_local((group, vec), "float32")
    total = T.alloc_local((group, vec), "float32")
    for g in T.unroll(group):
        start[g] = T.min((first + g) * vec, width - vec)
        for v in T.vectorized(vec):
            peak[g, v] = T.float32("-inf")
            total[g, v] = T.float32(0)
    for r in range(rows):
        for g in T.unroll(group):
            for v in T.vectorized(vec):
                peak[g, v] = T.max(peak[g, v], X[b, r, start[g] + v])
    for g in T.unroll(group):
        for v in T.vectorized(vec):
            top[g, v] = T.Select(peak[g, v] == T.float32("-inf"), T.float32(0), peak[g, v])
    for r in range(rows):
        for g in T.unroll(group):
            for v in T.vectorized(vec):
                Y[b, r, start[g] + v] = fast_exp(X[b, r, start[g] + v] - top[g, v])
                total[g, v] = total[g, v] + Y[b, r, start[g] + v]
    for g in T.unroll(group):
        for v in T.vectorized(vec):
            total[g, v] = T.Select(peak[g, v] == T.float32("-inf"), fill[0], T.float32(1) / total[g, v])
    for r in range(rows):
        for g in T.unroll(group):
            for v in T.vectorized(vec):
                Y[b, r, start[g] + v] = Y[b, r, start[g] + v] * total[g, v]


@cached
def column_softmax(batch: int, rows: int, width: int, parallel: bool = False, *, lanes: int) -> tirx.PrimFunc:
    """Y[b, :, j] = exp(X[b, :, j] − max) / Σ exp(X[b, :, j] − max): softmax down each column of [batch, rows,
    width], vectorized across `lanes` columns, so every reduction is lane-wise (no horizontal steps), four
    chunks of columns at a time. Attention's scores computed transposed (`transposed_attention.py`) take it.
    A width that is not a multiple of `lanes` (≥ lanes) ends in a chunk pulled back to end at the last
    column; narrower widths run in scalar. A column that is entirely −inf is scaled by `fill`, as in
    `softmax`. The pulled-back chunk runs alone after the others, and threads split the batch only: it
    rewrites columns of the chunk before it, which must be done by then (the normalizing pass reads Y back)."""
    assert lanes in (4, 8, 16, 32, 64), lanes
    vec = lanes if width >= lanes else 1
    aligned, pulled = divmod(width, vec)  # whole chunks, and one more pulled back over the last of them
    group = max(1, min(4, aligned))
    full, rest = divmod(aligned, group)

    loop, jobs, per = task_jobs(batch, parallel)

    @T.prim_func
    def kernel(
        X: T.Buffer((batch, rows, width), "float32"),
        fill: T.Buffer((1,), "float32"),
        Y: T.Buffer((batch, rows, width), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                b = job * per + step
                if b < batch:
                    for cg in range(full):
                        _column_softmax_chunks(X, fill, Y, b, cg * group, group, vec, rows, width)
                    if rest > 0:
                        _column_softmax_chunks(X, fill, Y, b, full * group, rest, vec, rows, width)
                    if pulled > 0:  # alone and last: it rewrites columns the chunk before it finished
                        _column_softmax_chunks(X, fill, Y, b, aligned, 1, vec, rows, width)

    return kernel


@cached
def row_mean(rows: int, width: int, *, lanes: int) -> tirx.PrimFunc:
    """Y[r] = scale · Σ X[r, :] (scale = 1 / width: a mean, e.g. global average pooling over H·W), any width:
    `lanes`-wide partial sums, a scalar loop over the tail. `scale` is an input (not a constant) for the same
    reason as softmax's `fill`."""
    assert lanes in (4, 8, 16, 32, 64), lanes
    chunks, tail = divmod(width, lanes)
    group = row_group(rows)

    @T.prim_func
    def kernel(
        X: T.Buffer((rows, width), "float32"),
        scale: T.Buffer((1,), "float32"),
        Y: T.Buffer((rows,), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for task in range(rows // group):
            part = T.alloc_local((group, lanes), "float32")
            _row_sums(part, X, task, group, chunks, lanes)
            for g in T.unroll(group):
                for v in range(tail):
                    part[g, v] = part[g, v] + X[task * group + g, chunks * lanes + v]
                _tree(part, g, _add, lanes)
                Y[task * group + g] = part[g, 0] * scale[0]

    return kernel
