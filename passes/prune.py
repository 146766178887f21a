"""Pruning criteria: which weights of each layer survive, given an allocator's per-layer kept counts.

Every criterion scores weights and keeps the top of each layer at the count its allocator gives (the
allocator `global` gives each layer its share of the top scores over all layers). A criterion's keyword
options are its declaration: `Recipe` and the CLI offer an option where the chosen criterion takes it.
Ties are broken by position, so masks are deterministic for a given program and seed.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from cascc.errors import OptionError
from cascc.ir import Layer, LayerKind, Program, layers

from . import probe
from .density import AllocationWarning, allocate, check_sparsity
from .registry import register
from .seeding import generator

Scores = Mapping[str, torch.Tensor]


def keep_top(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Bool mask of the `keep` highest scores; ties broken by position so the mask is deterministic."""
    flat = scores.detach().flatten()
    order = torch.argsort(flat, descending=True, stable=True)
    mask = torch.zeros(flat.numel(), dtype=torch.bool)
    mask[order[:keep]] = True
    return mask.view(scores.shape)


def masks_from_scores(scores: Scores, allocation: Mapping[str, int]) -> dict[str, torch.Tensor]:
    """Per-layer masks keeping exactly `allocation[name]` top-scored weights."""
    return {name: keep_top(scores[name], keep) for name, keep in allocation.items()}


def select(
    prunable: Sequence[Layer],
    scores: Scores,
    sparsity: float,
    allocator: str,
    allocator_options: Mapping | None,
) -> dict[str, torch.Tensor]:
    """Masks from scores at the counts the allocator gives."""
    counts = allocate(allocator, prunable, sparsity, scores=scores, **dict(allocator_options or {}))
    return masks_from_scores(scores, counts)


def _with_masks(program: Program, masks: Mapping[str, torch.Tensor]) -> Program:
    return dataclasses.replace(program, masks={**program.masks, **masks})


