"""int8 layers simulated in float: what `Program.module()` runs for a quantized Program.

Each int8 layer's weight is replaced by its codes × scales, and its activation input is rounded to the
layer's uint8 grid right before the layer's node, by the arithmetic of `ir.quant` that the kernels' packing
uses too. The module is then the self-test's reference and the model quantization-aware fine-tuning trains
(the roundings pass gradients straight through).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .layers import layers
from .quant import (
    LayerPrecision,
    fake_quantize_activation,
    fake_quantize_weight,
    fake_quantize_weight_tracking,
)

if TYPE_CHECKING:
    from .program import Program

aten = torch.ops.aten

# The argument holding a layer node's activation: addmm(bias, x, wᵀ); mm(x, wᵀ) and bmm; convolution(x, w, …)
_ACTIVATION_ARG = {
    aten.addmm.default: 1,
    aten.mm.default: 0,
    aten.bmm.default: 0,
    aten.convolution.default: 0,
}


def activation_arg(node: torch.fx.Node) -> int | None:
    """Index of the activation among a layer node's arguments (None: a node kind int8 does not cover)."""
    return _ACTIVATION_ARG.get(node.target)


def simulate_int8(
    module: torch.fx.GraphModule, program: Program, trainable: bool = False
) -> torch.fx.GraphModule:
    """Make `module` (from `program.exported.module()`, masked weights loaded) compute its int8 layers as
    the kernels do; edits `module` in place and returns it. `trainable` (quantization-aware training): the
    weights stay float parameters and the graph rounds them on every forward, each unit to the grid of its
    current largest weight (`fake_quantize_weight_tracking`); the activation grids stay as calibrated."""
    specs = program.int8_layers
    state = module.state_dict(keep_vars=True)
    nodes = {node.name: node for node in module.graph.nodes}
    for name, spec in specs.items():
        weight = state[name]
        flipped = name in program.transposed and weight.shape != program.weights[name].shape
        if trainable:
            _round_in_graph(module, name, axis=1 if flipped else 0)
            continue
        with torch.no_grad():
            stored = weight.t() if flipped else weight  # scales are per unit of the stored [out, in] weight
            rounded = fake_quantize_weight(stored, spec.weight_scales)
            weight.copy_(rounded.t() if flipped else rounded)
    for layer in layers(program):
        spec = specs.get(layer.name)
        if spec is None:
            continue
        for node_name in (layer.node, *layer.tied_nodes):
            node = nodes[node_name]
            index = activation_arg(node)
            if index is None:
                raise ValueError(f"int8 layer {layer.name!r} reads its input through {node.target}")
            source = node.args[index]
            with module.graph.inserting_before(node):
                rounded = module.graph.call_function(_Rounding(spec), (source,))
            node.update_arg(index, rounded)
    module.graph.lint()
    module.recompile()
    return module


def _round_in_graph(module: torch.fx.GraphModule, name: str, axis: int) -> None:
    """Insert a tracking weight rounding after the graph's read of parameter `name`."""
    (read,) = [n for n in module.graph.nodes if n.op == "get_attr" and n.target == name]
    with module.graph.inserting_after(read):
        rounded = module.graph.call_function(_WeightRounding(axis), (read,))
    read.replace_all_uses_with(rounded, delete_user_cb=lambda user: user is not rounded)


class _WeightRounding:
    """A graph-callable tracking rounding of a weight to its int8 grid (quantization-aware training)."""

    def __init__(self, axis: int):
        self.axis = axis
        self.__name__ = "fake_quantize_weight_tracking"

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return fake_quantize_weight_tracking(w, self.axis)


class _Rounding:
    """A graph-callable rounding of an activation to one layer's uint8 grid."""

    def __init__(self, spec: LayerPrecision):
        self.spec = spec
        self.__name__ = "fake_quantize_activation"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quantize_activation(x, self.spec)
