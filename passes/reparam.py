"""Reparameterizations that keep a sparse network trainable: sparse-aware initialization for de novo training
and the variance-preserving rescale after one-shot pruning of a trained model (docs/methods.md §4)."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import torch

from cascc.errors import OptionError
from cascc.ir import Layer, LayerKind, Program, layers

from . import probe
from .density import AllocationWarning
from .init import initializer
from .registry import register
from .seeding import generator


@initializer("sparse-aware", "reparam.sparse_init")
def sparse_init(program: Program, *, seed: int | None = None) -> Program:
    """Per-unit He initialization from each unit's actual in-degree k_i: w_ij ~ N(0, 2/k_i) before a ReLU,
    N(0, 1/k_i) otherwise; biases zero (Evci et al., "Gradient Flow in Sparse Neural Networks", AAAI 2022;
    Liu et al. 2019). Units with no kept weight stay empty and are reported."""
    gen = generator(program.seed if seed is None else seed, "reparam.sparse_init")
    updates: dict[str, torch.Tensor] = {}
    empty = []
    for layer in layers(program):
        mask = program.masks.get(layer.name, torch.ones(layer.weight_shape, dtype=torch.bool))
        rows = mask.reshape(layer.fan_out, -1) if layer.kind is not LayerKind.EMBEDDING else mask.t()
        k = rows.sum(dim=1).clamp(min=1).double()
        gain = 2.0 if layer.activation == "relu" else 1.0
        std = (gain / k).sqrt().float()
        noise = torch.randn(rows.shape, generator=gen)
        fresh = noise * std[:, None] * rows
        updates[layer.name] = (
            fresh.reshape(layer.weight_shape) if layer.kind is not LayerKind.EMBEDDING else fresh.t()
        )
        if layer.bias is not None:
            updates[layer.bias] = torch.zeros_like(program.weights[layer.bias])
        if (zero := int((rows.sum(dim=1) == 0).sum())) > 0:
            empty.append(f"{layer.name} ({zero} of {layer.fan_out})")
    if empty:
        warnings.warn(
            f"sparse_init: units with no kept weight: {', '.join(empty)}", AllocationWarning, stacklevel=2
        )
    return program.with_weights(updates)


@register("reparam.rescale")
def rescale(
    program: Program,
    *,
    data: str | None = None,
    samples: int = 256,
    covariance: str = "full",
    seed: int | None = None,
) -> Program:
    """Variance-preserving rescale after one-shot pruning: per output unit, α_i = sqrt(w_iᵀΣw_i / w̃_iᵀΣw̃_i)
    with Σ the covariance of the layer's inputs (its im2col patches for convs) in the dense network, from a
    probe (Gaussian, or `data`; BatchNorm acts with its running statistics). `covariance="diag"` is the
    data-free diagonal form of docs/methods.md §4. With data, biases are also corrected so each unit's mean
    pre-activation matches the dense one; a bias-free layer followed by BatchNorm gets the correction in the
    BatchNorm's running mean instead."""
    if covariance not in ("full", "diag"):
        raise OptionError(None, f"unknown covariance {covariance!r}", "use 'full' or 'diag'")
    prunable = [
        layer
        for layer in layers(program)
        if layer.name in program.masks and layer.kind is not LayerKind.EMBEDDING
    ]
    if not prunable:
        return program
    dense = dataclasses.replace(program, masks={})
    stats = _input_statistics(dense, prunable, data, samples, program.seed if seed is None else seed)
    updates: dict[str, torch.Tensor] = {}
    for layer in prunable:
        w = program.weights[layer.name].double()
        mask = program.masks[layer.name]
        masked = w * mask
        alphas, shifts = [], []
        per_group = layer.fan_out // layer.groups
        for g, (mean, cov) in enumerate(stats[layer.name]):
            rows = slice(g * per_group, (g + 1) * per_group)
            wd, wm = w[rows].reshape(per_group, -1), masked[rows].reshape(per_group, -1)
            sigma = cov if covariance == "full" else torch.diag(torch.diagonal(cov))
            before = ((wd @ sigma) * wd).sum(1)
            after = ((wm @ sigma) * wm).sum(1)
            alpha = torch.where(after > 0, (before / after.clamp(min=1e-300)).sqrt(), torch.ones_like(after))
            alphas.append(alpha)
            shifts.append(wd @ mean - alpha * (wm @ mean))
        alpha = torch.cat(alphas)
        updates[layer.name] = (masked * alpha.view(-1, *([1] * (w.dim() - 1)))).float()
        if data is not None and layer.bias is not None:
            updates[layer.bias] = program.weights[layer.bias] + torch.cat(shifts).float()
        elif data is not None and layer.norm_mean is not None:
            # no bias, BatchNorm next: move its running mean by the same shift, (z' − μ') = (z − μ) on average
            updates[layer.norm_mean] = program.weights[layer.norm_mean] - torch.cat(shifts).float()
    return program.with_weights(updates)


def _input_statistics(
    program: Program, prunable: Sequence[Layer], data: str | None, samples: int, seed: int
) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per layer and group: mean and covariance of the inputs one output unit sees (features or patches)."""
    x = None
    if data is not None:
        from cascc.data import load

        x = load(data).x_train
    module = program.module()
    names = {layer.input_node for layer in prunable}
    count = max(1, -(-samples // program.inputs[0].shape[0]))
    seen: dict[str, list[torch.Tensor]] = {}
    for inputs in probe.batches(program, x, count, seed=seed):
        values = probe.capture(program, module, inputs, names)
        for layer in prunable:
            seen.setdefault(layer.name, []).append(_patches(layer, values[layer.input_node].double()))
    stats = {}
    for layer in prunable:
        rows = torch.cat(seen[layer.name])
        per_group = rows.shape[1] // layer.groups
        stats[layer.name] = []
        for g in range(layer.groups):
            part = rows[:, g * per_group : (g + 1) * per_group]
            mean = part.mean(0)
            centered = part - mean
            stats[layer.name].append((mean, centered.t() @ centered / max(len(part) - 1, 1)))
    return stats


def _patches(layer: Layer, x: torch.Tensor) -> torch.Tensor:
    """[samples, inputs] as one output unit sees them: features for linear layers, im2col patches for convs
    (channel-major, matching weight.reshape(out, -1))."""
    if layer.kind is LayerKind.LINEAR:
        return x.reshape(-1, layer.weight_shape[1])
    kernel = layer.weight_shape[2:]
    if len(kernel) == 1:  # conv1d as a conv2d of height 1
        x, kernel = x.unsqueeze(2), (1, *kernel)
        stride, padding, dilation = (1, *layer.stride), (0, *layer.padding), (1, *layer.dilation)
    elif len(kernel) == 2:
        stride, padding, dilation = layer.stride, layer.padding, layer.dilation
    else:
        raise OptionError(
            None, f"{layer.name}: rescale supports 1-D and 2-D convolutions", "skip reparam for this model"
        )
    cols = torch.nn.functional.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])
