"""The Program record: a core-ATen `torch.export` program plus masks, signature and provenance."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch.export import ExportedProgram

from .exported import replace_state
from .layers import store_linear_weights_out_in
from .quant import LayerPrecision

aten = torch.ops.aten


@dataclass(frozen=True)
class TensorSpec:
    """Name, static shape and dtype of one artifact input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class PassRecord:
    """One step of a program's history: the pass name and the options it ran with."""

    name: str
    options: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}


@dataclass(frozen=True, eq=False)
class Program:
    """An immutable record: exported program, masks by parameter name, signature and provenance."""

    exported: ExportedProgram
    masks: Mapping[str, torch.Tensor] = field(default_factory=lambda: MappingProxyType({}))
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    source: str = "<memory>"
    frontend: str = "torch"
    seed: int = 0
    history: tuple[PassRecord, ...] = ()
    # linear weights the source module holds as [in, out] (GPT-2's Conv1D, addmm(b, x, W)): the program
    # stores them as [out, in] like every other linear, and `load_into` transposes them back
    transposed: frozenset[str] = frozenset()
    # per prunable layer (weight name): its precision and int8 scales (`quantize.ptq`); absent means fp32
    precisions: Mapping[str, LayerPrecision] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not isinstance(self.masks, MappingProxyType):
            object.__setattr__(self, "masks", MappingProxyType(dict(self.masks)))
        if not isinstance(self.precisions, MappingProxyType):
            object.__setattr__(self, "precisions", MappingProxyType(dict(self.precisions)))
        object.__setattr__(self, "transposed", frozenset(self.transposed))

    @property
    def weights(self) -> Mapping[str, torch.Tensor]:
        """Parameters and buffers by fully qualified name, as stored (masks not applied)."""
        return self.exported.state_dict

    def masked_weights(self) -> dict[str, torch.Tensor]:
        """Every parameter and buffer with its mask applied (masked entries exactly zero). A tied weight is
        listed under each of its names, all masked alike."""
        state = self.weights
        mask_of = {id(state[name]): mask for name, mask in self.masks.items()}
        return {
            name: tensor.detach() * mask_of[id(tensor)] if id(tensor) in mask_of else tensor.detach()
            for name, tensor in state.items()
        }

    @property
    def int8_layers(self) -> dict[str, LayerPrecision]:
        """The layers that compute in int8, with their scales."""
        return {name: p for name, p in self.precisions.items() if p.int8}

    def module(self, trainable_int8: bool = False) -> torch.nn.Module:
        """A fresh runnable module with masks applied; editing it never touches this Program. int8 layers
        compute as their kernels do: weights and inputs rounded to their int8 grids (`ir.quant`);
        `trainable_int8` keeps the weights float and rounds them in the graph, for quantization-aware
        training (`ir.simulate`)."""
        # ep.module() shares tensors with the ExportedProgram: work on a copy.
        module = self.load_into(self.exported.module())
        if self.int8_layers:
            from .simulate import simulate_int8

            simulate_int8(module, self, trainable=trainable_int8)
        return module

    def load_into(self, module: torch.nn.Module) -> torch.nn.Module:
        """A deep copy of `module` (same parameter names) holding this program's masked weights."""
        copied = copy.deepcopy(module)
        masked = self.masked_weights()
        with torch.no_grad():
            for name, tensor in copied.state_dict(keep_vars=True).items():
                if name in masked:
                    value = masked[name]
                    tensor.copy_(
                        value.t() if name in self.transposed and value.shape != tensor.shape else value
                    )
        return copied

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """The example inputs the program was exported with, else seeded normal samples of the signature."""
        stored = self.exported.example_inputs
        if stored is not None and stored[0] and not stored[1]:
            return tuple(t.detach().clone() for t in stored[0])
        gen = torch.Generator().manual_seed(self.seed)
        return tuple(
            torch.randn(spec.shape, generator=gen, dtype=getattr(torch, spec.dtype)) for spec in self.inputs
        )

    def with_weights(self, updates: Mapping[str, torch.Tensor]) -> Program:
        """A new Program whose parameters/buffers named in `updates` hold new values (same shapes)."""
        return dataclasses.replace(self, exported=replace_state(self.exported, updates))


def from_exported(ep: ExportedProgram, *, source: str, frontend: str, seed: int = 0) -> Program:
    """Wrap a core-ATen ExportedProgram, reading its static input/output signature from the graph.
    Linear weights stored [in, out] are stored [out, in] (`store_linear_weights_out_in`)."""
    ep, transposed = store_linear_weights_out_in(ep)
    sig = ep.graph_signature
    nodes = {n.name: n for n in ep.graph.nodes}
    inputs = tuple(_spec(name, nodes[name].meta.get("val")) for name in sig.user_inputs)
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    out_vals = [a.meta.get("val") if isinstance(a, torch.fx.Node) else None for a in out_node.args[0]]
    outputs = tuple(_spec(f"output_{i}", val) for i, val in enumerate(out_vals[: len(sig.user_outputs)]))
    return Program(
        exported=ep,
        inputs=inputs,
        outputs=outputs,
        source=source,
        frontend=frontend,
        seed=seed,
        transposed=transposed,
    )


def _spec(name: str, val: Any) -> TensorSpec:
    if not isinstance(val, torch.Tensor):
        raise TypeError(f"{name} is not a tensor (got {type(val).__name__})")
    shape = []
    for dim in val.shape:
        if not isinstance(dim, int):
            raise TypeError(f"{name} has a symbolic dimension {dim}; cascc compiles static shapes")
        shape.append(dim)
    return TensorSpec(name, tuple(shape), str(val.dtype).removeprefix("torch."))


def verify(program: Program) -> None:
    """Check the Program invariants: each mask names a parameter, has its shape, is bool, and weights are
    finite; each int8 layer has one weight scale per output unit."""
    state = program.weights
    for name, spec in program.int8_layers.items():
        if name not in state:
            raise ValueError(f"precision {name!r} names no parameter")
        if len(spec.weight_scales) != state[name].shape[0]:
            raise ValueError(
                f"int8 layer {name!r} has {len(spec.weight_scales)} weight scales for {state[name].shape[0]} units"
            )
    for name, mask in program.masks.items():
        if name not in state:
            raise ValueError(f"mask {name!r} names no parameter")
        if mask.dtype != torch.bool:
            raise ValueError(f"mask {name!r} has dtype {mask.dtype}, expected torch.bool")
        if tuple(mask.shape) != tuple(state[name].shape):
            raise ValueError(
                f"mask {name!r} has shape {tuple(mask.shape)}, weight has {tuple(state[name].shape)}"
            )
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"weight {name!r} holds NaN or Inf")


def density(program: Program, name: str) -> float:
    """Fraction of weights of parameter `name` that the mask keeps (1.0 when unmasked)."""
    mask = program.masks.get(name)
    return 1.0 if mask is None else float(mask.sum()) / mask.numel()
