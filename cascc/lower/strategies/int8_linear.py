"""int8 linear layers on the CPU: quantize the activation once (kernels/int8.py `quantize_rows`), then the
cheaper of the dense and the 1×4-block int8 kernels (formats/int8.py), priced like the fp32 narrow ones.

The kernel's label names the dot product it runs: `vpdpbusd` where the target CPU has AVX512-VNNI, else
AVX2's `vpmaddwd` or the widening path, with the reason, so a CPU without the instruction says so in the
compile table.
"""

from __future__ import annotations

import numpy as np
from tvm import relax

from .. import cost
from ..context import Candidate, symbol
from ..formats import Operand, Work, cheapest, of, priced
from ..kernels.int8 import quantize_rows
from . import LinearLayer

DOT_LABELS = {
    "vnni": "VNNI vpdpbusd",
    "pmaddwd": "AVX2 vpmaddwd: the CPU has no AVX512-VNNI",
    "widen": "widening multiply: the CPU has neither AVX512-VNNI nor AVX2",
}


def unit_scale(raw: np.ndarray, folded: np.ndarray) -> np.ndarray | None:
    """Per-unit factor a folded BatchNorm multiplied the weight by (None when nothing was folded): read at
    each row's largest raw weight; a unit with no weight left keeps 1."""
    if folded is raw or np.array_equal(folded, raw):
        return None
    peak = np.argmax(np.abs(raw), axis=1)
    rows = np.arange(raw.shape[0])
    base = raw[rows, peak].astype(np.float64)
    return np.where(base != 0, folded[rows, peak] / np.where(base != 0, base, 1), 1.0)


def lower_int8(ctx, layer: LinearLayer) -> relax.Expr:
    """The int8 replacement of one linear layer (see the module docstring)."""
    spec, ep = layer.quant, layer.ep
    batch, k, n = layer.rows, layer.k, layer.n
    work = Work(
        ctx.costs,
        batch,
        k,
        n,
        layer.weight,
        ep.bias,
        ep.act,
        quant=spec,
        unit_scale=unit_scale(layer.weight, ep.weight),
        dot=ctx.dot,
    )
    (dense_option,) = of(Operand.NARROW, sparse=False, precision="int8")[0].options(work)
    best = cheapest(priced(work, Operand.NARROW, "int8"), lambda o: o.us)
    choice = cost.choose(ctx.costs, dense_option.us, best.us, ep.density, best.label)
    kwords = -(-k // 4)

    def build(option, us: float) -> Candidate:
        fmt = option.format
        func, consts = fmt.kernel(work, option, fmt.pack(work, option), ctx.parallel(us))
        label = f"{'sparse' if fmt.sparse else 'dense'} {option.label}, {DOT_LABELS[ctx.dot]}"
        width = len(consts[-1])
        return Candidate(label, func, consts, (batch, kwords), (batch, width), "int32", "int8")

    chosen = ctx.choose(
        layer.name, ep, choice, lambda: build(best, best.us), lambda: build(dense_option, dense_option.us)
    )
    quantize = ctx.add_kernel(quantize_rows(batch, k, kwords), f"{symbol(layer.name)}_quantize")
    params = np.array([spec.inverse_scale(), spec.input_zero], np.float32)
    codes = relax.call_tir(
        quantize, [layer.x, relax.const(params)], relax.TensorType((batch, kwords), "int32")
    )
    call = ctx.call(chosen, layer.name, choice.sparse, codes)
    width = chosen.out_shape[1]
    return call if width == n else relax.op.strided_slice(call, axes=[1], begin=[0], end=[n])
