"""The vectorizable erf and tanh of the fused GELU epilogues against torch in float64."""

import numpy as np
import pytest
import torch


def _apply(fn, x: np.ndarray) -> np.ndarray:
    """`fn` applied elementwise to `x` by a 16-lane vectorized TIR kernel built for the host."""
    import tvm
    from tvm.script import tirx as T

    from cascc.lower.target import for_cpu, resolve
    from cascc.targets import get

    n = x.size
    assert n % 16 == 0

    @T.prim_func
    def main(X: T.Buffer((n,), "float32"), Y: T.Buffer((n,), "float32")):
        for i in range(n // 16):
            for j in T.vectorized(16):
                Y[i * 16 + j] = fn(X[i * 16 + j])

    lib = tvm.compile(tvm.IRModule({"main": main}), target=resolve(for_cpu(get("x86"))))
    dev = tvm.cpu()
    y = tvm.runtime.tensor(np.zeros_like(x), dev)
    lib["main"](tvm.runtime.tensor(x, dev), y)
    return y.numpy()


GRID = np.concatenate([np.linspace(-9, 9, 64000), [-1e30, -50, -4, -1e-30, 0, 1e-30, 4, 50, 1e30]])
GRID = np.concatenate([GRID, np.zeros(-GRID.size % 16)]).astype(np.float32)


@pytest.mark.parametrize("name, reference", [("fast_erf", torch.erf), ("fast_tanh", torch.tanh)])
def test_activation_matches_torch_to_a_few_ulp(name, reference):
    from cascc.lower.kernels import activations

    got = _apply(getattr(activations, name), GRID).astype(np.float64)
    want = reference(torch.from_numpy(GRID).double()).numpy()
    error = np.abs(got - want)
    assert error.max() < 4.8e-7, (GRID[error.argmax()], error.max())  # 4 ulp of 1
    clear = np.abs(want) > 1e-6  # an odd function: the sign is right wherever it is not lost to rounding
    assert np.all(np.sign(got[clear]) == np.sign(want[clear]))
