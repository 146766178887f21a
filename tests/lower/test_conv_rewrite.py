"""Conv2d, depthwise and attention matmuls through cascc kernels, against torch eager."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from cascc import passes
from cascc.frontends.torch import from_module
from cascc.lower.decision import DecisionKind, Decline
from cascc.targets import TARGETS, KernelCosts


def compile_and_compare(model, x, *, sparsity=0.0, costs=None, criterion=("prune.magnitude", {})):
    import tvm
    from tvm import relax

    from cascc.lower import lower

    step, options = criterion
    program = passes.run(from_module(model.eval(), (x,)), [(step, {"sparsity": sparsity, **options})])
    target = TARGETS["x86"] if costs is None else dataclasses.replace(TARGETS["x86"], costs=costs)
    lowered = lower(program, target)
    vm = relax.VirtualMachine(lowered.executable, tvm.cpu())
    # three calls, the second on another input: a kernel that leaves part of a reused buffer unwritten
    # passes a single call and fails here
    for xi in (x, torch.randn_like(x) * 3 + 0.5, x):
        got = vm["main"](tvm.runtime.tensor(xi.numpy()))[0].numpy()
        with torch.no_grad():
            want = program.module()(xi).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * (np.abs(want).max() + 1e-6))
    return {d.layer: d for d in lowered.decisions}


def randomize_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return model


@pytest.mark.parametrize(
    "kernel, stride, padding, dilation, via",
    [
        (3, 1, 1, 1, "direct"),
        (3, 2, 1, 1, "im2col"),
        (1, 1, 0, 1, "1×1 conv"),  # 63 pixels: the last 32-wide chunk is pulled back to end at pixel 63
        (1, 1, 1, 1, "im2col"),
        (1, 2, 0, 1, "im2col"),
        ((5, 3), 1, (2, 0), 1, "direct"),
        (3, 1, 2, 2, "direct"),
    ],
)
@pytest.mark.parametrize("sparse", [False, True])
def test_conv_bn_relu6_matches_torch(kernel, stride, padding, dilation, via, sparse):
    torch.manual_seed(0)
    model = randomize_bn(
        nn.Sequential(
            nn.Conv2d(5, 12, kernel, stride, padding, dilation=dilation), nn.BatchNorm2d(12), nn.ReLU6()
        )
    )
    costs = KernelCosts(margin=0.0 if sparse else float("inf"))
    decisions = compile_and_compare(model, torch.randn(2, 5, 9, 7), sparsity=0.6, costs=costs)
    assert decisions["0.weight"].kind is (DecisionKind.SPARSE if sparse else DecisionKind.DENSE_CASCC)
    assert decisions["0.weight"].kernel.startswith("sparse wide" if sparse else "dense wide")
    assert via in decisions["0.weight"].kernel


@pytest.mark.parametrize("kernel, size, batch", [(3, (9, 7), 7), (5, (15, 12), 1), (7, (23, 23), 1)])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.98])
def test_stride2_conv_over_four_phases_matches_torch(kernel, size, batch, sparsity, monkeypatch):
    """A stride-2 k×k conv run direct (stride 1, ⌈k/2⌉ kernel) over the four phases of its input, dense and
    sparse, odd sizes, at densities down to 2% (whole output rows empty)."""
    from cascc.lower.strategies.conv import Conv

    monkeypatch.setattr(Conv, "_polyphase_pays", lambda *_: True)
    torch.manual_seed(kernel)
    model = nn.Sequential(nn.Conv2d(3, 20, kernel, 2, kernel // 2), nn.ReLU())
    costs = KernelCosts(margin=0.0 if sparsity else float("inf"))
    decisions = compile_and_compare(model, torch.randn(batch, 3, *size), sparsity=sparsity, costs=costs)
    assert f"conv {kernel}×{kernel} stride 2 direct over 4 phases" in decisions["0.weight"].kernel
    assert abs(decisions["0.weight"].density - (1 - sparsity)) < 0.02  # the layer's, not the phases'


def test_stride2_conv_over_four_phases_at_batch_32():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(4, 16, 3, 2, 1), nn.ReLU())
    decisions = compile_and_compare(
        model, torch.randn(32, 4, 11, 13), sparsity=0.9, costs=KernelCosts(margin=0.0)
    )
    assert "over 4 phases" in decisions["0.weight"].kernel  # sparse: the phases' added zero taps cost nothing


def test_the_stem_runs_over_phases_and_small_strided_convs_through_im2col():
    """The cost model's choice for dense stride-2 convs: ResNet's 7×7 stem at 224 px (a 7.4 MB im2col operand
    the GEMM would re-read from memory per row tile) over phases; a 3×3 one at 28 px (16 taps over phases
    against 9) through im2col."""
    torch.manual_seed(2)
    stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3), nn.ReLU())
    decisions = compile_and_compare(stem, torch.randn(1, 3, 224, 224), costs=KernelCosts(margin=float("inf")))
    assert "over 4 phases" in decisions["0.weight"].kernel
    small = nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU())
    decisions = compile_and_compare(small, torch.randn(1, 16, 28, 28), costs=KernelCosts(margin=float("inf")))
    assert "via im2col" in decisions["0.weight"].kernel


def test_polyphase_weight_and_planes_recompose_the_strided_conv():
    """numpy/torch reference for the two halves: the phases of a padded image and the phase weight give
    the stride-2 conv as a valid stride-1 one."""
    from cascc.lower.kernels.conv import phase_span, polyphase_weight

    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.standard_normal((2, 3, 11, 9)).astype(np.float32))
    w = rng.standard_normal((5, 3, 7, 7)).astype(np.float32)
    want = torch.nn.functional.conv2d(x, torch.from_numpy(w), stride=2, padding=3)
    oh, ow = want.shape[2:]
    padded = torch.nn.functional.pad(x, (3, 3 + 8, 3, 3 + 8))
    phases = torch.stack(
        [padded[:, :, a::2, e::2][:, :, : oh + 3, : ow + 3] for a in (0, 1) for e in (0, 1)], 2
    )
    got = torch.nn.functional.conv2d(
        phases.reshape(2, 12, oh + 3, ow + 3), torch.from_numpy(polyphase_weight(w))
    )
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-4)
    assert phase_span(9, 3, 0, 8) == (2, 6) and phase_span(9, 3, 1, 8) == (1, 6)  # 2u − 3 ∈ [0, 9); 2u − 2


@pytest.mark.parametrize(
    "kernel, stride, padding, ceil, size",
    [
        (3, 2, 1, False, (56, 56)),
        (3, 2, 1, True, (9, 7)),
        (2, 2, 0, False, (13, 11)),
        (3, 1, 1, False, (10, 10)),
        (3, 2, 0, True, (7, 9)),
        ((3, 2), (2, 1), (1, 0), False, (12, 11)),
    ],
)
@pytest.mark.parametrize("batch", [1, 7])
def test_max_pool_kernel_matches_torch(kernel, stride, padding, ceil, size, batch):
    """cascc's windowed max pool (ceil-mode windows and padding excluded, stride-2 rows deinterleaved), on
    inputs of both signs so a padded tap that leaked in as 0 would show."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.MaxPool2d(kernel, stride, padding, ceil_mode=ceil))
    compile_and_compare(model, torch.randn(batch, 5, *size) - 1.0)


