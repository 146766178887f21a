"""ExportedProgram helpers the IR builds on: the same graph with another state dict (and graph module)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.export import ExportedProgram


def replace_state(ep: ExportedProgram, updates: Mapping[str, torch.Tensor]) -> ExportedProgram:
    """Copy of `ep` with some state-dict entries replaced; the graph is shared, not re-exported."""
    state = dict(ep.state_dict)
    for name, value in updates.items():
        old = state[name]
        if tuple(old.shape) != tuple(value.shape):
            raise ValueError(f"{name}: new shape {tuple(value.shape)} != {tuple(old.shape)}")
        value = value.detach().to(old.dtype).clone()
        state[name] = (
            torch.nn.Parameter(value, requires_grad=False) if isinstance(old, torch.nn.Parameter) else value
        )
    return rebuilt(ep, state)


def rebuilt(ep: ExportedProgram, state: dict, root: torch.fx.GraphModule | None = None) -> ExportedProgram:
    """`ep` with another state dict (and graph module), everything else shared."""
    root = ep.graph_module if root is None else root
    return ExportedProgram(
        root=root,
        graph=root.graph,
        graph_signature=ep.graph_signature,
        state_dict=state,
        range_constraints=ep.range_constraints,
        module_call_graph=ep.module_call_graph,
        example_inputs=ep.example_inputs,
        constants=ep.constants,
        verifiers=[ep.verifier],
    )
