"""Initializations for sparse networks trained from scratch (docs/methods.md §4): looks-linear orthogonal and
depth-scaled bias. Per-unit sparse-aware He init lives in reparam.py (`reparam.sparse_init`).

Both draw from their own seeded stream and respect the program's masks (masked weights are zero).
"""

from __future__ import annotations

import math

import torch

from cascc.ir import Layer, LayerKind, Program, layers
from cascc.registry import Registry

from .registry import register
from .seeding import generator

INITIALIZED = (LayerKind.LINEAR, LayerKind.CONV)

# `cascc train --init` choices: the name a user picks -> the pass initializing a sparse mask's weights
INITS: Registry[str | None] = Registry("initialization")
INITS.register("model")(None)  # keep the model's own weights


def initializer(choice: str, name: str):
    """Register the decorated function as pass `name` and offer it as `--init CHOICE`."""

    def add(fn):
        INITS.register(choice)(name)
        return register(name)(fn)

    return add


@initializer("looks-linear", "init.looks_linear")
def looks_linear(program: Program, *, repair_steps: int = 0, seed: int | None = None) -> Program:
    """Looks-linear orthogonal init (Balduzzi et al. 2017): W₀ orthogonal, the first layer [W₀; −W₀], hidden
    layers [W₀, −W₀; −W₀, W₀], the last [W₀, −W₀] (pairs over channels for convs), so a dense ReLU network
    computes a linear map at init; masked, each layer is scaled by 1/√density. `repair_steps` > 0 then runs
    Adam on ‖(M⊙W)(M⊙W)ᵀ − I‖_F (rows vs columns, whichever is fewer) so masked rows stay near-orthogonal."""
    gen = generator(program.seed if seed is None else seed, "init.looks_linear")
    updates: dict[str, torch.Tensor] = {}
    for layer in layers(program):
        if layer.kind not in INITIALIZED:
            continue
        mask = program.masks.get(layer.name, torch.ones(layer.weight_shape, dtype=torch.bool))
        weight = _looks_linear_weight(layer, gen) * mask
        density = float(mask.float().mean())
        if density > 0:
            weight = weight / math.sqrt(density)
        if repair_steps:
            weight = _repair_orthogonality(weight, mask, repair_steps)
        updates[layer.name] = weight
        if layer.bias is not None:
            updates[layer.bias] = torch.zeros_like(program.weights[layer.bias])
    return program.with_weights(updates)


def _looks_linear_weight(layer: Layer, gen: torch.Generator) -> torch.Tensor:
    out, inp, *rest = layer.weight_shape
    half_out, half_in = -(-out // 2), -(-inp // 2)
    rows = half_out if not layer.to_output else out
    cols = half_in if not layer.from_input else inp
    base = torch.empty(rows, cols * math.prod(rest))
    torch.nn.init.orthogonal_(base, generator=gen)
    base = base.view(rows, cols, *rest)
    if layer.from_input and layer.to_output:
        full = base
    elif layer.from_input:  # [W0; -W0]: every input feeds a unit and its mirror
        full = torch.cat([base, -base], dim=0)
    elif layer.to_output:  # [W0, -W0]: W0·relu(z) - W0·relu(-z) = W0·z
        full = torch.cat([base, -base], dim=1)
    else:
        full = torch.cat([torch.cat([base, -base], dim=1), torch.cat([-base, base], dim=1)], dim=0)
    return full[:out, :inp].contiguous()


def _repair_orthogonality(weight: torch.Tensor, mask: torch.Tensor, steps: int) -> torch.Tensor:
    flat_mask = mask.reshape(mask.shape[0], -1).float()
    w = weight.reshape(weight.shape[0], -1).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w], lr=1e-3)
    for _ in range(steps):
        masked = w * flat_mask
        gram = masked @ masked.T if masked.shape[0] <= masked.shape[1] else masked.T @ masked
        loss = (gram - torch.eye(gram.shape[0])).pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (w.detach() * flat_mask).reshape(weight.shape)


def orthogonality_error(weight: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """‖(M⊙W)(M⊙W)ᵀ − I‖_F over the smaller side of the flattened weight."""
    w = weight.reshape(weight.shape[0], -1).double()
    if mask is not None:
        w = w * mask.reshape(w.shape)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    return float((gram - torch.eye(gram.shape[0], dtype=torch.float64)).norm())


@initializer("depth-bias", "init.depth_bias")
def depth_bias(program: Program, *, beta: float = 1.0, seed: int | None = None) -> Program:
    """Depth-scaled bias init (NonZeroBiases / PlantNSeek `init_He_scaled`): weights N(0, 2/(fan_in·d)) with d
    the layer's density, biases N(0, σ_b,l²) with σ_b,l = β·Π_{k≤l} σ_w,k over the layers up to l in graph
    order."""
    gen = generator(program.seed if seed is None else seed, "init.depth_bias")
    updates: dict[str, torch.Tensor] = {}
    product = 1.0
    for layer in layers(program):
        if layer.kind not in INITIALIZED:
            continue
        mask = program.masks.get(layer.name, torch.ones(layer.weight_shape, dtype=torch.bool))
        density = max(float(mask.float().mean()), 1.0 / mask.numel())
        sigma_w = math.sqrt(2.0 / (layer.fan_in * density))
        updates[layer.name] = torch.randn(layer.weight_shape, generator=gen) * sigma_w * mask
        product *= sigma_w
        if layer.bias is not None:
            shape = program.weights[layer.bias].shape
            updates[layer.bias] = torch.randn(shape, generator=gen) * beta * product
    return program.with_weights(updates)
