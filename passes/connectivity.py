"""The unit graph of a network's masks: which units are reachable from the input and co-reachable to an output.

A unit is an output feature of a linear layer or an output channel of a convolution. Unit `i` of a layer
depends on input unit `j` when some kept weight connects them (for a convolution: any kept tap of
W[i, j, :, :]). Producers feed a layer's input units through a *unit map*: the identity when sizes match,
channel-major flattening when each producer channel becomes `m` consecutive features, and — when neither
fits (concatenations, channel shuffles) — a conservative any-to-all link reported as approximate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from cascc.ir import Layer, LayerKind


@dataclass(frozen=True, eq=False)
class UnitLink:
    """How one producer's output units feed a layer's input units: `index[j]` = producer unit of input j."""

    producer: str
    index: torch.Tensor | None  # None: sizes do not line up, every producer unit may feed every input unit

    @property
    def features_per_unit(self) -> int:
        if self.index is None:
            return 1
        counts = torch.bincount(self.index)
        return int(counts.max()) if counts.numel() else 1


@dataclass(frozen=True, eq=False)
class Reachability:
    """Per layer, bool vectors over its output units: reachable from an input, co-reachable to an output."""

    reachable: Mapping[str, torch.Tensor]
    coreachable: Mapping[str, torch.Tensor]
    live_inputs: Mapping[str, torch.Tensor]  # per layer, over its input units: reachable from an input
    approximate: frozenset[str]  # layers with a producer link that is not an exact unit map

    def functional(self, name: str) -> torch.Tensor:
        return self.reachable[name] & self.coreachable[name]


def input_units(layer: Layer) -> int:
    """Number of input units of a layer: in_features, input channels (all groups) or vocabulary size."""
    if layer.kind in (LayerKind.CONV, LayerKind.DEPTHWISE):
        return layer.weight_shape[1] * layer.groups
    return layer.weight_shape[1] if layer.kind is LayerKind.LINEAR else layer.weight_shape[0]


def unit_edges(layer: Layer, mask: torch.Tensor) -> torch.Tensor:
    """Bool [fan_out, input_units]: output unit i depends on input unit j through a kept weight."""
    if layer.kind is LayerKind.EMBEDDING:
        return mask.t().clone()
    if layer.kind is LayerKind.LINEAR:
        return mask.clone()
    per_group = mask.flatten(2).any(dim=2)  # [out, in/groups]
    out_ch, in_per_group = per_group.shape
    edges = torch.zeros(out_ch, in_per_group * layer.groups, dtype=torch.bool)
    out_per_group = out_ch // layer.groups
    for g in range(layer.groups):
        rows = slice(g * out_per_group, (g + 1) * out_per_group)
        edges[rows, g * in_per_group : (g + 1) * in_per_group] = per_group[rows]
    return edges


def link(layer: Layer, producer: str, by_name: Mapping[str, Layer]) -> UnitLink:
    """The unit map from one of `layer`'s producers to its input units."""
    return next(found for found in links(layer, by_name) if found.producer == producer)


def links(layer: Layer, by_name: Mapping[str, Layer]) -> list[UnitLink]:
    """The unit map from each producer of `layer` to its input units."""
    n_in = input_units(layer)
    result = []
    for name in layer.producers:
        units = by_name[name].fan_out
        if units == n_in:
            index = torch.arange(n_in)
        elif n_in % units == 0:
            index = torch.arange(n_in) // (n_in // units)  # NCHW flatten: channel-major
        else:
            index = None
        result.append(UnitLink(name, index))
    return result


def consumers(layers: Sequence[Layer]) -> dict[str, list[Layer]]:
    """Layers that read each layer's output units."""
    found: dict[str, list[Layer]] = {layer.name: [] for layer in layers}
    for layer in layers:
        for name in layer.producers:
            found[name].append(layer)
    return found


