"""int8 conv2d layers on the CPU (ungrouped), by one of two paths, whichever the cost model prices lower:

- packed taps (kernels/int8_conv.py, any stride): the input quantized once onto zero-point-bordered planes,
  its taps packed 4 per word per output pixel, then the cheaper of the dense and the 1×4-block int8 GEMMs
  (formats/int8_conv.py) over the pixels; the packing is priced as a copy of the operand;
- direct (kernels/int8_planes.py, stride 1): the input quantized onto planes of 4 interleaved channels,
  which the dense or 4-channel-block GEMM (formats/int8_planes.py) reads in place. Its rows compute in
  whole vectors, so it loses where rows are narrower than a vector (8×8 maps with 16 lanes).

The kernel's label names the path and the dot product, as for int8 linear layers."""

from __future__ import annotations

import dataclasses

import numpy as np
from tvm import relax

from .. import cost
from ..context import Candidate, symbol
from ..formats import Operand, Work, cheapest, of, priced
from ..formats.int8_conv import kwords as word_count
from ..formats.int8_conv import pitch
from ..kernels import int8_conv as kernels
from ..kernels import int8_planes as planes
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
    rows = words * kernels.operand_rows(ctx.dot)
    packing_us = cost.copy_us(ctx.costs, batch * rows * pitch_)
    dense_option, best = _options(work, Operand.WIDE)
    choice = cost.choose(ctx.costs, dense_option.us, best.us, ep.density, best.label)
    direct = _direct_work(layer, work)
    if direct is not None:
        direct_dense, direct_best = _options(direct, Operand.PLANES)
        direct_choice = cost.choose(ctx.costs, direct_dense.us, direct_best.us, ep.density, direct_best.label)
        if _chosen_us(direct_choice) < _chosen_us(choice) + packing_us:
            return _lower_direct(ctx, layer, direct, direct_choice, direct_dense, direct_best)
    via = f" (conv {kh}×{kw}{f' stride {layer.stride[0]}' if layer.stride != (1, 1) else ''}, taps packed)"

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


def _options(work: Work, operand: Operand):
    """(the dense option, the cheapest sparse one) of `operand`'s int8 formats for this layer."""
    (dense_option,) = of(operand, sparse=False, precision="int8")[0].options(work)
    return dense_option, cheapest(priced(work, operand, "int8"), lambda o: o.us)


def _chosen_us(choice: cost.Choice) -> float:
    return choice.sparse_us if choice.sparse else choice.dense_us


def _direct_work(layer: ConvLayer, work: Work) -> Work | None:
    """The layer priced for the direct path, or None where it does not apply (strided convs)."""
    if layer.stride != (1, 1):
        return None
    channels, height, width = layer.shape[1:]
    geom = planes.plane_geometry(channels, height, width, layer.pad, layer.kernel, layer.dil)
    return dataclasses.replace(work, weight=layer.weight, alen=geom.size, plane=geom)


def _lower_direct(ctx, layer: ConvLayer, work: Work, choice: cost.Choice, dense_option, best) -> relax.Expr:
    """The direct path: quantize onto 4-channel planes, then the chosen GEMM reads them in place."""
    spec, ep, geom, batch = layer.quant, layer.ep, work.plane, layer.shape[0]
    (kh, kw), n = layer.kernel, layer.out_c
    out_shape = (batch, n, geom.out_h, geom.out_w)

    def build(option) -> Candidate:
        fmt = option.format
        func, consts = fmt.kernel(work, option, fmt.pack(work, option), ctx.parallel(option.us))
        label = (
            f"{'sparse' if fmt.sparse else 'dense'} {option.label} (conv {kh}×{kw}), {DOT_LABELS[ctx.dot]}"
        )
        return Candidate(label, func, consts, (batch, geom.size), out_shape, "int32", "int8")

    chosen = ctx.choose(layer.name, ep, choice, lambda: build(best), lambda: build(dense_option))
    params = relax.const(np.array([spec.inverse_scale(), spec.input_zero], np.float32))
    quantize = ctx.add_kernel(planes.quantize_planes4(batch, geom), f"{symbol(layer.name)}_quantize4")
    codes = relax.call_tir(quantize, [layer.x, params], relax.TensorType((batch, geom.size), "int32"))
    return ctx.call(chosen, layer.name, choice.sparse, codes)


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
