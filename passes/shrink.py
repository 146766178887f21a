"""Remove dead units structurally: slice the weights of units that are not functional and re-export.

A unit goes when it cannot influence an output (not co-reachable), or when it is not reachable from the
input and its value reaching every consumer is exactly zero — so the shrunk program computes exactly what
the masked one does. Units of layers whose outputs are summed (residual adds) go only when they can go in
every layer of the sum. What cannot be sliced safely is kept and reported (a PassWarning), never guessed.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
import warnings
from collections.abc import Mapping, Sequence

import torch

from cascc.ir import Layer, Program, from_exported, layers

from . import connectivity, probe
from .registry import PassWarning, register

aten = torch.ops.aten

# Ops a unit's value may pass on its way to a consumer: they act on every channel alike.
CHANNELWISE_OPS = frozenset(
    {
        aten.relu.default,
        aten.hardtanh.default,
        aten.clamp.default,
        aten.sigmoid.default,
        aten.tanh.default,
        aten.gelu.default,
        aten.silu.default,
        aten.hardswish.default,
        aten.hardsigmoid.default,
        aten.leaky_relu.default,
        aten.elu.default,
        aten.max_pool2d_with_indices.default,
        aten.max_pool2d.default,
        aten.avg_pool2d.default,
        aten._adaptive_avg_pool2d.default,
        aten.mean.dim,
        aten.clone.default,
        aten.alias.default,
        operator.getitem,
    }
)
ARITHMETIC_OPS = frozenset({aten.add.Tensor, aten.mul.Tensor, aten.sub.Tensor, aten.div.Tensor})
BATCH_NORM = aten._native_batch_norm_legit_no_training.default
RESHAPE_OPS = frozenset({aten.view.default, aten.reshape.default, aten._unsafe_view.default})


@dataclasses.dataclass
class _Group:
    """Layers whose outputs are summed elementwise, so they share unit indices."""

    members: list[Layer]
    frozen: str | None = None  # why it cannot be sliced
    batch_norms: list[torch.fx.Node] = dataclasses.field(default_factory=list)
    flattens: list[torch.fx.Node] = dataclasses.field(default_factory=list)


@register("shrink.dead_units")
def dead_units(program: Program) -> Program:
    """Slice away units that are not both reachable and co-reachable (and channels whose incoming weights are
    all masked), with their bias, BatchNorm entries and the consumers' input slices; outputs are unchanged
    (Vysogorets & Kempe, JMLR 2023, effective sparsity; flow preservation of Gadhikar et al. 2023)."""
    prunable = layers(program)
    masks = connectivity.full_masks(prunable, program.masks)
    reach = connectivity.exact(prunable, masks)
    module = program.module()
    groups = _groups(prunable, module.graph)
    zero = _zero_valued(program, module, prunable)
    keep: dict[str, torch.Tensor] = {}
    notes: list[str] = []
    for group in groups:
        removable = torch.ones(group.members[0].fan_out, dtype=torch.bool)
        for layer in group.members:
            removable &= ~reach.coreachable[layer.name] | (~reach.reachable[layer.name] & zero[layer.name])
        kept_constant = sum(
            int((~reach.reachable[m.name] & ~zero[m.name] & reach.coreachable[m.name]).sum())
            for m in group.members
        )
        if kept_constant:
            notes.append(
                f"{group.members[0].name}: kept {kept_constant} input-independent unit(s) with a nonzero value"
            )
        if not removable.any():
            continue
        if removable.all():  # a zero-width layer is not a valid graph: keep one unit, say the layer is dead
            removable[0] = False
            notes.append(
                f"{', '.join(m.name for m in group.members)}: every unit is dead; one kept, remove the layer"
            )
        if group.frozen:
            notes.append(
                f"{', '.join(m.name for m in group.members)}: {int(removable.sum())} dead unit(s) kept, {group.frozen}"
            )
            continue
        for layer in group.members:
            keep[layer.name] = ~removable
        _slice_group(module, group, ~removable)
    if notes:
        warnings.warn("shrink: " + "; ".join(notes), PassWarning, stacklevel=2)
    if not keep:
        return program
    new_masks = _slice(module, prunable, keep, masks, program.masks)
    module.recompile()
    ep = torch.export.export(module, program.example_inputs()).run_decompositions()
    shrunk = from_exported(ep, source=program.source, frontend=program.frontend, seed=program.seed)
    return dataclasses.replace(shrunk, masks=new_masks, history=program.history)


def _groups(prunable: Sequence[Layer], graph: torch.fx.Graph) -> list[_Group]:
    """Union of layers summed into a common consumer input, with the reason a group cannot be sliced."""
    by_name = {layer.name: layer for layer in prunable}
    parent = {layer.name: layer.name for layer in prunable}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    users = connectivity.consumers(prunable)
    for layer in prunable:
        for a, b in itertools.pairwise(layer.producers):
            parent[root(b)] = root(a)
    members: dict[str, list[Layer]] = {}
    for layer in prunable:
        members.setdefault(root(layer.name), []).append(layer)
    nodes = {node.name: node for node in graph.nodes}
    groups = []
    for group_layers in members.values():
        group = _Group(group_layers)
        group.frozen = _why_frozen(group, by_name, users, nodes)
        groups.append(group)
    return groups


def _why_frozen(
    group: _Group,
    by_name: Mapping[str, Layer],
    users: Mapping[str, list[Layer]],
    nodes: Mapping[str, torch.fx.Node],
) -> str | None:
    for layer in group.members:
        if layer.to_output:
            return "its units are graph outputs"
        if layer.kind.value == "embedding" or layer.groups > 1:
            return f"{layer.name} is a {layer.kind.value} layer with {layer.groups} group(s)"
        for user in users[layer.name]:
            if user.from_input:
                return f"the input also reaches {user.name}"
            if user.groups > 1:
                return f"it feeds the grouped convolution {user.name}"
            if connectivity.link(user, layer.name, by_name).index is None:
                return f"its units do not map onto {user.name}'s inputs"
    # Walk the ops between the group's layers and their consumers; every one must treat channels alike.
    starts = {nodes[layer.node] for layer in group.members}
    stops = {nodes[layer.node] for members in users.values() for layer in members} | {
        nodes[layer.node] for layer in by_name.values()
    }
    path: list[torch.fx.Node] = []
    stack = list(starts)
    while stack:
        for user in stack.pop().users:
            if user in path or user in stops:
                continue
            if user.op == "output":
                return "its units reach a graph output"
            path.append(user)
            stack.append(user)
    inside = set(path) | starts
    for node in path:
        target = node.target
        if target is BATCH_NORM:
            group.batch_norms.append(node)
        elif target in RESHAPE_OPS:
            shape = list(node.args[1])
            if len(shape) != 2:
                return f"{node.name} reshapes its units into {shape}"
            group.flattens.append(node)
        elif target in ARITHMETIC_OPS:
            if any(isinstance(a, torch.fx.Node) and a not in inside for a in node.args):
                return f"{node.name} mixes its units with another tensor"
        elif target not in CHANNELWISE_OPS:
            return f"{node.name} ({getattr(target, '__name__', target)}) is not channelwise"
    return None


def _zero_valued(
    program: Program, module: torch.nn.Module, prunable: Sequence[Layer]
) -> dict[str, torch.Tensor]:
    """Per layer, units whose value reaches every consumer as exact zeros on a Gaussian probe."""
    by_name = {layer.name: layer for layer in prunable}
    users = connectivity.consumers(prunable)
    zero = {layer.name: torch.ones(layer.fan_out, dtype=torch.bool) for layer in prunable}
    names = {layer.input_node for layer in prunable if layer.input_node}
    for inputs in probe.batches(program, None, 2, seed=program.seed):
        values = probe.capture(program, module, inputs, names)
        for layer in prunable:
            for user in users[layer.name]:
                unit_map = connectivity.link(user, layer.name, by_name)
                seen = values[user.input_node]
                axis = 1 if user.kind.value in ("conv", "depthwise") else -1
                nonzero = (probe.per_unit(seen, axis) != 0).any(dim=0)
                if unit_map.index is None:
                    zero[layer.name] &= ~nonzero.any()
                    continue
                hits = torch.zeros(layer.fan_out, dtype=torch.int64).index_add_(
                    0, unit_map.index, nonzero.long()
                )
                zero[layer.name] &= hits == 0
            if layer.to_output:
                zero[layer.name] &= False
    return zero


def _slice_group(module: torch.nn.Module, group: _Group, keep: torch.Tensor) -> None:
    """Slice the BatchNorm entries on the group's path and make its flattens size-agnostic."""
    for node in group.batch_norms:
        for arg in node.args[1:5]:
            if isinstance(arg, torch.fx.Node) and arg.op == "get_attr":
                _set(module, arg.target, _get(module, arg.target)[keep])
    for node in group.flattens:
        node.args = (node.args[0], [node.args[1][0], -1])


