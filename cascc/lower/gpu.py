"""Relax rewrite for GPU targets: sparse linear layers become a CSR kernel bound to GPU threads.

Linear layers (with bias and ReLU/ReLU6 fused, see `patterns.py`) whose CSR form is predicted faster than
the dense matmul under the target's bandwidth model become `call_tir` to `csr_linear`; every other layer
stays a Relax op for dlight's GPU schedules, and its decision says why. Convolutions have no GPU sparse
kernel yet: their zeros run dense, and the decision says so.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np
import tvm
from tvm import relax, tirx
from tvm.script import tirx as T

from cascc.targets import KernelCosts

from .decision import Decision
from .kernels.linear import SCHEDULED, _activate
from .patterns import Chain, LayerPatterns
from .sparse import density_of, layer_name, match_linear, rewrite_layers

THREADS = 128  # threads per block: 4 warps


def csr_linear(batch: int, k: int, n: int, nnz: int, act: str | None) -> tirx.PrimFunc:
    """Y[b, i] = act(Σ_j data[j] · X[b, cols[j]] + bias[i]) over row i's CSR slice; one GPU thread per
    output element (consecutive threads take consecutive rows of one sample, so weight reads of a warp are
    spread over neighbouring rows and its writes coalesce)."""
    total = batch * n
    blocks = (total + THREADS - 1) // THREADS

    @T.prim_func
    def kernel(
        X: T.Buffer((batch, k), "float32"),
        data: T.Buffer((nnz,), "float32"),
        cols: T.Buffer((nnz,), "int32"),
        ptr: T.Buffer((n + 1,), "int32"),
        bias: T.Buffer((n,), "float32"),
        Y: T.Buffer((batch, n), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for block in T.thread_binding(blocks, thread="blockIdx.x"):
            for thread in T.thread_binding(THREADS, thread="threadIdx.x"):
                if block * THREADS + thread < total:
                    acc = T.alloc_local((1,), "float32")
                    b = (block * THREADS + thread) // n
                    i = (block * THREADS + thread) % n
                    acc[0] = bias[i]
                    for j in range(ptr[i + 1] - ptr[i]):
                        acc[0] = acc[0] + data[ptr[i] + j] * X[b, cols[ptr[i] + j]]
                    Y[b, i] = _activate(acc[0], act)

    return kernel


def predicted_us(costs: KernelCosts, batch: int, k: int, n: int, nnz: int) -> tuple[float, float]:
    """(dense, sparse) µs: bytes moved over the effective bandwidth, plus one launch each."""
    dense_bytes = 4 * (n * k + batch * (k + n))
    sparse_bytes = 8 * nnz + 4 * (n + 1) + costs.gpu_gather_penalty * 4 * batch * min(nnz, k) + 4 * batch * n
    to_us = lambda b: b / costs.gpu_bytes_per_ns / 1000 + costs.gpu_launch_us
    return to_us(dense_bytes), to_us(sparse_bytes)


@tvm.transform.module_pass(opt_level=0, name="CasccGpuRewrite")
class GpuRewrite:
    """Replace sparse linear layers of `main` by the CSR kernel; `decisions` fills with one entry per layer."""

    def __init__(self, costs: KernelCosts, names: Mapping[str, Sequence[str]], cores: int = 1, **_unused):
        self.costs = costs
        self.names = {key: deque(layer_names) for key, layer_names in names.items()}
        self.decisions: dict[str, Decision] = {}
        self.candidates: dict = {}  # no per-kernel measurement on GPU targets

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return rewrite_layers(self, mod)

    def _linear(self, pats: LayerPatterns, chain: Chain, expr, m):
        matched = match_linear(pats, chain, m)
        if matched is None:
            return expr
        x, (batch, k), weight, ep = matched
        name = self._name(weight)
        if name in self.decisions:
            return expr
        n = weight.shape[0]
        nnz = int(np.count_nonzero(ep.weight))
        density = density_of(weight)
        dense_us, sparse_us = predicted_us(self.costs, batch, k, n, nnz)
        if sparse_us * self.costs.margin > dense_us:
            reason = f"dense: CSR predicted {dense_us / sparse_us:.2f}× (needs {self.costs.margin}×)"
            self.decisions[name] = Decision(
                name, density, "dense (dlight GPU schedule)", reason, dense_us, sparse_us
            )
            return expr
        rows = ep.weight != 0
        ptr = np.concatenate([[0], np.cumsum(rows.sum(axis=1))]).astype(np.int32)
        cols = np.nonzero(rows)[1].astype(np.int32)
        data = ep.weight[rows].astype(np.float32)
        if nnz == 0:  # buffers cannot be empty: one explicit zero, never read (every row is empty)
            cols, data = np.zeros(1, np.int32), np.zeros(1, np.float32)
        bias = ep.bias if ep.bias is not None else np.zeros(n, np.float32)
        func = csr_linear(batch, k, n, len(data), ep.act)
        gvar = self.bb.add_func(
            func.with_attr("global_symbol", f"cascc_csr_{len(self.decisions)}"), "csr_linear"
        )
        self.decisions[name] = Decision(
            name,
            density,
            "sparse CSR, thread per output",
            f"sparse: predicted {dense_us / sparse_us:.1f}× faster",
            dense_us,
            sparse_us,
        )
        consts = [relax.const(a) for a in (data, cols, ptr, bias.astype(np.float32))]
        return relax.call_tir(gvar, [x, *consts], relax.TensorType((batch, n), "float32"))

    def _conv(self, pats: LayerPatterns, chain: Chain, expr, m):
        weight = m[pats.w].value.numpy()
        name = self._name(weight)
        if name not in self.decisions:
            density = density_of(weight)
            reason = "unmasked" if density == 1.0 else "no GPU sparse conv kernel yet: zeros run dense"
            self.decisions[name] = Decision(name, density, "dense (dlight GPU schedule)", reason)
        return expr

    def _name(self, weight: np.ndarray) -> str:
        return layer_name(self.names, weight, len(self.decisions))
