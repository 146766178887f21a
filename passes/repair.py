"""Mask repair: flow preservation after any criterion and allocator (docs/methods.md §1.1, §2.4; Gadhikar et al. 2023).

A unit with no kept input weight is dead, one whose outputs no consumer reads is isolated; either blocks the
flow of signal and gradient. Repair gives each such unit one random connection (at channel level for convs:
one random tap of one random channel pair) and says how many weights that cost.
"""

from __future__ import annotations

import dataclasses
import warnings

import torch

from cascc.ir import Layer, LayerKind, Program, layers

from .connectivity import links, unit_edges
from .density import AllocationWarning
from .registry import register
from .seeding import generator


@register("repair.flow")
def flow(program: Program, *, seed: int | None = None) -> Program:
    """Give every output unit with in-degree 0 one random incoming weight and every producer unit that no
    consumer reads one random outgoing weight; warns with the number of weights added."""
    gen = generator(program.seed if seed is None else seed, "repair.flow")
    prunable = [layer for layer in layers(program) if layer.kind is not LayerKind.EMBEDDING]
    masks = {name: mask.clone() for name, mask in program.masks.items()}
    kept = sum(int(mask.sum()) for mask in masks.values())
    added = 0
    for layer in prunable:
        if layer.name in masks:
            added += _feed_dead_units(layer, masks[layer.name], gen)
    added += _read_isolated_units(prunable, masks, gen)
    if added:
        warnings.warn(
            f"repair.flow: added {added} weights ({100 * added / max(kept, 1):.2f}% of the {kept} kept)",
            AllocationWarning,
            stacklevel=2,
        )
    return dataclasses.replace(program, masks=masks)


def _feed_dead_units(layer: Layer, mask: torch.Tensor, gen: torch.Generator) -> int:
    edges = unit_edges(layer, mask)
    dead = torch.nonzero(~edges.any(dim=1)).flatten().tolist()
    per_group = edges.shape[1] // layer.groups
    out_per_group = edges.shape[0] // layer.groups
    for unit in dead:
        group = unit // out_per_group
        source = group * per_group + int(torch.randint(per_group, (1,), generator=gen))
        _connect(layer, mask, unit, source, gen)
    return len(dead)


def _read_isolated_units(prunable: list[Layer], masks: dict[str, torch.Tensor], gen: torch.Generator) -> int:
    """Producer units none of whose outputs any consumer's kept weights read."""
    by_name = {layer.name: layer for layer in prunable}
    read: dict[str, torch.Tensor] = {}
    readers: dict[str, list[tuple[Layer, torch.Tensor]]] = {}
    for layer in prunable:
        edges = unit_edges(layer, masks[layer.name]) if layer.name in masks else None
        for unit_link in links(layer, by_name):
            if unit_link.index is None:
                continue  # no exact unit map (e.g. a reshape cascc cannot follow): leave it alone
            units = by_name[unit_link.producer].fan_out
            seen = read.setdefault(unit_link.producer, torch.zeros(units, dtype=torch.bool))
            columns = (
                edges.any(dim=0) if edges is not None else torch.ones(len(unit_link.index), dtype=torch.bool)
            )
            seen[unit_link.index[columns]] = True
            if layer.name in masks:
                readers.setdefault(unit_link.producer, []).append((layer, unit_link.index))
    added = 0
    for producer, seen in read.items():
        for unit in torch.nonzero(~seen).flatten().tolist():
            if producer not in readers:
                continue
            layer, index = readers[producer][0]
            features = torch.nonzero(index == unit).flatten()
            source = int(features[torch.randint(len(features), (1,), generator=gen)])
            group = source // (index.numel() // layer.groups)
            out_per_group = layer.fan_out // layer.groups
            target = group * out_per_group + int(torch.randint(out_per_group, (1,), generator=gen))
            _connect(layer, masks[layer.name], target, source, gen)
            added += 1
    return added


def _connect(layer: Layer, mask: torch.Tensor, unit: int, source: int, gen: torch.Generator) -> None:
    """Keep one weight from input unit `source` to output unit `unit` (a random tap for convs)."""
    if layer.kind is LayerKind.LINEAR:
        mask[unit, source] = True
        return
    column = source % mask.shape[1]  # the input channel within the unit's group
    taps = mask[unit, column].flatten()
    taps[int(torch.randint(taps.numel(), (1,), generator=gen))] = True
    mask[unit, column] = taps.view(mask.shape[2:])
