"""Shape, indexing, padding and constant ops."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .registry import _axis, constant, floats, ints, op, scalar, torch_dtype  # noqa: F401


@op()
def Flatten(input, *, axis=1):
    axis = _axis(axis, input.dim())
    return input.reshape(math.prod(input.shape[:axis]), math.prod(input.shape[axis:]))


@op(since=5)
def Reshape(data, shape, *, allowzero=0):
    target = ints(shape)
    if not allowzero:
        target = [data.shape[i] if v == 0 else v for i, v in enumerate(target)]
    return data.reshape(target)


@op()
def Transpose(data, *, perm=None):
    return data.permute(perm if perm is not None else list(reversed(range(data.dim()))))


@op()
def Concat(*inputs, axis):
    return torch.cat(inputs, _axis(axis, inputs[0].dim()))


@op(since=2, name="Split")
def Split_v2(input, *, axis=0, split=None, _outputs=1):
    return _split(input, axis, split, _outputs)


@op(since=13)
def Split(input, split=None, *, axis=0, num_outputs=None, _outputs=1):
    return _split(input, axis, ints(split), _outputs)


def _split(x, axis, sizes, outputs):
    axis = _axis(axis, x.dim())
    if sizes is None:
        chunk = -(-x.shape[axis] // outputs)
        sizes = [min(chunk, x.shape[axis] - i * chunk) for i in range(outputs)]
    return tuple(torch.split(x, list(sizes), dim=axis))


@op(since=1, name="Slice")
def Slice_v1(data, *, axes=None, ends, starts):
    return _slice(data, starts, ends, axes, None)


@op(since=10)
def Slice(data, starts, ends, axes=None, steps=None):
    return _slice(data, ints(starts), ints(ends), ints(axes), ints(steps))


def _slice(x, starts, ends, axes, steps):
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis = _axis(axis, x.dim())
        size = x.shape[axis]
        idx = list(range(size))[slice(*_clamped(start, end, step, size))]
        if idx == list(range(size)):
            continue
        if step == 1 and idx:
            x = x.narrow(axis, idx[0], len(idx))
        else:
            x = x.index_select(axis, torch.tensor(idx, dtype=torch.long))
    return x


def _clamped(start, end, step, size):
    """ONNX Slice bounds: negative indices count from the end; clamp to [0, size] (or [-1, size-1] backwards)."""
    if start < 0:
        start += size
    if end < 0:
        end += size
    if step > 0:
        start, end = min(max(start, 0), size), min(max(end, 0), size)
    else:
        start, end = min(max(start, -1), size - 1), min(max(end, -1), size - 1)
        if end == -1:
            end = None
    return start, end, step


@op()
def Gather(data, indices, *, axis=0):
    axis = _axis(axis, data.dim())
    idx = torch.where(indices < 0, indices + data.shape[axis], indices).long()
    picked = data.index_select(axis, idx.flatten())
    return picked.reshape((*data.shape[:axis], *idx.shape, *data.shape[axis + 1 :]))


@op()
def GatherElements(data, indices, *, axis=0):
    axis = _axis(axis, data.dim())
    idx = torch.where(indices < 0, indices + data.shape[axis], indices).long()
    return torch.gather(data, axis, idx)


@op(since=1, name="Squeeze")
def Squeeze_v1(data, *, axes=None):
    return _squeeze(data, axes)


@op(since=13)
def Squeeze(data, axes=None):
    return _squeeze(data, ints(axes))


def _squeeze(x, axes):
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    keep = [d for i, d in enumerate(x.shape) if i not in {_axis(a, x.dim()) for a in axes}]
    return x.reshape(keep)


@op(since=1, name="Unsqueeze")
def Unsqueeze_v1(data, *, axes):
    return _unsqueeze(data, axes)


@op(since=13)
def Unsqueeze(data, axes):
    return _unsqueeze(data, ints(axes))


def _unsqueeze(x, axes):
    rank = x.dim() + len(axes)
    shape = list(x.shape)
    for axis in sorted(_axis(a, rank) for a in axes):
        shape.insert(axis, 1)
    return x.reshape(shape)


@op(since=14)
def Trilu(input, k=None, *, upper=1):
    diagonal = 0 if k is None else int(scalar(constant(k, "k")))
    return torch.triu(input, diagonal) if upper else torch.tril(input, diagonal)


@op(since=9, name="OneHot")
def OneHot_v9(indices, depth, values, *, axis=-1):
    return _one_hot(indices, depth, values, axis, wrap=False)


@op(since=11)
def OneHot(indices, depth, values, *, axis=-1):
    return _one_hot(indices, depth, values, axis, wrap=True)


def _one_hot(indices, depth, values, axis, wrap):
    """Indices in [0, depth) (from opset 11 also [-depth, 0), counting from the end) pick on_value; any other
    gives a row of off_value."""
    n = int(scalar(constant(depth, "depth")))
    axis = _axis(axis, indices.dim() + 1)
    idx = indices.to(torch.int64)  # float indices are truncated, as the spec's cast
    if wrap:
        idx = torch.where(idx < 0, idx + n, idx)
    idx = idx.unsqueeze(axis)
    classes = torch.arange(n, dtype=torch.int64).reshape([n if i == axis else 1 for i in range(idx.dim())])
    off, on = values.reshape(2)[0], values.reshape(2)[1]
    return torch.where(idx == classes, on, off)


@op()
def DepthToSpace(input, *, blocksize, mode="DCR"):
    b, c, h, w = input.shape
    n = blocksize
    if mode == "DCR":  # depth split as [row offset, column offset, channel]
        y = input.reshape(b, n, n, c // (n * n), h, w).permute(0, 3, 4, 1, 5, 2)
    elif mode == "CRD":  # as [channel, row offset, column offset]
        y = input.reshape(b, c // (n * n), n, n, h, w).permute(0, 1, 4, 2, 5, 3)
    else:
        raise NotImplementedError(f"DepthToSpace mode {mode!r}")
    return y.reshape(b, c // (n * n), h * n, w * n)


@op()
def SpaceToDepth(input, *, blocksize, mode="DCR"):
    # opsets 1-13 have no mode and lay the output out as DCR; opset 28 adds CRD
    b, c, h, w = input.shape
    n = blocksize
    blocks = input.reshape(b, c, h // n, n, w // n, n)
    if mode == "DCR":
        y = blocks.permute(0, 3, 5, 1, 2, 4)
    elif mode == "CRD":
        y = blocks.permute(0, 1, 3, 5, 2, 4)
    else:
        raise NotImplementedError(f"SpaceToDepth mode {mode!r}")
    return y.reshape(b, c * n * n, h // n, w // n)


@op()
def Expand(input, shape):
    return input.expand(torch.broadcast_shapes(tuple(input.shape), tuple(ints(shape))))


@op()
def Tile(input, repeats):
    return input.repeat(ints(repeats))


@op()
def Shape(data, *, start=0, end=None):
    dims = list(data.shape)[slice(start, end)]
    return torch.tensor(dims, dtype=torch.int64)


@op()
def Size(data):
    return torch.tensor(data.numel(), dtype=torch.int64)


@op()
def Constant(
    *,
    value=None,
    value_float=None,
    value_floats=None,
    value_int=None,
    value_ints=None,
    sparse_value=None,
    value_string=None,
    value_strings=None,
):
    if value is not None:
        return value
    if value_float is not None:
        return torch.tensor(value_float, dtype=torch.float32)
    if value_floats is not None:
        return torch.tensor(value_floats, dtype=torch.float32)
    if value_int is not None:
        return torch.tensor(value_int, dtype=torch.int64)
    if value_ints is not None:
        return torch.tensor(value_ints, dtype=torch.int64)
    raise ValueError("Constant: string and sparse values are not supported")


@op()
def ConstantOfShape(input, *, value=None):
    fill = value if value is not None else torch.zeros(1, dtype=torch.float32)
    return torch.full(ints(input), fill.flatten()[0].item(), dtype=fill.dtype)


@op()
def Range(start, limit, delta):
    return torch.arange(scalar(start), scalar(limit), scalar(delta), dtype=start.dtype)


@op(since=2, name="Pad")
def Pad_v2(data, *, mode="constant", pads, value=0.0):
    return _pad(data, pads, value, mode, None)


@op(since=11)
def Pad(data, pads, constant_value=None, axes=None, *, mode="constant"):
    value = 0.0 if constant_value is None or constant_value.numel() == 0 else scalar(constant_value)
    return _pad(data, ints(pads), value, mode, ints(axes))


def _pad(x, pads, value, mode, axes):
    rank = x.dim()
    axes = [_axis(a, rank) for a in axes] if axes is not None else list(range(rank))
    n = len(axes)
    full = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        full[axis], full[axis + rank] = pads[i], pads[i + n]
    torch_pads = []
    for axis in reversed(range(rank)):
        torch_pads += [full[axis], full[axis + rank]]
    while len(torch_pads) > 2 and torch_pads[-2:] == [0, 0]:
        torch_pads = torch_pads[:-2]
    if mode == "constant":
        return F.pad(x, torch_pads, value=value)
    torch_mode = {"reflect": "reflect", "edge": "replicate", "wrap": "circular"}[mode]
    padded_dims = len(torch_pads) // 2
    batch = x.shape[: rank - padded_dims]
    body = x.reshape(1, math.prod(batch) if batch else 1, *x.shape[rank - padded_dims :])
    y = F.pad(body, torch_pads, mode=torch_mode)
    return y.reshape(*batch, *y.shape[2:])
