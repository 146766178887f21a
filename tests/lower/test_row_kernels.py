"""cascc's row kernels (softmax, layer norm over the last axis, group norm) against torch eager, and their
fallbacks."""

import numpy as np
import pytest
import torch
from torch import nn

from tests.lower.test_conv_rewrite import compile_and_compare


class Softmax(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return torch.softmax(x * self.scale, dim=-1)


@pytest.mark.parametrize("shape", [(2, 5, 48), (64, 64), (1, 16), (3, 32), (2, 3, 50), (4, 7), (3, 1)])
def test_softmax_matches_torch(shape):  # widths a vector multiple, with a scalar tail, and below one vector
    torch.manual_seed(0)
    compile_and_compare(Softmax(20.0), torch.randn(*shape))  # logits spread over ±60: exp's full range


class SafeSoftmax(nn.Module):
    """What nn.MultiheadAttention exports: softmax, then rows that were all −inf set to zero."""

    def forward(self, x, mask):
        return torch.ops.aten._safe_softmax(x.masked_fill(mask, float("-inf")), -1)


def test_masked_rows_match_torchs_safe_softmax():
    import tvm
    from tvm import relax

    from cascc.frontends.torch import from_module
    from cascc.lower import lower
    from cascc.targets import TARGETS

    torch.manual_seed(1)
    x = torch.randn(4, 32)
    mask = torch.rand(4, 32) < 0.3
    mask[2] = True  # a fully masked row
    program = from_module(SafeSoftmax(), (x, mask))
    vm = relax.VirtualMachine(lower(program, TARGETS["x86"]).executable, tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(x.numpy()), tvm.runtime.tensor(mask.numpy()))[0].numpy()
    want = SafeSoftmax()(x, mask).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert (got[2] == 0).all() and (got[mask.numpy()] == 0).all()


class Attention(nn.Module):
    def forward(self, qkv):
        return torch.nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])


def _relax_ops(mod) -> set[str]:
    from tvm import relax

    ops = set()
    relax.analysis.post_order_visit(
        mod["main"],
        lambda e: ops.add(e.op.name) if isinstance(e, relax.Call) and hasattr(e.op, "name") else None,
    )
    return ops


def test_safe_softmax_test_is_dropped_where_the_row_kernel_zeroes_masked_rows():
    """Unmasked attention exports softmax plus a −inf-row test and select; on the CPU the row kernel does the
    zeroing, so both go (Whisper's 9000×1500 scores), and the attention still matches torch."""
    from cascc.frontends.torch import from_module
    from cascc.lower.pipeline import to_relax
    from cascc.lower.safe_softmax import SafeSoftmaxAsSoftmax

    torch.manual_seed(5)
    qkv = torch.randn(3, 1, 2, 20, 8)
    before = to_relax(from_module(Attention(), (qkv,)).exported)
    assert {"relax.where", "relax.equal"} <= _relax_ops(before)
    after = _relax_ops(SafeSoftmaxAsSoftmax()(before))
    assert "relax.nn.softmax" in after and not {"relax.where", "relax.equal"} & after
    compile_and_compare(Attention(), qkv)


class SafeSoftmaxOverRows(nn.Module):
    def forward(self, x):
        return torch.ops.aten._safe_softmax(x, 0)


def test_safe_softmax_keeps_its_test_where_fast_softmax_runs():
    from cascc.frontends.torch import from_module
    from cascc.lower.pipeline import to_relax
    from cascc.lower.safe_softmax import SafeSoftmaxAsSoftmax

    x = torch.randn(6, 16)
    after = _relax_ops(SafeSoftmaxAsSoftmax()(to_relax(from_module(SafeSoftmaxOverRows(), (x,)).exported)))
    assert "relax.where" in after  # softmax over axis 0 is TVM's fast_softmax, which gives NaN on −inf rows


