"""The layer view: `layers(program)` lists the prunable layers as typed `Layer` records. It is the only code
that reads the FX graph; every pass works on its records."""

from __future__ import annotations

import copy
import dataclasses
import enum
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.export import ExportedProgram

from .exported import rebuilt

if TYPE_CHECKING:
    from .program import Program

aten = torch.ops.aten


class LayerKind(enum.Enum):
    LINEAR = "linear"
    CONV = "conv"
    DEPTHWISE = "depthwise"
    EMBEDDING = "embedding"


@dataclass(frozen=True)
class Layer:
    """A prunable layer: its weight parameter and the graph facts every pass needs.

    `fan_in` is the number of weights feeding one output unit (in_features, or in_channels/groups·kh·kw);
    `fan_out` the number of output units (out_features / out_channels). `producers` names the layers whose
    output units feed this layer's input, traced through elementwise, norm, pool, reshape and residual adds;
    `from_input` says a graph input reaches this layer's input that way too, and `to_output` that this
    layer's output reaches a graph output without passing another layer. A weight read by several nodes
    (tied) is one layer: `node` is its first use, `tied_nodes` the others.
    """

    name: str
    kind: LayerKind
    node: str
    weight_shape: tuple[int, ...]
    fan_in: int
    fan_out: int
    groups: int = 1
    stride: tuple[int, ...] = ()  # convolutions only, as in aten.convolution
    padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    bias: str | None = None
    norm_mean: str | None = None  # running-mean buffer of a BatchNorm applied right after the layer
    activation: str | None = None
    activation_node: str | None = None
    input_node: str | None = None
    producers: tuple[str, ...] = ()
    from_input: bool = False
    to_output: bool = False
    tied_nodes: tuple[str, ...] = ()  # further nodes reading this same weight (tied parameters)

    @property
    def unit_axis(self) -> int:
        """Axis of this layer's output value that indexes its units (channels for convs, else the last)."""
        return 1 if self.kind in (LayerKind.CONV, LayerKind.DEPTHWISE) else -1

    @property
    def size(self) -> int:
        n = 1
        for d in self.weight_shape:
            n *= d
        return n


# A linear lowers to addmm/mm; on a non-contiguous 3-D input (attention in-projection at batch > 1) torch
# decomposes it into bmm against the weight expanded over the batch.
MATMUL_OPS = frozenset({aten.addmm.default, aten.mm.default, aten.bmm.default})
CONV_OPS = frozenset({aten.convolution.default})
EMBEDDING_OPS = frozenset({aten.embedding.default})
# Ops a weight passes through on its way into a matmul (linear → permute/t → addmm).
WEIGHT_VIEW_OPS = frozenset(
    {
        aten.permute.default,
        aten.t.default,
        aten.view.default,
        aten._to_copy.default,
        aten.expand.default,
        aten.unsqueeze.default,
    }
)
ACTIVATION_OPS = frozenset(
    {
        aten.relu.default,
        aten.gelu.default,
        aten.sigmoid.default,
        aten.tanh.default,
        aten.hardtanh.default,
        aten.silu.default,
        aten.leaky_relu.default,
        aten.elu.default,
        aten.hardswish.default,
        aten.hardsigmoid.default,
        aten.clamp.default,
        aten._softmax.default,
        aten._log_softmax.default,
    }
)
# Ops between a layer and its activation that do not change which unit is which.
AFFINE_OPS = frozenset(
    {
        aten._native_batch_norm_legit_no_training.default,
        aten.add.Tensor,
        aten.mul.Tensor,
        aten.view.default,
        aten.reshape.default,
        operator.getitem,
    }
)


