"""A trainable, batch-polymorphic view of a Program: its exported graph has the batch size of its example
input baked into reshapes, so training maps it over a batch with `torch.vmap` instead of re-exporting.

BatchNorm runs with its running statistics (exported programs are inference graphs); its affine parameters
train. The graph's fused inference BatchNorm has no vmap batching rule (a per-sample loop, ~8× slower), so it
is swapped for the same arithmetic written with broadcasting.
"""

from __future__ import annotations

import torch

from cascc.errors import OptionError
from cascc.ir import Program

aten = torch.ops.aten


class BatchedModule(torch.nn.Module):
    """Runs a static-batch module on any number of samples: samples are grouped into the program's batch
    size and the groups mapped with `torch.vmap`. Takes [N, *sample] and returns [N, classes] logits."""

    def __init__(self, module: torch.nn.Module, input_shape: tuple[int, ...]):
        super().__init__()
        self.inner = module
        self.group = input_shape[0]
        self.sample_shape = tuple(input_shape[1:])
        self._mapped = torch.vmap(self.inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        samples = x.shape[0]
        if samples % self.group:
            raise ValueError(f"batch of {samples} samples is not a multiple of {self.group}")
        grouped = x.reshape(samples // self.group, self.group, *self.sample_shape)
        out = self._mapped(grouped)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.reshape(samples, -1)


def batched(program: Program, trainable_int8: bool = False) -> BatchedModule:
    """A fresh trainable module for `program` (masks applied), checked to be a single-input classifier;
    `trainable_int8`: int8 layers round their float weights in the graph (quantization-aware training)."""
    if len(program.inputs) != 1:
        raise OptionError(
            program.source,
            f"training needs a single-input model, this one has {len(program.inputs)} inputs",
            "wrap the model so it takes one tensor",
        )
    if not program.outputs or len(program.outputs[0].shape) != 2:
        shape = program.outputs[0].shape if program.outputs else ()
        raise OptionError(
            program.source,
            f"training needs classifier logits of shape [batch, classes], the model returns {list(shape)}",
            "return one [batch, classes] tensor from forward()",
        )
    module = program.module(trainable_int8=trainable_int8)
    for parameter in module.parameters():  # exported parameters come frozen
        parameter.requires_grad_(True)
    _swap_batch_norm(module)
    return BatchedModule(module, program.inputs[0].shape)


def _swap_batch_norm(module: torch.fx.GraphModule) -> None:
    for node in module.graph.nodes:
        if node.op == "call_function" and node.target is aten._native_batch_norm_legit_no_training.default:
            node.target = _inference_batch_norm
    module.recompile()


def _inference_batch_norm(x, weight, bias, mean, var, momentum, eps):
    """Inference BatchNorm over axis 1 with broadcasting; returns the (out, mean, invstd) triple the graph
    indexes into."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    invstd = torch.rsqrt(var + eps)
    scale = invstd if weight is None else invstd * weight
    out = (x - mean.view(shape)) * scale.view(shape)
    if bias is not None:
        out = out + bias.view(shape)
    return out, mean, invstd