def test_max_pool_takes_cascc_kernel_and_dilated_ones_keep_tvms():
    import tvm
    from tvm import relax

    from cascc.lower.legalize import cpu
    from cascc.targets import TARGETS

    def legalized(**attrs):
        bb = relax.BlockBuilder()
        x = relax.Var("x", relax.TensorType((1, 4, 16, 16), "float32"))
        with bb.function("main", [x]):
            with bb.dataflow():
                out = bb.emit_output(bb.emit(relax.op.nn.max_pool2d(x, (3, 3), (2, 2), (1, 1), **attrs)))
            bb.emit_func_output(out)
        mod = relax.transform.LegalizeOps(cpu(TARGETS["x86"]))(bb.get())
        return [gv.name_hint for gv, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc)]

    assert [name for name in legalized() if name.startswith("cascc_max_pool")]
    assert not [name for name in legalized(dilation=(2, 2)) if name.startswith("cascc_max_pool")]
    torch.manual_seed(5)
    compile_and_compare(nn.Sequential(nn.MaxPool2d(3, 2, 1, dilation=2)), torch.randn(1, 3, 15, 15))


@pytest.mark.parametrize("block, shared", [("8x1", True), ("1x8", False)])
def test_conv_with_row_blocks_shares_columns(block, shared):
    """A conv pruned in r×1 blocks gets the wide kernel that shares each slot's operand vector across the
    tile's rows; other masks keep per-row columns. Both match torch."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(16, 32, 3, 1, 1), nn.ReLU(), nn.Conv2d(32, 24, 1))
    decisions = compile_and_compare(
        model, torch.randn(1, 16, 12, 12), sparsity=0.8, criterion=("prune.block", {"block": block})
    )
    for layer in ("0.weight", "2.weight"):
        assert decisions[layer].kernel.startswith("sparse wide")
        assert ("r×1 broadcast" in decisions[layer].kernel) == shared


@pytest.mark.parametrize("size", [(8, 8), (12, 12), (5, 5)])  # 64, 144, 25 (16-wide) pixels
@pytest.mark.parametrize("sparse", [False, True])
def test_pointwise_conv_reads_its_input_in_place(size, sparse):
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(5, 12, 1), nn.ReLU())
    costs = KernelCosts(margin=0.0 if sparse else float("inf"))
    decisions = compile_and_compare(model, torch.randn(2, 5, *size), sparsity=0.6, costs=costs)
    assert decisions["0.weight"].kernel.endswith("(1×1 conv)")


def test_pointwise_conv_below_one_vector_goes_through_im2col():
    torch.manual_seed(6)
    decisions = compile_and_compare(nn.Sequential(nn.Conv2d(5, 12, 1)), torch.randn(1, 5, 2, 2), sparsity=0.6)
    assert "im2col" in decisions["0.weight"].kernel


@pytest.mark.parametrize("width", [33, 40])  # 17 and 20 output columns: one full 16-wide chunk and a tail
def test_strided_conv_im2col_on_wide_rows(width):
    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, (3, 5), 2, (1, 2)))
    decisions = compile_and_compare(model, torch.randn(2, 3, 10, width), sparsity=0.5)
    assert all("im2col" in d.kernel for d in decisions.values())


def test_small_images_weigh_border_columns_against_the_im2col_copy():
    """On an 8×8 image the direct kernel computes 10 columns per row for 8 outputs: a dense layer's extra
    MACs cost more than im2col's copy, a 90%-sparse layer's do not."""
    torch.manual_seed(8)
    model = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1))
    dense = compile_and_compare(model, torch.randn(1, 64, 8, 8), costs=KernelCosts(margin=float("inf")))
    assert "im2col" in dense["0.weight"].kernel
    sparse = compile_and_compare(model, torch.randn(1, 64, 8, 8), sparsity=0.9)
    assert sparse["0.weight"].kernel.startswith("sparse") and "direct" in sparse["0.weight"].kernel


@pytest.mark.parametrize("empty", [False, True])
def test_direct_conv_on_odd_sizes_and_empty_layers(empty):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(3, 17, 3, padding=1), nn.ReLU(), nn.Conv2d(17, 9, 5, padding=2))
    if empty:
        nn.init.zeros_(model[2].weight)  # an all-zero layer: only its bias reaches the output
    costs = KernelCosts(margin=0.0)
    decisions = compile_and_compare(model, torch.randn(3, 3, 11, 13), sparsity=0.9, costs=costs)
    assert all("direct" in decisions[n].kernel for n in ("0.weight", "2.weight"))


@pytest.mark.parametrize("stride, kernel", [(1, 3), (2, 3), (1, 5), (2, 5)])
@pytest.mark.parametrize("size", [(5, 5), (12, 9), (25, 5), (9, 37)])  # 37 columns: 19 stride-2 outputs
def test_depthwise_matches_torch(stride, kernel, size):
    torch.manual_seed(1)
    model = randomize_bn(
        nn.Sequential(
            nn.Conv2d(6, 6, kernel, stride, kernel // 2, groups=6, bias=False), nn.BatchNorm2d(6), nn.ReLU()
        )
    )
    decisions = compile_and_compare(model, torch.randn(1, 6, *size), sparsity=0.5)
    wide_s2 = stride == 2 and size[1] > 32
    expected = "flat" if stride == 1 else "stride-2 deinterleaved" if wide_s2 else "direct"
    assert decisions["0.weight"].kernel == f"dense depthwise {expected}"  # 50% dense: taps don't pay yet
    assert decisions["0.weight"].kind is DecisionKind.DENSE_CASCC
    assert decisions["0.weight"].decline is Decline.COST_MODEL


@pytest.mark.parametrize(
    "stride, kernel, size", [(1, 3, (40, 40)), (2, 3, (9, 11)), (2, 5, (23, 40)), (3, 3, (15, 14))]
)  # stride 1 above the flat kernel's 1024 px; stride 2 narrow (row vectors) and deinterleaved; stride 3
@pytest.mark.parametrize("batch, sparsity", [(1, 0.5), (7, 0.9), (32, 0.98)])
def test_tile_depthwise_taps_match_torch(stride, kernel, size, batch, sparsity):
    """The tile-based sparse depthwise kernel over each channel's nonzero taps (tapless channels write the
    bias), where the flat same-size kernel does not apply; margin 0 takes it at every density."""
    torch.manual_seed(kernel + stride)
    model = randomize_bn(
        nn.Sequential(
            nn.Conv2d(6, 6, kernel, stride, kernel // 2, groups=6, bias=False), nn.BatchNorm2d(6), nn.ReLU6()
        )
    )
    x = torch.randn(batch, 6, *size) * 3
    decisions = compile_and_compare(model, x, sparsity=sparsity, costs=KernelCosts(margin=0.0))
    assert decisions["0.weight"].kernel.startswith("sparse depthwise taps")
    assert decisions["0.weight"].kind is DecisionKind.SPARSE


def test_tile_depthwise_taps_with_every_tap_pruned():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(4, 4, 3, 2, 1, groups=4), nn.ReLU())
    nn.init.zeros_(model[0].weight)
    decisions = compile_and_compare(
        model, torch.randn(1, 4, 40, 40), sparsity=0.5, costs=KernelCosts(margin=0.0)
    )
    assert decisions["0.weight"].kernel == "sparse depthwise taps (0 of 36)"


@pytest.mark.parametrize("sparsity", [0.0, 0.7, 0.95, 1.0])  # 1.0: every tap zero, only the bias is left
def test_sparse_depthwise_taps_match_torch(sparsity):
    torch.manual_seed(9)
    model = randomize_bn(
        nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
    )
    if sparsity == 1.0:
        nn.init.zeros_(model[0].weight)
    x = torch.randn(2, 8, 25, 5) * 4
    decisions = compile_and_compare(model, x, sparsity=min(sparsity, 0.95), costs=KernelCosts(margin=0.0))
    assert decisions["0.weight"].kernel == "sparse depthwise flat taps"


def test_flat_depthwise_keeps_wrapped_columns_out():
    """Tap columns that wrap into the neighbouring row are selected away, not multiplied by 0: an inf in the
    last column must not turn the next row's first output into NaN."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 3, 3, 1, 1, groups=3))
    import tvm
    from tvm import relax

    from cascc.lower import lower

    x = torch.randn(1, 3, 6, 7)
    x[..., 2, -1] = float("inf")
    program = from_module(model.eval(), (x,))
    lowered = lower(program, TARGETS["x86"])
    assert lowered.decisions[0].kernel == "dense depthwise flat"
    got = relax.VirtualMachine(lowered.executable, tvm.cpu())["main"](tvm.runtime.tensor(x.numpy()))[
        0
    ].numpy()
    with torch.no_grad():
        want = model(x).numpy()
    finite = np.isfinite(want)
    assert (
        np.isfinite(got[..., 3, 0]).all() and finite[..., 3, 0].all()
    )  # the row after the inf starts finite
    np.testing.assert_array_equal(np.isfinite(got), finite)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-5, atol=1e-5 * np.abs(want[finite]).max())