def layers(program: Program) -> list[Layer]:
    """Prunable linear/conv/depthwise/embedding layers in graph order with fan-in, activation and producers."""
    ep = program.exported
    params = {**ep.graph_signature.inputs_to_parameters}
    frozen = {
        **params,
        **ep.graph_signature.inputs_to_buffers,
        **ep.graph_signature.inputs_to_lifted_tensor_constants,
    }
    by_node: dict[torch.fx.Node, Layer] = {}
    for node in ep.graph.nodes:
        layer = _as_layer(node, params, ep.state_dict)
        if layer is None:
            continue
        source = _activation_input(node)
        producers, from_input = _producers(source, by_node, frozen)
        activation = _following_activation(node)
        norm = _following_batch_norm(node)
        layer = dataclasses.replace(
            layer,
            activation=activation.target._opname.lstrip("_") if activation is not None else None,
            activation_node=activation.name if activation is not None else None,
            producers=tuple(p.name for p in producers),
            input_node=source.name if isinstance(source, torch.fx.Node) else None,
            norm_mean=ep.graph_signature.inputs_to_buffers.get(norm.args[3].name)
            if norm is not None
            else None,
            from_input=from_input or layer.kind is LayerKind.EMBEDDING,
        )
        by_node[node] = layer
    # a tied weight (GPT-2's embedding and LM head) is one prunable layer, listed at its first use
    uses: dict[str, list[torch.fx.Node]] = {}
    for node, layer in by_node.items():
        uses.setdefault(layer.name, []).append(node)
    return [
        dataclasses.replace(
            by_node[nodes[0]],
            to_output=any(_reaches_output(node, by_node) for node in nodes),
            tied_nodes=tuple(node.name for node in nodes[1:]),
        )
        for nodes in uses.values()
    ]


def _as_layer(
    node: torch.fx.Node, params: Mapping[str, str], state: Mapping[str, torch.Tensor]
) -> Layer | None:
    if node.op != "call_function":
        return None
    if node.target in MATMUL_OPS:
        weight_arg, bias = node.args[-1], node.args[0] if node.target == aten.addmm.default else None
        name = _trace_param(weight_arg, params)
        if name is None:
            return None
        out_f, in_f = state[name].shape
        return Layer(
            name, LayerKind.LINEAR, node.name, (out_f, in_f), in_f, out_f, bias=_trace_param(bias, params)
        )
    if node.target in CONV_OPS:
        name = _trace_param(node.args[1], params)
        transposed = node.args[6]
        if name is None or transposed:
            return None
        shape = tuple(state[name].shape)
        groups = int(node.args[8])
        receptive = 1
        for d in shape[2:]:
            receptive *= d
        depthwise = groups > 1 and shape[1] == 1 and groups == shape[0]
        kind = LayerKind.DEPTHWISE if depthwise else LayerKind.CONV
        bias = _trace_param(node.args[2], params)
        return Layer(
            name,
            kind,
            node.name,
            shape,
            shape[1] * receptive,
            shape[0],
            groups=groups,
            stride=tuple(node.args[3]),
            padding=tuple(node.args[4]),
            dilation=tuple(node.args[5]),
            bias=bias,
        )
    if node.target in EMBEDDING_OPS:
        name = _trace_param(node.args[0], params)
        if name is None:
            return None
        num, dim = state[name].shape
        return Layer(name, LayerKind.EMBEDDING, node.name, (num, dim), num, dim)
    return None


def _trace_param(arg: Any, params: Mapping[str, str], count_transposes: bool = False):
    """The parameter FQN behind `arg`, seen through permute/t/view; None if it is not a parameter. With
    `count_transposes`, (name, how many of those views swap the last two axes)."""
    transposes = 0
    while isinstance(arg, torch.fx.Node):
        if arg.op == "placeholder":
            name = params.get(arg.name)
            return (name, transposes) if count_transposes and name is not None else name
        if arg.op == "call_function" and arg.target in WEIGHT_VIEW_OPS:
            transposes += _swaps_last_axes(arg)
            arg = arg.args[0]
            continue
        return None
    return None


def _swaps_last_axes(node: torch.fx.Node) -> bool:
    if node.target == aten.t.default:
        return True
    if node.target == aten.permute.default:
        dims = list(node.args[1])
        n = len(dims)
        return n >= 2 and [d % n for d in dims[-2:]] == [n - 1, n - 2]
    return False


def _activation_input(node: torch.fx.Node) -> torch.fx.Node | None:
    if node.target == aten.addmm.default:
        return node.args[1]
    if node.target in (aten.mm.default, aten.bmm.default):
        return node.args[0]
    if node.target in CONV_OPS:
        return node.args[0]
    return None  # embedding: its input is token ids, never a layer's output


