"""The x86 target sizes its wide kernels for the CPU it compiles for: AVX-512's tiles where the CPU has
AVX-512, AVX2's where it does not (targets/x86.py), and both builds compute the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tvm.target import codegen

from cascc import api
from cascc.lower.target import for_cpu, resolve
from cascc.runtime.session import Session
from cascc.targets import TARGETS, get
from support import EXAMPLES


@pytest.mark.parametrize(
    "cpu, lanes, tile, dot",
    [
        ("sapphirerapids", 16, (16, 16), "vnni"),
        ("skylake-avx512", 16, (16, 16), "pmaddwd"),
        ("znver3", 8, (4, 16), "pmaddwd"),
        ("haswell", 8, (4, 16), "pmaddwd"),
        ("x86-64", 8, (4, 16), "widen"),
    ],
)
def test_tiles_and_int8_dot_follow_the_cpus_features(cpu, lanes, tile, dot):
    target = for_cpu(get("x86", cpu=cpu))
    assert target.vector_lanes == lanes and target.costs.wide_dense_tile == tile
    assert target.vector_registers == (32 if lanes == 16 else 16)
    assert target.int8_dot == dot


def test_host_gets_the_tiles_of_its_own_features():
    host = for_cpu(TARGETS["x86"])
    has_avx512 = codegen.target_has_features("avx512f", resolve(TARGETS["x86"]))
    assert host.costs.wide_dense_tile == ((16, 16) if has_avx512 else (4, 16))


@pytest.mark.skipif(
    not codegen.target_has_features("avx2", resolve(TARGETS["x86"])), reason="this CPU has no AVX2"
)
def test_an_avx2_build_of_a_cnn_matches_torch_and_names_its_tile(tmp_path):
    from cascc.frontends import load_model

    program = load_model(f"{EXAMPLES / 'digits.py'}:cnn")
    result = api.compile(program, out=tmp_path / "avx2", cpu="haswell")
    kernels = [row["kernel"] for row in result.manifest["layers"]]
    assert any("wide 4-row" in k for k in kernels), kernels
    x = torch.randn(program.inputs[0].shape, generator=torch.Generator().manual_seed(0))
    got = Session(result.path / "model.so").run([x.numpy()])[0]
    with torch.no_grad():
        want = program.module()(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