@pytest.mark.parametrize("sparsity", [0.0, 0.5])
def test_grouped_convs_run_block_diagonal(sparsity):
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1, groups=2),
        nn.ReLU(),
        nn.Conv2d(8, 12, 1, groups=4),
        nn.ReLU(),
        nn.Conv2d(12, 12, 3, padding=2, dilation=2, groups=12),  # dilated depthwise
    )
    decisions = compile_and_compare(model, torch.randn(2, 4, 8, 8), sparsity=sparsity)
    for name in ("0.weight", "2.weight", "4.weight"):
        assert "groups block-diagonal" in decisions[name].kernel
        assert decisions[name].density == pytest.approx(
            1 - sparsity, abs=0.05
        )  # the layer's, not the expansion's


def test_strided_dilated_convs_fall_back_and_say_so():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=2, dilation=2))
    decisions = compile_and_compare(model, torch.randn(1, 4, 8, 8), sparsity=0.5)
    assert decisions["0.weight"].kind is DecisionKind.DENSE_GENERIC
    assert decisions["0.weight"].decline is Decline.DILATED_STRIDED
    assert decisions["0.weight"].kernel == "dense (TVM generic schedule)"


@pytest.mark.slow
def test_attention_batched_matmul_matches_torch():
    torch.manual_seed(3)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    decisions = compile_and_compare(model, torch.randn(1, 16, 32), sparsity=0.7)
    # nn.TransformerEncoder deep-copies its layer: both copies share weight values yet keep their own names
    assert sum(name.startswith("layers.0.") for name in decisions) == 4
    assert sum(name.startswith("layers.1.") for name in decisions) == 4
    assert all("wide" in d.kernel for d in decisions.values())