def _slice(
    module: torch.nn.Module,
    prunable: Sequence[Layer],
    keep: Mapping[str, torch.Tensor],
    masks: Mapping[str, torch.Tensor],
    stored: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Slice every layer's output units and input units in `module`; return the sliced masks."""
    by_name = {layer.name: layer for layer in prunable}
    new_masks = {}
    for layer in prunable:
        if layer.kind.value == "embedding":
            if layer.name in stored:
                new_masks[layer.name] = masks[layer.name].clone()
            continue
        rows = keep.get(layer.name, torch.ones(layer.fan_out, dtype=torch.bool))
        cols = torch.ones(connectivity.input_units(layer), dtype=torch.bool)
        for link in connectivity.links(layer, by_name):
            if link.producer in keep and link.index is not None:
                cols &= keep[link.producer][link.index]
        if layer.groups > 1:  # grouped layers and their producers are frozen: nothing to slice
            if layer.name in stored:
                new_masks[layer.name] = masks[layer.name].clone()
            continue
        weight = _get(module, layer.name)[rows][:, cols]
        _set(module, layer.name, weight)
        if layer.bias is not None:
            _set(module, layer.bias, _get(module, layer.bias)[rows])
        if layer.name in stored:
            new_masks[layer.name] = masks[layer.name][rows][:, cols].clone()
    return new_masks


def _get(module: torch.nn.Module, name: str) -> torch.Tensor:
    owner, _, attr = name.rpartition(".")
    return getattr(module.get_submodule(owner) if owner else module, attr).detach()


def _set(module: torch.nn.Module, name: str, value: torch.Tensor) -> None:
    owner, _, attr = name.rpartition(".")
    parent = module.get_submodule(owner) if owner else module
    if isinstance(getattr(parent, attr), torch.nn.Parameter):
        setattr(parent, attr, torch.nn.Parameter(value.clone(), requires_grad=False))
    else:
        setattr(parent, attr, value.clone())
