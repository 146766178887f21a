"""Writes at indices (ScatterElements, ScatterND) and GatherND, which reads at ScatterND's index tuples.

An index tuple addresses the leading dims of `data`; both ND ops flatten those dims into one and turn each
tuple into a row number, so a gather or scatter along dim 0 does the rest.
"""

from __future__ import annotations

import math

import torch

from .registry import _axis, op

# ONNX reduction -> torch scatter_reduce's (applied with the existing values included, as the spec's loop)
REDUCE = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def _rows(indices, sizes):
    """Index tuples over dims of `sizes` (the last axis of `indices`, negatives counting from the end) as
    row numbers of those dims flattened in row-major order."""
    idx = indices.to(torch.int64)
    extent = torch.tensor(sizes, dtype=torch.int64)
    idx = torch.where(idx < 0, idx + extent, idx)
    strides = [math.prod(sizes[j + 1 :]) for j in range(len(sizes))]
    return (idx * torch.tensor(strides, dtype=torch.int64)).sum(-1)


@op(since=11)
def GatherND(data, indices, *, batch_dims=0):
    b, k = batch_dims, indices.shape[-1]
    batch = math.prod(data.shape[:b])
    addressed, rest = data.shape[b : b + k], data.shape[b + k :]
    rows = _rows(indices, list(addressed)).reshape(batch, -1)  # [batch, tuples]
    table = data.reshape(batch, math.prod(addressed), math.prod(rest))
    picked = torch.gather(table, 1, rows.unsqueeze(-1).expand(-1, -1, table.shape[-1]))
    return picked.reshape(*data.shape[:b], *indices.shape[b:-1], *rest)


@op(since=11)
def ScatterND(data, indices, updates, *, reduction="none"):
    k = indices.shape[-1]
    addressed = list(data.shape[:k])
    table = data.reshape(math.prod(addressed), -1)
    rows = _rows(indices, addressed).reshape(-1)
    values = updates.reshape(rows.shape[0], table.shape[1]).to(data.dtype)
    index = rows.unsqueeze(-1).expand(-1, table.shape[1])
    if reduction == "none":  # duplicate tuples: undefined by the spec
        out = table.scatter(0, index, values)
    elif reduction == "add":  # an index per dimension, as TVM's index_put takes them
        columns = torch.arange(table.shape[1]).expand_as(index)
        out = table.index_put((index, columns), values, accumulate=True)
    elif reduction in REDUCE:
        out = table.scatter_reduce(0, index, values, REDUCE[reduction], include_self=True)
    else:
        raise NotImplementedError(f"ScatterND reduction {reduction!r}")
    return out.reshape(data.shape)


@op(since=11)
def ScatterElements(data, indices, updates, *, axis=0, reduction="none"):
    axis = _axis(axis, data.dim())
    idx = indices.to(torch.int64)
    idx = torch.where(idx < 0, idx + data.shape[axis], idx)
    values = updates.to(data.dtype)
    if reduction == "none":
        return data.scatter(axis, idx, values)
    if reduction not in REDUCE:
        raise NotImplementedError(f"ScatterElements reduction {reduction!r}")
    return data.scatter_reduce(axis, idx, values, REDUCE[reduction], include_self=True)


@op(since=9)
def Scatter(data, indices, updates, *, axis=0):
    """Opsets 9-10: ScatterElements before its rename."""
    return ScatterElements(data, indices, updates, axis=axis)
