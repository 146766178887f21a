"""The wide kernels' operand layout kernel against numpy."""

import numpy as np
import pytest
import torch


@pytest.mark.parametrize(
    "rows, k, pitch, lanes",
    [(197, 192, 208, 16), (5, 7, 16, 16), (33, 20, 48, 16), (17, 9, 32, 8), (6, 5, 8, 4)],
)
@pytest.mark.parametrize("parallel", [False, True])
def test_transposed_rows_match_numpy(rows, k, pitch, lanes, parallel):
    """Edge tiles in both directions (k and rows not multiples of the tile) and every pad column at zero."""
    import tvm

    from cascc.lower.kernels.layout import transposed_rows
    from cascc.lower.target import for_cpu, resolve
    from cascc.targets import get

    func = transposed_rows(rows, k, pitch, lanes, parallel)
    lib = tvm.compile(tvm.IRModule({"main": func}), target=resolve(for_cpu(get("x86"))))
    x = np.random.default_rng(rows).standard_normal((rows, k)).astype(np.float32)
    want = np.zeros((k, pitch), np.float32)
    want[:, :rows] = x.T
    y = tvm.runtime.tensor(np.full((1, k * pitch), np.nan, np.float32))
    lib["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(np.zeros(1, np.float32)), y)
    np.testing.assert_array_equal(y.numpy().reshape(k, pitch), want)


@pytest.mark.parametrize(
    "k, rows, pitch, lanes", [(768, 197, 208, 16), (3, 5, 16, 16), (4, 32, 48, 16), (5, 7, 8, 4)]
)
def test_pitched_rows_match_numpy(k, rows, pitch, lanes):
    import tvm

    from cascc.lower.kernels.layout import pitched_rows
    from cascc.lower.target import for_cpu, resolve
    from cascc.targets import get

    lib = tvm.compile(
        tvm.IRModule({"main": pitched_rows(k, rows, pitch, lanes)}), target=resolve(for_cpu(get("x86")))
    )
    x = np.random.default_rng(k).standard_normal((k, rows)).astype(np.float32)
    want = np.zeros((k, pitch), np.float32)
    want[:, :rows] = x
    y = tvm.runtime.tensor(np.full((1, k * pitch), np.nan, np.float32))
    lib["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(np.zeros(1, np.float32)), y)
    np.testing.assert_array_equal(y.numpy().reshape(k, pitch), want)


def _kernels(model, x) -> list[str]:
    """The cascc kernels `main` calls after the layer rewrite, in order."""
    from tvm import relax

    from cascc.frontends.torch import from_module
    from cascc.lower.pipeline import to_relax
    from cascc.lower.rewrite import LayerRewrite
    from cascc.lower.target import resolve
    from cascc.targets import TARGETS

    with resolve(TARGETS["x86"]):
        mod = LayerRewrite(TARGETS["x86"], {})(to_relax(from_module(model.eval(), (x,)).exported))
    names = []
    relax.analysis.post_order_visit(
        mod["main"],
        lambda e: (
            names.append(e.args[0].name_hint)
            if isinstance(e, relax.Call) and getattr(e.op, "name", "") == "relax.call_tir"
            else None
        ),
    )
    return names


class FeedForward(torch.nn.Module):
    """Three linears over 20 tokens: q/k-style siblings reading one input, then an FFN pair."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(24, 40), torch.nn.Linear(24, 40)
        self.up, self.down = torch.nn.Linear(40, 56), torch.nn.Linear(56, 24)

    def forward(self, x):
        h = self.a(x) * self.b(x)
        return self.down(torch.nn.functional.gelu(self.up(h)))


def test_wide_layers_share_and_chain_their_operands():
    """Siblings reading one activation share one layout kernel call, a wide layer fed by another reads its
    rows without transposing them twice (one pitched copy), and the model matches torch eager."""
    from tests.lower.test_conv_rewrite import compile_and_compare

    torch.manual_seed(1)
    x = torch.randn(1, 20, 24)
    names = _kernels(FeedForward(), x)
    assert sum(n.startswith("cascc_transposed_rows") for n in names) == 2  # x (shared by a and b), h
    assert sum(n.startswith("cascc_pitched_rows") for n in names) == 1  # up's output into down
    compile_and_compare(FeedForward(), x)
