"""Resize and Upsample, its deprecated form: source coordinates per the spec, then gathered (nearest) or
interpolated axis by axis (linear)."""

from __future__ import annotations

import math

import torch

from .registry import _axis, constant, floats, ints, op, scalar, torch_dtype  # noqa: F401


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
    return _resize(X, axes, scale_list, size_list, mode, coordinate_transformation_mode, nearest_mode)


def _resize(X, axes, scale_list, size_list, mode, coordinate_transformation_mode, nearest_mode):
    """Resize along `axes` to `size_list` (or by `scale_list`), Python numbers both."""
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
    if mode == "align_corners":  # the spec's length_resized is size·scale, unrounded
        resized = size * scale
        return 0.0 if resized == 1 else o * (size - 1) / (resized - 1)
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


@op(since=7, name="Upsample")
def Upsample_v7(X, *, mode="nearest", scales):
    return _upsample(X, scales, mode)


@op(since=9)
def Upsample(X, scales, *, mode="nearest"):
    return _upsample(X, floats(constant(scales, "scales")), mode)


def _upsample(x, scales, mode):
    """Upsample (deprecated at opset 10) is Resize with asymmetric coordinates and floor for nearest."""
    if mode not in ("nearest", "linear"):
        raise NotImplementedError(f"Upsample mode {mode!r}")
    return _resize(x, list(range(x.dim())), scales, None, mode, "asymmetric", "floor")
