"""TIR kernels for y = act(x · Wᵀ + b) with a constant weight: packed dense and tiled-ELL sparse (1×C blocks:
`formats/bsr.py`).

All are hand-scheduled TVMScript (parallel over output tiles, vectorized over the tile's lanes, several
independent accumulators to hide FMA latency) and carry `tirx.is_scheduled`, so no rule touches them.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from .cache import cached
from .tasks import task_jobs

SCHEDULED = {"tirx.noalias": True, "tirx.is_scheduled": True}


def _activate(value, act: str | None):
    """The fused epilogue (patterns.ACTIVATIONS): identity, ReLU, ReLU6, sigmoid, SiLU, GELU (erf or tanh),
    in float32 arithmetic that vectorizes (exp, erf and tanh from `kernels/activations.py`, polynomials:
    TVM lowers T.erf to a scalar call per element)."""
    from .activations import fast_erf, fast_exp, fast_tanh

    if act == "relu":
        return T.max(value, T.float32(0))
    if act == "relu6":
        return T.min(T.max(value, T.float32(0)), T.float32(6))
    if act == "sigmoid":
        return T.float32(1) / (T.float32(1) + fast_exp(T.float32(0) - value))
    if act == "silu":
        return value / (T.float32(1) + fast_exp(T.float32(0) - value))
    if act == "gelu":
        return T.float32(0.5) * value * (T.float32(1) + fast_erf(value * T.float32(0.7071067811865476)))
    if act == "gelu_tanh":
        inner = T.float32(0.7978845608028654) * (value + T.float32(0.044715) * value * value * value)
        return T.float32(0.5) * value * (T.float32(1) + fast_tanh(inner))
    if act is not None:
        raise ValueError(f"no fused form for activation {act!r}")
    return value


@cached
def dense_linear(
    batch: int, k: int, tiles: int, tile: int, batch_tile: int, act: str | None, parallel: bool = True
) -> tirx.PrimFunc:
    """Y[b, n] = act(Σ_k X[b, k] · Wp[n // T, k, n % T] + bias[n]) over padded N = tiles · T.

    Each task owns one tile of T output columns and `batch_tile` rows of X: per k it broadcasts
    `batch_tile` scalars of x against one contiguous T-vector of weights.
    """
    npad = tiles * tile
    bt = batch_tile
    assert batch % bt == 0

    loop, jobs, per = task_jobs(tiles * (batch // bt), parallel)

    @T.prim_func
    def kernel(
        X: T.Buffer((batch, k), "float32"),
        W: T.Buffer((tiles, k, tile), "float32"),
        bias: T.Buffer((npad,), "float32"),
        Y: T.Buffer((batch, npad), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < tiles * (batch // bt):
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
                            Y[b0 + i, t * tile + u] = _activate(acc[i, u], act)

    return kernel


@cached
def tiled_ell_linear(
    batch: int,
    k: int,
    tiles: int,
    rows: int,
    slots: int,
    unroll: int,
    shared: bool,
    act: str | None,
    parallel: bool = True,
    index_dtype: str = "int32",
) -> tirx.PrimFunc:
    """Sparse Y = act(X · Wᵀ + b) from the tiled-ELL packing (see formats.TiledEll).

    One task per tile of `rows` output rows; per slot, a vector of `rows` weights times x gathered by each
    lane's column (or broadcast when the tile's rows share columns), `unroll` independent accumulators.
    Output row `order[p]` receives packed row p.
    """
    npad = tiles * rows
    u_ = unroll
    col_shape = (slots,) if shared else (slots, rows)

    loop, jobs, per = task_jobs(tiles, parallel)

    @T.prim_func
    def kernel(
        X: T.Buffer((batch, k), "float32"),
        data: T.Buffer((slots, rows), "float32"),
        cols: T.Buffer(col_shape, index_dtype),
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
                        acc = T.alloc_local((u_, rows), "float32")
                        for j in T.unroll(u_):
                            for r in T.vectorized(rows):
                                acc[j, r] = T.float32(0)
                        j0 = ptr[t]
                        for i in range((ptr[t + 1] - j0) // u_):
                            for j in T.unroll(u_):
                                for r in T.vectorized(rows):
                                    if shared:
                                        acc[j, r] = (
                                            acc[j, r]
                                            + data[j0 + i * u_ + j, r]
                                            * X[b, T.Cast("int32", cols[j0 + i * u_ + j])]
                                        )
                                    else:
                                        acc[j, r] = (
                                            acc[j, r]
                                            + data[j0 + i * u_ + j, r]
                                            * X[b, T.Cast("int32", cols[j0 + i * u_ + j, r])]
                                        )
                        for j in T.unroll(u_ - 1):
                            for r in T.vectorized(rows):
                                acc[0, r] = acc[0, r] + acc[j + 1, r]
                        for r in T.vectorized(rows):
                            acc[0, r] = _activate(acc[0, r] + bias[t * rows + r], act)
                        for r in T.unroll(rows):  # scatter through the packing's row order
                            Y[b, order[t * rows + r]] = acc[0, r]

    return kernel


@cached
def wide_dense(
    batch: int,
    k: int,
    m: int,
    n: int,
    rows: int,
    lanes: int,
    alen: int,
    act: str | None,
    parallel: bool = True,
) -> tirx.PrimFunc:
    """C[b, n, m] = act(Σ_k Wp[n // R, k, n % R] · A[b, koff[k] + m] + bias[n]): the operand is wide (pixels,
    tokens), so the kernel vectorizes over m and broadcasts R weights per k (XNNPACK-style GEMM).

    A is flat per image (`alen` floats); operand row k starts at koff[k] — k · M for an im2col'd or 1×1
    operand, or the tap's offset in a padded image for a direct convolution. With m < lanes every row must
    hold a whole `lanes`-wide chunk (zeros or don't-cares); C is written exactly, so no slice follows.
    The reduction is unrolled by 4, with a tail loop for K mod 4 (ResNet's 7×7 stem, K = 147, ran 1.4×
    slower not unrolled).
    """
    tiles = -(-n // rows)
    mt = -(-m // lanes)
    ku = 4

    loop, jobs, per = task_jobs(batch * tiles * mt, parallel)

    @T.prim_func
    def kernel(
        A: T.Buffer((batch, alen), "float32"),
        W: T.Buffer((tiles, k, rows), "float32"),
        koff: T.Buffer((k,), "int32"),
        bias: T.Buffer((tiles * rows,), "float32"),
        C: T.Buffer((batch, n, m), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * tiles * mt:
                    b = task // (tiles * mt)
                    t = (task // mt) % tiles
                    m0 = _chunk_start(task % mt, lanes, m)
                    acc = T.alloc_local((rows, lanes), "float32")
                    _init_tile(acc, bias, t, rows, lanes)
                    for ko in range(k // ku):
                        for ki in T.unroll(ku):
                            for r in T.unroll(rows):
                                for v in T.vectorized(lanes):
                                    acc[r, v] = (
                                        acc[r, v] + W[t, ko * ku + ki, r] * A[b, koff[ko * ku + ki] + m0 + v]
                                    )
                    for ki in T.unroll(k % ku):
                        for r in T.unroll(rows):
                            for v in T.vectorized(lanes):
                                acc[r, v] = (
                                    acc[r, v]
                                    + W[t, k // ku * ku + ki, r] * A[b, koff[k // ku * ku + ki] + m0 + v]
                                )
                    _store_tile(C, acc, b, t, m0, n, m, rows, lanes, act)

    return kernel


@cached
def wide_sparse(
    batch: int,
    m: int,
    n: int,
    rows: int,
    lanes: int,
    alen: int,
    act: str | None,
    parallel: bool = True,
    index_dtype: str = "int32",
    shared: bool = False,
) -> tirx.PrimFunc:
    """Sparse C = act(W · A + bias) with W in tiled-ELL (rows per tile `rows`, per-lane columns): per stored
    weight, one broadcast times a contiguous vector of A — unstructured sparsity at full vector speed.
    With `shared` columns (r×1 blocks) a slot's operand vector is loaded once for all the tile's rows
    (1.5× faster on ResNet-20's shapes). A is flat as in `wide_dense`, and each stored weight's column is
    already its operand row's offset; packed row p is output row `order[p]`. The slot count is a runtime
    size: layers of one shape class share the kernel's code whatever their densities (ResNet-20 at 90%:
    52 → 42 kernels, 280 → 217 KiB of code)."""
    tiles = -(-n // rows)
    mt = -(-m // lanes)

    loop, jobs, per = task_jobs(batch * tiles * mt, parallel)

    @T.prim_func
    def kernel(
        A: T.Buffer((batch, alen), "float32"),
        data_handle: T.handle,
        cols_handle: T.handle,
        ptr: T.Buffer((tiles + 1,), "int32"),
        bias: T.Buffer((tiles * rows,), "float32"),
        order: T.Buffer((tiles * rows,), "int32"),
        C: T.Buffer((batch, n, m), "float32"),
    ):
        T.func_attr(SCHEDULED)
        slots = T.int32()
        data = T.match_buffer(data_handle, (slots, rows), "float32")
        cols = T.match_buffer(cols_handle, (slots,) if shared else (slots, rows), index_dtype)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * tiles * mt:
                    b = task // (tiles * mt)
                    t = (task // mt) % tiles
                    m0 = _chunk_start(task % mt, lanes, m)
                    acc = T.alloc_local((rows, lanes), "float32")
                    _init_tile(acc, bias, t, rows, lanes)
                    if shared:
                        operand = T.alloc_local((lanes,), "float32")
                        for s in range(ptr[t], ptr[t + 1]):
                            for v in T.vectorized(lanes):
                                operand[v] = A[b, T.Cast("int32", cols[s]) + m0 + v]
                            for r in T.unroll(rows):
                                for v in T.vectorized(lanes):
                                    acc[r, v] = acc[r, v] + data[s, r] * operand[v]
                    else:
                        for s in range(ptr[t], ptr[t + 1]):
                            for r in T.unroll(rows):
                                for v in T.vectorized(lanes):
                                    acc[r, v] = (
                                        acc[r, v] + data[s, r] * A[b, T.Cast("int32", cols[s, r]) + m0 + v]
                                    )
                    for r in T.unroll(rows):
                        _store_row(C, acc, b, r, order[t * rows + r], m0, n, m, lanes, act)

    return kernel


def _chunk_start(chunk, lanes: int, m: int):
    """First column of a chunk. With m ≥ lanes the last chunk is pulled back to end at m (it recomputes some
    columns of the one before, identically), so no chunk reads or writes past column m: the operand needs no
    padding after its last row and every store is a full vector."""
    return T.min(chunk * lanes, m - lanes) if m >= lanes else chunk * lanes


def k_unroll(k: int) -> int:
    """Unroll factor of the reduction loop: 4, 2 or 1, whichever divides k (measured 10–40% on wide GEMMs)."""
    return next(u for u in (4, 2, 1) if k % u == 0)


@T.macro
def _init_tile(acc, bias, t, rows, lanes):
    """Start an accumulator tile at the bias of its rows."""
    for r in T.unroll(rows):
        for v in T.vectorized(lanes):
            acc[r, v] = bias[t * rows + r]


@T.macro
def _store_row(C, acc, b, r, row, m0, n, m, lanes, act):
    """Write accumulator row r to output row `row` (skipped if ≥ n): full vectors inside C, a scalar loop on
    the last, partial column tile."""
    if row < n:
        if m0 + lanes <= m:
            for v in T.vectorized(lanes):
                C[b, row, m0 + v] = _activate(acc[r, v], act)
        else:
            for v in range(lanes):
                if m0 + v < m:
                    C[b, row, m0 + v] = _activate(acc[r, v], act)


@T.macro
def _store_tile(C, acc, b, t, m0, n, m, rows, lanes, act):
    """Write an accumulator tile whose rows are output rows t·rows + r."""
    for r in T.unroll(rows):
        _store_row(C, acc, b, r, t * rows + r, m0, n, m, lanes, act)


@cached
def batched_matmul(
    batch: int,
    m: int,
    k: int,
    n: int,
    rows: int,
    lanes: int,
    parallel: bool = True,
    scale: float = 1.0,
    a_transposed: bool = False,
) -> tirx.PrimFunc:
    """C[b] = scale · A[b] · B[b] for activations (attention scores and values): vectorized over n (rows of B
    are contiguous), `rows` rows of A broadcast per k. n must be at least `lanes`; a width that is not a
    multiple (ViT's 197 tokens) ends in a chunk pulled back to end at n (`_chunk_start`), so neither B nor C
    is padded. A partial last row tile reads a clamped row and does not store it. `scale` (SDPA's
    1/√d) multiplies the accumulator once before the store. With `a_transposed` A is given as Aᵀ[b, k, m]
    (a channel-major activation read in place): its elements are broadcast one at a time either way."""
    assert n >= lanes, "batched_matmul needs at least one full vector of output columns"
    tiles = -(-m // rows)
    nt = -(-n // lanes)
    ku = k_unroll(k)

    loop, jobs, per = task_jobs(batch * tiles * nt, parallel)

    @T.prim_func
    def kernel(
        A: T.Buffer((batch, k, m) if a_transposed else (batch, m, k), "float32"),
        B: T.Buffer((batch, k, n), "float32"),
        C: T.Buffer((batch, m, n), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < batch * tiles * nt:
                    b = task // (tiles * nt)
                    t = (task // nt) % tiles
                    j0 = _chunk_start(task % nt, lanes, n)
                    acc = T.alloc_local((rows, lanes), "float32")
                    for r in T.unroll(rows):
                        for v in T.vectorized(lanes):
                            acc[r, v] = T.float32(0)
                    for ko in range(k // ku):
                        for ki in T.unroll(ku):
                            for r in T.unroll(rows):
                                for v in T.vectorized(lanes):
                                    acc[r, v] = (
                                        acc[r, v]
                                        + _element(
                                            A, b, T.min(t * rows + r, m - 1), ko * ku + ki, a_transposed
                                        )
                                        * B[b, ko * ku + ki, j0 + v]
                                    )
                    for r in T.unroll(rows):
                        if t * rows + r < m:
                            for v in T.vectorized(lanes):
                                C[b, t * rows + r, j0 + v] = _scaled(acc[r, v], scale)

    return kernel


def _element(A, b, row, col, transposed: bool):
    """A[b, row, col] of A stored as given or as Aᵀ."""
    return A[b, col, row] if transposed else A[b, row, col]


def _scaled(value, scale: float):
    """`value` times `scale` (nothing at 1)."""
    return value if scale == 1.0 else value * T.float32(scale)
