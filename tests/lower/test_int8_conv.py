"""int8 convolution kernels (kernels/int8_conv.py) against numpy integer arithmetic: the quantized,
zero-point-bordered planes and the packed taps against a numpy im2col of the codes, and both GEMMs (dense
and 1×4 blocks) against the integer conv, across strides, dilations, kernel sizes, batches and densities,
for each dot product this CPU offers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cascc.ir.quant import (
    LayerPrecision,
    Precision,
    activation_params,
    quantize_activation,
    quantize_weight,
    weight_scales,
)
from cascc.lower.formats import Work
from cascc.lower.formats.int8_conv import INT8_WIDE_BLOCKS, INT8_WIDE_DENSE, kwords, pitch
from cascc.lower.kernels import int8_conv as kernels
from cascc.targets import KernelCosts

from .test_int8 import run

# (channels, height, width, kernel, stride, pad (t, l, b, r), dilation, out channels)
GEOMETRIES = [
    (3, 9, 9, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 5),
    (5, 8, 21, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 17),
    (8, 7, 7, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 6),
    (2, 12, 11, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 4),
    (3, 13, 13, (7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 9),
    (4, 1, 40, (1, 5), (1, 1), (0, 2, 0, 2), (1, 1), 7),  # a Conv1d as a 1-high conv2d
]


def out_hw(h, w, kernel, stride, pad, dil):
    return tuple(
        (size + pad[i] + pad[i + 2] - dil[i] * (kernel[i] - 1) - 1) // stride[i] + 1
        for i, size in enumerate((h, w))
    )


def reference_taps(x, spec, kernel, stride, pad, dil):
    """codes[b, k, p] of the padded input (zero point outside), k in OIHW order: numpy im2col."""
    codes = quantize_activation(x, spec).astype(np.int64)
    b, c, h, w = x.shape
    padded = np.full((b, c, h + pad[0] + pad[2], w + pad[1] + pad[3]), spec.input_zero, np.int64)
    padded[:, :, pad[0] : pad[0] + h, pad[1] : pad[1] + w] = codes
    oh, ow = out_hw(h, w, kernel, stride, pad, dil)
    cols = np.empty((b, c, kernel[0], kernel[1], oh, ow), np.int64)
    for r in range(kernel[0]):
        for s in range(kernel[1]):
            y0, x0 = r * dil[0], s * dil[1]
            cols[:, :, r, s] = padded[
                :, :, y0 : y0 + stride[0] * oh : stride[0], x0 : x0 + stride[1] * ow : stride[1]
            ]
    return cols.reshape(b, c * kernel[0] * kernel[1], oh * ow)


def operand(target, x, spec, kernel, stride, pad, dil, dot_):
    b, c, h, w = x.shape
    oh, ow = out_hw(h, w, kernel, stride, pad, dil)
    words, pitch_ = kwords(c * kernel[0] * kernel[1]), pitch(oh * ow, dot_)
    hp, wp, slack, size = kernels.planes_layout(c, h, w, pad, ow, stride[1])
    params = np.array([spec.inverse_scale(), spec.input_zero], np.float32)
    planes = run(
        target,
        kernels.quantize_planes(b, c, h, w, pad[0], pad[1], hp, wp, slack),
        x,
        params,
        out=(b, size),
        dtype="int32",
    )
    split = kernels.operand_rows(dot_) == 2
    pack = kernels.pack_taps(b, size, c, (hp, wp), kernel, stride, dil, (oh, ow), words, pitch_, split=split)
    rows = words * kernels.operand_rows(dot_)
    return run(target, pack, planes, params, out=(b, rows, pitch_), dtype="int32"), (oh, ow)


def unpacked(q, dot_):
    """codes[b, k, p] from the packed operand: 4 bytes per word, or (pre-split) 2 int16 per row."""
    b, rows, pitch_ = q.shape
    if kernels.operand_rows(dot_) == 1:
        codes = q.view(np.uint8).reshape(b, rows, pitch_, 4).transpose(0, 1, 3, 2)
        return codes.reshape(b, 4 * rows, pitch_).astype(np.int64)
    halves = q.view(np.uint16).reshape(b, rows // 2, 2, pitch_, 2)  # [b, word, even/odd, p, low/high]
    assert (halves < 256).all()  # each int16 holds one uint8 code
    codes = halves.transpose(0, 1, 4, 2, 3)  # [b, word, low/high, even/odd, p]: order 0, 1, 2, 3
    return codes.reshape(b, 2 * rows, pitch_).astype(np.int64)


def conv_case(rng, batch, geometry, density):
    c, h, w, kernel, _stride, _pad, _dil, n = geometry
    x = (rng.standard_normal((batch, c, h, w)) + 0.4).astype(np.float32)
    weight = (rng.standard_normal((n, c, *kernel)) * (rng.random((n, c, *kernel)) < density)).astype(
        np.float32
    )
    scale, zero = activation_params(float(x.min()), float(x.max()))
    spec = LayerPrecision(Precision.INT8, scale, zero, weight_scales(torch.from_numpy(weight)))
    return x, weight, spec


@pytest.mark.parametrize(
    "geometry", GEOMETRIES, ids=lambda g: f"{g[0]}x{g[1]}x{g[2]}-k{g[3][0]}{g[3][1]}-s{g[4][0]}-d{g[6][0]}"
)
@pytest.mark.parametrize("batch", [1, 2])
def test_packed_taps_are_the_codes_of_the_padded_im2col(target, dot, geometry, batch):
    rng = np.random.default_rng(batch + geometry[0])
    x, _, spec = conv_case(rng, batch, geometry, 1.0)
    _c, _, _, kernel, stride, pad, dil, _ = geometry
    q, (oh, ow) = operand(target, x, spec, kernel, stride, pad, dil, dot)
    codes = unpacked(q, dot)
    want = reference_taps(x, spec, kernel, stride, pad, dil)
    k = want.shape[1]
    np.testing.assert_array_equal(codes[:, :k, : oh * ow], want)


@pytest.mark.parametrize("density", [1.0, 0.3, 0.1, 0.0])
@pytest.mark.parametrize(
    "geometry",
    GEOMETRIES[:2] + GEOMETRIES[4:],
    ids=lambda g: f"{g[0]}x{g[1]}x{g[2]}-k{g[3][0]}{g[3][1]}-s{g[4][0]}",
)
@pytest.mark.parametrize("fmt", [INT8_WIDE_DENSE, INT8_WIDE_BLOCKS], ids=lambda f: f.name)
def test_int8_conv_kernels_match_the_integer_conv(target, dot, fmt, geometry, density):
    rng = np.random.default_rng(int(density * 10) + geometry[0])
    batch = 2
    x, weight, spec = conv_case(rng, batch, geometry, density)
    c, _, _, kernel, stride, pad, dil, n = geometry
    q, (oh, ow) = operand(target, x, spec, kernel, stride, pad, dil, dot)
    k = c * kernel[0] * kernel[1]
    bias = rng.standard_normal(n).astype(np.float32)
    work = Work(
        KernelCosts(),
        batch,
        k,
        n,
        weight.reshape(n, k),
        bias,
        "relu",
        oh * ow,
        q.shape[2],
        quant=spec,
        dot=dot,
    )
    (option,) = fmt.options(work)
    func, consts = fmt.kernel(work, option, fmt.pack(work, option), True)
    got = run(target, func, q, *consts, out=(batch, n, oh * ow))
    taps = reference_taps(x, spec, kernel, stride, pad, dil) - spec.input_zero
    qw = quantize_weight(weight, spec.weight_scales).reshape(n, k).astype(np.int64)
    acc = np.einsum("nk,bkp->bnp", qw, taps)
    want = acc * (np.float64(spec.input_scale) * np.asarray(spec.weight_scales))[:, None] + bias[:, None]
    want = np.maximum(want, 0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * (1 + np.abs(want).max()))


def test_block_packing_stores_the_words_with_a_surviving_weight():
    rng = np.random.default_rng(5)
    _x, weight, spec = conv_case(rng, 1, GEOMETRIES[0], 0.1)
    n, k = weight.shape[0], weight[0].size
    work = Work(KernelCosts(), 1, k, n, weight.reshape(n, k), None, None, 81, 96, quant=spec, dot="widen")
    (option,) = INT8_WIDE_BLOCKS.options(work)
    data, cols, ptr, _ = INT8_WIDE_BLOCKS.pack(work, option)
    qw = quantize_weight(weight, spec.weight_scales).reshape(n, k)
    rebuilt = np.zeros((n, 4 * kwords(k)), np.int64)
    words = data.view(np.int8).reshape(-1, 4)
    for row in range(n):
        for s in range(ptr[row], ptr[row + 1]):
            rebuilt[row, 4 * cols[s] : 4 * cols[s] + 4] = words[s]
    np.testing.assert_array_equal(rebuilt[:, :k], qw)
    assert option.lanes == 4 * len(data) and (words != 0).any(axis=1).all()