def _scored(score: Callable[[Program, Sequence[Layer]], Scores]):
    """Turn a scoring function into a pass taking sparsity and an allocator."""

    def criterion(
        program: Program,
        *,
        sparsity: float,
        allocator: str = "uniform",
        allocator_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Program:
        check_sparsity(sparsity)
        prunable = layers(program)
        scores = score(program, prunable, **options)
        return _with_masks(program, select(prunable, scores, sparsity, allocator, allocator_options))

    criterion.__name__ = score.__name__
    criterion.__doc__ = score.__doc__
    # the pass declares the score's own options next to the allocation ones (Registry.options reads them)
    own = list(inspect.signature(criterion).parameters.values())[:-1]
    extra = list(inspect.signature(score).parameters.values())[2:]
    criterion.__signature__ = inspect.Signature([*own, *(p.replace(kind=p.KEYWORD_ONLY) for p in extra)])
    return criterion


def _generator(program: Program, seed: int | None, purpose: str, layer: int) -> torch.Generator:
    return generator(program.seed if seed is None else seed, purpose, layer)


# ---------------------------------------------------------------------------------------------------------
# Criteria


@register("prune.magnitude")
@_scored
def magnitude(program: Program, prunable: Sequence[Layer]) -> Scores:
    """Keep the largest |w| of each layer, or over all layers with allocator `global` (Han et al., 2015)."""
    weights = program.masked_weights()
    return {layer.name: weights[layer.name].abs() for layer in prunable}


@register("prune.random")
@_scored
def random(program: Program, prunable: Sequence[Layer], seed: int | None = None) -> Scores:
    """Erdős–Rényi masks: exactly the allocated count per layer, positions uniformly at random
    (Gadhikar, Mukherjee & Burkholz, ICML 2023)."""
    return {
        layer.name: torch.rand(layer.weight_shape, generator=_generator(program, seed, "prune.random", i))
        for i, layer in enumerate(prunable)
    }


@register("prune.random_regular")
def random_regular(
    program: Program,
    *,
    sparsity: float,
    allocator: str = "uniform",
    allocator_options: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> Program:
    """Random masks in which every output unit keeps the same number of inputs (±1), so no unit is dead
    while its layer keeps ≥ one weight per unit (docs/methods.md §3)."""
    check_sparsity(sparsity)
    prunable = layers(program)
    allocation = allocate(allocator, prunable, sparsity, **dict(allocator_options or {}))
    masks = {}
    for i, layer in enumerate(prunable):
        gen = _generator(program, seed, "prune.random_regular", i)
        rows, per_row = layer.fan_out, layer.size // layer.fan_out
        keep = allocation[layer.name]
        counts = torch.full((rows,), keep // rows)
        counts[torch.randperm(rows, generator=gen)[: keep % rows]] += 1
        order = torch.argsort(torch.rand(rows, per_row, generator=gen), dim=1)
        mask = torch.arange(per_row).expand(rows, per_row) < counts[:, None]  # first k of a random order
        masks[layer.name] = (
            torch.zeros(rows, per_row, dtype=torch.bool).scatter_(1, order, mask).view(layer.weight_shape)
        )
    return _with_masks(program, masks)


@register("prune.snip")
@_scored
def snip(
    program: Program,
    prunable: Sequence[Layer],
    data: str | None = None,
    batches: int = 1,
    seed: int | None = None,
) -> Scores:
    """SNIP connection sensitivity |w ⊙ ∂L/∂w| on data batches (Lee et al., ICLR 2019). Without data, the loss
    is the cross-entropy of a Gaussian batch against the model's own predictions."""
    module = _trainable(program, prunable)
    grads = {layer.name: torch.zeros(layer.weight_shape) for layer in prunable}
    x_all, y_all = (None, None)
    if data is not None:
        from cascc.data import load

        dataset = load(data)
        x_all, y_all = dataset.x_train, dataset.y_train
    for b, inputs in enumerate(
        probe.batches(program, x_all, batches, seed=program.seed if seed is None else seed)
    ):
        out = module(*inputs)
        out = out[0] if isinstance(out, (tuple, list)) else out
        logits = out.reshape(-1, out.shape[-1])
        batch = len(logits)
        target = logits.argmax(1).detach() if y_all is None else y_all[b * batch : (b + 1) * batch]
        loss = torch.nn.functional.cross_entropy(logits, target)
        module.zero_grad()
        loss.backward()
        for layer in prunable:
            grads[layer.name] += module.get_parameter(layer.name).grad
    weights = program.masked_weights()
    return {layer.name: (weights[layer.name] * grads[layer.name]).abs() for layer in prunable}


def _trainable(
    program: Program, prunable: Sequence[Layer], dtype: torch.dtype = torch.float32
) -> torch.nn.Module:
    module = program.module().to(dtype)
    for param in module.parameters():
        param.requires_grad_(False)
    for layer in prunable:
        module.get_parameter(layer.name).requires_grad_(True)
    return module


@register("prune.synflow")
def synflow(
    program: Program,
    *,
    sparsity: float,
    allocator: str = "global",
    allocator_options: Mapping[str, Any] | None = None,
    rounds: int = 100,
) -> Program:
    """SynFlow, data-free: scores |w ⊙ ∂R/∂w| with R = Σ f(1; |θ|), pruned over `rounds` rounds on the
    exponential schedule s_k = 1 − (1 − s)^(k/rounds), in float64 (Tanaka et al., NeurIPS 2020)."""
    check_sparsity(sparsity)
    if rounds < 1:
        raise OptionError(
            None, f"synflow rounds must be ≥ 1, got {rounds}", "pass rounds=100 (the paper's value)"
        )
    prunable = layers(program)
    module = _trainable(program, prunable, torch.float64)
    with torch.no_grad():
        for tensor in module.state_dict(keep_vars=True).values():
            if tensor.is_floating_point():
                tensor.abs_()
    original = {layer.name: module.get_parameter(layer.name).detach().clone() for layer in prunable}
    masks = {layer.name: torch.ones(layer.weight_shape, dtype=torch.bool) for layer in prunable}
    ones = tuple(torch.ones(spec.shape, dtype=torch.float64) for spec in program.inputs)
    for k in range(1, rounds + 1):
        with torch.no_grad():
            for layer in prunable:
                module.get_parameter(layer.name).copy_(original[layer.name] * masks[layer.name])
        module.zero_grad()
        out = module(*ones)
        (out[0] if isinstance(out, (tuple, list)) else out).sum().backward()
        scores = {}
        for layer in prunable:
            param = module.get_parameter(layer.name)
            score = (param.grad * param).detach().abs()
            scores[layer.name] = torch.where(
                masks[layer.name], score, torch.tensor(-1.0, dtype=torch.float64)
            )
        masks = select(prunable, scores, 1.0 - (1.0 - sparsity) ** (k / rounds), allocator, allocator_options)
    return _with_masks(program, masks)


@register("prune.nm")
def n_of_m(program: Program, *, n: int = 2, m: int = 4, sparsity: float | None = None) -> Program:
    """N:M: in every group of M consecutive weights along the input dimension keep the N largest |w|
    (Mishra et al., NVIDIA 2:4, 2021). Layers whose input dimension is not a multiple of M stay dense."""
    if not 0 < n < m:
        raise OptionError(None, f"N:M needs 0 < N < M, got {n}:{m}", "use 2:4 or 4:8")
    if sparsity is not None and abs(sparsity - (1 - n / m)) > 1e-9:
        raise OptionError(
            None,
            f"N:M {n}:{m} fixes the sparsity at {1 - n / m:g}, not {sparsity:g}",
            "drop --sparsity or change N:M",
        )
    weights = program.masked_weights()
    masks, skipped = {}, []
    for layer in layers(program):
        w = weights[layer.name]
        # Put the input dimension last: linear [out, in]; conv [out, in, kh, kw] -> [out, kh, kw, in].
        moved = w if w.dim() == 2 else w.movedim(1, -1)
        if layer.kind is LayerKind.EMBEDDING or moved.shape[-1] % m:
            skipped.append(f"{layer.name} (input dimension {moved.shape[-1]})")
            continue
        groups = moved.abs().reshape(-1, m)
        order = torch.argsort(groups, dim=1, descending=True, stable=True)
        keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, order[:, :n], True).view(moved.shape)
        masks[layer.name] = keep if w.dim() == 2 else keep.movedim(-1, 1)
    if skipped:
        warnings.warn(
            f"N:M {n}:{m}: left dense, input dimension not a multiple of {m}: {', '.join(skipped)}",
            AllocationWarning,
            stacklevel=2,
        )
    return _with_masks(program, masks)


def parse_block(block: str | tuple[int, int]) -> tuple[int, int]:
    """'4x1' → (4, 1): rows (output units) × columns (inputs)."""
    if isinstance(block, tuple):
        return block
    # ASCII digits only ('²' is a str.isdigit digit), at most 4096 a side: a block is never allocated larger
    found = re.fullmatch(r"\s*([0-9]{1,4})\s*[xX×]\s*([0-9]{1,4})\s*", str(block))
    if not found or not all(1 <= int(found[i]) <= 4096 for i in (1, 2)):
        raise OptionError(
            None, f"block shape {block!r} is not ROWSxCOLS (1–4096 each)", "use e.g. 4x1, 8x1 or 1x4"
        )
    return int(found[1]), int(found[2])


@register("prune.block")
@_scored
def block(program: Program, prunable: Sequence[Layer], block: str | tuple[int, int] = "4x1") -> Scores:
    """Block magnitude: r×c blocks of the [out, in·kh·kw] weight scored by L2 norm, whole blocks kept in
    order; to hit the allocated count exactly, the last block of a layer may be partial (largest |w| first)."""
    rows, cols = parse_block(block)
    weights = program.masked_weights()
    return {layer.name: _block_scores(weights[layer.name], rows, cols) for layer in prunable}


def _block_scores(weight: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Per-weight scores ordering whole blocks by L2 norm, then weights within a block by |w|."""
    w = weight.reshape(weight.shape[0], -1).abs().double()
    out, inp = w.shape
    pad = torch.zeros(-(-out // rows) * rows, -(-inp // cols) * cols, dtype=torch.float64)
    pad[:out, :inp] = w
    blocks = pad.view(pad.shape[0] // rows, rows, pad.shape[1] // cols, cols).permute(0, 2, 1, 3)
    norms = blocks.pow(2).sum(dim=(2, 3)).flatten()
    block_rank = torch.empty_like(norms).scatter_(
        0,
        torch.argsort(norms, descending=True, stable=True),
        torch.arange(norms.numel(), dtype=torch.float64),
    )
    per_block = rows * cols
    inner = blocks.reshape(-1, per_block)
    inner_rank = torch.empty_like(inner).scatter_(
        1,
        torch.argsort(inner, dim=1, descending=True, stable=True),
        torch.arange(per_block, dtype=torch.float64).expand_as(inner).contiguous(),
    )
    key = block_rank[:, None] * per_block + inner_rank  # smaller = kept first
    key = key.view(blocks.shape).permute(0, 2, 1, 3).reshape(pad.shape)[:out, :inp]
    return (-key).reshape(weight.shape)
