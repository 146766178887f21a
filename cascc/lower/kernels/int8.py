"""int8 kernels for y = act(dequant(Σ u8(x) · s8(W)) + b): the activation quantizer and the narrow dense
and 1×4-block sparse GEMMs (`formats/int8.py` packs their weights).

Operands travel as int32 words of 4 bytes: an activation row is `kwords` words of 4 consecutive uint8
codes (byte j of word i is input 4i + j; the padding bytes hold the zero point), and each weight word holds
the 4 int8 codes one output unit applies to one activation word. That is the operand shape of x86's
`vpdpbusd` (AVX512-VNNI: 16 lanes, each the sum of 4 u8×s8 products added to an int32 accumulator), which
the kernels call where the CPU has it (`dot="vnni"`). On AVX2 without VNNI (`dot="pmaddwd"`) they split
each word into its even and odd bytes as int16 pairs and add two `vpmaddwd`s (16-bit products summed in
pairs into int32: exact, where `vpmaddubsw` would saturate), 8 lanes per instruction. Elsewhere they widen
each byte to int32 (`dot="widen"`). All three give the same integers.

Accumulators start at the unit's zero-point correction, −zero · Σ q_w, so the epilogue is one multiply by
scale_x · scale_w[n] plus the bias, then the fused activation, in float32.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from .cache import cached
from .linear import SCHEDULED, _activate
from .tasks import task_jobs

LANES = 16  # units per tile row of the packed weights: the int32 lanes of one 512-bit vector
DOT_LANES = {"vnni": 16, "pmaddwd": 8, "widen": 16}  # int32 lanes one dot-product step computes
DOTS = tuple(DOT_LANES)
# dots whose wide (conv) operand is packed pre-split: each word as two, its even and its odd bytes as int16
# pairs, so the kernel's inner loop does no shifting of the activation (kernels/int8_conv.py)
SPLIT_DOTS = frozenset({"pmaddwd"})


def _dot(acc, a, b, dot: str):
    """acc + Σ_j u8(a byte j) · s8(b byte j) per int32 lane, `DOT_LANES[dot]` lanes."""
    lanes = DOT_LANES[dot]
    if dot == "vnni":
        return T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id("llvm.x86.avx512.vpdpbusd.512"),
            acc,
            T.reinterpret(a, dtype="int8x64"),
            T.reinterpret(b, dtype="int8x64"),
            dtype="int32x16",
        )
    if dot == "pmaddwd":
        even_mask = T.broadcast(T.int32(0x00FF00FF), lanes)
        a_even = T.bitwise_and(a, even_mask)
        a_odd = T.bitwise_and(T.shift_right(a, T.broadcast(T.int32(8), lanes)), even_mask)
        return split_dot(acc, a_even, a_odd, b, lanes)
    total = acc
    for j in range(4):
        unsigned = T.bitwise_and(
            T.shift_right(a, T.broadcast(T.int32(8 * j), lanes)), T.broadcast(255, lanes)
        )
        signed = T.shift_right(
            T.shift_left(b, T.broadcast(T.int32(24 - 8 * j), lanes)), T.broadcast(T.int32(24), lanes)
        )
        total = total + unsigned * signed
    return total


def split_dot(acc, a_even, a_odd, b, lanes: int):
    """acc + Σ_j u8(a_j) · s8(b_j) per lane from an activation already split into its even bytes (0, 2)
    and odd bytes (1, 3) as int16 pairs (`pmaddwd` operands packed that way): two vpmaddwd, no shifts of a."""
    halves = 2 * lanes
    b16 = T.reinterpret(b, dtype=f"int16x{halves}")
    eight = T.broadcast(T.int16(8), halves)
    madd = T.llvm_lookup_intrinsic_id("llvm.x86.avx2.pmadd.wd")
    even = T.call_llvm_pure_intrin(
        madd,
        T.reinterpret(a_even, dtype=f"int16x{halves}"),
        T.shift_right(T.shift_left(b16, eight), eight),
        dtype=f"int32x{lanes}",
    )
    odd = T.call_llvm_pure_intrin(
        madd, T.reinterpret(a_odd, dtype=f"int16x{halves}"), T.shift_right(b16, eight), dtype=f"int32x{lanes}"
    )
    return acc + even + odd


ROUNDING_MAGIC = 12582912.0  # 1.5 · 2^23: a float32 in [2^23, 2^24) has no fraction bits
MAGIC_BITS = 0x4B400000  # its bit pattern: bits(MAGIC + r) = MAGIC_BITS + r for |r| < 2^22


def code_value(x, inv, zero):
    """The uint8 code clamp(round_half_even(x · inv) + zero, 0, 255) as int32 (the rounding of `ir.quant`).

    The product is clamped to a range just wider than the grid's and rounded by adding 1.5 · 2^23 (exact
    round-half-even in the default rounding mode), the integer read back from the sum's bits. TVM does not
    vectorize `T.nearbyint`, which left every quantizer loop scalar (a one-vector row became gathers and
    scatters, 3-6× slower); the integer read-back keeps LLVM's fast-math from folding the add away, and
    the clamp between product and add keeps it from contracting them into an FMA (which would round the
    exact product instead of its float32 value)."""
    t = T.max(T.min(x * inv, 256.0 - zero), -1.0 - zero)
    rounded = T.reinterpret(t + ROUNDING_MAGIC, dtype="int32") - MAGIC_BITS
    return T.max(T.min(rounded + T.Cast("int32", zero), 255), 0)


@cached
def quantize_rows(batch: int, k: int, kwords: int) -> tirx.PrimFunc:
    """Q[b, i] = the 4 uint8 codes clamp(round(X[b, 4i + j] · inv) + zero, 0, 255) as one int32 word;
    `params` = (inv, zero). Inputs past k (padding) take the zero point."""

    def code(X, params, b, i, j):
        inside = code_value(X[b, T.min(i * 4 + j, k - 1)], params[0], params[1])
        value = T.if_then_else(i * 4 + j < k, inside, T.Cast("int32", params[1]))
        return T.shift_left(value, j * 8)

    @T.prim_func
    def kernel(
        X: T.Buffer((batch, k), "float32"),
        params: T.Buffer((2,), "float32"),
        Q: T.Buffer((batch, kwords), "int32"),
    ):
        T.func_attr(SCHEDULED)
        for b in range(batch):
            for i in T.vectorized(kwords):
                Q[b, i] = (
                    code(X, params, b, i, 0)
                    | code(X, params, b, i, 1)
                    | code(X, params, b, i, 2)
                    | code(X, params, b, i, 3)
                )

    return kernel


@cached
def int8_dense_linear(
    batch: int,
    kwords: int,
    tiles: int,
    vectors: int,
    batch_tile: int,
    act: str | None,
    dot: str,
    parallel: bool = True,
) -> tirx.PrimFunc:
    """Y[b, n] = act((offset[n] + Σ_i dot(Q[b, i], W[n // T, i, n % T])) · scale[n] + bias[n]) with
    T = 16 · `vectors` units per tile: per activation word, one broadcast and `vectors` dot products per
    row of the batch tile (`vectors` · `batch_tile` independent accumulators)."""
    tile = LANES * vectors
    width = DOT_LANES[dot]
    chunks = tile // width
    bt = batch_tile
    assert batch % bt == 0
    loop, jobs, per = task_jobs(tiles * (batch // bt), parallel)

    @T.prim_func
    def kernel(
        Q: T.Buffer((batch, kwords), "int32"),
        W: T.Buffer((tiles, kwords, tile), "int32"),
        offset: T.Buffer((tiles * tile,), "int32"),
        scale: T.Buffer((tiles * tile,), "float32"),
        bias: T.Buffer((tiles * tile,), "float32"),
        Y: T.Buffer((batch, tiles * tile), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for job in loop(jobs):
            for step in range(per):
                task = job * per + step
                if task < tiles * (batch // bt):
                    t = task % tiles
                    b0 = (task // tiles) * bt
                    acc = T.alloc_local((bt, tile), "int32")
                    for r in T.unroll(bt):
                        for u in T.vectorized(tile):
                            acc[r, u] = offset[t * tile + u]
                    for i in range(kwords):
                        for r in T.unroll(bt):
                            for v in T.unroll(chunks):
                                acc[r, T.ramp(v * width, 1, width)] = _dot(
                                    acc[r, T.ramp(v * width, 1, width)],
                                    T.broadcast(Q[b0 + r, i], width),
                                    W[t, i, T.ramp(v * width, 1, width)],
                                    dot,
                                )
                    for r in T.unroll(bt):
                        for u in T.vectorized(tile):
                            Y[b0 + r, t * tile + u] = _activate(
                                T.Cast("float32", acc[r, u]) * scale[t * tile + u] + bias[t * tile + u], act
                            )

    return kernel


def _gather(Q, b, cols, dot: str):
    """The activation words Q[b, cols[lane]]: vpgatherdd (AVX-512 with VNNI, AVX2 with pmaddwd), lane by
    lane otherwise."""
    if dot == "vnni":
        return T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id("llvm.x86.avx512.gather.dpi.512"),
            T.broadcast(T.int32(0), LANES),
            T.address_of(Q[b, 0]),
            cols,
            T.int16(-1),
            T.int32(4),
            dtype="int32x16",
        )
    if dot == "pmaddwd":
        lanes = DOT_LANES[dot]
        return T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id("llvm.x86.avx2.gather.d.d.256"),
            T.broadcast(T.int32(0), lanes),
            T.address_of(Q[b, 0]),
            cols,
            T.broadcast(T.int32(-1), lanes),
            T.int8(4),
            dtype=f"int32x{lanes}",
        )
    return Q[b, cols]


@cached
def int8_block_linear(
    batch: int,
    kwords: int,
    tiles: int,
    slots: int,
    unroll: int,
    act: str | None,
    dot: str,
    parallel: bool = True,
) -> tirx.PrimFunc:
    """Sparse Y from 1×4 blocks (`formats/int8.py`): a tile's 16 rows advance one block each per slot; a
    block is one weight word against the activation word at its column, gathered per lane. Slots come in
    multiples of `unroll` (zero blocks pad them), each of the `unroll` slots into its own accumulator.
    Output row `order[p]` receives packed row p."""
    loop, jobs, per = task_jobs(tiles, parallel)
    npad = tiles * LANES
    u_ = unroll
    width = DOT_LANES[dot]
    chunks = LANES // width

    @T.prim_func
    def kernel(
        Q: T.Buffer((batch, kwords), "int32"),
        data: T.Buffer((slots, LANES), "int32"),
        cols: T.Buffer((slots, LANES), "int32"),
        ptr: T.Buffer((tiles + 1,), "int32"),
        offset: T.Buffer((npad,), "int32"),
        scale: T.Buffer((npad,), "float32"),
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
                        acc = T.alloc_local((u_ * LANES,), "int32")
                        out = T.alloc_local((LANES,), "float32")
                        for u in T.vectorized(u_ * LANES):
                            acc[u] = 0
                        for i in range((ptr[t + 1] - ptr[t]) // u_):
                            for j in T.unroll(u_):
                                for h in T.unroll(chunks):
                                    acc[T.ramp(j * LANES + h * width, 1, width)] = _dot(
                                        acc[T.ramp(j * LANES + h * width, 1, width)],
                                        _gather(
                                            Q, b, cols[ptr[t] + i * u_ + j, T.ramp(h * width, 1, width)], dot
                                        ),
                                        data[ptr[t] + i * u_ + j, T.ramp(h * width, 1, width)],
                                        dot,
                                    )
                        for j in T.unroll(u_ - 1):
                            for r in T.vectorized(LANES):
                                acc[r] = acc[r] + acc[(j + 1) * LANES + r]
                        for r in T.vectorized(LANES):
                            out[r] = _activate(
                                T.Cast("float32", acc[r] + offset[t * LANES + r]) * scale[t * LANES + r]
                                + bias[t * LANES + r],
                                act,
                            )
                        for r in T.unroll(LANES):  # scatter through the packing's row order
                            Y[b, order[t * LANES + r]] = out[r]

    return kernel
