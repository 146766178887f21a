"""Cascade analysis: the network seen as a threshold cascade on the random layered graph of its masks.

Structure (exact traversal vs the branching-process recursion), degrees, dead and isolated units, and
signal propagation (mean-field variance gain and active fraction vs a forward probe). docs/methods.md §1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from cascc.ir import Layer, Program, layers

from . import connectivity, probe
from .registry import register

DEGRADED_BELOW = 0.9  # a layer whose functional-unit fraction is below this degrades the network


@dataclass(frozen=True)
class LayerReport:
    """Per-layer facts; fractions are over the layer's output units (features or channels)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    weights: int
    kept: int
    density: float
    effective_density: float
    units: int
    in_degree_min: int
    in_degree_mean: float
    in_degree_max: int
    in_degree_zero_share: float
    dead_units: int
    isolated_units: int
    reachable: float
    coreachable: float
    functional: float
    predicted_reachable: float
    predicted_coreachable: float
    predicted_functional: float
    live_in_degree: float
    predicted_active: float
    measured_active: float | None
    p_silent: float
    predicted_gain: float
    measured_gain: float | None
    approximate_links: bool
    silent_units: int | None = (
        None  # functional units that never fire on the probe (no gradient reaches them)
    )
    grad_rms_kept: float | None = None  # RMS of ∂L/∂w over kept weights, on the probe batch
    grad_rms_pruned: float | None = None  # … over masked positions (what a regrowth criterion sees)
    grad_share_pruned: float | None = None  # share of ‖∂L/∂W‖² on masked positions


@dataclass(frozen=True)
class Report:
    """The analysis of one program: per-layer rows and a verdict."""

    source: str
    status: str  # healthy | degraded | collapsed
    summary: str
    probe: str
    layers: tuple[LayerReport, ...]
    kept: int
    weights: int

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "summary": self.summary,
            "probe": self.probe,
            "kept": self.kept,
            "weights": self.weights,
            "density": self.kept / max(self.weights, 1),
            "layers": [asdict(row) | {"shape": list(row.shape)} for row in self.layers],
        }


@register("analyze.cascade")
def analyze(
    program: Program, *, data: str | None = None, samples: int = 256, seed: int | None = None
) -> Report:
    """Structural and dynamic cascade analysis of `program`'s masks (docs/methods.md §1: Burkholz, Herrmann &
    Schweitzer, Sci. Rep. 2018; Burkholz & Dubatovka, NeurIPS 2019; Vysogorets & Kempe, JMLR 2023)."""
    prunable = layers(program)
    masks = connectivity.full_masks(prunable, program.masks)
    densities = {name: float(mask.float().mean()) for name, mask in masks.items()}
    exact = connectivity.exact(prunable, masks)
    predicted = connectivity.analytic(prunable, densities)
    seed = program.seed if seed is None else seed
    measured, probe_name = _measure(program, prunable, data, samples, seed)
    gradients = _gradients(program, prunable, data, samples, seed)
    weights = program.masked_weights()
    rows = []
    for layer in prunable:
        rows.append(
            _row(
                layer,
                prunable,
                masks[layer.name],
                weights[layer.name],
                exact,
                predicted,
                measured.get(layer.name),
            )
        )
        rows[-1] = dataclasses.replace(rows[-1], **gradients[layer.name])
    status, summary = _verdict(prunable, rows, exact)
    return Report(
        source=program.source,
        status=status,
        summary=summary,
        probe=probe_name,
        layers=tuple(rows),
        kept=sum(row.kept for row in rows),
        weights=sum(row.weights for row in rows),
    )


