"""int8 weight formats for convolutions (kernels/int8_conv.py), over the packed-tap operand Q[b, word, pixel].

Both quantize the layer's OIHW weight, flattened to [n, K], with its recorded per-unit scales (the rounding
the simulated module uses) and carry per output channel the zero-point correction, the dequantization
factor and the bias (`formats/int8.py` units).

- `int8.wide.dense`: W[tile, word, ROWS], every word of every channel;
- `int8.wide.blocks.1x4`: per channel its nonzero words (1×4 blocks over K) as CSR with int16 word indices
  (int32 past 32,767 words); an unstructured mask keeps a word wherever one of its 4 weights survives (at
  90% sparsity about 1 − 0.9⁴ = 34% of them).

Prices are ns per word and output pixel (per channel for dense, per stored word for sparse), per dot kind.
`pmaddwd` was measured on an AVX2 Zen 3 core with one thread (ResNet-20-shaped 3×3 convs, 32×32 and 16×16
pixels); `vnni` on a Zen 4 core (AVX512-VNNI), one thread, the same convs. A target tunes them with `KernelCosts.format_costs`.
"""

from __future__ import annotations

import numpy as np

from ..kernels import int8_conv as kernels
from . import Format, Operand, Option, Work, register
from .int8 import as_words, codes, units

DENSE_NS = {"vnni": 0.019, "pmaddwd": 0.05, "widen": 0.12}  # per word × channel × pixel
SPARSE_NS = {"vnni": 0.027, "pmaddwd": 0.07, "widen": 0.14}  # per stored word × pixel
DENSE_VECTORS = 2  # pixel vectors per register tile (× ROWS channels)
SPARSE_VECTORS = 4


def kwords(k: int) -> int:
    return -(-k // 4)


def _px(dot: str, vectors: int) -> int:
    return kernels.DOT_LANES[dot] * vectors


def pitch(m: int, dot: str) -> int:
    """Operand words per (image, word) row: room for both kernels' pixel tiles."""
    return kernels.pixel_pitch(m, max(_px(dot, DENSE_VECTORS), _px(dot, SPARSE_VECTORS)))


# ---- dense -----------------------------------------------------------------------------------------------


def channel_tiles(q: np.ndarray) -> np.ndarray:
    """Codes [n, 4 · W] as the dense kernels' weight words [tile, W, ROWS] (channels padded to ROWS)."""
    rows = kernels.ROWS
    n = q.shape[0]
    npad = -(-n // rows) * rows
    full = np.zeros((npad, q.shape[1]), np.int8)
    full[:n] = q
    words = as_words(full)  # [npad, W]
    return np.ascontiguousarray(words.reshape(npad // rows, rows, -1).transpose(0, 2, 1))


def _dense_pack(work: Work, option: Option):
    q = codes(work)  # [n, 4 · kwords]
    npad = -(-work.n // kernels.ROWS) * kernels.ROWS
    return channel_tiles(q), units(work, q, np.arange(npad))


def _dense_kernel(work: Work, option: Option, packed, parallel: bool):
    weights, unit = packed
    func = kernels.int8_conv_dense(
        work.batch, kwords(work.k), work.alen, work.m, work.n, DENSE_VECTORS, work.act, work.dot, parallel
    )
    return func, (weights, unit.offset, unit.scale, unit.bias)


def _dense_options(work: Work) -> list[Option]:
    ns = work.costs.format_cost(INT8_WIDE_DENSE.name, DENSE_NS)[work.dot]
    lanes = 4 * kwords(work.k) * -(-work.n // kernels.ROWS) * kernels.ROWS
    us = work.batch * work.m * (lanes // 4) * ns / 1e3
    return [Option(INT8_WIDE_DENSE, kernels.ROWS, 4, ns, lanes, us)]


INT8_WIDE_DENSE = register(
    Format(
        name="int8.wide.dense",
        operand=Operand.WIDE,
        sparse=False,
        rank=0,
        options=_dense_options,
        stored_lanes=lambda w, rows, _c, _costs: 4 * kwords(w.shape[1]) * -(-w.shape[0] // rows) * rows,
        pack=_dense_pack,
        kernel=_dense_kernel,
        label=lambda o: f"int8 conv GEMM {o.rows} channels × pixel vectors",
        precision="int8",
    )
)


# ---- 1×4 blocks ------------------------------------------------------------------------------------------


def stored_words(weight: np.ndarray) -> int:
    """Nonzero 4-input words of a [n, K] weight (K padded to whole words)."""
    n, k = weight.shape
    full = np.zeros((n, 4 * kwords(k)), bool)
    full[:, :k] = weight != 0
    return max(int(full.reshape(n, -1, 4).any(axis=2).sum()), 1)


def nonzero_words(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(data, word index, ptr): each channel's words of codes [n, 4 · W] that hold a nonzero code, in K order
    (an all-zero layer keeps one unread slot)."""
    words = as_words(q)  # [n, W]
    keep = q.reshape(q.shape[0], -1, 4).any(axis=2)
    ptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int32)
    rows, cols = np.nonzero(keep)  # row-major: each channel's words in K order
    data = words[rows, cols].astype(np.int32)
    if data.size == 0:
        data, cols = np.zeros(1, np.int32), np.zeros(1, np.int64)
    return data, cols, ptr


def _blocks_pack(work: Work, option: Option):
    q = codes(work)
    data, cols, ptr = nonzero_words(q)
    return data, cols.astype(index_dtype(work.k)), ptr, units(work, q, np.arange(work.n))


def index_dtype(k: int) -> str:
    """Word indices in int16 where they fit (K < 131,072), halving the index bytes; int32 beyond."""
    return "int16" if kwords(k) <= np.iinfo(np.int16).max else "int32"


def _blocks_kernel(work: Work, option: Option, packed, parallel: bool):
    data, cols, ptr, unit = packed
    func = kernels.int8_conv_sparse(
        work.batch,
        kwords(work.k),
        work.alen,
        work.m,
        work.n,
        SPARSE_VECTORS,
        work.act,
        work.dot,
        parallel,
        index_dtype(work.k),
    )
    return func, (data, cols, ptr, unit.offset, unit.scale, unit.bias)


def _blocks_options(work: Work) -> list[Option]:
    ns = work.costs.format_cost(INT8_WIDE_BLOCKS.name, SPARSE_NS)[work.dot]
    words = stored_words(work.weight.reshape(work.n, -1))
    us = work.batch * work.m * words * ns / 1e3
    return [Option(INT8_WIDE_BLOCKS, 1, 4, ns, 4 * words, us)]


INT8_WIDE_BLOCKS = register(
    Format(
        name="int8.wide.blocks.1x4",
        operand=Operand.WIDE,
        sparse=True,
        rank=0,
        options=_blocks_options,
        stored_lanes=lambda w, _rows, _width, _costs: 4 * stored_words(w),
        pack=_blocks_pack,
        kernel=_blocks_kernel,
        label=lambda o: "int8 conv 1×4 blocks, each broadcast over pixel vectors",
        precision="int8",
    )
)
