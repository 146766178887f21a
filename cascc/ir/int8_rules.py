"""Which layers int8 can cover: the rules both `quantize.ptq` and the QDQ ONNX import apply.

A layer stays fp32, with the reason recorded in the Program (the compile table shows it), when cascc has no
int8 kernel for its kind (embeddings, depthwise, grouped and transposed convolutions, batched matmuls), when
it reads a softmax (one int8 step would erase its small probabilities), or when its weight is tied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .layers import Layer, LayerKind
from .simulate import activation_arg

if TYPE_CHECKING:
    from .program import Program

aten = torch.ops.aten


def int8_blocker(program: Program, layer: Layer) -> str | None:
    """Why `layer` cannot compute in int8, or None when it can."""
    node = {n.name: n for n in program.exported.graph.nodes}[layer.node]
    if layer.kind is LayerKind.EMBEDDING:
        return "an embedding is a lookup: int8 covers matmul layers"
    if layer.kind is LayerKind.DEPTHWISE:
        return "no int8 depthwise convolution kernel yet"
    if layer.kind is LayerKind.CONV:
        if node.target is not aten.convolution.default or node.args[6]:
            return f"its convolution is {node.target} (transposed), which the int8 kernels do not read"
        if node.args[8] != 1:
            return "no int8 grouped convolution kernel yet"
    elif node.target not in (aten.addmm.default, aten.mm.default):
        return f"its matmul is {node.target}, which the int8 kernels do not read"
    source = node.args[activation_arg(node)]
    if isinstance(source, torch.fx.Node) and source.target in (aten._softmax.default, aten.softmax.int):
        return "it reads a softmax, whose small probabilities one int8 step would erase"
    if layer.tied_nodes:
        return "a tied weight read by several layers"
    return None