@pytest.mark.parametrize("scale, a_transposed", [(1.0, False), (0.125, False), (0.125, True)])
def test_batched_matmul_kernel_with_partial_row_tile(scale, a_transposed):
    """13 rows in tiles of 8, a scale on the accumulator, A given as stored or transposed."""
    import tvm

    from cascc.lower.kernels.linear import batched_matmul
    from cascc.lower.target import resolve

    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 13, 7)).astype(np.float32)
    b = rng.standard_normal((3, 7, 32)).astype(np.float32)
    func = batched_matmul(3, 13, 7, 32, 8, 16, True, scale, a_transposed)
    lib = tvm.compile(tvm.IRModule({"main": func}), target=resolve(TARGETS["x86"]))
    out = tvm.runtime.empty((3, 13, 32), "float32", tvm.cpu())
    stored = np.ascontiguousarray(a.transpose(0, 2, 1)) if a_transposed else a
    lib["main"](tvm.runtime.tensor(stored), tvm.runtime.tensor(b), out)
    np.testing.assert_allclose(out.numpy(), scale * (a @ b), rtol=1e-5, atol=1e-5)


def test_fast_softmax_matches_torch_on_wide_logits():
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(12, 40)

        def forward(self, x):
            return torch.softmax(self.fc(x) * 8.0, dim=-1)  # logits spread over ±30: exp's full range

    torch.manual_seed(4)
    compile_and_compare(Head(), torch.randn(3, 12))


