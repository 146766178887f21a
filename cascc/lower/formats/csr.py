"""CSR for GPU targets: one thread per output element walks its row's nonzeros in registers."""

from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from .. import cost
from ..kernels.linear import SCHEDULED, _activate
from . import Format, Operand, Option, Work, register

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


def _pack(work: Work, _option: Option) -> tuple[np.ndarray, ...]:
    """(data, cols, ptr, bias); an empty layer stores one explicit zero, never read (every row is empty)."""
    rows = work.weight != 0
    ptr = np.concatenate([[0], np.cumsum(rows.sum(axis=1))]).astype(np.int32)
    cols = np.nonzero(rows)[1].astype(np.int32)
    data = work.weight[rows].astype(np.float32)
    if not len(data):
        cols, data = np.zeros(1, np.int32), np.zeros(1, np.float32)
    bias = work.bias if work.bias is not None else np.zeros(work.n, np.float32)
    return data, cols, ptr, bias.astype(np.float32)


def _options(work: Work) -> list[Option]:
    """Bytes moved over the effective bandwidth plus one launch: values and columns, row offsets, the
    scattered activation reads (`gpu_gather_penalty` times), the output."""
    c, batch, k, n = work.costs, work.batch, work.k, work.n
    nnz = int(np.count_nonzero(work.weight))
    sparse_bytes = 8 * nnz + 4 * (n + 1) + c.gpu_gather_penalty * 4 * batch * min(nnz, k) + 4 * batch * n
    return [Option(CSR, 1, 1, 0.0, nnz, cost.gpu_us(c, sparse_bytes))]


CSR = register(
    Format(
        name="csr.gpu",
        operand=Operand.GPU,
        sparse=True,
        rank=0,
        options=_options,
        stored_lanes=lambda w, _r, _c, _costs: int(np.count_nonzero(w)),
        pack=_pack,
        kernel=lambda w, o, packed, _parallel: (csr_linear(w.batch, w.k, w.n, len(packed[0]), w.act), packed),
        label=lambda o: "CSR, thread per output",
    )
)
