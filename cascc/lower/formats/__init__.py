"""The format registry: one record per way of storing a layer's weight for a kernel family.

A `Format` holds everything about one storage format — the tile geometries a target offers for it and
their price (from the target's `KernelCosts`), its stored-lane estimator (padding included, without
packing), its packing, its label and its kernel builder — so a strategy asks the registry for the
formats of its operand (`of(Operand.NARROW)`) and takes the cheapest, never branching on a format's name.

Adding a format is one module in this package (registered with `@FORMATS.register` style: `register(fmt)`),
plus its tests: every module here is imported when the registry is first read.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cascc.registry import Registry
from cascc.targets import KernelCosts


class Operand(enum.Enum):
    """Which operand shape a format's kernels serve (and so which strategy chooses among them)."""

    NARROW = "narrow"  # few rows of x: vectorized over output units
    WIDE = "wide"  # many operand columns (pixels × images, tokens): vectorized over them, weights broadcast
    PLANES = "planes"  # int8 stride-1 convs reading channel-interleaved code planes in place
    GPU = "gpu"  # GPU threads per output element


@dataclass(frozen=True, eq=False)
class Work:
    """The layer a format is priced and built for: y = act(W · x + bias) with W [n, k] folded.

    Narrow: x is [batch, k]. Wide: the flat operand A[batch, alen] whose row k starts at koff[k], `m`
    columns per image, read in `lanes`-wide chunks.
    """

    costs: KernelCosts
    batch: int
    k: int
    n: int
    weight: np.ndarray
    bias: np.ndarray | None
    act: str | None
    m: int = 1
    alen: int = 0
    koff: np.ndarray | None = None
    lanes: int = 0
    # int8 layers: the layer's precision (scales; `ir.quant.LayerPrecision`), per-unit factors a folded
    # BatchNorm applies after the dequantization, and the dot-product kind the CPU offers (kernels/int8.py)
    quant: Any = None
    unit_scale: np.ndarray | None = None
    dot: str = ""
    # planes convs: the code planes' geometry (kernels/int8_planes.py PlaneGeometry); `weight` is OIHW
    plane: Any = None


@dataclass(frozen=True)
class Option:
    """One format at one tile geometry, priced for one layer: `lanes` stored (padding included), `ns` per
    stored lane and operand row/column, `us` the predicted time (narrow, GPU) or None (wide: priced per
    column until the operand width is known)."""

    format: Format
    rows: int
    width: int
    ns: float
    lanes: int
    us: float | None

    @property
    def label(self) -> str:
        return self.format.label(self)


@dataclass(frozen=True)
class Format:
    """One weight format (see the module docstring). `rank` orders equally priced formats (lower first);
    `precision` is the arithmetic its kernels compute in ("fp32", "int8").

    options(work) → priced geometries; stored_lanes(weight, rows, width, costs) → lanes without packing;
    pack(work, option) → the packed arrays; kernel(work, option, packed, parallel) → (PrimFunc, constant
    arguments after the activation); label(option) → the name shown in decisions.
    """

    name: str
    operand: Operand
    sparse: bool
    rank: int
    options: Callable[[Work], Sequence[Option]]
    stored_lanes: Callable[[np.ndarray, int, int, KernelCosts], int]
    pack: Callable[[Work, Option], Any]
    kernel: Callable[[Work, Option, Any, bool], tuple[Any, tuple[np.ndarray, ...]]]
    label: Callable[[Option], str]
    precision: str = "fp32"


FORMATS: Registry[Format] = Registry("weight format")


def register(fmt: Format) -> Format:
    """Add a format to the registry (duplicate names are refused)."""
    return FORMATS.register(fmt.name)(fmt)


_loaded = False


def of(operand: Operand, *, sparse: bool, precision: str = "fp32") -> list[Format]:
    """The registered formats serving `operand` in `precision`, sparse or dense, in rank order."""
    global _loaded
    if not _loaded:
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True
    found = [
        f
        for f in FORMATS.values()
        if f.operand is operand and f.sparse == sparse and f.precision == precision
    ]
    return sorted(found, key=lambda f: f.rank)


def cheapest(options: Sequence[Option], price: Callable[[Option], float]) -> Option:
    """The option of lowest price; ties go to the format of lower rank, then to the earlier geometry."""
    return sorted(options, key=price)[0]


def priced(work: Work, operand: Operand, precision: str = "fp32") -> list[Option]:
    """Every sparse option of `operand` for this layer, in rank order (then each format's geometry order)."""
    return [option for fmt in of(operand, sparse=True, precision=precision) for option in fmt.options(work)]