@pytest.mark.parametrize("act", [nn.ReLU, nn.ReLU6])
def test_conv_epilogue_is_fused_into_the_kernel(act):
    import tvm
    from tvm import relax

    from cascc.lower.pipeline import to_relax
    from cascc.lower.rewrite import LayerRewrite

    model = randomize_bn(nn.Sequential(nn.Conv2d(4, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), act()))
    program = from_module(model.eval(), (torch.randn(1, 4, 8, 8),))
    out = LayerRewrite(TARGETS["x86"], {})(to_relax(program.exported))
    ops = []
    relax.analysis.post_order_visit(
        out["main"],
        lambda e: (
            ops.append(e.op.name) if isinstance(e, relax.Call) and isinstance(e.op, tvm.ir.Op) else None
        ),
    )
    assert not {"relax.clip", "relax.nn.relu", "relax.nn.batch_norm", "relax.nn.conv2d"} & set(ops)


@pytest.mark.parametrize("act", [nn.ReLU, nn.ReLU6])
def test_conv1d_takes_the_conv_kernels_with_its_bias_and_activation(act):
    """A Conv1d layer is a 1-high conv2d for the rewrite (lower/conv1d.py): no conv1d, bias add or activation
    is left outside the kernel, and the decisions are the conv strategy's."""
    import tvm
    from tvm import relax

    from cascc.lower.pipeline import to_relax
    from cascc.lower.rewrite import LayerRewrite

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(8, 16, 5, padding=2), act(), nn.Conv1d(16, 16, 3, stride=2, padding=1))
    program = from_module(model, (torch.randn(1, 8, 40),))
    rewrite = LayerRewrite(TARGETS["x86"], {})
    out = rewrite(to_relax(program.exported))
    ops = []
    relax.analysis.post_order_visit(
        out["main"],
        lambda e: (
            ops.append(e.op.name) if isinstance(e, relax.Call) and isinstance(e.op, tvm.ir.Op) else None
        ),
    )
    assert not {"relax.nn.conv1d", "relax.nn.conv2d", "relax.add", "relax.clip", "relax.nn.relu"} & set(ops)
    assert [d.kind for d in rewrite.decisions.values()] == [DecisionKind.DENSE_CASCC] * 2
    compile_and_compare(model, torch.randn(2, 8, 40))


