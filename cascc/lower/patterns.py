"""dpl patterns for the layers cascc replaces, each with every fusable epilogue, longest first.

A layer is `core` (matmul(x, permute_dims(W)) or conv2d(x, W)), optionally followed by a constant bias add,
a BatchNorm with constant statistics (conv only), and an activation: ReLU, ReLU6 (`clip(·, 0, 6)`),
sigmoid, SiLU (`p · sigmoid(p)`, as torch's SiLU imports), GELU (erf) or GELU (tanh).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from tvm.relax.dpl import DFPattern, is_const, is_op, is_tuple_get_item, wildcard

# The activations a layer's kernel applies (kernels/linear.py `_activate`), with the ops each adds to the
# pattern (its length, for the longest-first order).
ACTIVATIONS = {"silu": 2, "relu": 1, "relu6": 1, "sigmoid": 1, "gelu": 1, "gelu_tanh": 1, None: 0}


@dataclass(frozen=True)
class Chain:
    """One pattern and the handles the rewriter reads its matches through."""

    pattern: DFPattern
    bias: bool
    batch_norm: bool
    act: str | None
    bn_call: DFPattern | None = None


class LayerPatterns:
    """Patterns for linear, conv2d and embedding layers with constant weights."""

    def __init__(self) -> None:
        self.x, self.w = wildcard(), is_const()
        self.wt = is_op("relax.permute_dims")(self.w)
        self.matmul = is_op("relax.matmul")(self.x, self.wt)
        self.conv = is_op("relax.nn.conv2d")(self.x, self.w)
        self.bias = is_const()
        self.bias_shape = wildcard()
        self.bn_consts = [is_const() for _ in range(4)]  # gamma, beta, mean, var
        self.clip_lo, self.clip_hi = wildcard(), wildcard()
        self.lhs, self.rhs = wildcard(), wildcard()
        self.activation_matmul = is_op("relax.matmul")(self.lhs, self.rhs)
        self.ids = wildcard()
        self.embedding = is_op("relax.take")(self.w, self.ids)  # aten.embedding, imported by TVM
        self.linear_chains = self._chains(self.matmul, batch_norm=False)
        self.conv_chains = self._chains(self.conv, batch_norm=True)

    def _chains(self, core: DFPattern, batch_norm: bool) -> list[Chain]:
        chains = []
        for bias, bn, act in itertools.product(
            (True, False), (True, False) if batch_norm else (False,), ACTIVATIONS
        ):
            p, bn_call = core, None
            if bias:
                b = self.bias if core is self.matmul else is_op("relax.reshape")(self.bias, self.bias_shape)
                p = is_op("relax.add")(p, b) | is_op("relax.add")(b, p)
            if bn:
                bn_call = is_op("relax.nn.batch_norm")(p, *self.bn_consts)
                p = is_tuple_get_item(bn_call, 0)
            if act == "relu":
                p = is_op("relax.nn.relu")(p)
            elif act == "relu6":
                p = is_op("relax.clip")(p, self.clip_lo, self.clip_hi)
            elif act == "sigmoid":
                p = is_op("relax.sigmoid")(p)
            elif act == "silu":
                gate = is_op("relax.sigmoid")(p)
                p = is_op("relax.multiply")(p, gate) | is_op("relax.multiply")(gate, p)
            elif act in ("gelu", "gelu_tanh"):
                p = is_op(f"relax.nn.{act}")(p)
            chains.append(Chain(p, bias, bn, act, bn_call))
        # longest first: SiLU's multiply(p, sigmoid(p)) before sigmoid(p) alone, any epilogue before none
        return sorted(chains, key=lambda c: -(c.bias + c.batch_norm + ACTIVATIONS[c.act]))
