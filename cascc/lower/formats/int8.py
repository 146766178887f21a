"""int8 weight formats for narrow layers (kernels/int8.py): dense words and 1×4 blocks over K.

Both quantize the layer's own weight with its recorded per-unit scales (`ir.quant.quantize_weight`, the
rounding the simulated module uses), pad K to whole 4-input words, and carry per output unit the
zero-point correction (−zero · Σ codes), the dequantization factor (scale_x · scale_w · a folded
BatchNorm's factor) and the bias.

- `int8.dense`: W[tile, word, unit], 16 · V units per tile.
- `int8.bsr.1x4`: the 1×4 blocks of `bsr.1xC` (`pack_block_rows`, 16-row tiles, rows balanced), each block
  one int32 word of 4 codes and its column a word index; slots padded to the unroll with zero blocks.

Prices (ns, per MAC for dense, per stored block and row of x for sparse) are per dot-product kind, as
measured on an AVX-512 VNNI Xeon with one thread: 1024×1024 at batch 1 ran 14.6 µs dense, and a gathered
block slot about 6 ns (vpgatherdd dominates). A target tunes them with `KernelCosts.format_costs`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascc.ir.quant import quantize_weight

from .. import cost
from ..kernels.formats import padded
from ..kernels.int8 import LANES, int8_block_linear, int8_dense_linear
from . import Format, Operand, Option, Work, register
from .bsr import block_lanes, pack_block_rows

DENSE_NS_PER_MAC = {"vnni": 0.016, "pmaddwd": 0.05, "widen": 0.12}
BLOCK_NS_PER_SLOT = {"vnni": 6.0, "pmaddwd": 8.0, "widen": 14.0}
UNROLL = 2  # independent accumulators of the sparse kernel


@dataclass(frozen=True, eq=False)
class Int8Unit:
    """Per output unit, in packed order: the accumulator's start, the dequantization factor, the bias."""

    offset: np.ndarray  # int32
    scale: np.ndarray  # float32
    bias: np.ndarray  # float32


