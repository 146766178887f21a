"""Kernel families: what a target family (CPU, GPU) lowers layers and ops with.

A `KernelFamily` holds one strategy per layer kind (`strategies/`; None: that kind stays with TVM), its
legalizations (Relax op → cascc lowering, built for a target) and the Relax rewrites that hold only for
those legalizations (run before the layer rewrite). `Target.kernels` names the family; the
registry rejects duplicate names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import tvm

from cascc.registry import Registry
from cascc.targets import Target

from . import legalize
from .safe_softmax import SafeSoftmaxAsSoftmax
from .strategies import Strategy
from .strategies.attention import Attention
from .strategies.conv import Conv
from .strategies.depthwise import Depthwise
from .strategies.embedding import Embedding
from .strategies.gpu import GpuConv, GpuLinear
from .strategies.linear import Linear


@dataclass(frozen=True)
class Strategies:
    """One strategy per layer kind the rewrite matches."""

    linear: Strategy
    conv: Strategy
    depthwise: Strategy
    attention: Strategy | None = None  # None: activation matmuls stay with TVM
    embedding: Strategy | None = None  # None: embedding lookups stay with TVM's take


@dataclass(frozen=True)
class KernelFamily:
    """A target family's strategies and legalizations (see the module docstring)."""

    name: str
    strategies: Strategies
    legalize: Callable[[Target], Mapping[str, legalize.Legalization]]
    rewrites: tuple[Callable[[], tvm.transform.Pass], ...] = ()

    def legalizations(self, target: Target) -> dict[str, legalize.Legalization]:
        return dict(self.legalize(target))


FAMILIES: Registry[KernelFamily] = Registry("kernel family")


def register(fam: KernelFamily) -> KernelFamily:
    return FAMILIES.register(fam.name)(fam)


CPU = register(
    KernelFamily(
        "cpu",
        Strategies(Linear(), Conv(), Depthwise(), Attention(), Embedding()),
        legalize.cpu,
        rewrites=(SafeSoftmaxAsSoftmax,),  # the row softmax zeroes fully −inf rows itself
    )
)
GPU = register(KernelFamily("gpu", Strategies(GpuLinear(), GpuConv(), GpuConv()), legalize.gpu))


def family(name: str) -> KernelFamily:
    """The kernel family a target's `kernels` names."""
    return FAMILIES[name]
