"""Reductions (axes became an input in ReduceSum-13 and in the others at 18), arg-reductions, CumSum, TopK."""

from __future__ import annotations

import torch

from .registry import _axis, constant, floats, ints, op, scalar, torch_dtype  # noqa: F401


def _reduce(fn, data, axes, keepdims, noop_with_empty_axes, empty=None, each=None):
    if not axes:
        if noop_with_empty_axes:  # reducing over no axes: each element alone (|x| for ReduceL1, x² …)
            return each(data) if each is not None else data
        axes = list(range(data.dim()))
    axes = tuple(_axis(a, data.dim()) for a in axes)
    if empty is not None and any(data.shape[a] == 0 for a in axes):  # reducing an empty set: the identity
        shape = (
            [1 if i in axes else d for i, d in enumerate(data.shape)]
            if keepdims
            else [d for i, d in enumerate(data.shape) if i not in axes]
        )
        return torch.full(shape, _identity(empty, data.dtype), dtype=data.dtype)
    return fn(data, axes, bool(keepdims))


def _reductions():
    # name: (reduction, opset whose axes are an input, value over an empty set if torch's differs, the
    # reduction of one element where it is not the element)
    table = {
        "ReduceMean": (lambda x, a, k: x.mean(dim=a, keepdim=k), 18, None, None),
        "ReduceSum": (lambda x, a, k: x.sum(dim=a, keepdim=k), 13, None, None),
        "ReduceMax": (lambda x, a, k: x.amax(dim=a, keepdim=k), 18, float("-inf"), None),
        "ReduceMin": (lambda x, a, k: x.amin(dim=a, keepdim=k), 18, float("inf"), None),
        "ReduceProd": (lambda x, a, k: _prod(x, a, k), 18, None, None),
        "ReduceL2": (lambda x, a, k: x.pow(2).sum(dim=a, keepdim=k).sqrt(), 18, None, torch.abs),
        "ReduceL1": (lambda x, a, k: x.abs().sum(dim=a, keepdim=k), 18, None, torch.abs),
        "ReduceSumSquare": (lambda x, a, k: (x * x).sum(dim=a, keepdim=k), 18, None, lambda x: x * x),
        "ReduceLogSum": (lambda x, a, k: x.sum(dim=a, keepdim=k).log(), 18, None, torch.log),
        "ReduceLogSumExp": (lambda x, a, k: torch.logsumexp(x, dim=a, keepdim=k), 18, None, None),
    }
    for name, (fn, since, empty, each) in table.items():

        def attr_form(data, *, axes=None, keepdims=1, _fn=fn, _empty=empty):
            return _reduce(_fn, data, axes, keepdims, 0, _empty)

        def input_form(
            data, axes=None, *, keepdims=1, noop_with_empty_axes=0, _fn=fn, _empty=empty, _each=each
        ):
            axes = ints(constant(axes, "axes")) if axes is not None else None
            return _reduce(_fn, data, axes, keepdims, noop_with_empty_axes, _empty, _each)

        op(since=1, name=name)(attr_form)
        op(since=since, name=name)(input_form)


def _identity(value: float, dtype: torch.dtype):
    """±inf as the identity of max/min in `dtype` (bool: False/True; integers: their extremes)."""
    if dtype.is_floating_point:
        return value
    if dtype == torch.bool:
        return value > 0
    info = torch.iinfo(dtype)
    return info.max if value > 0 else info.min


def _prod(x, axes, keepdim):
    for axis in sorted(axes, reverse=True):
        x = x.prod(dim=axis, keepdim=keepdim)
    return x


_reductions()


@op()
def ArgMax(data, *, axis=0, keepdims=1, select_last_index=0):
    return _arg(torch.argmax, data, axis, keepdims, select_last_index)


@op()
def ArgMin(data, *, axis=0, keepdims=1, select_last_index=0):
    return _arg(torch.argmin, data, axis, keepdims, select_last_index)


def _arg(fn, data, axis, keepdims, select_last_index):
    """argmax/argmin along `axis`; among ties the first index, or with `select_last_index` the last one."""
    axis = _axis(axis, data.dim())
    if select_last_index:
        return data.shape[axis] - 1 - fn(data.flip(axis), axis, keepdim=bool(keepdims))
    return fn(data, axis, keepdim=bool(keepdims))


@op(since=11)
def CumSum(x, axis, *, exclusive=0, reverse=0):
    axis = _axis(int(scalar(constant(axis, "axis"))), x.dim())
    if reverse:
        x = x.flip(axis)
    y = x.cumsum(axis, dtype=x.dtype)
    if exclusive:  # shift by one: a leading zero, the last sum dropped (no subtraction, so exact)
        size = x.shape[axis]
        zero = torch.zeros_like(x.narrow(axis, 0, min(size, 1)))
        y = torch.cat([zero, y.narrow(axis, 0, max(size - 1, 0))], axis)
    return y.flip(axis) if reverse else y


@op(since=1, name="TopK")
def TopK_v1(X, *, axis=-1, k):
    return _topk(X, k, axis, 1)


@op(since=10, name="TopK")
def TopK_v10(X, K, *, axis=-1):
    return _topk(X, int(scalar(constant(K, "K"))), axis, 1)


@op(since=11)
def TopK(X, K, *, axis=-1, largest=1, sorted=1):
    return _topk(X, int(scalar(constant(K, "K"))), axis, largest)


def _topk(x, k, axis, largest):
    """Values and int64 indices, always sorted (with sorted=0 the spec leaves the order open). Among equal
    values the lower index comes first, as the spec asks: a stable sort, since torch.topk breaks ties its own
    way (it would export as aten.topk, which TVM's converter takes; aten.sort.stable it does not yet)."""
    axis = _axis(axis, x.dim())
    values, indices = torch.sort(x, dim=axis, descending=bool(largest), stable=True)
    return values.narrow(axis, 0, k), indices.narrow(axis, 0, k)