def kwords(k: int) -> int:
    return -(-k // 4)


def codes(work: Work) -> np.ndarray:
    """The layer's int8 codes [n, 4 · kwords] (zero columns pad K)."""
    q = quantize_weight(work.weight, work.quant.weight_scales)
    out = np.zeros((q.shape[0], 4 * kwords(work.k)), np.int8)
    out[:, : work.k] = q
    return out


def units(work: Work, q: np.ndarray, order: np.ndarray) -> Int8Unit:
    """The per-unit arrays for codes `q`, laid out by `order` (a position ≥ n is a padded unit: zeros)."""
    n = q.shape[0]
    spec = work.quant
    factor = np.float64(spec.input_scale) * np.asarray(spec.weight_scales, np.float64)
    if work.unit_scale is not None:
        factor = factor * work.unit_scale
    offset = -spec.input_zero * q.astype(np.int64).sum(axis=1)
    bias = np.zeros(n) if work.bias is None else work.bias
    real = order < n
    pick = np.where(real, order, 0)

    def laid(values, dtype):
        return np.where(real, np.asarray(values)[pick], 0).astype(dtype)

    return Int8Unit(laid(offset, np.int32), laid(factor, np.float32), laid(bias, np.float32))


def as_words(q: np.ndarray) -> np.ndarray:
    """int8 codes [..., 4 · W] as int32 words [..., W] (byte j of a word: code 4i + j, little-endian)."""
    return np.ascontiguousarray(q).view("<i4")


# ---- dense -----------------------------------------------------------------------------------------------


def _dense_vectors(n: int) -> int:
    return min(4, -(-n // LANES))


def _dense_pack(work: Work, option: Option):
    q = codes(work)
    tile = option.rows
    npad = padded(work.n, tile)
    full = np.zeros((npad, q.shape[1]), np.int8)
    full[: work.n] = q
    words = as_words(full)  # [npad, W]
    packed = np.ascontiguousarray(words.reshape(npad // tile, tile, -1).transpose(0, 2, 1))
    return packed, units(work, q, np.arange(npad))


def _dense_kernel(work: Work, option: Option, packed, parallel: bool):
    weights, unit = packed
    func = int8_dense_linear(
        work.batch,
        kwords(work.k),
        weights.shape[0],
        option.rows // LANES,
        cost.batch_tile(work.costs, work.batch),
        work.act,
        work.dot,
        parallel,
    )
    return func, (weights, unit.offset, unit.scale, unit.bias)


def _dense_options(work: Work) -> list[Option]:
    tile = LANES * _dense_vectors(work.n)
    ns = work.costs.format_cost(INT8_DENSE.name, DENSE_NS_PER_MAC)[work.dot]
    lanes = 4 * kwords(work.k) * padded(work.n, tile)
    return [Option(INT8_DENSE, tile, 4, ns, lanes, work.batch * lanes * ns / 1e3)]


INT8_DENSE = register(
    Format(
        name="int8.dense",
        operand=Operand.NARROW,
        sparse=False,
        rank=0,
        options=_dense_options,
        stored_lanes=lambda w, rows, _c, _costs: 4 * kwords(w.shape[1]) * padded(w.shape[0], rows),
        pack=_dense_pack,
        kernel=_dense_kernel,
        label=lambda o: f"int8 packed {o.rows}-wide",
        precision="int8",
    )
)


# ---- 1×4 blocks ------------------------------------------------------------------------------------------


def _blocks_pack(work: Work, option: Option):
    q = codes(work)
    blocks = pack_block_rows(q.astype(np.float32), None, LANES, 4)
    counts = np.diff(blocks.ptr)
    padded_counts = -(-counts // UNROLL) * UNROLL
    ptr = np.concatenate([[0], np.cumsum(padded_counts)]).astype(np.int32)
    slots = max(int(ptr[-1]), UNROLL)
    data = np.zeros((slots, LANES, 4), np.int8)
    cols = np.zeros((slots, LANES), np.int32)
    for t, count in enumerate(counts):
        src = slice(blocks.ptr[t], blocks.ptr[t] + count)
        data[ptr[t] : ptr[t] + count] = blocks.data[src].astype(np.int8)
        cols[ptr[t] : ptr[t] + count] = blocks.cols[src] // 4
    return as_words(data).reshape(slots, LANES), cols, ptr, blocks.order, units(work, q, blocks.order)


def _blocks_kernel(work: Work, option: Option, packed, parallel: bool):
    data, cols, ptr, order, unit = packed
    func = int8_block_linear(
        work.batch, kwords(work.k), len(ptr) - 1, len(data), UNROLL, work.act, work.dot, parallel
    )
    return func, (data, cols, ptr, unit.offset, unit.scale, unit.bias, order.astype(np.int32))


def _blocks_options(work: Work) -> list[Option]:
    ns = work.costs.format_cost(INT8_BLOCKS.name, BLOCK_NS_PER_SLOT)[work.dot]
    lanes = _block_lanes(work.weight)
    slots = lanes // (4 * LANES)
    return [Option(INT8_BLOCKS, LANES, 4, ns, lanes, work.batch * slots * ns / 1e3)]


def _block_lanes(weight: np.ndarray, *_args) -> int:
    """Stored codes (16 rows × 4 per slot, padding and the unroll included), without packing."""
    k = 4 * kwords(weight.shape[1])
    full = np.zeros((weight.shape[0], k), np.float32)
    full[:, : weight.shape[1]] = weight
    return padded(block_lanes(full, LANES, 4) // (4 * LANES), UNROLL) * 4 * LANES


INT8_BLOCKS = register(
    Format(
        name="int8.bsr.1x4",
        operand=Operand.NARROW,
        sparse=True,
        rank=0,
        options=_blocks_options,
        stored_lanes=lambda w, _rows, _width, _costs: _block_lanes(w),
        pack=_blocks_pack,
        kernel=_blocks_kernel,
        label=lambda o: "int8 BSR 1×4 (16-row tiles)",
        precision="int8",
    )
)
