"""Compiled artifacts against torch eager on the masked model, and the no-unscheduled-kernel guarantee."""

import numpy as np
import pytest
import torch

import cascc
from cascc import passes
from cascc.errors import LoweringError


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, mlp_program, cnn_program):
    result = {}
    for name, program in (("mlp", mlp_program), ("cnn", cnn_program)):
        pruned = passes.run(program, [("prune.magnitude", {"sparsity": 0.7})])
        out = tmp_path_factory.mktemp(name) / "art"
        cascc.compile(pruned, target="x86", out=out)
        result[name] = (pruned, out)
    return result


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_artifact_matches_torch_eager_on_masked_model(compiled, name):
    program, out = compiled[name]
    torch.manual_seed(7)
    x = torch.randn(program.inputs[0].shape)  # fresh input, not the stored sample
    expected = program.module()(x).detach().numpy()
    got = cascc.run(out, [x.numpy()])[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # the masks really reached the compiled weights: the dense model gives a different answer
    dense = program.exported.module()(x).detach().numpy()
    assert np.abs(dense - expected).max() > 1e-3


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_selftest_passes(compiled, name):
    result = cascc.selftest(compiled[name][1])
    assert result.passed and result.max_abs_error < 1e-5


def test_every_primfunc_is_scheduled(mlp_program):
    import tvm

    from cascc.lower.pipeline import to_relax
    from cascc.lower.schedules import SCHEDULED, apply_rules, check_scheduled
    from cascc.lower.target import resolve
    from cascc.targets import TARGETS

    target = resolve(TARGETS["x86"])
    mod = to_relax(mlp_program.exported)
    with target:
        mod = tvm.relax.transform.LegalizeOps()(mod)
        mod = apply_rules(TARGETS["x86"].schedule_rules)(mod)
    funcs = [f for _, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc)]
    assert funcs and all(f.attrs[SCHEDULED] for f in funcs)
    check_scheduled(mod)  # does not raise


def test_unscheduled_primfunc_fails_the_build(mlp_program):
    import tvm

    from cascc.lower.pipeline import to_relax
    from cascc.lower.schedules import check_scheduled

    mod = tvm.relax.transform.LegalizeOps()(to_relax(mlp_program.exported))
    with pytest.raises(LoweringError, match="no schedule rule applied"):
        check_scheduled(mod)


def test_generic_rule_parallelizes_and_vectorizes():
    import tvm
    from tvm import te

    from cascc.lower.schedules.generic import GenericCPU
    from cascc.lower.target import resolve
    from cascc.targets import TARGETS

    target = resolve(TARGETS["x86"])
    for shape, parallel in (((1024, 512), True), ((64, 128), False)):  # small work stays serial
        a = te.placeholder(shape, name="a")
        b = te.compute(shape, lambda i, j: a[i, j] * 2.0 + 1.0, name="b")  # noqa: B023 (built and used in this iteration)
        sch = GenericCPU().apply(te.create_prim_func([a, b]), target, False)
        text = sch.mod.script()
        assert ("T.parallel" in text) == parallel and "T.vectorized" in text
        lib = tvm.compile(sch.mod, target=target)
        x = np.random.default_rng(0).standard_normal(shape).astype("float32")
        y = tvm.runtime.empty(shape, "float32", tvm.cpu())
        lib["main"](tvm.runtime.tensor(x), y)
        np.testing.assert_allclose(y.numpy(), x * 2 + 1, rtol=1e-6)


def test_generic_rule_keeps_vector_lanes_inside_the_innermost_axis():
    """An elementwise block over [1, 64, 56, 56] vectorizes within rows (8 of 56): the lane variable indexes
    only the last axis, so every vector is one contiguous load, and the result matches numpy."""
    import re

    import tvm
    from tvm import te

    from cascc.lower.schedules.generic import GenericCPU
    from cascc.lower.target import resolve
    from cascc.targets import TARGETS

    target = resolve(TARGETS["x86"])
    shape = (1, 64, 56, 56)
    a, b = te.placeholder(shape, name="a"), te.placeholder(shape, name="b")
    c = te.compute(shape, lambda n, ch, i, j: te.max(a[n, ch, i, j] + b[n, ch, i, j], 0.0), name="c")
    sch = GenericCPU().apply(te.create_prim_func([a, b, c]), target, False)
    text = sch.mod.script()
    lane = re.search(r"for (\w+) in T\.vectorized\((?:T\.int64\()?8\)", text).group(1)
    bindings = [line for line in text.splitlines() if "T.axis.spatial" in line and lane in line]
    assert len(bindings) == 1 and re.search(r"spatial\((T\.int64\()?56\)?,", bindings[0])  # the last axis
    lib = tvm.compile(sch.mod, target=target)
    rng = np.random.default_rng(1)
    x, y = (rng.standard_normal(shape).astype("float32") for _ in range(2))
    out = tvm.runtime.empty(shape, "float32", tvm.cpu())
    lib["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(y), out)
    np.testing.assert_array_equal(out.numpy(), np.maximum(x + y, 0))


def test_manifest_says_which_kernel_each_layer_got_and_why(compiled):
    from cascc.runtime.artifact import open_artifact

    rows = {r["name"]: r for r in open_artifact(compiled["cnn"][1]).manifest["layers"]}
    assert list(rows) == ["stem.weight", "conv1.weight", "conv2.weight", "dw.weight", "head.weight"]
    for row in rows.values():
        assert row["nonzero"] == row["weights"] - int(0.7 * row["weights"] + 0.5)
    for name in ("stem.weight", "conv1.weight", "conv2.weight"):  # conv → wide GEMM kernels
        row = rows[name]
        assert "wide" in row["kernel"] and "conv" in row["kernel"] and "predicted" in row["reason"]
        assert row["dense_us"] > 0 and row["sparse_us"] > 0
    assert rows["head.weight"].get("dense_us", 0) > 0  # linear: narrow kernels, both predictions kept
    # a masked depthwise conv weighs its nonzero taps against the dense kernel and keeps both predictions
    dw = rows["dw.weight"]
    assert "depthwise taps predicted" in dw["reason"] and dw["dense_us"] > 0 and dw["sparse_us"] > 0
    sparse_pays = dw["dense_us"] >= 1.25 * dw["sparse_us"]
    assert dw["kernel"] == ("sparse depthwise flat taps" if sparse_pays else "dense depthwise flat")
