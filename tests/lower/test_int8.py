"""int8 kernels and their packings against numpy's integer arithmetic, across shapes, batches and densities,
for each dot product (AVX512-VNNI's vpdpbusd and AVX2's vpmaddwd where this CPU has them, and the exact
widening path)."""

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
from cascc.lower.formats.int8 import INT8_BLOCKS, INT8_DENSE, kwords
from cascc.lower.kernels.int8 import quantize_rows
from cascc.targets import KernelCosts

DENSITIES = [1.0, 0.5, 0.1, 0.02, 0.0]


def run(target, func, *arrays, out, dtype="float32"):
    import tvm

    lib = tvm.compile(tvm.IRModule({"main": func}), target=target)
    args = [tvm.runtime.tensor(np.ascontiguousarray(a)) for a in arrays]
    y = tvm.runtime.tensor(np.full(out, -7 if dtype == "int32" else np.nan, dtype))
    lib["main"](*args, y)
    return y.numpy()


def layer(rng, batch, k, n, density):
    w = (rng.standard_normal((n, k)) * (rng.random((n, k)) < density)).astype(np.float32)
    x = (rng.standard_normal((batch, k)) + 0.3).astype(np.float32)
    scale, zero = activation_params(x.min(), x.max())
    spec = LayerPrecision(Precision.INT8, scale, zero, weight_scales(torch.from_numpy(w)))
    return w, x, spec


def reference(x, w, bias, spec, act):
    """The int8 layer in numpy integers: (codes − zero) · codes, dequantized, bias, activation."""
    qx = quantize_activation(x, spec).astype(np.int64) - spec.input_zero
    qw = quantize_weight(w, spec.weight_scales).astype(np.int64)
    y = (qx @ qw.T) * (np.float64(spec.input_scale) * np.asarray(spec.weight_scales)) + bias
    return np.maximum(y, 0) if act == "relu" else y


@pytest.mark.parametrize("batch, k", [(1, 37), (3, 64), (7, 5)])
def test_activations_quantize_to_the_reference_codes_and_pad_with_the_zero_point(target, batch, k):
    rng = np.random.default_rng(k)
    x = rng.standard_normal((batch, k)).astype(np.float32) * 3
    x[0, :3] = [0.0, 1e9, -1e9]  # exact zero and both clamps
    spec = LayerPrecision(Precision.INT8, *activation_params(-2.5, 4.0), (1.0,))
    words = run(
        target,
        quantize_rows(batch, k, kwords(k)),
        x,
        np.array([spec.inverse_scale(), spec.input_zero], np.float32),
        out=(batch, kwords(k)),
        dtype="int32",
    )
    codes = words.view(np.uint8).reshape(batch, -1)
    np.testing.assert_array_equal(codes[:, :k], quantize_activation(x, spec))
    assert (codes[:, k:] == spec.input_zero).all()
    assert codes[0, 0] == spec.input_zero and codes[0, 1] == 255 and codes[0, 2] == 0


def test_quantizers_round_exact_ties_to_even_like_numpy(target):
    """x · (1/scale) landing exactly on .5 rounds to the even code in both quantizers (rows for linear
    layers, bordered planes for convs), as `ir.quant` does, and the clamps hold past ±2^22."""
    from cascc.lower.kernels import int8_conv

    spec = LayerPrecision(Precision.INT8, 0.5, 10, (1.0,))  # 1/scale = 2 exactly
    halves = np.array([0.25, 0.75, 1.25, -0.25, -0.75, -1.25, 3.25, 60.25, 1e7, -1e7, 5e6, -5e6, 0.0, 62.75])
    x = np.tile(halves.astype(np.float32), 2)[None]  # one row of 28 values
    k = x.shape[1]
    params = np.array([spec.inverse_scale(), spec.input_zero], np.float32)
    rows = run(target, quantize_rows(1, k, kwords(k)), x, params, out=(1, kwords(k)), dtype="int32")
    expected = quantize_activation(x, spec)
    assert list(expected[0, :6]) == [10, 12, 12, 10, 8, 8]  # the ties, resolved to even
    np.testing.assert_array_equal(rows.view(np.uint8).reshape(1, -1)[:, :k], expected)
    hp, wp, slack, size = int8_conv.planes_layout(1, 1, k, (0, 1, 0, 1), k, 1)
    planes = run(
        target,
        int8_conv.quantize_planes(1, 1, 1, k, 0, 1, hp, wp, slack),
        x.reshape(1, 1, 1, k),
        params,
        out=(1, size),
        dtype="int32",
    )
    np.testing.assert_array_equal(planes[0, 1 : k + 1], expected[0])
    assert planes[0, 0] == planes[0, k + 1] == spec.input_zero


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("batch, k, n", [(1, 37, 19), (7, 64, 70), (32, 21, 33)])
@pytest.mark.parametrize("fmt", [INT8_DENSE, INT8_BLOCKS], ids=lambda f: f.name)
def test_int8_kernels_match_integer_arithmetic(target, dot, fmt, batch, k, n, density):
    rng = np.random.default_rng(batch * 1000 + k + int(density * 100))
    w, x, spec = layer(rng, batch, k, n, density)
    bias = rng.standard_normal(n).astype(np.float32)
    work = Work(KernelCosts(), batch, k, n, w, bias, "relu", quant=spec, dot=dot)
    (option,) = fmt.options(work)
    func, consts = fmt.kernel(work, option, fmt.pack(work, option), True)
    codes = run(
        target,
        quantize_rows(batch, k, kwords(k)),
        x,
        np.array([spec.inverse_scale(), spec.input_zero], np.float32),
        out=(batch, kwords(k)),
        dtype="int32",
    )
    got = run(target, func, codes, *consts, out=(batch, len(consts[-1])))[:, :n]
    want = reference(x, w, bias, spec, "relu")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * (1 + np.abs(want).max()))


def test_block_packing_keeps_exactly_the_nonzero_codes():
    """Pruned weights stay zero: the 1×4 blocks store every nonzero code once and nothing else."""
    rng = np.random.default_rng(3)
    w, _, spec = layer(rng, 1, 45, 40, 0.1)
    work = Work(KernelCosts(), 1, 45, 40, w, None, None, quant=spec, dot="widen")
    (option,) = INT8_BLOCKS.options(work)
    data, cols, ptr, order, _ = INT8_BLOCKS.pack(work, option)
    rebuilt = np.zeros((len(order), 4 * kwords(45)), np.int64)
    blocks = data.view(np.int8).reshape(len(data), 16, 4)
    for t in range(len(ptr) - 1):
        for s in range(ptr[t], ptr[t + 1]):
            for r in range(16):
                rebuilt[order[t * 16 + r], 4 * cols[s, r] : 4 * cols[s, r] + 4] += blocks[s, r]
    np.testing.assert_array_equal(rebuilt[:40, :45], quantize_weight(w, spec.weight_scales))
    assert not rebuilt[40:].any() and not rebuilt[:, 45:].any()
    assert np.count_nonzero(blocks) == np.count_nonzero(quantize_weight(w, spec.weight_scales))
