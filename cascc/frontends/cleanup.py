"""Graph cleanups applied to every imported torch.export program, so TVM's importer sees what torch means.

- `aten.cat` skips an operand of shape (0,) whatever the other operands' rank (a legacy torch rule that
  Hugging Face's empty key/value caches rely on); TVM's Concat refuses mixed ranks, so such operands go.
"""

from __future__ import annotations

import torch
from torch.export import ExportedProgram


def _is_legacy_empty(node: object) -> bool:
    val = getattr(node, "meta", {}).get("val")
    return isinstance(val, torch.Tensor) and tuple(val.shape) == (0,)


def drop_empty_cat_operands(ep: ExportedProgram) -> ExportedProgram:
    """Remove (0,)-shaped operands of aten.cat in place; a cat left with one operand becomes that operand."""
    graph = ep.graph_module.graph
    changed = False
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target != torch.ops.aten.cat.default:
            continue
        operands = list(node.args[0])
        kept = [a for a in operands if not _is_legacy_empty(a)]
        if len(kept) == len(operands) or not kept:
            continue
        changed = True
        if len(kept) == 1 and kept[0].meta["val"].shape == node.meta["val"].shape:
            node.replace_all_uses_with(kept[0])
            graph.erase_node(node)
        else:
            node.args = (kept, *node.args[1:])
    if changed:
        graph.eliminate_dead_code()
        ep.graph_module.recompile()
    return ep


def clean(ep: ExportedProgram) -> ExportedProgram:
    """Every cleanup, in order."""
    return drop_empty_cat_operands(ep)