class Branches(nn.Module):
    """Every conv kernel family on the same full-size image, outputs flattened side by side."""

    def __init__(self):
        super().__init__()
        self.branches = nn.ModuleList(
            [
                nn.Conv2d(2, 2, 3, 1, 1, groups=2),  # depthwise, stride 1, above the flat-kernel size
                nn.Conv2d(2, 2, 3, 2, 1, groups=2),  # depthwise, stride 2 deinterleaved
                nn.Conv2d(2, 4, 3, 3, 1),  # im2col (stride 3: no phase plan)
                nn.Conv2d(2, 4, 3, 1, 1),  # direct, on padded planes
            ]
        )

    def forward(self, x):
        return torch.cat([b(x).flatten(1) for b in self.branches], 1)


# 224 px: a padded plane of 51076 px, where one plane-wide vector aborted LLVM; 256 px (MobileViT-xxs):
# 66564 px, past LLVM's 16-bit lane count, where it wrapped and left most of the border unwritten
@pytest.mark.parametrize("size", [224, 256])
def test_conv_kernels_on_image_net_size_planes(size):
    torch.manual_seed(6)
    decisions = compile_and_compare(Branches(), torch.randn(1, 2, size, size))
    kernels = {name: d.kernel for name, d in decisions.items()}
    assert kernels["branches.0.weight"] == "dense depthwise direct"
    assert kernels["branches.1.weight"] == "dense depthwise stride-2 deinterleaved"
    assert "im2col" in kernels["branches.2.weight"] and "direct" in kernels["branches.3.weight"]


@pytest.mark.parametrize("sparsity", [0.0, 0.9])
def test_flat_depthwise_tile_on_a_plane_above_65536_pixels(sparsity):
    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(2, 2, 3, 1, 1, groups=2))
    costs = KernelCosts(margin=0.0 if sparsity else float("inf"), depthwise_same_max_pixels=1 << 20)
    decisions = compile_and_compare(model, torch.randn(1, 2, 257, 259), sparsity=sparsity, costs=costs)
    assert decisions["0.weight"].kernel == (
        "sparse depthwise flat taps" if sparsity else "dense depthwise flat"
    )


class WeightNormedConv(nn.Module):
    """Wav2Vec2's positional conv at small size: a weight-normed grouped Conv1d with an even kernel, its
    extra output cropped (SamePad), then GELU."""

    def __init__(self):
        super().__init__()
        conv = nn.Conv1d(32, 32, 16, padding=8, groups=4)
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)

    def forward(self, x):
        return nn.functional.gelu(self.conv(x)[..., :-1])


def test_weight_normed_conv_gets_its_weight_at_compile_time():
    """W = g · v / ‖v‖ is arithmetic on constants: it is folded before the layer rewrite, so the conv takes a
    cascc kernel instead of TVM's generic conv1d, and the weight is not recomputed per inference."""
    import tvm
    from tvm import relax

    from cascc.lower.computed_weights import FoldComputedWeights
    from cascc.lower.pipeline import to_relax
    from cascc.lower.rewrite import LayerRewrite

    torch.manual_seed(0)
    model = WeightNormedConv().eval()
    program = from_module(model, (torch.randn(1, 32, 100),))
    mod = to_relax(program.exported)
    folded = FoldComputedWeights()(mod)

    def ops(m):
        found = []
        relax.analysis.post_order_visit(
            m["main"],
            lambda e: (
                found.append(e.op.name) if isinstance(e, relax.Call) and isinstance(e.op, tvm.ir.Op) else None
            ),
        )
        return set(found)

    assert {"relax.power", "relax.divide"} <= ops(mod) and not {"relax.power", "relax.divide"} & ops(folded)
    assert "relax.nn.conv1d" not in ops(LayerRewrite(TARGETS["x86"], {})(mod))
    compile_and_compare(model, torch.randn(1, 32, 100))
