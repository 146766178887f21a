"""Attention's layout chains and SDPA's scale: a transpose chain that moves no element becomes a reshape
(identity_views.py), the scalar on q and k moves into the score kernel (scalar_scale.py); numpy and torch
eager are the references."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from tests.lower.test_conv_rewrite import compile_and_compare


def _run(mod, x):
    import tvm
    from tvm import relax

    from cascc.lower.target import for_cpu, resolve
    from cascc.targets import get

    lib = tvm.compile(mod, target=resolve(for_cpu(get("x86"))))
    return relax.VirtualMachine(lib, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()


def _ops(func, name: str) -> int:
    from tvm import relax

    found = []
    relax.analysis.post_order_visit(
        func, lambda e: found.append(isinstance(e, relax.Call) and getattr(e.op, "name", "") == name)
    )
    return sum(found)


def _chain(views):
    """main(x: [6, 5]) applying `views`, a list of ("reshape", shape) / ("permute", axes)."""
    from tvm import relax

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((6, 5), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = x
            for kind, arg in views:
                y = bb.emit(relax.op.reshape(y, arg) if kind == "reshape" else relax.op.permute_dims(y, arg))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get()


KEYS = [  # C[h·D + d, t] viewed as attention's Kᵀ[1, h, d, t] (h = 2, D = 3, t = 5)
    ("permute", [1, 0]),
    ("reshape", [1, 5, 6]),
    ("reshape", [1, 5, 2, 3]),
    ("permute", [0, 2, 1, 3]),
    ("permute", [0, 1, 3, 2]),
]
QUERIES = KEYS[:-1]  # Q[1, h, t, d]: a real transpose per head


@pytest.mark.parametrize("views, folded", [(KEYS, True), (QUERIES, False), ([("permute", [1, 0])], False)])
def test_identity_chains_fold_to_a_reshape(views, folded):
    from tvm import relax

    from cascc.lower.identity_views import fold_identity_views

    out = _chain(views)
    out[out.get_global_var("main")] = fold_identity_views(out["main"])
    out = relax.transform.DeadCodeElimination()(out)
    assert (_ops(out["main"], "relax.permute_dims") == 0) == folded
    x = np.arange(30, dtype=np.float32).reshape(6, 5)
    want = x
    for kind, arg in views:
        want = want.reshape(arg) if kind == "reshape" else want.transpose(arg)
    np.testing.assert_array_equal(_run(out, x), want)


class HeadAttention(nn.Module):
    """HF's attention: per-head views of q/k/v linears and torch's SDPA (which scales q and k by √scale),
    with no mask, a padding-style [1, 1, 1, t] mask or a full [1, 1, t, t] one (random: a mask added
    untransposed to transposed scores would not match)."""

    def __init__(self, tokens: int, mask: str | None = None, width: int = 32, heads: int = 2, whisper=False):
        super().__init__()
        self.heads, self.whisper = heads, whisper  # whisper: q · 1/√d on the projection, SDPA unscaled
        self.q, self.k, self.v, self.o = (nn.Linear(width, width) for _ in range(4))
        shape = {"keys": (1, 1, 1, tokens), "full": (1, 1, tokens, tokens)}.get(mask)
        self.register_buffer("mask", None if shape is None else torch.randn(shape) * 3)

    def forward(self, x):
        b, t, c = x.shape

        def split(z):
            return z.view(b, t, self.heads, c // self.heads).transpose(1, 2)

        depth = c // self.heads
        q = split(self.q(x) * depth**-0.5) if self.whisper else split(self.q(x))
        k, v = split(self.k(x)), split(self.v(x))
        scale = 1.0 if self.whisper else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask, scale=scale)
        return self.o(out.transpose(1, 2).reshape(b, t, c))


def _rewritten(model, x, sparsity):
    """The model's Relax module before and after the layer rewrite."""
    from cascc import passes
    from cascc.frontends.torch import from_module
    from cascc.lower import layers
    from cascc.lower.pipeline import to_relax
    from cascc.lower.rewrite import LayerRewrite, weight_key
    from cascc.lower.target import for_cpu
    from cascc.targets import TARGETS

    program = passes.run(from_module(model, (x,)), [("prune.magnitude", {"sparsity": sparsity})])
    weights = program.masked_weights()
    mod = to_relax(program.with_weights(weights).exported)
    names = {}
    for ly in layers(program):
        names.setdefault(weight_key(weights[ly.name].numpy()), []).append(ly.name)
    return mod, LayerRewrite(for_cpu(TARGETS["x86"]), names, cores=1)(mod)


@pytest.mark.parametrize("sparsity", [0.0, 0.9])
@pytest.mark.parametrize("tokens", [40, 9])  # 40: channel-major q/k/v, computed transposed; 9: token-major
@pytest.mark.parametrize("whisper", [False, True])
def test_sdpa_scale_moves_into_the_score_kernel(sparsity, tokens, whisper):
    torch.manual_seed(5)
    model, x = HeadAttention(tokens, whisper=whisper).eval(), torch.randn(1, tokens, 32)
    before, after = _rewritten(model, x, sparsity)
    assert _ops(before["main"], "relax.multiply") >= 1  # √scale on q and on k (SDPA), or on q (Whisper)
    assert _ops(after["main"], "relax.multiply") == 0
    kernels = [gv.name_hint for gv, _ in after.functions_items()]
    assert sum("_scaled" in name for name in kernels) == 1, kernels
    compile_and_compare(model, x, sparsity=sparsity)


@pytest.mark.parametrize("mask", [None, "keys", "full"])
def test_channel_major_attention_runs_transposed_without_copies(mask):
    """Over a wide layer's channel-major outputs the scores, softmax and values take the transposed
    kernels, and no transpose is left between the q/k/v projections and the output projection."""
    torch.manual_seed(7)
    model, x = HeadAttention(40, mask).eval(), torch.randn(1, 40, 32)
    _, after = _rewritten(model, x, 0.9)
    kernels = [gv.name_hint for gv, _ in after.functions_items()]
    assert any(name.startswith("cascc_column_softmax") for name in kernels), kernels
    assert any(name.endswith("_at") for name in kernels), kernels
    # what is left: the model output's transpose back to token-major, and a full mask's own
    assert _ops(after["main"], "relax.permute_dims") == 1 + (mask == "full")
    assert _ops(after["main"], "relax.nn.softmax") == 0
    compile_and_compare(model, x, sparsity=0.9)
