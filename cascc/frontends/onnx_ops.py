"""The ONNX → torch op table: one function per ONNX op, named as the op, its signature the spec's.

Inputs are positional torch tensors (None for an omitted optional input); attributes are keyword-only with
the spec's defaults. A second version of an op exists only where its semantics changed across opsets; it is
registered with the opset it starts at (`@op(since=…)`). Inputs that carry shapes or axes (Reshape's shape,
Slice's starts, …) are constants at import time and are read with `ints()`.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

# name -> [(since opset, function)], newest last
OPS: dict[str, list[tuple[int, Callable]]] = {}


def op(since: int = 1, name: str | None = None):
    """Register an op function under its ONNX name (the function name up to a `_v` suffix)."""

    def add(fn: Callable) -> Callable:
        key = name or fn.__name__.split("_v")[0]
        versions = OPS.setdefault(key, [])
        if any(s == since for s, _ in versions):
            raise ValueError(f"ONNX op {key} since opset {since} registered twice")
        versions.append((since, fn))
        versions.sort(key=lambda v: v[0])
        return fn

    return add


def resolve(name: str, opset: int) -> Callable | None:
    """The version of op `name` in effect at `opset`, or None."""
    chosen = None
    for since, fn in OPS.get(name, ()):
        if since <= opset:
            chosen = fn
    return chosen


# While tracing, an initializer reaches an op as a parameter (a fake tensor); the importer lists the real
# values here (by tensor identity) so that inputs read as numbers resolve to them.
CONCRETE: contextvars.ContextVar[dict[int, torch.Tensor] | None] = contextvars.ContextVar("concrete", default=None)


def concrete(t: torch.Tensor) -> torch.Tensor:
    """The real value behind an input read as numbers (shape, axes, scales, scalars)."""
    return (CONCRETE.get() or {}).get(id(t), t)


def numbers(t: torch.Tensor) -> list:
    """A constant input's values as a flat Python list. `tolist` only: under tracing, any torch op on the
    value (even a view) would turn it into a fake tensor."""
    values = concrete(t).tolist()
    flat: list = []
    stack = [values]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            flat.append(item)
    return flat


def ints(t: torch.Tensor | Sequence[int] | None) -> list[int] | None:
    """A constant shape/axes input as a Python list."""
    if t is None:
        return None
    return [int(v) for v in (numbers(t) if isinstance(t, torch.Tensor) else t)]


def floats(t: torch.Tensor | None) -> list[float] | None:
    """A constant float input (Resize scales) as a Python list."""
    return None if t is None else [float(v) for v in numbers(t)]


def scalar(t: torch.Tensor):
    """A constant one-element input as a Python number."""
    return numbers(t)[0]


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


# ---------------------------------------------------------------------------------------------------------
# Elementwise


@op()
def Add(A, B):
    return A + B


@op()
def Sub(A, B):
    return A - B


@op()
def Mul(A, B):
    return A * B


@op()
def Div(A, B):
    if not A.is_floating_point():
        return torch.div(A, B, rounding_mode="trunc").to(A.dtype)
    return A / B


@op()
def Pow(X, Y):
    return torch.pow(X, Y).to(X.dtype)


@op()
def Sqrt(X):
    return torch.sqrt(X)


@op()
def Exp(input):
    return torch.exp(input)


@op()
def Log(input):
    return torch.log(input)


@op()
def Neg(X):
    return -X


@op()
def Abs(X):
    return torch.abs(X)


@op()
def Reciprocal(X):
    return torch.reciprocal(X)


@op()
def Erf(input):
    return torch.erf(input)


@op()
def Floor(X):
    return torch.floor(X)


@op()
def Ceil(X):
    return torch.ceil(X)


@op()
def Sin(input):
    return torch.sin(input)


@op()
def Cos(input):
    return torch.cos(input)


@op()
def Relu(X):
    return torch.relu(X)


@op()
def LeakyRelu(X, *, alpha=0.01):
    return F.leaky_relu(X, alpha)


@op()
def PRelu(X, slope):
    return torch.where(X < 0, X * slope, X)


@op()
def Elu(X, *, alpha=1.0):
    return F.elu(X, alpha)


@op(since=6, name="Clip")
def Clip_v6(input, *, min=-3.4028234663852886e38, max=3.4028234663852886e38):
    return torch.clamp(input, min, max)


@op(since=11)
def Clip(input, min=None, max=None):
    if min is not None:
        input = torch.maximum(input, min.to(input.dtype))
    if max is not None:
        input = torch.minimum(input, max.to(input.dtype))
    return input


@op()
def Sigmoid(X):
    return torch.sigmoid(X)


@op()
def HardSigmoid(X, *, alpha=0.2, beta=0.5):
    return torch.clamp(alpha * X + beta, 0.0, 1.0)


@op()
def HardSwish(X):
    return F.hardswish(X)


@op()
def Tanh(input):
    return torch.tanh(input)


@op(since=20)
def Gelu(X, *, approximate="none"):
    return F.gelu(X, approximate=approximate)


@op()
def Softplus(X):
    return F.softplus(X)


@op(since=1, name="Softmax")
def Softmax_v1(input, *, axis=1):
    return _flattened(input, axis, torch.softmax)


@op(since=13)
def Softmax(input, *, axis=-1):
    return torch.softmax(input, _axis(axis, input.dim()))


@op(since=1, name="LogSoftmax")
def LogSoftmax_v1(input, *, axis=1):
    return _flattened(input, axis, torch.log_softmax)


@op(since=13)
def LogSoftmax(input, *, axis=-1):
    return torch.log_softmax(input, _axis(axis, input.dim()))


def _flattened(x, axis, fn):
    """Opsets < 13: coerce to 2-D [prod(shape[:axis]), prod(shape[axis:])], apply on dim 1, restore."""
    axis = _axis(axis, x.dim())
    flat = x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    return fn(flat, 1).reshape(x.shape)


@op()
def Where(condition, X, Y):
    return torch.where(condition, X, Y)


@op()
def Equal(A, B):
    return A == B


@op()
def Less(A, B):
    return A < B


@op()
def LessOrEqual(A, B):
    return A <= B


@op()
def Greater(A, B):
    return A > B


@op()
def GreaterOrEqual(A, B):
    return A >= B


@op()
def Not(X):
    return torch.logical_not(X)


@op()
def And(A, B):
    return torch.logical_and(A, B)


@op()
def Or(A, B):
    return torch.logical_or(A, B)


def _variadic(fn, inputs):
    result = inputs[0]
    for x in inputs[1:]:
        result = fn(result, x)
    return result


@op()
def Min(*data_0):
    return _variadic(torch.minimum, data_0)


@op()
def Max(*data_0):
    return _variadic(torch.maximum, data_0)


@op()
def Sum(*data_0):
    return _variadic(torch.add, data_0)


@op()
def Mean(*data_0):
    return _variadic(torch.add, data_0) / len(data_0)


@op()
def Identity(input):
    return input


@op()
def Dropout(data, ratio=None, training_mode=None, *, seed=None):
    if training_mode is not None and scalar(training_mode):
        raise NotImplementedError("Dropout in training mode (cascc imports inference graphs)")
    return data, torch.ones(data.shape, dtype=torch.bool)


@op()
def Cast(input, *, to, saturate=1, round_mode="up"):
    return input.to(torch_dtype(to))


@op()
def CastLike(input, target_type, *, saturate=1, round_mode="up"):
    return input.to(target_type.dtype)


def torch_dtype(onnx_type: int) -> torch.dtype:
    """The torch dtype of an ONNX TensorProto element type."""
    import numpy as np
    import onnx.helper

    try:
        return torch.from_numpy(np.zeros(0, dtype=onnx.helper.tensor_dtype_to_np_dtype(onnx_type))).dtype
    except (TypeError, ValueError, KeyError):
        name = onnx.helper.tensor_dtype_to_string(onnx_type).removeprefix("TensorProto.")
        raise NotImplementedError(f"element type {name}") from None


# ---------------------------------------------------------------------------------------------------------
# Linear algebra and convolutions


@op()
def MatMul(A, B):
    return torch.matmul(A, B)


@op()
def Gemm(A, B, C=None, *, alpha=1.0, beta=1.0, transA=0, transB=0):
    a = A.t() if transA else A
    b = B.t() if transB else B
    y = a @ b
    if alpha != 1.0:
        y = y * alpha
    if C is not None:
        y = y + (C * beta if beta != 1.0 else C)
    return y


@op()
def Einsum(*Inputs, equation):
    return torch.einsum(equation.replace(" ", ""), *Inputs)


def _pads(x, kernel, strides, dilations, pads, auto_pad):
    """ONNX pads [b1, b2, …, e1, e2, …] for the spatial dims, resolving auto_pad."""
    spatial = x.shape[2:]
    n = len(spatial)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        result_begin, result_end = [], []
        for size, k, s, d in zip(spatial, kernel, strides, dilations):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, large = total // 2, total - total // 2
            result_begin.append(small if auto_pad == "SAME_UPPER" else large)
            result_end.append(large if auto_pad == "SAME_UPPER" else small)
        return result_begin + result_end
    if auto_pad == "VALID" or pads is None:
        return [0] * (2 * n)
    return list(pads)


def _pad_input(x, pads, value=0.0):
    """Apply ONNX spatial pads explicitly (for asymmetric padding); returns the padded tensor."""
    n = len(pads) // 2
    torch_pads = []
    for i in reversed(range(n)):
        torch_pads += [pads[i], pads[i + n]]
    return F.pad(x, torch_pads, value=value)


def _symmetric(pads):
    n = len(pads) // 2
    return pads[:n] == pads[n:]


CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@op()
def Conv(
    X, W, B=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None
):
    n = X.dim() - 2
    kernel = kernel_shape or list(W.shape[2:])
    strides = strides or [1] * n
    dilations = dilations or [1] * n
    pads = _pads(X, kernel, strides, dilations, pads, auto_pad)
    if not _symmetric(pads):
        X, pads = _pad_input(X, pads), [0] * (2 * n)
    return CONV[n](X, W, B, stride=strides, padding=pads[:n], dilation=dilations, groups=group)


@op()
def ConvTranspose(
    X,
    W,
    B=None,
    *,
    auto_pad="NOTSET",
    dilations=None,
    group=1,
    kernel_shape=None,
    output_padding=None,
    output_shape=None,
    pads=None,
    strides=None,
):
    n = X.dim() - 2
    kernel = kernel_shape or list(W.shape[2:])
    strides = strides or [1] * n
    dilations = dilations or [1] * n
    output_padding = output_padding or [0] * n
    full = [
        (X.shape[2 + i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 + output_padding[i]
        for i in range(n)
    ]
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = (
            list(output_shape)[-n:]
            if output_shape is not None
            else [X.shape[2 + i] * strides[i] for i in range(n)]
        )
        # a target beyond the full output grows it at the end (output_padding); the rest is cropped as pads
        output_padding = [output_padding[i] + max(0, target[i] - full[i]) for i in range(n)]
        total = [max(0, full[i] - target[i]) for i in range(n)]
        upper = auto_pad != "SAME_LOWER"
        begin = [t // 2 if upper else t - t // 2 for t in total]
        pads = begin + [total[i] - begin[i] for i in range(n)]
    elif pads is None or auto_pad == "VALID":
        pads = [0] * (2 * n)
    y = CONV_T[n](X, W, B, stride=strides, output_padding=output_padding, groups=group, dilation=dilations)
    index = [slice(None), slice(None)] + [slice(pads[i], y.shape[2 + i] - pads[i + n]) for i in range(n)]
    return y[tuple(index)]


# ---------------------------------------------------------------------------------------------------------
# Normalization and pooling


@op()
def BatchNormalization(
    X, scale, B, input_mean, input_var, *, epsilon=1e-5, momentum=0.9, training_mode=0, spatial=1
):
    if training_mode:
        raise NotImplementedError("BatchNormalization in training mode (cascc imports inference graphs)")
    return F.batch_norm(X, input_mean, input_var, scale, B, training=False, eps=epsilon)


@op()
def LayerNormalization(X, Scale, B=None, *, axis=-1, epsilon=1e-5, stash_type=1):
    axis = _axis(axis, X.dim())
    dims = tuple(range(axis, X.dim()))
    mean = X.mean(dim=dims, keepdim=True)
    inv_std = torch.rsqrt(((X - mean) ** 2).mean(dim=dims, keepdim=True) + epsilon)
    shape = X.shape[axis:]
    if Scale.shape == shape and (B is None or B.shape == shape):
        y = F.layer_norm(X, shape, Scale, B, epsilon)
    else:
        y = (X - mean) * inv_std * Scale
        y = y + B if B is not None else y
    return y, mean, inv_std


@op()
def InstanceNormalization(input, scale, B, *, epsilon=1e-5):
    return F.instance_norm(input, weight=scale, bias=B, eps=epsilon)


MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _pool_geometry(X, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode):
    n = X.dim() - 2
    strides = strides or [1] * n
    dilations = dilations or [1] * n
    pads = _pads(X, kernel_shape, strides, dilations, pads, auto_pad)
    return n, strides, dilations, pads


@op()
def MaxPool(
    X,
    *,
    auto_pad="NOTSET",
    ceil_mode=0,
    dilations=None,
    kernel_shape,
    pads=None,
    storage_order=0,
    strides=None,
):
    n, strides, dilations, pads = _pool_geometry(
        X, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode
    )
    fits = _symmetric(pads) and all(pads[i] * 2 <= kernel_shape[i] for i in range(n))
    padded = X if fits else _pad_input(X, pads, value=float("-inf"))
    torch_pads = pads[:n] if fits else [0] * n
    y, where = MAX_POOL[n](
        padded, kernel_shape, strides, torch_pads, dilations, ceil_mode=bool(ceil_mode), return_indices=True
    )
    return y, _onnx_indices(where, X, padded, pads if not fits else [0] * (2 * n), storage_order)


def _onnx_indices(where, X, padded, pads, storage_order):
    """torch's per-channel flat indices (into `padded`) → ONNX indices into the whole unpadded X."""
    n = X.dim() - 2
    spatial, padded_spatial = X.shape[2:], padded.shape[2:]
    coords, rest = [], where
    for size in reversed(padded_spatial):
        coords.insert(0, rest % size)
        rest = rest // size
    coords = [c - pads[i] for i, c in enumerate(coords)]
    flat = torch.zeros_like(where)
    if storage_order:  # column-major spatial layout
        stride = 1
        for i in reversed(range(n)):
            pass
        for i in range(n):
            flat = flat + coords[i] * stride
            stride *= spatial[i]
    else:
        for i in range(n):
            flat = flat * spatial[i] + coords[i]
    channel = torch.arange(X.shape[0] * X.shape[1]).reshape(X.shape[0], X.shape[1], *([1] * n))
    return flat + channel * math.prod(spatial)


