"""Elementwise, activation, comparison and cast ops."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .registry import _axis, floats, ints, op, scalar, torch_dtype  # noqa: F401


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


@op(since=10)
def Mod(A, B, *, fmod=0):
    # fmod=0: the remainder takes the divisor's sign (integers; onnxruntime rejects it for floats), fmod=1: C's
    # fmod, the dividend's sign
    if fmod:
        return torch.fmod(A, B)
    return torch.remainder(A, B)


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


@op(since=11)
def Round(X):
    return torch.round(X)  # halves to even, as the spec asks


@op(since=9)
def Sign(input):
    return torch.sign(input)


@op(since=9)
def IsNaN(X):
    return torch.isnan(X)


@op(since=10)
def IsInf(X, *, detect_negative=1, detect_positive=1):
    if detect_negative and detect_positive:
        return torch.isinf(X)
    if detect_positive:
        return torch.isinf(X) & (X > 0)
    if detect_negative:
        return torch.isinf(X) & (X < 0)
    return torch.zeros(X.shape, dtype=torch.bool)


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


@op()
def Softsign(input):
    return input / (1 + torch.abs(input))


@op(since=18)
def Mish(X):
    return X * torch.tanh(F.softplus(X))


@op(since=24)
def Swish(X, *, alpha=1.0):
    return X * torch.sigmoid(alpha * X)


@op(since=6)
def Selu(X, *, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875):
    return gamma * torch.where(X > 0, X, alpha * torch.expm1(X))


@op(since=12)
def Celu(X, *, alpha=1.0):
    return torch.clamp(X, min=0) + torch.clamp(alpha * torch.expm1(X / alpha), max=0)


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
