"""Forward probes: run a program on Gaussian or real batches and capture intermediate values by node name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch

from cascc.errors import OptionError
from cascc.ir import Program

from .seeding import generator


def batches(program: Program, samples: torch.Tensor | None, count: int, seed: int = 0) -> Iterator[tuple]:
    """`count` input tuples of the program's static shape: Gaussian N(0, 1), or consecutive real samples
    (reshaped per sample to the input's shape) when `samples` is given. Integer and boolean inputs (token
    ids, attention masks) have no Gaussian: they are probed with ones, an id every vocabulary has and a
    mask that hides nothing."""
    (spec, *rest) = program.inputs
    if rest and samples is not None:
        raise OptionError(
            program.source, "data probes need a single-input model", "probe with Gaussian inputs"
        )
    batch, sample_shape = spec.shape[0], spec.shape[1:]
    if samples is None:
        gen = generator(seed, "probe")
        for _ in range(count):
            yield tuple(_gaussian(s.shape, getattr(torch, s.dtype), gen) for s in program.inputs)
        return
    per_sample = int(torch.tensor(sample_shape).prod()) if sample_shape else 1
    if samples[0].numel() != per_sample:
        raise OptionError(
            program.source,
            f"data samples have {samples[0].numel()} values but the model's input takes {per_sample} per sample "
            f"(shape {tuple(sample_shape)})",
            "pass data whose samples match the model's input",
        )
    usable = min(count, len(samples) // batch)
    if usable == 0:
        raise OptionError(
            program.source,
            f"data has {len(samples)} samples, fewer than one batch of {batch}",
            "pass more data",
        )
    for i in range(usable):
        yield (samples[i * batch : (i + 1) * batch].reshape(spec.shape).to(getattr(torch, spec.dtype)),)


def _gaussian(shape, dtype: torch.dtype, gen: torch.Generator) -> torch.Tensor:
    if dtype.is_floating_point:
        return torch.randn(shape, generator=gen, dtype=dtype)
    return torch.ones(shape, dtype=dtype)


class _Recorder(torch.fx.Interpreter):
    def __init__(self, module: torch.fx.GraphModule, names: Iterable[str]):
        super().__init__(module)
        self.names = set(names)
        self.values: dict[str, torch.Tensor] = {}

    def run_node(self, node: torch.fx.Node) -> Any:
        value = super().run_node(node)
        if node.name in self.names:
            self.values[node.name] = value.detach()
        return value


def capture(
    program: Program, module: torch.fx.GraphModule, inputs: Sequence[torch.Tensor], names: Iterable[str]
) -> dict[str, torch.Tensor]:
    """Values of `program`'s graph nodes named `names` on one forward pass of `module` (its `module()`).

    The unlifted module renames the graph inputs; they are matched to the program's by position.
    """
    placeholders = [n.name for n in module.graph.nodes if n.op == "placeholder"]
    renamed = dict(zip(placeholders, program.exported.graph_signature.user_inputs, strict=True))
    wanted = set(names)
    recorder = _Recorder(module, {n for n in placeholders if renamed[n] in wanted} | wanted)
    with torch.no_grad():
        recorder.run(*inputs)
    return {renamed.get(name, name): value for name, value in recorder.values.items()}


def per_unit(value: torch.Tensor, axis: int) -> torch.Tensor:
    """[samples, units] view of a layer value whose units lie on `axis` (every other axis is a sample)."""
    return value.movedim(axis, -1).reshape(-1, value.shape[axis])