def _producers(
    start: Any, by_node: Mapping[torch.fx.Node, Layer], frozen: Mapping[str, str]
) -> tuple[list[Layer], bool]:
    """Layers whose outputs reach `start` through non-layer ops (elementwise, norm, pool, reshape, add),
    and whether a graph input reaches it that way too."""
    seen: set[torch.fx.Node] = set()
    result: dict[str, Layer] = {}
    from_input = False
    stack = [start] if isinstance(start, torch.fx.Node) else []
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node in by_node:
            result[by_node[node].name] = by_node[node]
            continue
        if node.op == "placeholder":
            from_input = True  # frozen placeholders (weights) are never pushed
            continue
        if node.op == "get_attr":
            continue
        stack.extend(_tensor_args(node, frozen))
    order = {layer.name: i for i, layer in enumerate(by_node.values())}
    return sorted(result.values(), key=lambda layer: order[layer.name]), from_input


def _reaches_output(start: torch.fx.Node, by_node: Mapping[torch.fx.Node, Layer]) -> bool:
    """Whether `start`'s value reaches the graph output through ops that are not layers."""
    seen: set[torch.fx.Node] = set()
    stack = [start]
    while stack:
        for user in stack.pop().users:
            if user in seen or user in by_node:
                continue
            if user.op == "output":
                return True
            seen.add(user)
            stack.append(user)
    return False


def _tensor_args(node: torch.fx.Node, frozen: Mapping[str, str]) -> Iterable[torch.fx.Node]:
    for arg in node.all_input_nodes:
        if arg.op == "placeholder" and arg.name in frozen:
            continue
        yield arg


def _following_batch_norm(node: torch.fx.Node) -> torch.fx.Node | None:
    """The inference BatchNorm that is this layer's only user, if any."""
    users = list(node.users)
    if len(users) == 1 and users[0].target == aten._native_batch_norm_legit_no_training.default:
        return users[0]
    return None


def _following_activation(node: torch.fx.Node) -> torch.fx.Node | None:
    """The activation applied to this layer's output, looking through norm, bias add and reshapes."""
    current = node
    for _ in range(8):
        users = list(current.users)
        if len(users) != 1:
            return None
        user = users[0]
        if user.op != "call_function":
            return None
        if user.target in ACTIVATION_OPS:
            return user
        if user.target not in AFFINE_OPS:
            return None
        current = user
    return None


# ---------------------------------------------------------------------------------------------------------
# Invariants


def store_linear_weights_out_in(ep: ExportedProgram) -> tuple[ExportedProgram, frozenset[str]]:
    """A copy of `ep` in which every 2-D parameter that a matmul reads as [in, out] (no transpose between
    the parameter and the matmul: GPT-2's Conv1D, ONNX MatMul/Gemm with transB=0) is stored as [out, in]
    and read through a core-ATen `permute`, so every pass and kernel sees one linear layout; and the names
    moved."""
    params = ep.graph_signature.inputs_to_parameters
    moved = []
    for node in ep.graph.nodes:
        if node.op == "call_function" and node.target in MATMUL_OPS:
            traced = _trace_param(node.args[-1], params, count_transposes=True)
            if traced is None or traced[1] % 2 or ep.state_dict[traced[0]].dim() != 2 or traced[0] in moved:
                continue
            moved.append(traced[0])
    if not moved:
        return ep, frozenset()
    graph = copy.deepcopy(ep.graph)
    placeholders = {params[n.name]: n for n in graph.nodes if n.op == "placeholder" and n.name in params}
    first_op = next(n for n in graph.nodes if n.op != "placeholder")
    state = dict(ep.state_dict)
    for name in moved:
        node, old = placeholders[name], state[name]
        state[name] = torch.nn.Parameter(old.detach().t().contiguous(), requires_grad=old.requires_grad)
        with graph.inserting_before(first_op):
            view = graph.call_function(aten.permute.default, (node, [1, 0]))
        node.replace_all_uses_with(view, delete_user_cb=lambda user, view=view: user is not view)
        view.meta = dict(node.meta)
        node.meta["val"] = node.meta["val"].fake_mode.from_tensor(state[name], static_shapes=True)
    return rebuilt(ep, state, torch.fx.GraphModule(ep.graph_module, graph)), frozenset(moved)
