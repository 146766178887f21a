"""int8 weight formats for direct stride-1 convolutions (kernels/int8_planes.py), over the channel-interleaved
code planes read in place.

The layer's OIHW weight (`Work.weight`, 4-D here) is quantized with its recorded per-unit scales (the
rounding the simulated module uses), its channels padded to whole groups of 4, and reordered so that a word
is the 4 codes of one channel group at one tap: K order (group, tap row, tap column, channel in group). The
per-unit arrays are those of `formats/int8.py` (zero-point correction, dequantization factor, bias).

- `int8.planes.dense`: W[tile, word, ROWS], every word of every channel, with the words' plane offsets;
- `int8.planes.blocks.1x4`: per channel its nonzero words as CSR, each stored with its plane offset (an
  unstructured mask keeps a word wherever one of its 4 channels' weights at that tap survives).

Prices are ns per word and computed output pixel (per channel for dense, per stored word for sparse), per
dot kind, like `formats/int8_conv.py`'s; a row's last vector computes whole, so the computed pixels are
OH · ⌈OW / lanes⌉ · lanes. Against the packed-tap GEMMs on ResNet-20's 3×3 convs (32×32, 16×16, 8×8, one
thread, a Zen 4 core): `vnni` measured 0.018 dense and 0.033 sparse (the taps GEMMs 0.019 and 0.027: the
sparse kernel's unaligned vector loads cross cache lines); the same code built for AVX2 ran `pmaddwd` 1.0×
dense and 1.13× sparse and `widen` 1.0× both the taps GEMMs' time, which scale `int8_conv`'s figures.
What the direct path saves is the tap packing, which the strategy prices as a copy
(`strategies/int8_conv.py`). A target tunes them with `KernelCosts.format_costs`.
"""

from __future__ import annotations

import numpy as np

from cascc.ir.quant import quantize_weight

from ..kernels import int8_planes as kernels
from ..kernels.int8 import DOT_LANES
from ..kernels.int8_conv import ROWS
from . import Format, Operand, Option, Work, register
from .int8 import units
from .int8_conv import channel_tiles, nonzero_words

DENSE_NS = {"vnni": 0.018, "pmaddwd": 0.05, "widen": 0.12}  # per word × channel × computed pixel
SPARSE_NS = {"vnni": 0.033, "pmaddwd": 0.08, "widen": 0.14}  # per stored word × computed pixel
DENSE_VECTORS = 2  # most pixel vectors per register tile (× ROWS channels); 4 measured slower
SPARSE_VECTORS = 8  # 8 vectors (rows × row vectors) per stored word: 10-20% faster than 4, 16 no better


def grouped(weight: np.ndarray) -> np.ndarray:
    """A [n, C, kh, kw] array as [n, groups · kh · kw, 4]: channels padded to groups of 4 with zeros, each
    row of the last axis one word's 4 channels at one tap."""
    n, c, kh, kw = weight.shape
    groups = -(-c // 4)
    full = np.zeros((n, groups * 4, kh, kw), weight.dtype)
    full[:, :c] = weight
    return full.reshape(n, groups, 4, kh, kw).transpose(0, 1, 3, 4, 2).reshape(n, groups * kh * kw, 4)


def codes(work: Work) -> np.ndarray:
    """The layer's int8 codes [n, 4 · words] in planes K order."""
    q = quantize_weight(work.weight, work.quant.weight_scales)
    return np.ascontiguousarray(grouped(q).reshape(work.n, -1))


def stored_words(weight: np.ndarray) -> int:
    """Nonzero words of an OIHW weight in planes order (at least 1)."""
    return max(int(grouped(weight != 0).any(axis=2).sum()), 1)


def computed_pixels(work: Work) -> int:
    geom = work.plane
    lanes = DOT_LANES[work.dot]
    return geom.out_h * geom.chunks(lanes) * lanes


def _tile(work: Work, most: int) -> tuple[int, int]:
    return kernels.tile_shape(work.plane, DOT_LANES[work.dot], most)


# ---- dense -----------------------------------------------------------------------------------------------


def _dense_pack(work: Work, option: Option):
    q = codes(work)
    return channel_tiles(q), units(work, q, np.arange(-(-work.n // ROWS) * ROWS))


def _dense_kernel(work: Work, option: Option, packed, parallel: bool):
    weights, unit = packed
    func = kernels.int8_planes_dense(
        work.batch, work.plane, work.n, _tile(work, DENSE_VECTORS), work.act, work.dot, parallel
    )
    return func, (work.plane.word_offsets(), weights, unit.offset, unit.scale, unit.bias)


def _dense_options(work: Work) -> list[Option]:
    ns = work.costs.format_cost(INT8_PLANES_DENSE.name, DENSE_NS)[work.dot]
    lanes = 4 * work.plane.kwords * -(-work.n // ROWS) * ROWS
    us = work.batch * computed_pixels(work) * (lanes // 4) * ns / 1e3
    return [Option(INT8_PLANES_DENSE, ROWS, 4, ns, lanes, us)]


INT8_PLANES_DENSE = register(
    Format(
        name="int8.planes.dense",
        operand=Operand.PLANES,
        sparse=False,
        rank=0,
        options=_dense_options,
        stored_lanes=lambda w, rows, _c, _costs: (
            grouped(w).size // w.shape[0] * -(-w.shape[0] // rows) * rows
        ),
        pack=_dense_pack,
        kernel=_dense_kernel,
        label=lambda o: f"int8 conv direct GEMM {o.rows} channels × row vectors",
        precision="int8",
    )
)


# ---- 1×4 blocks over channels ----------------------------------------------------------------------------


def _blocks_pack(work: Work, option: Option):
    q = codes(work)
    data, cols, ptr = nonzero_words(q)
    offsets = work.plane.word_offsets()[cols]  # each stored word's plane offset instead of its index
    return data, offsets.astype(np.int32), ptr, units(work, q, np.arange(work.n))


def _blocks_kernel(work: Work, option: Option, packed, parallel: bool):
    data, offsets, ptr, unit = packed
    func = kernels.int8_planes_sparse(
        work.batch, work.plane, work.n, _tile(work, SPARSE_VECTORS), work.act, work.dot, parallel
    )
    return func, (data, offsets, ptr, unit.offset, unit.scale, unit.bias)


def _blocks_options(work: Work) -> list[Option]:
    ns = work.costs.format_cost(INT8_PLANES_BLOCKS.name, SPARSE_NS)[work.dot]
    words = stored_words(work.weight)
    us = work.batch * computed_pixels(work) * words * ns / 1e3
    return [Option(INT8_PLANES_BLOCKS, 1, 4, ns, 4 * words, us)]


INT8_PLANES_BLOCKS = register(
    Format(
        name="int8.planes.blocks.1x4",
        operand=Operand.PLANES,
        sparse=True,
        rank=0,
        options=_blocks_options,
        stored_lanes=lambda w, _rows, _width, _costs: 4 * stored_words(w),
        pack=_blocks_pack,
        kernel=_blocks_kernel,
        label=lambda o: "int8 conv direct, 4-channel blocks each broadcast over row vectors",
        precision="int8",
    )
)