@op()
def AveragePool(
    X,
    *,
    auto_pad="NOTSET",
    ceil_mode=0,
    count_include_pad=0,
    dilations=None,
    kernel_shape,
    pads=None,
    strides=None,
):
    n, strides, dilations, pads = _pool_geometry(
        X, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode
    )
    simple = (
        _symmetric(pads)
        and all(pads[i] * 2 <= kernel_shape[i] for i in range(n))
        and all(d == 1 for d in dilations)
        and n in AVG_POOL
    )
    if simple:
        return AVG_POOL[n](X, kernel_shape, strides, pads[:n], bool(ceil_mode), bool(count_include_pad))
    # General case: window sums divided by the number of counted elements (sum pooling as a depthwise conv).
    channels = X.shape[1]
    ones_kernel = torch.ones((channels, 1, *kernel_shape), dtype=X.dtype)
    padded = _pad_input(X, pads)
    counted = _pad_input(torch.ones_like(X), pads, value=1.0 if count_include_pad else 0.0)
    if ceil_mode:  # windows may run past the end if they start inside the input or its leading pad
        extra = []
        for i in range(n):
            span = (kernel_shape[i] - 1) * dilations[i] + 1
            size = padded.shape[2 + i]
            out = -(-(size - span) // strides[i]) + 1
            if (out - 1) * strides[i] >= X.shape[2 + i] + pads[i]:
                out -= 1
            extra.append(max(0, (out - 1) * strides[i] + span - size))
        tail = [0] * n + extra
        padded, counted = _pad_input(padded, tail), _pad_input(counted, tail)
    conv = CONV[n]
    sums = conv(padded, ones_kernel, stride=strides, dilation=dilations, groups=channels)
    counts = conv(counted, ones_kernel, stride=strides, dilation=dilations, groups=channels)
    return sums / counts


@op()
def GlobalAveragePool(X):
    return X.mean(dim=tuple(range(2, X.dim())), keepdim=True)


@op()
def GlobalMaxPool(X):
    return X.amax(dim=tuple(range(2, X.dim())), keepdim=True)


# ---------------------------------------------------------------------------------------------------------
# Shapes


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
    for start, end, axis, step in zip(starts, ends, axes, steps):
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


# ---------------------------------------------------------------------------------------------------------
# Reductions: axes became an input in ReduceSum-13 and in the others at 18


def _reduce(fn, data, axes, keepdims, noop_with_empty_axes, empty=None):
    if not axes:
        if noop_with_empty_axes:
            return data
        axes = list(range(data.dim()))
    axes = tuple(_axis(a, data.dim()) for a in axes)
    if empty is not None and any(data.shape[a] == 0 for a in axes):  # reducing an empty set: the identity
        shape = (
            [1 if i in axes else d for i, d in enumerate(data.shape)]
            if keepdims
            else [d for i, d in enumerate(data.shape) if i not in axes]
        )
        return torch.full(shape, empty, dtype=data.dtype)
    return fn(data, axes, bool(keepdims))


def _reductions():
    table = {
        "ReduceMean": (lambda x, a, k: x.mean(dim=a, keepdim=k), 18, None),
        "ReduceSum": (lambda x, a, k: x.sum(dim=a, keepdim=k), 13, None),
        "ReduceMax": (lambda x, a, k: x.amax(dim=a, keepdim=k), 18, float("-inf")),
        "ReduceMin": (lambda x, a, k: x.amin(dim=a, keepdim=k), 18, float("inf")),
        "ReduceProd": (lambda x, a, k: _prod(x, a, k), 18, None),
        "ReduceL2": (lambda x, a, k: x.pow(2).sum(dim=a, keepdim=k).sqrt(), 18, None),
    }
    for name, (fn, since, empty) in table.items():

        def attr_form(data, *, axes=None, keepdims=1, _fn=fn, _empty=empty):
            return _reduce(_fn, data, axes, keepdims, 0, _empty)

        def input_form(data, axes=None, *, keepdims=1, noop_with_empty_axes=0, _fn=fn, _empty=empty):
            return _reduce(_fn, data, ints(axes), keepdims, noop_with_empty_axes, _empty)

        op(since=1, name=name)(attr_form)
        op(since=since, name=name)(input_form)


def _prod(x, axes, keepdim):
    for axis in sorted(axes, reverse=True):
        x = x.prod(dim=axis, keepdim=keepdim)
    return x


_reductions()


@op()
def ArgMax(data, *, axis=0, keepdims=1, select_last_index=0):
    axis = _axis(axis, data.dim())
    if select_last_index:
        flipped = data.flip(axis).argmax(axis, keepdim=bool(keepdims))
        return data.shape[axis] - 1 - flipped
    return data.argmax(axis, keepdim=bool(keepdims))


# ---------------------------------------------------------------------------------------------------------
# Resize: coordinates computed per the spec, then gathered (nearest) or interpolated axis by axis (linear)


@op(since=11)
def Resize(
    X,
    roi=None,
    scales=None,
    sizes=None,
    *,
    antialias=0,
    axes=None,
    coordinate_transformation_mode="half_pixel",
    cubic_coeff_a=-0.75,
    exclude_outside=0,
    extrapolation_value=0.0,
    keep_aspect_ratio_policy="stretch",
    mode="nearest",
    nearest_mode="round_prefer_floor",
):
    if mode not in ("nearest", "linear") or antialias:
        raise NotImplementedError(f"Resize mode {mode!r}{' with antialias' if antialias else ''}")
    rank = X.dim()
    axes = [_axis(a, rank) for a in axes] if axes is not None else list(range(rank))
    scale_list = floats(scales) if scales is not None and scales.numel() else None
    size_list = ints(sizes) if sizes is not None and sizes.numel() else None
    if size_list is not None and keep_aspect_ratio_policy != "stretch":
        pick = min if keep_aspect_ratio_policy == "not_larger" else max
        common = pick(size_list[i] / X.shape[a] for i, a in enumerate(axes))
        size_list = [round(common * X.shape[a]) for a in axes]
        scale_list = [common] * len(axes)
    y = X
    for i, axis in enumerate(axes):
        size = X.shape[axis]
        out = size_list[i] if size_list is not None else math.floor(size * scale_list[i])
        scale = scale_list[i] if scale_list is not None else out / size
        if out == size and scale == 1.0:
            continue
        coords = [_source_coordinate(o, scale, size, out, coordinate_transformation_mode) for o in range(out)]
        if mode == "nearest":
            index = [min(max(_nearest(c, nearest_mode, scale), 0), size - 1) for c in coords]
            y = y.index_select(axis, torch.tensor(index, dtype=torch.long))
        else:
            y = _linear_axis(y, axis, coords, size)
    return y


def _source_coordinate(o, scale, size, out, mode):
    if mode == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if out > 1 else 0.0
    if mode == "align_corners":
        return 0.0 if out == 1 else o * (size - 1) / (out - 1)
    if mode == "asymmetric":
        return o / scale
    if mode == "half_pixel_symmetric":
        adjustment = out / (scale * size)
        center = size / 2
        offset = center * (1 - adjustment)
        return offset + (o + 0.5) / scale - 0.5
    raise NotImplementedError(f"Resize coordinate_transformation_mode {mode!r}")


def _nearest(c, mode, scale):
    if mode == "round_prefer_floor":
        return math.ceil(c - 0.5) if c - math.floor(c) == 0.5 else round(c)
    if mode == "round_prefer_ceil":
        return math.floor(c + 0.5)
    if mode == "floor":
        return math.floor(c)
    if mode == "ceil":
        return math.ceil(c)
    raise NotImplementedError(f"Resize nearest_mode {mode!r}")


def _linear_axis(x, axis, coords, size):
    low, high, weight = [], [], []
    for c in coords:
        c = min(max(c, 0.0), size - 1.0)
        lo = math.floor(c)
        hi = min(lo + 1, size - 1)
        low.append(lo)
        high.append(hi)
        weight.append(c - lo)
    shape = [1] * x.dim()
    shape[axis] = len(coords)
    w = torch.tensor(weight, dtype=x.dtype).reshape(shape)
    a = x.index_select(axis, torch.tensor(low, dtype=torch.long))
    b = x.index_select(axis, torch.tensor(high, dtype=torch.long))
    return a + (b - a) * w
