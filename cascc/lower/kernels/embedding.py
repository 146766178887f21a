"""Embedding lookups: Y[t] = W[ids[t]], from the dense table or from its nonzeros in CSR rows.

TVM imports aten.embedding as `take(..., mode="fast")`, which reads out of bounds for a token id outside
the table; both kernels clamp the id to [0, vocab) instead, so an untrusted input cannot read past the
table (torch raises there; a deployed model gets the nearest row).
"""

from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from .cache import cached
from .linear import SCHEDULED


@cached
def dense_gather(tokens: int, vocab: int, dim: int) -> tirx.PrimFunc:
    """Y[t, :] = W[clamp(ids[t]), :]."""

    @T.prim_func
    def kernel_(
        ids: T.Buffer((tokens,), "int32"),
        W: T.Buffer((vocab, dim), "float32"),
        Y: T.Buffer((tokens, dim), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for t in range(tokens):
            row = T.max(T.min(ids[t], vocab - 1), 0)
            for j in range(dim):
                Y[t, j] = W[row, j]

    return kernel_


@cached
def sparse_gather(tokens: int, vocab: int, dim: int, nnz: int, index_dtype: str) -> tirx.PrimFunc:
    """Y[t, :] = 0, then Y[t, cols[s]] = vals[s] for the slots s of row clamp(ids[t])."""

    @T.prim_func
    def kernel_(
        ids: T.Buffer((tokens,), "int32"),
        vals: T.Buffer((nnz,), "float32"),
        cols: T.Buffer((nnz,), index_dtype),
        ptr: T.Buffer((vocab + 1,), "int32"),
        Y: T.Buffer((tokens, dim), "float32"),
    ):
        T.func_attr(SCHEDULED)
        for t in range(tokens):
            row = T.max(T.min(ids[t], vocab - 1), 0)
            for j in range(dim):
                Y[t, j] = T.float32(0)
            for s in range(ptr[row], ptr[row + 1]):
                Y[t, T.Cast("int32", cols[s])] = vals[s]

    return kernel_


def pack_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The table's nonzeros as CSR rows: (values, column indices, row pointers); int16 columns where the
    width fits. Never empty (an all-zero table keeps one padding slot no row points at)."""
    rows, cols = np.nonzero(weight)
    index = np.int16 if weight.shape[1] <= np.iinfo(np.int16).max + 1 else np.int32
    ptr = np.zeros(weight.shape[0] + 1, np.int32)
    np.cumsum(np.bincount(rows, minlength=weight.shape[0]), out=ptr[1:])
    vals = weight[rows, cols].astype(np.float32)
    if not len(vals):
        return np.zeros(1, np.float32), np.zeros(1, index), ptr
    return vals, cols.astype(index), ptr


def sparse_bytes(weight: np.ndarray) -> int:
    """Bytes the CSR rows of `weight` take (values, columns, row pointers)."""
    index = 2 if weight.shape[1] <= np.iinfo(np.int16).max + 1 else 4
    return int(np.count_nonzero(weight)) * (4 + index) + 4 * (weight.shape[0] + 1)
