"""The lowering's extension points: format registry, kernel families, typed decisions recorded where the
rewrite declines."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from cascc import passes
from cascc.frontends.torch import from_module
from cascc.lower.decision import Decision, DecisionKind, Decline
from cascc.targets import TARGETS, KernelCosts


def test_every_format_is_registered_once_with_its_operand():
    from cascc.lower.formats import FORMATS, Operand, of, register

    narrow = [f.name for f in of(Operand.NARROW, sparse=True)]
    assert narrow == ["tiled-ell.gather", "tiled-ell.broadcast", "bsr.1xC"]  # rank order: ties go first
    assert [f.name for f in of(Operand.NARROW, sparse=False)] == ["dense.packed"]
    assert [f.name for f in of(Operand.WIDE, sparse=True)] == ["wide.tiled-ell", "wide.tiled-ell.broadcast"]
    assert [f.name for f in of(Operand.GPU, sparse=True)] == ["csr.gpu"]
    with pytest.raises(ValueError, match="registered twice"):
        register(FORMATS["bsr.1xC"])


def test_bsr_is_one_module_holding_packing_estimator_kernel_and_cost():
    """Everything the 1×C format is lives in formats/bsr.py: the registry record points only there."""
    from cascc.lower.formats import Operand, Work, bsr, of

    fmt = bsr.BSR
    for part in (fmt.options, fmt.stored_lanes, fmt.pack, fmt.kernel, fmt.label):
        assert part.__module__ == bsr.__name__
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((32, 64)) * (rng.random((32, 64)) < 0.1)).astype(np.float32)
    work = Work(KernelCosts(), 1, 64, 32, w, None, None)
    options = fmt.options(work)
    assert [(o.width, o.rows) for o in options] == [(8, 4), (4, 8)]  # the target's (width, rows, ns) list
    for o in options:
        packed = fmt.pack(work, o)
        assert packed.data.size == o.lanes == fmt.stored_lanes(w, o.rows, o.width, work.costs)
        assert o.us == pytest.approx(work.batch / 1e3 * o.ns * o.lanes)
    assert fmt in of(Operand.NARROW, sparse=True)
    # its prices are its own (bsr.PRICES); a target tunes them by format name, with no KernelCosts field
    assert [(o.width, o.rows, o.ns) for o in options] == list(bsr.PRICES)
    tuned = Work(KernelCosts(format_costs=((fmt.name, ((4, 16, 0.05),)),)), 1, 64, 32, w, None, None)
    assert [(o.width, o.rows, o.ns) for o in fmt.options(tuned)] == [(4, 16, 0.05)]
    assert not [f.name for f in dataclasses.fields(KernelCosts) if "block" in f.name or "bsr" in f.name]


def test_kernel_families_replace_the_string_keyed_tables():
    from cascc.lower.family import CPU, FAMILIES, GPU, family, register

    assert {t.kernels for t in TARGETS.values()} <= set(FAMILIES)
    assert family("cpu") is CPU and family("gpu") is GPU
    assert CPU.strategies.attention is not None and GPU.strategies.attention is None
    assert set(CPU.legalizations(TARGETS["x86"])) == {
        "relax.nn.softmax",
        "relax.nn.layer_norm",
        "relax.mean",
        "relax.nn.max_pool2d",
        "relax.nn.group_norm",
    }
    assert set(GPU.legalizations(TARGETS["cuda"])) == {"relax.nn.softmax"}
    with pytest.raises(ValueError, match="registered twice"):
        register(CPU)


def test_decision_json_keeps_its_keys_and_adds_the_types():
    d = Decision(
        "fc",
        0.5,
        "dense packed 64-wide",
        "r",
        1.0,
        2.0,
        kind=DecisionKind.DENSE_CASCC,
        decline=Decline.COST_MODEL,
    )
    data = d.to_json()
    assert list(data)[:7] == ["layer", "density", "kernel", "reason", "dense_us", "sparse_us", "measured_us"]
    assert data["kind"] == "dense" and data["decline"] == "COST_MODEL"


def _rewrite(model, x, names_of):
    from cascc.lower.pipeline import to_relax
    from cascc.lower.rewrite import LayerRewrite, weight_key

    ep = torch.export.export(model.eval(), (x,)).run_decompositions()
    names = {weight_key(p.detach().numpy()): [n] for n, p in names_of.items()}
    rewrite = LayerRewrite(TARGETS["x86"], names)
    return rewrite, rewrite(to_relax(ep))


@pytest.mark.parametrize("sparsity", [0.0, 0.5])
def test_a_float16_linear_is_declined_as_such_where_it_is_matched(sparsity):
    """The rewrite says why at the decline (not a reason guessed from the layer kind afterwards)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 8, bias=False), nn.ReLU())
    with torch.no_grad():
        model[0].weight[: int(8 * sparsity)] = 0
    model = model.half()
    rewrite, _ = _rewrite(model, torch.randn(2, 16).half(), {"0.weight": model[0].weight})
    d = rewrite.decisions["0.weight"]
    assert d.kind is DecisionKind.DENSE_GENERIC and d.decline is Decline.NON_FLOAT32
    assert d.reason == (
        "unmasked"
        if sparsity == 0
        else "no cascc kernel for a non-float32 weight or activation yet: zeros run dense"
    )


def test_an_unfoldable_clip_leaves_the_layer_to_the_shorter_pattern():
    """clip(0, 5) is not ReLU6: the longest pattern declines (NOT_FOLDABLE), the one without the clip takes
    the layer, and its decision replaces the decline."""

    class Clip5(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 8)

        def forward(self, x):
            return torch.clamp(self.fc(x), 0.0, 5.0)

    torch.manual_seed(0)
    model = Clip5()
    rewrite, out = _rewrite(model, torch.randn(2, 16), {"fc.weight": model.fc.weight})
    d = rewrite.decisions["fc.weight"]
    assert d.kind in (DecisionKind.SPARSE, DecisionKind.DENSE_CASCC) and "R.clip(" in out["main"].script()


def test_layers_no_pattern_matches_say_so():
    from cascc.lower import decide

    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 8), nn.Flatten(), nn.Linear(24, 4))
    program = from_module(model, (torch.tensor([[1, 2, 3]]),))
    program = passes.run(program, [("prune.magnitude", {"sparsity": 0.5})])
    emb, _ = decide(program, {})
    assert emb.decline is Decline.NOT_MATCHED and emb.kind is DecisionKind.DENSE_GENERIC
    assert "zeros run dense" in emb.reason


def test_vector_widths_come_from_the_target():
    """arm64's row kernels keep x86's 16 lanes (four NEON registers) by its field; a narrower width changes
    the generated row kernels, not a constant in them."""
    from cascc.lower.kernels.norm import softmax
    from cascc.lower.legalize import cpu

    x86, arm = TARGETS["x86"], TARGETS["arm64"]
    assert (x86.vector_lanes, x86.vector_registers, x86.kernel_lanes) == (16, 32, 16)
    assert (arm.vector_lanes, arm.vector_registers, arm.kernel_lanes) == (4, 32, 16)
    narrow = dataclasses.replace(arm, kernel_lanes=4)
    assert set(cpu(narrow)) == set(cpu(arm))
    assert "T.vectorized(4)" in softmax(2, 8, lanes=4).script()
    assert "T.vectorized(16)" in softmax(2, 32, lanes=16).script()
