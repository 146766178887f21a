"""cascc's linear kernels and weight packings against numpy, across shapes, batches and densities."""

import numpy as np
import pytest

from cascc.lower.formats.bsr import block_lanes, pack_block_rows
from cascc.lower.kernels.formats import ell_lanes, pack_dense, pack_tiled_ell

DENSITIES = [1.0, 0.5, 0.1, 0.02, 0.0]


def masked_weight(rng, n, k, density, block_rows=1, block_cols=1):
    w = rng.standard_normal((n, k)).astype(np.float32)
    keep = rng.random((-(-n // block_rows), -(-k // block_cols))) < density
    keep = np.repeat(np.repeat(keep, block_rows, axis=0), block_cols, axis=1)[:n, :k]
    return w * keep


def unpack_ell(p, k):
    """Rebuild the dense matrix from a tiled-ELL packing (the test's own reading of the format)."""
    tiles = len(p.ptr) - 1
    w = np.zeros((tiles * p.rows, k), np.float32)
    for t in range(tiles):
        for s in range(p.ptr[t], p.ptr[t + 1]):
            for r in range(p.rows):
                col = p.cols[s] if p.shared else p.cols[s, r]
                w[p.order[t * p.rows + r], col] += p.data[s, r]
    return w


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("n, k", [(37, 19), (64, 8), (16, 1)])
def test_tiled_ell_packing_round_trips(n, k, density):
    rng = np.random.default_rng(0)
    w = masked_weight(rng, n, k, density)
    p = pack_tiled_ell(w, None, rows=16, unroll=4)
    np.testing.assert_array_equal(unpack_ell(p, k)[:n], w)
    assert p.nnz == np.count_nonzero(w)
    assert all((p.ptr[1:] - p.ptr[:-1]) % 4 == 0)


def test_block_rows_are_packed_shared():
    rng = np.random.default_rng(1)
    w = masked_weight(rng, 64, 40, 0.2, block_rows=16)
    p = pack_tiled_ell(w, None, rows=16, unroll=4)
    assert p.shared and p.cols.ndim == 1
    np.testing.assert_array_equal(unpack_ell(p, 40), w)
    assert not pack_tiled_ell(masked_weight(rng, 64, 40, 0.2), None, 16, 4).shared


def unpack_blocks(p, k):
    """Rebuild the dense matrix from a 1×C block packing (the test's own reading of the format)."""
    w = np.zeros((len(p.order), k), np.float32)
    for t in range(len(p.ptr) - 1):
        for s in range(p.ptr[t], p.ptr[t + 1]):
            for r in range(p.rows):
                row = p.order[t * p.rows + r]
                w[row, p.cols[s, r] : p.cols[s, r] + p.width] += p.data[s, r]
    return w


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("n, k, width", [(37, 19, 8), (64, 8, 8), (9, 45, 4), (5, 4, 4)])
def test_block_packing_round_trips(n, k, width, density):
    rng = np.random.default_rng(0)
    w = masked_weight(rng, n, k, density)
    p = pack_block_rows(w, None, rows=4, width=width)
    np.testing.assert_array_equal(unpack_blocks(p, k)[:n], w)
    assert p.nnz == np.count_nonzero(w) and p.data.size == block_lanes(w, 4, width)
    assert p.cols.min(initial=0) >= 0 and p.cols.max(initial=0) + width <= k  # windows stay inside the row


def test_block_packing_stores_one_block_per_grid_block():
    rng = np.random.default_rng(4)
    w = masked_weight(rng, 32, 43, 0.2, block_cols=8)  # the last grid block is 3 wide: window pulled back
    p = pack_block_rows(w, None, rows=4, width=8)
    grid_blocks = (np.pad(w, ((0, 0), (0, 5))).reshape(32, 6, 8) != 0).any(axis=2).sum()
    stored = p.data.any(axis=2)  # the rest is padding
    assert stored.sum() == grid_blocks
    assert set(p.cols[stored]) <= {0, 8, 16, 24, 32, 35}  # grid starts, the last one pulled back to 43 - 8
    np.testing.assert_array_equal(unpack_blocks(p, 43), w)


@pytest.mark.parametrize("rows", [4, 8, 16])
def test_shared_packing_covers_partial_blocks(rows):
    """A tile whose rows differ in a few columns (a block cut short) still packs shared, storing zeros."""
    rng = np.random.default_rng(6)
    w = masked_weight(rng, 48, 30, 0.2, block_rows=rows)
    w[1, np.flatnonzero(w[1])[:2]] = 0  # row 1 loses two weights its block-mates keep
    p = pack_tiled_ell(w, None, rows=rows, unroll=4, shared=True)
    assert p.shared and p.data.size == ell_lanes(w, rows, 4, True)
    np.testing.assert_array_equal(unpack_ell(p, 30)[:48], w)
    assert not pack_tiled_ell(w, None, rows=rows, unroll=4).shared  # auto: no longer identical columns
    assert ell_lanes(w, rows, 4, False) == pack_tiled_ell(w, None, rows, 4, shared=False).data.size


def test_rows_sorted_by_length_cut_padding():
    rng = np.random.default_rng(2)
    n, k = 100, 64
    lengths = rng.integers(0, k, n)
    w = np.zeros((n, k), np.float32)
    for i, m in enumerate(lengths):
        w[i, rng.choice(k, m, replace=False)] = rng.standard_normal(m)
    p = pack_tiled_ell(w, None, rows=16, unroll=4)
    np.testing.assert_array_equal(np.sort(p.order), np.arange(112))
    np.testing.assert_array_equal(unpack_ell(p, k)[:n], w)
    # the packing is as short as tiles cut from the lengths sorted longest first can be
    runs = np.sort(np.concatenate([lengths, np.zeros(12, int)]))[::-1].reshape(7, 16)
    assert p.slots == sum(-(-run.max() // 4) * 4 for run in runs)
    # tiles are dealt long/short alternately: the first half of the tiles holds about half the slots
    half = p.ptr[len(p.ptr) // 2]
    assert abs(half - p.slots / 2) <= (p.ptr[1] - p.ptr[0])


def test_dense_packing_layout():
    w = np.arange(6 * 5, dtype=np.float32).reshape(6, 5)
    p = pack_dense(w, np.ones(6, np.float32), tile=4)
    assert p.weights.shape == (2, 5, 4)
    assert (
        p.weights[1, 2, 1] == w[5, 2] and p.weights[1, 2, 2] == 0
    )  # row 5 → tile 1 lane 1; lane 2 is padding
    np.testing.assert_array_equal(p.bias, [1, 1, 1, 1, 1, 1, 0, 0])


@pytest.fixture(scope="module")
def build():
    import tvm

    from cascc.lower.target import resolve
    from cascc.targets import TARGETS

    target = resolve(TARGETS["x86"])

    def run(func, *arrays, out):
        """Run the kernel twice into a NaN-filled output: an element it never writes stays NaN, and the
        second call must give the first call's result."""
        lib = tvm.compile(tvm.IRModule({"main": func}), target=target)
        args = [tvm.runtime.tensor(np.ascontiguousarray(a)) for a in arrays]
        y = tvm.runtime.tensor(np.full(out, np.nan, np.float32))
        lib["main"](*args, y)
        first = y.numpy()
        lib["main"](*args, y)
        np.testing.assert_array_equal(y.numpy(), first)
        return first

    return run


def activate(y, act):
    return {"relu": np.maximum(y, 0), "relu6": np.clip(y, 0, 6), None: y}[act]


def reference(x, w, b, act):
    return activate(x.astype(np.float64) @ w.T.astype(np.float64) + b, act)


def assert_close(got, want):
    scale = np.abs(want).max() + 1e-6
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("batch", [1, 7, 32])
def test_sparse_kernel_matches_numpy(build, batch, density):
    from cascc.lower.kernels.linear import tiled_ell_linear

    rng = np.random.default_rng(batch)
    n, k = 45, 70  # odd sizes: a padded last tile, K not a multiple of anything
    w, b = masked_weight(rng, n, k, density), rng.standard_normal(n).astype(np.float32)
    x = rng.standard_normal((batch, k)).astype(np.float32)
    p = pack_tiled_ell(w, b, rows=16, unroll=4)
    slots = max(p.slots, 4)
    data = np.zeros((slots, 16), np.float32)
    data[: p.slots] = p.data
    cols = np.zeros((slots, *p.cols.shape[1:]), np.int32)
    cols[: p.slots] = p.cols
    for act in (None, "relu", "relu6"):
        func = tiled_ell_linear(batch, k, len(p.ptr) - 1, 16, slots, 4, p.shared, act)
        y = build(func, x, data, cols, p.ptr, p.bias, p.order, out=(batch, p.bias.size))
        assert_close(y[:, :n], reference(x, w, b, act))


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("batch", [1, 7, 32])
@pytest.mark.parametrize("width, rows", [(8, 4), (4, 8)])
def test_block_kernel_matches_numpy(build, batch, density, width, rows):
    from cascc.lower.formats.bsr import block_rows_linear

    rng = np.random.default_rng(20 + batch)
    n, k = 45, 70  # a padded last tile; the last grid block is partial, its window pulled back
    w, b = masked_weight(rng, n, k, density, block_cols=width), rng.standard_normal(n).astype(np.float32)
    w[3] = 0  # an all-zero row
    x = rng.standard_normal((batch, k)).astype(np.float32)
    p = pack_block_rows(w, b, rows=rows, width=width)
    slots = max(p.slots, 1)
    data = np.zeros((slots, rows, width), np.float32)
    data[: p.slots] = p.data
    cols = np.zeros((slots, rows), np.int32)
    cols[: p.slots] = p.cols
    for act in (None, "relu", "relu6"):
        func = block_rows_linear(batch, k, len(p.ptr) - 1, rows, slots, width, act)
        y = build(func, x, data, cols, p.ptr, p.bias, p.order, out=(batch, p.bias.size))
        assert_close(y[:, :n], reference(x, w, b, act))


def test_block_kernel_on_unstructured_weight(build):
    """1×C blocks are exact on any mask: windows hold the unmasked weights and zeros."""
    from cascc.lower.formats.bsr import block_rows_linear

    rng = np.random.default_rng(8)
    w = masked_weight(rng, 30, 61, 0.15)
    x = rng.standard_normal((1, 61)).astype(np.float32)
    p = pack_block_rows(w, None, rows=4, width=8)
    y = build(
        block_rows_linear(1, 61, len(p.ptr) - 1, 4, p.slots, 8, None),
        x,
        p.data,
        p.cols,
        p.ptr,
        p.bias,
        p.order,
        out=(1, 32),
    )
    assert_close(y[:, :30], reference(x, w, 0.0, None))


@pytest.mark.parametrize("density", [1.0, 0.1, 0.0])
@pytest.mark.parametrize("batch", [1, 7, 32])
def test_dense_kernel_matches_numpy(build, batch, density):
    from cascc.lower.cost import batch_tile
    from cascc.lower.kernels.linear import dense_linear
    from cascc.targets import KernelCosts

    rng = np.random.default_rng(10 + batch)
    n, k = 77, 33
    w, b = masked_weight(rng, n, k, density), rng.standard_normal(n).astype(np.float32)
    x = rng.standard_normal((batch, k)).astype(np.float32)
    p = pack_dense(w, b, tile=64)
    bt = batch_tile(KernelCosts(), batch)
    for act in (None, "relu", "relu6"):
        y = build(
            dense_linear(batch, k, p.weights.shape[0], 64, bt, act),
            x,
            p.weights,
            p.bias,
            out=(batch, p.bias.size),
        )
        assert_close(y[:, :n], reference(x, w, b, act))


def test_broadcast_kernel_on_block_sparse_weight(build):
    from cascc.lower.kernels.linear import tiled_ell_linear

    rng = np.random.default_rng(3)
    w = masked_weight(rng, 48, 64, 0.1, block_rows=16)
    x = rng.standard_normal((2, 64)).astype(np.float32)
    p = pack_tiled_ell(w, None, rows=16, unroll=4)
    assert p.shared
    y = build(
        tiled_ell_linear(2, 64, 3, 16, p.slots, 4, True, None),
        x,
        p.data,
        p.cols,
        p.ptr,
        p.bias,
        p.order,
        out=(2, 48),
    )
    assert_close(y, reference(x, w, 0.0, None))


@pytest.mark.parametrize("index_dtype", ["int16", "int32"])
def test_sparse_kernels_accept_int16_indices(build, index_dtype):
    from cascc.lower.kernels.linear import tiled_ell_linear, wide_sparse

    rng = np.random.default_rng(5)
    w = masked_weight(rng, 20, 40, 0.3)
    x = rng.standard_normal((2, 40)).astype(np.float32)
    p = pack_tiled_ell(w, None, rows=16, unroll=4)
    y = build(
        tiled_ell_linear(2, 40, 2, 16, p.slots, 4, False, None, index_dtype=index_dtype),
        x,
        p.data,
        p.cols.astype(index_dtype),
        p.ptr,
        p.bias,
        p.order,
        out=(2, 32),
    )
    assert_close(y[:, :20], reference(x, w, 0.0, None))
    q = pack_tiled_ell(w, None, rows=8, unroll=1)
    a = np.zeros((1, 40, 32), np.float32)
    a[0, :, :2] = x.T
    c = build(
        wide_sparse(1, 2, 20, 8, 32, 40 * 32, None, index_dtype=index_dtype),
        a.reshape(1, -1),
        q.data,
        (q.cols * 32).astype(index_dtype),
        q.ptr,
        q.bias,
        q.order,
        out=(1, 20, 2),
    )
    assert_close(c[0].T, reference(x, w, 0.0, None))


@pytest.mark.parametrize("k", [3, 6, 8, 9, 147])  # unrolled by 4 with a tail of K mod 4 (147: a 7×7×3 stem)
@pytest.mark.parametrize("density", [1.0, 0.1])
@pytest.mark.parametrize("m", [40, 544])  # 544: 68 tasks in 16 parallel jobs of 5, the last job partly empty
def test_wide_kernels_match_numpy(build, k, density, m):
    from cascc.lower.kernels.linear import wide_dense, wide_sparse

    rng = np.random.default_rng(k)
    n, mpad = 13, -(-m // 64) * 64
    w, b = masked_weight(rng, n, k, density), rng.standard_normal(n).astype(np.float32)
    a = np.zeros((2, k, mpad), np.float32)
    a[:, :, :m] = rng.standard_normal((2, k, m))
    want = np.maximum(np.einsum("nk,bkm->bnm", w, a[:, :, :m]) + b[None, :, None], 0)
    p = pack_dense(w, b, tile=8)
    flat, koff = a.reshape(2, -1), np.arange(k, dtype=np.int32) * mpad
    got = build(wide_dense(2, k, m, n, 8, 32, k * mpad, "relu"), flat, p.weights, koff, p.bias, out=(2, n, m))
    assert_close(got, want)
    q = pack_tiled_ell(w, b, rows=8, unroll=1)
    if q.slots:
        got = build(
            wide_sparse(2, m, n, 8, 32, k * mpad, "relu"),
            flat,
            q.data,
            koff[q.cols if not q.shared else np.repeat(q.cols[:, None], 8, 1)],
            q.ptr,
            q.bias,
            q.order,
            out=(2, n, m),
        )
        assert_close(got, want)


@pytest.mark.parametrize("density", [1.0, 0.3, 0.0])
def test_wide_shared_column_kernel_matches_numpy(build, density):
    """r×1 blocks (one cut short) through the wide kernel that loads a slot's operand vector once."""
    from cascc.lower.kernels.linear import wide_sparse

    rng = np.random.default_rng(30)
    n, k, m, mpad = 20, 27, 45, 64  # a padded last tile, a pulled-back last chunk
    w, b = masked_weight(rng, n, k, density, block_rows=8), rng.standard_normal(n).astype(np.float32)
    w[9, np.flatnonzero(w[9])[:1]] = 0
    a = np.zeros((2, k, mpad), np.float32)
    a[:, :, :m] = rng.standard_normal((2, k, m))
    want = np.einsum("nk,bkm->bnm", w, a[:, :, :m]) + b[None, :, None]
    q = pack_tiled_ell(w, b, rows=8, unroll=1, shared=True)
    data = np.zeros((max(q.slots, 1), 8), np.float32)
    data[: q.slots] = q.data
    cols = np.zeros(max(q.slots, 1), np.int32)
    cols[: q.slots] = q.cols * mpad
    got = build(
        wide_sparse(2, m, n, 8, 32, k * mpad, None, shared=True),
        a.reshape(2, -1),
        data,
        cols,
        q.ptr,
        q.bias,
        q.order,
        out=(2, n, m),
    )
    assert_close(got, want)