@pytest.mark.parametrize("width", [32, 45, 5])
def test_softmax_kernel_scales_fully_masked_rows_by_fill(width):
    import tvm

    from cascc.lower.kernels.norm import softmax
    from cascc.lower.target import resolve
    from cascc.targets import TARGETS

    x = np.random.default_rng(2).standard_normal((6, width)).astype(np.float32)
    x[3] = -np.inf
    x[4, -1] = -np.inf  # a masked column in the tail
    lib = tvm.compile(
        tvm.IRModule({"main": softmax(6, width, lanes=TARGETS["x86"].kernel_lanes)}),
        target=resolve(TARGETS["x86"]),
    )
    y = tvm.runtime.empty((6, width), "float32", tvm.cpu())
    lib["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(np.zeros(1, np.float32)), y)
    want = torch.softmax(torch.from_numpy(x), -1).numpy()
    want[3] = 0
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "width", [197, 64, 40, 16, 5]
)  # a pulled-back chunk, whole groups, one vector, scalar
@pytest.mark.parametrize("parallel", [False, True])
def test_column_softmax_matches_torch(width, parallel):
    """Softmax down columns (attention computed transposed), a fully −inf column scaled by fill, run twice
    into a NaN-filled output so that a column it skips or normalizes twice shows."""
    import tvm

    from cascc.lower.kernels.norm import column_softmax
    from cascc.lower.target import resolve
    from cascc.targets import TARGETS

    x = np.random.default_rng(width).standard_normal((3, 23, width)).astype(np.float32) * 4
    x[1, :, width // 2] = -np.inf
    x[2, 5, -1] = -np.inf
    func = column_softmax(3, 23, width, parallel, lanes=TARGETS["x86"].kernel_lanes)
    lib = tvm.compile(tvm.IRModule({"main": func}), target=resolve(TARGETS["x86"]))
    want = torch.softmax(torch.from_numpy(x), 1).numpy()
    want[1, :, width // 2] = 0
    y = tvm.runtime.tensor(np.full(x.shape, np.nan, np.float32))
    for _ in range(2):
        lib["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(np.zeros(1, np.float32)), y)
        np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape", [(3, 7, 48), (1, 16), (5, 128)])
def test_layer_norm_matches_torch(shape):
    torch.manual_seed(3)
    norm = nn.LayerNorm(shape[-1])
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    compile_and_compare(norm, torch.randn(*shape) * 3 + 5)  # an offset mean: the variance pass centres first


def test_layer_norm_over_two_axes_keeps_tvms_lowering_and_odd_widths_take_the_row_kernel():
    torch.manual_seed(4)
    compile_and_compare(nn.LayerNorm((6, 10)), torch.randn(2, 6, 10))  # two normalized axes
    compile_and_compare(nn.LayerNorm(20), torch.randn(3, 20))  # the row kernel with a scalar tail


class Mean(nn.Module):
    def __init__(self, dims, keepdim):
        super().__init__()
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        return x.mean(dim=self.dims, keepdim=self.keepdim)


@pytest.mark.parametrize(
    "shape, dims, keepdim",
    [
        ((2, 6, 5, 5), (2, 3), True),
        ((1, 64, 25, 5), (2, 3), False),
        ((3, 40), (1,), False),
        ((4, 17), (1,), True),
    ],
)
def test_trailing_mean_matches_torch(shape, dims, keepdim):
    torch.manual_seed(5)
    compile_and_compare(Mean(dims, keepdim), torch.randn(*shape) + 2)


def test_other_means_keep_tvms_lowering():
    torch.manual_seed(6)
    compile_and_compare(Mean((1,), False), torch.randn(2, 6, 5))  # not the trailing axis
    compile_and_compare(nn.AdaptiveAvgPool2d(1), torch.randn(1, 4, 3, 3))


@pytest.mark.parametrize(
    "groups, channels, shape",
    [
        (4, 8, (2, 8, 48)),
        (8, 8, (1, 8, 40)),
        (2, 4, (2, 4, 6, 8)),
        (3, 6, (1, 6, 5)),
        (4, 4, (1, 4, 3199)),
    ],  # last two: widths 10 and 3199 (Wav2Vec2's stem), whole vectors and a scalar tail
)
def test_group_norm_matches_torch(groups, channels, shape):
    """Group norm as the layer-norm row kernel over each group's values, then the per-channel affine
    (Wav2Vec2's stem: one group per channel over the time axis), any group width."""
    torch.manual_seed(7)
    norm = nn.GroupNorm(groups, channels)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1.0, 1.0)
    compile_and_compare(nn.Sequential(norm), torch.randn(*shape) * 3 + 1)


def test_group_norm_takes_the_row_kernel():
    import tvm
    from tvm import relax

    from cascc.lower.legalize import cpu
    from cascc.targets import TARGETS

    def kernels(shape, groups, axes=None):
        bb = relax.BlockBuilder()
        x = relax.Var("x", relax.TensorType(shape, "float32"))
        g = relax.Var("g", relax.TensorType((shape[1],), "float32"))
        with bb.function("main", [x, g]):
            with bb.dataflow():
                out = relax.op.nn.group_norm(x, g, g, groups, 1, axes or list(range(2, len(shape))))
                out = bb.emit_output(bb.emit(out))
            bb.emit_func_output(out)
        mod = relax.transform.LegalizeOps(cpu(TARGETS["x86"]))(bb.get())
        return [gv.name_hint for gv, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc)]

    assert any(name.startswith("cascc_group_norm_16x64") for name in kernels((2, 16, 32), 8))
    assert any(name.startswith("cascc_group_norm_3x10") for name in kernels((1, 6, 5), 3))
    assert not any(name.startswith("cascc_group_norm") for name in kernels((1, 6, 5, 1), 3, axes=[2]))