def _row(
    layer: Layer,
    prunable: Sequence[Layer],
    mask: torch.Tensor,
    weight: torch.Tensor,
    exact: connectivity.Reachability,
    predicted: connectivity.Recursion,
    measured: Mapping[str, float] | None,
) -> LayerReport:
    edges = connectivity.unit_edges(layer, mask)
    degree = edges.sum(dim=1)
    functional = exact.functional(layer.name)
    live_in = exact.live_inputs[layer.name]
    useful_out = exact.coreachable[layer.name]
    effective = (edges & live_in[None, :] & useful_out[:, None]).float()
    effective_weights = float(_weights_on(layer, mask, effective))
    by_name = {p.name: p for p in prunable}
    return LayerReport(
        name=layer.name,
        kind=layer.kind.value,
        shape=layer.weight_shape,
        weights=layer.size,
        kept=int(mask.sum()),
        density=float(mask.float().mean()),
        effective_density=effective_weights / layer.size,
        units=layer.fan_out,
        in_degree_min=int(degree.min()),
        in_degree_mean=float(degree.float().mean()),
        in_degree_max=int(degree.max()),
        in_degree_zero_share=float((degree == 0).float().mean()),
        dead_units=int((degree == 0).sum()),
        isolated_units=int((~functional).sum()),
        reachable=float(exact.reachable[layer.name].float().mean()),
        coreachable=float(exact.coreachable[layer.name].float().mean()),
        functional=float(functional.float().mean()),
        predicted_reachable=predicted.reachable[layer.name],
        predicted_coreachable=predicted.coreachable[layer.name],
        predicted_functional=predicted.functional(layer.name),
        live_in_degree=predicted.in_degree[layer.name] * predicted.reachable_in[layer.name],
        predicted_active=predicted.active[layer.name],
        measured_active=None if measured is None else measured["active"],
        p_silent=_p_silent(degree, predicted.active_in[layer.name], layer.activation == "relu"),
        predicted_gain=_predicted_gain(layer, by_name, weight, mask),
        measured_gain=None if measured is None else measured["gain"],
        silent_units=None if measured is None else int((functional & ~measured["ever_active"]).sum()),
        approximate_links=layer.name in exact.approximate,
    )


def _weights_on(layer: Layer, mask: torch.Tensor, effective_pairs: torch.Tensor) -> torch.Tensor:
    """Kept weights that lie on effective unit pairs (for convs: every kept tap of an effective channel pair)."""
    if mask.dim() == 2:
        pairs = effective_pairs if layer.kind.value != "embedding" else effective_pairs.t()
        return (mask.float() * pairs).sum()
    taps = mask.flatten(2).sum(dim=2).float()  # [out, in/groups]
    out_per_group, in_per_group = layer.fan_out // layer.groups, taps.shape[1]
    total = torch.zeros(())
    for g in range(layer.groups):
        rows = slice(g * out_per_group, (g + 1) * out_per_group)
        total += (taps[rows] * effective_pairs[rows, g * in_per_group : (g + 1) * in_per_group]).sum()
    return total


def _p_silent(degree: torch.Tensor, active_in: float, relu: bool) -> float:
    """P(no unit of the layer fires): Poisson-binomial with π_i = ½[1 − (1 − a)^k_i] (docs/methods.md §1)."""
    fire = 1.0 - (1.0 - active_in) ** degree.double()
    if relu:
        fire = fire / 2
    return float(torch.exp(torch.log1p(-fire.clamp(max=1 - 1e-300)).sum()))


def _predicted_gain(
    layer: Layer, by_name: Mapping[str, Layer], weight: torch.Tensor, mask: torch.Tensor
) -> float:
    """Mean-field variance gain σ²·E[k]·E[φ²]/q (Burkholz & Dubatovka 2019): ½ after a ReLU, 1 otherwise."""
    kept = weight[mask]
    if kept.numel() == 0:
        return 0.0
    sigma2 = float(kept.double().pow(2).mean())
    mean_k = kept.numel() / layer.fan_out
    producers = [by_name[name] for name in layer.producers]
    relu = bool(producers) and not layer.from_input and all(p.activation == "relu" for p in producers)
    return sigma2 * mean_k * (0.5 if relu else 1.0)