def full_masks(layers: Sequence[Layer], masks: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every layer's mask, all-true for layers without one."""
    return {
        layer.name: masks.get(layer.name, torch.ones(layer.weight_shape, dtype=torch.bool))
        for layer in layers
    }


def exact(layers: Sequence[Layer], masks: Mapping[str, torch.Tensor]) -> Reachability:
    """Reachability and co-reachability by traversal of the real masks (dense layers: all ones)."""
    by_name = {layer.name: layer for layer in layers}
    edges = {name: unit_edges(by_name[name], mask) for name, mask in full_masks(layers, masks).items()}
    approximate: set[str] = set()
    reach: dict[str, torch.Tensor] = {}
    live_inputs: dict[str, torch.Tensor] = {}
    for layer in layers:  # graph order is topological
        live = torch.full((input_units(layer),), layer.from_input, dtype=torch.bool)
        for unit_map in links(layer, by_name):
            if unit_map.index is None:
                approximate.add(layer.name)
                live |= bool(reach[unit_map.producer].any())
            else:
                live |= reach[unit_map.producer][unit_map.index]
        live_inputs[layer.name] = live
        reach[layer.name] = (edges[layer.name].float() @ live.float()) > 0
    co: dict[str, torch.Tensor] = {}
    users = consumers(layers)
    for layer in reversed(layers):
        useful = torch.full((layer.fan_out,), layer.to_output, dtype=torch.bool)
        for user in users[layer.name]:
            needed = (edges[user.name].t().float() @ co[user.name].float()) > 0  # over user's input units
            unit_map = link(user, layer.name, by_name)
            if unit_map.index is None:
                useful |= bool(needed.any())
            else:
                hits = torch.zeros(layer.fan_out, dtype=torch.int64).index_add_(
                    0, unit_map.index, needed.long()
                )
                useful |= hits > 0
        co[layer.name] = useful
    return Reachability(reach, co, live_inputs, frozenset(approximate))


def pair_probability(layer: Layer, density: float) -> float:
    """Probability that an (output unit, input unit) pair is connected: 1 − (1 − d)^(kh·kw) for convs."""
    taps = math.prod(layer.weight_shape[2:]) if layer.kind in (LayerKind.CONV, LayerKind.DEPTHWISE) else 1
    return 1.0 - (1.0 - density) ** taps


def unit_fan_in(layer: Layer) -> int:
    """Input units one output unit can connect to (channel level: in_channels / groups)."""
    if layer.kind is LayerKind.EMBEDDING:
        return layer.weight_shape[0]
    return layer.weight_shape[1]


def unit_fan_out(layer: Layer) -> int:
    """Output units one input unit can connect to (out_channels / groups)."""
    if layer.kind is LayerKind.EMBEDDING:
        return layer.weight_shape[1]
    return layer.fan_out // layer.groups


@dataclass(frozen=True)
class Recursion:
    """Analytic (branching-process) fractions per layer's output units, and the expected unit in-degree."""

    reachable: Mapping[str, float]
    coreachable: Mapping[str, float]
    active: Mapping[str, float]
    in_degree: Mapping[str, float]
    reachable_in: Mapping[str, float]  # over each layer's input units: reachable from an input
    active_in: Mapping[str, float]  # over each layer's input units: active

    def functional(self, name: str) -> float:
        return self.reachable[name] * self.coreachable[name]


def analytic(layers: Sequence[Layer], densities: Mapping[str, float]) -> Recursion:
    """Local-tree recursion on an Erdős–Rényi layered graph (docs/methods.md §1; Burkholz et al., Sci. Rep. 2018).

    r_l = 1 − (1 − p_l r_{l−1})^{n_in},  c_l = 1 − Π_consumers (1 − p c)^{n_out·m},  a_l = ½[1 − (1 − p_l a_{l−1})^{n_in}];
    residual merges combine producers as independent events.
    """
    by_name = {layer.name: layer for layer in layers}
    p = {layer.name: pair_probability(layer, densities.get(layer.name, 1.0)) for layer in layers}
    reach: dict[str, float] = {}
    active: dict[str, float] = {}
    reach_in: dict[str, float] = {}
    active_in: dict[str, float] = {}
    for layer in layers:
        r_in = reach_in[layer.name] = _merge([1.0] * layer.from_input + [reach[q] for q in layer.producers])
        a_in = active_in[layer.name] = _merge([1.0] * layer.from_input + [active[q] for q in layer.producers])
        n = unit_fan_in(layer)
        reach[layer.name] = 1.0 - (1.0 - p[layer.name] * r_in) ** n
        active[layer.name] = 1.0 - (1.0 - p[layer.name] * a_in) ** n
        if layer.activation == "relu":
            active[layer.name] *= 0.5
    co: dict[str, float] = {}
    users = consumers(layers)
    for layer in reversed(layers):
        if layer.to_output:
            co[layer.name] = 1.0
            continue
        missing = 1.0
        for user in users[layer.name]:
            per_unit = link(user, layer.name, by_name).features_per_unit
            missing *= (1.0 - p[user.name] * co[user.name]) ** (unit_fan_out(user) * per_unit)
        co[layer.name] = 1.0 - missing
    degree = {layer.name: p[layer.name] * unit_fan_in(layer) for layer in layers}
    return Recursion(reach, co, active, degree, reach_in, active_in)


def _merge(probabilities: Sequence[float]) -> float:
    """P(any of independent events)."""
    none = 1.0
    for q in probabilities:
        none *= 1.0 - q
    return 1.0 - none
