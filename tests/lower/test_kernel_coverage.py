"""Embedding lookups on cascc's gather kernels (CSR rows when pruned, ids clamped), activations fused into
their layer's kernel, layers of one shape class sharing one kernel, and the library's size breakdown."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cascc import api, passes
from cascc.frontends.torch import from_module
from cascc.lower.export import section_sizes
from cascc.runtime.session import Session
from zoo import relu_mlp


@pytest.mark.parametrize("sparsity,kind", [(0.0, "dense"), (0.9, "sparse")])
def test_embedding_gathers_rows_and_clamps_ids(tmp_path, sparsity, kind):
    torch.manual_seed(0)
    program = from_module(nn.Sequential(nn.Embedding(50, 24)), (torch.tensor([[1, 2, 3, 49, 0, 7]]),))
    if sparsity:
        program = passes.run(program, [("prune.magnitude", {"sparsity": sparsity})])
    result = api.compile(program, out=tmp_path / "out")
    (row,) = result.manifest["layers"]
    assert row["kind"] == "embedding" and row["kernel_kind"] == kind, row
    assert api.selftest(result.path).passed
    table = program.masked_weights()["0.weight"].numpy()
    ids = np.array([[5, 49, 0, 100, -3, 17]], np.int64)  # the last three out of range: nearest row
    got = Session(result.path / "model.so").run([ids])[0]
    np.testing.assert_array_equal(got[0], table[[5, 49, 0, 49, 0, 17]])


def test_a_pruned_embedding_stores_its_nonzeros_only(tmp_path):
    torch.manual_seed(0)
    program = from_module(nn.Sequential(nn.Embedding(2000, 64)), (torch.randint(0, 2000, (1, 8)),))
    dense = api.compile(program, out=tmp_path / "dense").manifest["size"]["weights"]
    pruned = passes.run(program, [("prune.magnitude", {"sparsity": 0.9})])
    sparse = api.compile(pruned, out=tmp_path / "sparse").manifest["size"]["weights"]
    assert dense >= 2000 * 64 * 4
    assert sparse < 0.2 * dense  # 10% of the values, int16 columns, row pointers


def test_layers_of_one_shape_share_one_kernel(tmp_path):
    """A fourth 64×64 layer adds weights but no kernel; the library's code does not grow with it."""
    torch.manual_seed(0)
    x = (torch.randn(1, 64),)
    sizes = []
    for depth in (3, 4):
        result = api.compile(from_module(relu_mlp(*[64] * (depth + 1)), x), out=tmp_path / f"d{depth}")
        assert api.selftest(result.path).passed
        sizes.append(result.manifest["size"])
    assert sizes[1]["kernels"] == sizes[0]["kernels"]
    assert sizes[1]["weights"] > sizes[0]["weights"]
    assert sizes[1]["code"] == sizes[0]["code"]


def test_size_breakdown_reads_the_elf_sections(tmp_path):
    result = api.compile(from_module(relu_mlp(32, 16), (torch.randn(1, 32),)), out=tmp_path / "out")
    size = result.manifest["size"]
    sections = section_sizes(result.path / "model.so")
    assert size["code"] == sections[".text"] > 0
    assert not [s for s in sections if s.startswith(".debug")]  # linked without DWARF
    assert sum(sections.values()) <= size["library"] == (result.path / "model.so").stat().st_size
    assert section_sizes(result.path / "manifest.json") == {}


@pytest.mark.parametrize("shape", [(2, 64), (1, 5, 64)], ids=["2d", "3d"])
@pytest.mark.parametrize(
    "activation", [nn.SiLU(), nn.GELU(), nn.GELU("tanh"), nn.Sigmoid()], ids=lambda a: repr(a)
)
def test_activations_fuse_into_the_layer_kernel(tmp_path, activation, shape):
    """Linear + activation builds as many kernels as the linear alone (the activation is its epilogue; on a
    3-D input after the view back sinks below it), and matches torch eager within the self-test tolerance,
    on inputs spanning the activations' curved range."""
    torch.manual_seed(0)
    x = (torch.randn(*shape) * 3,)
    counts = []
    for model in (nn.Sequential(nn.Linear(64, 64)), nn.Sequential(nn.Linear(64, 64), activation)):
        result = api.compile(from_module(model, x), out=tmp_path / str(len(counts)))
        assert api.selftest(result.path).passed
        counts.append(result.manifest["size"]["kernels"])
    assert counts[1] == counts[0]


class SamePadded(nn.Module):
    """TensorFlow-style "same" convs: an explicit pad (one more row and column bottom-right) before a
    strided conv and a depthwise conv, and a pad of ones that must stay a pad."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, stride=2)
        self.dw = nn.Conv2d(16, 16, 3, stride=2, groups=16)
        self.last = nn.Conv2d(16, 8, 1)

    def forward(self, x):
        y = torch.relu(self.conv(nn.functional.pad(x, (0, 1, 0, 1))))
        y = torch.relu(self.dw(nn.functional.pad(y, (0, 1, 0, 1))))
        return self.last(nn.functional.pad(y, (1, 1, 1, 1), value=1.0))


def test_zero_pads_fold_into_the_conv(tmp_path):
    from cascc.lower.pad_fold import FoldPadIntoConv
    from cascc.lower.pipeline import to_relax

    torch.manual_seed(0)
    program = from_module(SamePadded().eval(), (torch.randn(1, 3, 33, 33),))
    folded = FoldPadIntoConv()(to_relax(program.exported))["main"].script()
    assert folded.count("R.nn.pad(") == 1 and "pad_value=1" in folded  # only the pad of ones is left
    assert "padding=[0, 0, 1, 1]" in folded
    for sparsity in (0.0, 0.9):
        pruned = passes.run(program, [("prune.magnitude", {"sparsity": sparsity})]) if sparsity else program
        result = api.compile(pruned, out=tmp_path / f"s{sparsity}")
        assert api.selftest(result.path).passed
        assert all(r["kernel_kind"] != "generic" for r in result.manifest["layers"])


def test_a_whole_input_average_pool_is_a_mean(tmp_path):
    """EfficientNet's AvgPool2d(1280, ceil_mode=True) over a 7×7 map is the plane's mean; a 2×2 pool stays."""
    from cascc.lower.global_pool import GlobalPoolAsMean
    from cascc.lower.pipeline import to_relax

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AvgPool2d(2), nn.AvgPool2d(1280, ceil_mode=True)).eval()
    program = from_module(model, (torch.randn(1, 3, 16, 16),))
    rewritten = GlobalPoolAsMean()(to_relax(program.exported))["main"].script()
    assert rewritten.count("R.nn.avg_pool2d(") == 1 and "R.mean(" in rewritten
    result = api.compile(program, out=tmp_path / "out")
    assert api.selftest(result.path).passed