def _measure(
    program: Program, prunable: Sequence[Layer], data: str | None, samples: int, seed: int
) -> tuple[dict[str, dict[str, float]], str]:
    """Measured variance gain and active fraction per layer on a forward probe (Gaussian or data)."""
    x = None
    if data is not None:
        from cascc.data import load

        x = load(data).x_test
    spec = program.inputs[0]
    count = max(1, -(-samples // spec.shape[0]))
    names = {layer.node for layer in prunable} | {
        layer.activation_node for layer in prunable if layer.activation_node
    }
    module = program.module()
    sums: dict[str, list[torch.Tensor]] = {}
    input_var: list[torch.Tensor] = []
    used = 0
    for inputs in probe.batches(program, x, count, seed=seed):
        used += 1
        input_var.append(inputs[0].double().flatten())
        for name, value in probe.capture(program, module, inputs, names).items():
            sums.setdefault(name, []).append(value.double())
    q_in = float(torch.cat(input_var).var())
    pre = {
        layer.name: float(
            torch.cat([probe.per_unit(v, layer.unit_axis) for v in sums[layer.node]]).var(0).mean()
        )
        for layer in prunable
    }
    result = {}
    for layer in prunable:
        after = torch.cat([t.flatten() for t in sums[layer.activation_node or layer.node]])
        before = [pre[p] for p in layer.producers] + [q_in] * layer.from_input
        q_prev = sum(before) / max(len(before), 1)
        result[layer.name] = {
            # ReLU units are active when positive; other units when their output is not exactly zero.
            "active": float(((after > 0) if layer.activation == "relu" else (after != 0)).double().mean()),
            "ever_active": _ever_active(layer, sums[layer.activation_node or layer.node]),
            "gain": pre[layer.name] / q_prev if q_prev > 0 else float("inf"),
        }
    probe_name = (
        f"{data} ({used * spec.shape[0]} test samples)"
        if data
        else f"Gaussian N(0,1) ({used * spec.shape[0]} samples)"
    )
    return result, probe_name


def _ever_active(layer: Layer, values: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per unit: did it fire (ReLU: > 0; otherwise ≠ 0) at any sample and position of the probe."""
    fired = [
        ((v > 0) if layer.activation == "relu" else (v != 0)).movedim(layer.unit_axis, -1) for v in values
    ]
    return torch.stack([f.reshape(-1, f.shape[-1]).any(0) for f in fired]).any(0)


def _gradients(
    program: Program, prunable: Sequence[Layer], data: str | None, samples: int, seed: int
) -> dict[str, dict[str, float]]:
    """The gradient signal a sparse net trains on: ∂L/∂W of the cross-entropy on the probe (data with its
    labels, or Gaussian inputs against the model's own predictions, as SNIP does without data), split into
    kept and masked positions (RigL grows where the masked |∂L/∂w| is largest, Evci et al. 2020)."""
    x = y = None
    if data is not None:
        from cascc.data import load

        dataset = load(data)
        x, y = dataset.x_test, dataset.y_test
    module = program.module()
    for param in module.parameters():
        param.requires_grad_(False)
    for layer in prunable:
        module.get_parameter(layer.name).requires_grad_(True)
    batch = program.inputs[0].shape[0]
    count = max(1, -(-samples // batch))
    for b, inputs in enumerate(probe.batches(program, x, count, seed=seed)):
        out = module(*inputs)
        logits = (out[0] if isinstance(out, (tuple, list)) else out).reshape(-1, program.outputs[0].shape[-1])
        target = logits.argmax(1).detach() if y is None else y[b * batch : (b + 1) * batch]
        torch.nn.functional.cross_entropy(logits, target, reduction="sum").backward()
    masks = connectivity.full_masks(prunable, program.masks)
    result = {}
    for layer in prunable:
        grad = module.get_parameter(layer.name).grad.double() / (count * batch)
        mask = masks[layer.name]
        kept, pruned = grad[mask], grad[~mask]
        total = float(grad.pow(2).sum())
        result[layer.name] = {
            "grad_rms_kept": float(kept.pow(2).mean().sqrt()) if kept.numel() else 0.0,
            "grad_rms_pruned": float(pruned.pow(2).mean().sqrt()) if pruned.numel() else None,
            "grad_share_pruned": float(pruned.pow(2).sum()) / total if total > 0 else 0.0,
        }
    return result


def _verdict(
    prunable: Sequence[Layer], rows: Sequence[LayerReport], exact: connectivity.Reachability
) -> tuple[str, str]:
    outputs = [layer for layer in prunable if layer.to_output]
    if not any(bool(exact.reachable[layer.name].any()) for layer in outputs):
        return "collapsed", "no path from the input reaches an output: the network computes a constant"
    low = [row for row in rows if row.functional < DEGRADED_BELOW]
    if low:
        names = ", ".join(f"{row.name} ({row.functional:.0%})" for row in low)
        return "degraded", f"functional units below {DEGRADED_BELOW:.0%} in {names}"
    worst = min(rows, key=lambda row: row.functional)
    return (
        "healthy",
        f"every layer keeps ≥ {DEGRADED_BELOW:.0%} functional units (lowest: {worst.name}, {worst.functional:.0%})",
    )
