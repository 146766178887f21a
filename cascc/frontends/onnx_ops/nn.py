"""Matrix products, convolutions, normalization and pooling."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .registry import _axis, floats, ints, op, scalar, torch_dtype  # noqa: F401


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
        for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
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


@op(since=21)
def GroupNormalization(X, scale, bias, *, epsilon=1e-5, num_groups, stash_type=1):
    # mean and (biased) variance over each group's channels and positions, then per-channel scale and bias
    # (opset 18's per-group scale and bias are deprecated: onnx.checker refuses them)
    groups = _stash(X.reshape(X.shape[0], num_groups, -1), stash_type)
    centered = groups - groups.mean(dim=-1, keepdim=True)
    inv_std = torch.rsqrt((centered * centered).mean(dim=-1, keepdim=True) + epsilon)
    y = (centered * inv_std).to(X.dtype).reshape(X.shape)
    shape = [1, X.shape[1]] + [1] * (X.dim() - 2)
    return y * scale.reshape(shape) + bias.reshape(shape)


@op(since=23)
def RMSNormalization(X, scale, *, axis=-1, epsilon=1e-5, stash_type=1):
    dims = tuple(range(_axis(axis, X.dim()), X.dim()))
    x = _stash(X, stash_type)
    inv_rms = torch.rsqrt((x * x).mean(dim=dims, keepdim=True) + epsilon)
    return (x * inv_rms).to(X.dtype) * scale


def _stash(x, stash_type):
    """stash_type 1: the statistics in float32 (float16/bfloat16 inputs are widened for them)."""
    if stash_type == 1 and x.is_floating_point() and x.element_size() < 4:
        return x.float()
    return x


@op()
def LRN(X, *, alpha=0.0001, beta=0.75, bias=1.0, size):
    # the window over channels starts floor((size-1)/2) before c and ends ceil((size-1)/2) after it
    # (F.local_response_norm centres an even window the other way)
    before = (size - 1) // 2
    squares = F.pad(X * X, [0, 0] * (X.dim() - 2) + [before, size - 1 - before])
    channels = X.shape[1]
    window = squares.narrow(1, 0, channels)
    for k in range(1, size):
        window = window + squares.narrow(1, k, channels)
    return X / (bias + (alpha / size) * window) ** beta


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
