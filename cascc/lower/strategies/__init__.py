"""Strategies: how one kernel family lowers one layer kind (linear, conv, depthwise, attention matmul).

The rewrite driver (`rewrite.py`) matches a layer, folds its epilogue, names it, and calls the family's
strategy for the layer's kind with a typed record of the layer:

    class Strategy(Protocol):
        def lower(self, ctx: Context, layer: Layer) -> relax.Expr | None: ...

A strategy returns the layer's replacement (after `ctx.choose` or `ctx.record` recorded its decision), or
None to leave the layer to TVM, after `ctx.why(layer.name, density, Decline.…)` said why. Everything a
strategy needs comes through `ctx` (target, BlockBuilder via `ctx.add_kernel`/`ctx.call`, parallel
threshold) and the format registry (`formats.of(Operand.…)`); no strategy reaches into another's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..epilogue import Epilogue

if TYPE_CHECKING:
    from ..context import Context


@dataclass(frozen=True, eq=False)
class LinearLayer:
    """y = act(x · Wᵀ + b) with x [rows, k] and the folded epilogue; `weight` is the raw [n, k] constant."""

    name: str
    x: Any  # relax.Expr
    rows: int
    k: int
    n: int
    weight: np.ndarray
    ep: Epilogue
    quant: Any = None  # an int8 layer's `ir.quant.LayerPrecision` (None: fp32)


@dataclass(frozen=True, eq=False)
class ConvLayer:
    """A 2-D NCHW/OIHW convolution with its geometry and folded epilogue."""

    name: str
    x: Any  # relax.Expr
    shape: tuple[int, int, int, int]  # batch, channels, height, width
    weight: np.ndarray  # raw [O, C/G, kh, kw]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int, int, int]  # top, left, bottom, right
    dil: tuple[int, int]
    groups: int
    out_hw: tuple[int, int]
    ep: Epilogue
    quant: Any = None  # an int8 layer's `ir.quant.LayerPrecision` (None: fp32)

    @property
    def out_c(self) -> int:
        return self.weight.shape[0]

    @property
    def depthwise(self) -> bool:
        """One undilated filter per channel: the depthwise strategy's layers (dilated ones run as grouped)."""
        channels = self.shape[1]
        return self.groups == channels == self.out_c and self.weight.shape[1] == 1 and self.dil == (1, 1)

    @classmethod
    def of(cls, name: str, x, shape, weight: np.ndarray, attrs, ep: Epilogue, quant=None) -> ConvLayer:
        """The layer a matched relax.nn.conv2d with these attributes describes."""
        _, _, height, width = shape
        kh, kw = weight.shape[2:]
        stride = tuple(int(s) for s in attrs.strides)
        pad = tuple(int(p) for p in attrs.padding)
        dil = tuple(int(d) for d in attrs.dilation)
        oh = (height + pad[0] + pad[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
        ow = (width + pad[1] + pad[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
        groups = int(attrs.groups)
        return cls(name, x, shape, weight, (kh, kw), stride, pad, dil, groups, (oh, ow), ep, quant)


@dataclass(frozen=True, eq=False)
class MatmulLayer:
    """An activation × activation matmul (attention scores and values): a [B, M, K] · b [B, K, N]."""

    a: Any
    b: Any
    a_shape: tuple[int, ...]
    b_shape: tuple[int, ...]
    scale: float = 1.0  # C = scale · (a · b): scalar factors peeled off the operands (scalar_scale.py)
    dtype: str = "float32"  # of both operands (a and b may be views built after the graph was typed)


Layer = LinearLayer | ConvLayer | MatmulLayer


class Strategy(Protocol):
    """Lowers one layer kind for one kernel family (see the module docstring)."""

    def lower(self, ctx: Context, layer: Any) -> Any | None: ...
