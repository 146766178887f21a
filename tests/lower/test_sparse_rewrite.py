"""The Relax rewrite puts cascc kernels in place of linear layers, and the compiled model still matches torch."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from cascc import passes
from cascc.frontends.torch import from_module
from cascc.lower.decision import DecisionKind, Decline
from cascc.targets import TARGETS, KernelCosts


def mlp_program(batch, sparsity):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 33), nn.Linear(33, 10, bias=False), nn.ReLU()
    )
    program = from_module(model, (torch.randn(batch, 40),))
    return passes.run(program, [("prune.magnitude", {"sparsity": sparsity})])


def target_forcing(sparse: bool):
    costs = KernelCosts(margin=0.0 if sparse else float("inf"))
    return dataclasses.replace(TARGETS["x86"], costs=costs)


def run_lowered(lowered, x):
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(lowered.executable, tvm.cpu())
    vm["main"](tvm.runtime.tensor(np.flip(x).copy()))  # an earlier call on other data must not leak in
    out = vm["main"](tvm.runtime.tensor(x))
    return out[0].numpy()


# batch 1 and 7: narrow kernels; 20: wide, below one vector; 45: wide, with a pulled-back last chunk
@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("batch", [1, 7, 20, 45])
def test_rewritten_model_matches_torch(batch, sparse):
    from cascc.lower import lower

    program = mlp_program(batch, 0.8)
    lowered = lower(program, target_forcing(sparse))
    kinds = [d.kind for d in lowered.decisions]
    assert (
        kinds == [DecisionKind.SPARSE if sparse else DecisionKind.DENSE_CASCC] * 3
    )  # the kernel really was chosen
    assert all(d.dense_us is not None and d.sparse_us is not None for d in lowered.decisions)
    x = np.random.default_rng(batch).standard_normal((batch, 40)).astype(np.float32)
    expected = program.module()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(run_lowered(lowered, x), expected, rtol=1e-5, atol=1e-5)


def test_rewrite_replaces_every_matmul_and_fuses_epilogues():
    import tvm
    from tvm import relax

    from cascc.lower.pipeline import to_relax
    from cascc.lower.rewrite import LayerRewrite, weight_key

    program = mlp_program(1, 0.9)
    names = {weight_key(program.masked_weights()[n].numpy()): [n] for n in program.masks}
    mod = to_relax(program.with_weights(program.masked_weights()).exported)
    rewrite = LayerRewrite(target_forcing(True), names)
    out = rewrite(mod)
    ops = []
    relax.analysis.post_order_visit(
        out["main"],
        lambda e: (
            ops.append(e.op.name) if isinstance(e, relax.Call) and isinstance(e.op, tvm.ir.Op) else None
        ),
    )
    assert "relax.matmul" not in ops and "relax.nn.relu" not in ops and "relax.add" not in ops
    assert ops.count("relax.call_tir") == 3
    kernels = sorted(gv.name_hint for gv, f in out.functions_items() if isinstance(f, tvm.tirx.PrimFunc))
    assert kernels == ["cascc_0_weight_sparse", "cascc_2_weight_sparse", "cascc_3_weight_sparse"]
    assert set(rewrite.decisions) == {"0.weight", "2.weight", "3.weight"}


def test_cost_model_prefers_sparse_only_when_sparse_enough():
    from cascc.lower import lower

    target = dataclasses.replace(TARGETS["x86"], costs=KernelCosts())

    def wide(s):
        return from_module(nn.Linear(1024, 1024), (torch.randn(1, 1024),))

    sparse = lower(passes.run(wide(0), [("prune.magnitude", {"sparsity": 0.95})]), target).decisions[0]
    dense = lower(passes.run(wide(0), [("prune.magnitude", {"sparsity": 0.3})]), target).decisions[0]
    assert (
        sparse.kind is DecisionKind.SPARSE and sparse.decline is None and sparse.sparse_us < sparse.dense_us
    )
    assert dense.kind is DecisionKind.DENSE_CASCC and dense.decline is Decline.COST_MODEL
    assert "needs" in dense.reason


def test_measure_times_both_kernels_of_each_layer(tmp_path):
    import cascc
    from cascc.runtime.artifact import open_artifact

    program = mlp_program(1, 0.9)
    cascc.compile(program, out=tmp_path / "m", measure=True)
    rows = open_artifact(tmp_path / "m").manifest["layers"]
    for row in rows:
        assert set(row["measured_us"]) == {"sparse", "dense"}
        assert all(v > 0 for v in row["measured_us"].values())


def test_measure_refuses_targets_that_cannot_run_here():
    from cascc.errors import OptionError
    from cascc.lower import lower

    with pytest.raises(OptionError, match="cannot run this target"):
        lower(mlp_program(1, 0.5), TARGETS["arm64"], measure=True)


@pytest.mark.parametrize(
    "criterion, kernel",
    [
        (("prune.block", {"block": "1x8"}), "sparse BSR 1×8"),
        (("prune.block", {"block": "4x1"}), "sparse tiled-ELL 4-row r×1 broadcast"),
        (("prune.magnitude", {}), "sparse tiled-ELL 16-row gather"),
    ],
)
def test_narrow_format_follows_the_mask_structure(criterion, kernel):
    """Per layer, the cost model picks the format the mask's structure makes cheapest, and it still matches
    torch (block pruning may leave one partial block per layer: shared and 1×C packings store its zeros)."""
    from cascc.lower import lower

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 192), nn.ReLU(), nn.Linear(192, 10))
    program = from_module(model, (torch.randn(1, 256),))
    step, options = criterion
    program = passes.run(program, [(step, {"sparsity": 0.9, **options})])
    lowered = lower(program, dataclasses.replace(TARGETS["x86"], costs=KernelCosts()))
    assert lowered.decisions[0].kernel.startswith(kernel), lowered.decisions[0]
    assert kernel.removeprefix("sparse ") in lowered.decisions[0].reason
    x = np.random.default_rng(0).standard_normal((1, 256)).astype(np.float32)
    expected = program.module()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(run_lowered(lowered, x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "criterion, index", [(("prune.block", {"block": "1x8"}), np.int16), (("prune.magnitude", {}), np.int32)]
)
def test_column_indices_are_int16_where_loaded_one_at_a_time(criterion, index):
    """1×C blocks and broadcast columns load one index at a time: int16 where K fits; per-lane gathers
    (vector index loads, slower as int16) and nothing else keep int32."""
    from cascc.lower.kernels.formats import scalar_index
    from cascc.lower.pipeline import to_relax
    from cascc.lower.rewrite import LayerRewrite, weight_key

    torch.manual_seed(0)
    program = from_module(nn.Sequential(nn.Linear(96, 64)), (torch.randn(1, 96),))
    step, options = criterion
    program = passes.run(program, [(step, {"sparsity": 0.9, **options})])
    names = {weight_key(program.masked_weights()[n].numpy()): [n] for n in program.masks}
    rewrite = LayerRewrite(target_forcing(True), names, keep_candidates=True)
    rewrite(to_relax(program.with_weights(program.masked_weights()).exported))
    cols = rewrite.candidates["0.weight"]["sparse"].consts[1]
    assert cols.dtype == index
    assert scalar_index(32768) is np.int16 and scalar_index(32769) is np.int32


@pytest.mark.parametrize("m, lanes", [(2048, 32), (1000, 32), (20, 32), (45, 32), (64, 16)])
def test_operand_pitch_is_an_odd_number_of_cache_lines(m, lanes):
    """Wide operands never get a pitch of an even number of 64-byte lines (a multiple of 4 KB at worst),
    which maps the rows a sparse tile reads at one column into a few L1 sets."""
    from cascc.lower.strategies.wide import operand_pitch

    pitch = operand_pitch(m, lanes, TARGETS["x86"].line_floats)
    assert pitch >= max(m, lanes) and pitch % 16 == 0 and (pitch // 16) % 2 == 1
    assert pitch - max(m, lanes) < 32  # at most one line more than the next whole line


@pytest.mark.parametrize("sparse", [True, False])
def test_linears_stored_in_out_take_cascc_kernels(sparse):
    """GPT-2's Conv1D (addmm(b, x, W) with W [in, out]) and x @ W run as cascc linear kernels."""
    from cascc.lower import lower
    from models import InOutMLP

    torch.manual_seed(3)
    x = torch.randn(1, 5, 32)
    program = passes.run(from_module(InOutMLP().eval(), (x,)), [("prune.magnitude", {"sparsity": 0.8})])
    lowered = lower(program, target_forcing(sparse))
    kinds = {d.layer: d.kind for d in lowered.decisions}
    kind = DecisionKind.SPARSE if sparse else DecisionKind.DENSE_CASCC
    assert kinds == dict.fromkeys(("up.weight", "down", "head.weight"), kind)
    with torch.no_grad():
        expected = program.module()(x).numpy()
    np.testing.assert_allclose(run_lowered(lowered, x.numpy()), expected, rtol=1e-5, atol=1e-5)
