"""int8 conv2d layers on the CPU (ungrouped; kernels/int8_conv.py): the input quantized once onto
zero-point-bordered planes, its taps packed 4 per word per output pixel, then the cheaper of the dense and
the 1×4-block int8 GEMMs (formats/int8_conv.py) over the pixels. The kernel's label names the dot product,
as for int8 linear layers."""

from __future__ import annotations

import numpy as np
from tvm import relax

from .. import cost
from ..context import Candidate, symbol
from ..formats import Operand, Work, cheapest, of, priced
from ..formats.int8_conv import kwords as word_count
from ..formats.int8_conv import pitch
from ..kernels import int8_conv as kernels
from . import ConvLayer
from .int8_linear import DOT_LABELS, unit_scale


def lower_int8_conv(ctx, layer: ConvLayer) -> relax.Expr:
    """The int8 replacement of one ungrouped conv layer (see the module docstring)."""
    spec, ep = layer.quant, layer.ep
    batch, channels = layer.shape[:2]
    (kh, kw), (oh, ow), n = layer.kernel, layer.out_hw, layer.out_c
    k, m = channels * kh * kw, oh * ow
    words = word_count(k)
    pitch_ = pitch(m, ctx.dot)
    raw = layer.weight.reshape(n, k)
    work = Work(
        ctx.costs,
        batch,
        k,
        n,
        raw,
        ep.bias,
        ep.act,
        m,
        pitch_,
        quant=spec,
        unit_scale=unit_scale(raw, ep.weight.reshape(n, k)),
        dot=ctx.dot,
    )
    (dense_option,) = of(Operand.WIDE, sparse=False, precision="int8")[0].options(work)
    best = cheapest(priced(work, Operand.WIDE, "int8"), lambda o: o.us)
    choice = cost.choose(ctx.costs, dense_option.us, best.us, ep.density, best.label)
    via = f" (conv {kh}×{kw}{f' stride {layer.stride[0]}' if layer.stride != (1, 1) else ''})"

    def build(option) -> Candidate:
        fmt = option.format
        func, consts = fmt.kernel(work, option, fmt.pack(work, option), ctx.parallel(option.us))
        label = f"{'sparse' if fmt.sparse else 'dense'} {option.label}{via}, {DOT_LABELS[ctx.dot]}"
        shape = (batch, words * kernels.operand_rows(ctx.dot), pitch_)
        return Candidate(label, func, consts, shape, (batch, n, m), "int32", "int8")

    chosen = ctx.choose(layer.name, ep, choice, lambda: build(best), lambda: build(dense_option))
    codes = _packed_taps(ctx, layer, words, pitch_, spec)
    out = ctx.call(chosen, layer.name, choice.sparse, codes)
    return relax.op.reshape(out, (batch, n, oh, ow))


def _packed_taps(ctx, layer: ConvLayer, words: int, pitch_: int, spec) -> relax.Expr:
    """Q[b, word, pixel]: the quantized planes, then the taps packed per output pixel."""
    batch, channels, height, width = layer.shape
    top, left = layer.pad[:2]
    hp, wp, slack, size = kernels.planes_layout(
        channels, height, width, layer.pad, layer.out_hw[1], layer.stride[1]
    )
    params = relax.const(np.array([spec.inverse_scale(), spec.input_zero], np.float32))
    name = symbol(layer.name)
    planes = ctx.add_kernel(
        kernels.quantize_planes(batch, channels, height, width, top, left, hp, wp, slack), f"{name}_quantize"
    )
    p = relax.call_tir(planes, [layer.x, params], relax.TensorType((batch, size), "int32"))
    copy_us = cost.copy_us(ctx.costs, batch * words * pitch_ * 4)
    pack = kernels.pack_taps(
        batch,
        size,
        channels,
        (hp, wp),
        layer.kernel,
        layer.stride,
        layer.dil,
        layer.out_hw,
        words,
        pitch_,
        parallel=ctx.parallel(copy_us),
        split=kernels.operand_rows(ctx.dot) == 2,
    )
    gv = ctx.add_kernel(pack, f"{name}_taps")
    rows = words * kernels.operand_rows(ctx.dot)
    return relax.call_tir(gv, [p, params], relax.TensorType((batch, rows, pitch_), "int32"))
