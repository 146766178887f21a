"""Direct int8 convolutions (kernels/int8_planes.py) against numpy integer arithmetic: the channel-interleaved
code planes against the codes of the padded input, and both direct GEMMs (dense and 4-channel blocks)
against the integer conv, over odd channel counts, widths that leave a partial last vector, dilations,
asymmetric padding, 1-high (Conv1d) shapes, batches 1/7 and densities 1 to 0, for each dot this CPU offers."""

from __future__ import annotations

import numpy as np
import pytest

from cascc.ir.quant import quantize_weight
from cascc.lower.formats import Work
from cascc.lower.formats.int8_planes import INT8_PLANES_BLOCKS, INT8_PLANES_DENSE, grouped
from cascc.lower.kernels import int8_planes as kernels
from cascc.targets import KernelCosts

from .test_int8 import run
from .test_int8_conv import conv_case, reference_taps

# (channels, height, width, kernel, stride, pad (t, l, b, r), dilation, out channels): all stride 1
GEOMETRIES = [
    (3, 9, 9, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 5),
    (16, 8, 32, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 17),
    (8, 7, 7, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 6),
    (5, 12, 19, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 4),
    (6, 6, 23, (2, 3), (1, 1), (0, 1, 1, 0), (1, 1), 9),  # asymmetric padding
    (4, 1, 40, (1, 5), (1, 1), (0, 2, 0, 2), (1, 1), 7),  # a Conv1d as a 1-high conv2d
]
IDS = [f"{g[0]}x{g[1]}x{g[2]}-k{g[3][0]}{g[3][1]}-d{g[6][0]}" for g in GEOMETRIES]


def geometry_of(x, kernel, pad, dil):
    _b, c, h, w = x.shape
    return kernels.plane_geometry(c, h, w, pad, kernel, dil)


def planes(target, x, spec, geom):
    params = np.array([spec.inverse_scale(), spec.input_zero], np.float32)
    return run(
        target,
        kernels.quantize_planes4(x.shape[0], geom),
        x,
        params,
        out=(x.shape[0], geom.size),
        dtype="int32",
    )


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_planes_hold_each_channel_groups_codes_with_the_zero_point_around(target, geometry):
    rng = np.random.default_rng(geometry[0])
    x, _weight, spec = conv_case(rng, 2, geometry, 1.0)
    c, h, w, kernel, _stride, pad, dil, _n = geometry
    geom = geometry_of(x, kernel, pad, dil)
    got = planes(target, x, spec, geom).view(np.uint8).reshape(2, geom.groups, geom.group_len, 4)
    plane = got[:, :, : geom.hp * geom.wp].reshape(2, geom.groups, geom.hp, geom.wp, 4)
    want = np.full((2, 4 * geom.groups, geom.hp, geom.wp), spec.input_zero, np.int64)
    want[:, :c, pad[0] : pad[0] + h, pad[1] : pad[1] + w] = reference_taps(
        x, spec, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)
    ).reshape(2, c, h, w)
    want = want.reshape(2, geom.groups, 4, geom.hp, geom.wp).transpose(0, 1, 3, 4, 2)
    np.testing.assert_array_equal(plane, want)
    assert (got[:, :, geom.hp * geom.wp :] == spec.input_zero).all()  # the slack the last vectors read


@pytest.mark.parametrize(
    "batch, density", [(1, 1.0), (1, 0.5), (1, 0.1), (1, 0.02), (1, 0.0), (7, 1.0), (7, 0.1)]
)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
@pytest.mark.parametrize("fmt", [INT8_PLANES_DENSE, INT8_PLANES_BLOCKS], ids=lambda f: f.name)
def test_direct_int8_conv_kernels_match_the_integer_conv(target, dot, fmt, geometry, batch, density):
    rng = np.random.default_rng(int(density * 50) + geometry[0] + batch)
    x, weight, spec = conv_case(rng, batch, geometry, density)
    c, _h, _w, kernel, _stride, pad, dil, n = geometry
    geom = geometry_of(x, kernel, pad, dil)
    oh, ow = geom.out_h, geom.out_w
    k = c * kernel[0] * kernel[1]
    bias = rng.standard_normal(n).astype(np.float32)
    work = Work(KernelCosts(), batch, k, n, weight, bias, "relu", oh * ow, quant=spec, dot=dot, plane=geom)
    (option,) = fmt.options(work)
    func, consts = fmt.kernel(work, option, fmt.pack(work, option), True)
    got = run(target, func, planes(target, x, spec, geom), *consts, out=(batch, n, oh, ow))
    taps = reference_taps(x, spec, kernel, (1, 1), pad, dil) - spec.input_zero
    qw = quantize_weight(weight, spec.weight_scales).reshape(n, k).astype(np.int64)
    acc = np.einsum("nk,bkp->bnp", qw, taps).reshape(batch, n, oh, ow)
    factor = np.float64(spec.input_scale) * np.asarray(spec.weight_scales)
    want = np.maximum(acc * factor[:, None, None] + bias[:, None, None], 0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * (1 + np.abs(want).max()))


def test_block_packing_stores_each_surviving_channel_group_at_its_plane_offset():
    rng = np.random.default_rng(5)
    geometry = GEOMETRIES[3]
    x, weight, spec = conv_case(rng, 1, geometry, 0.1)
    _c, _h, _w, kernel, _stride, pad, dil, n = geometry
    geom = geometry_of(x, kernel, pad, dil)
    work = Work(
        KernelCosts(), 1, weight[0].size, n, weight, None, None, 1, quant=spec, dot="widen", plane=geom
    )
    (option,) = INT8_PLANES_BLOCKS.options(work)
    data, offsets, ptr, _ = INT8_PLANES_BLOCKS.pack(work, option)
    where = {int(o): i for i, o in enumerate(geom.word_offsets())}
    rebuilt = np.zeros((n, geom.kwords, 4), np.int64)
    words = data.view(np.int8).reshape(-1, 4)
    for row in range(n):
        for s in range(ptr[row], ptr[row + 1]):
            rebuilt[row, where[int(offsets[s])]] = words[s]
    np.testing.assert_array_equal(rebuilt, grouped(quantize_weight(weight, spec.weight_scales)))
    assert option.lanes == 4 * len(data) and (words != 0).any(axis=1).all()
