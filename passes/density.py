"""Layerwise density allocation: how many weights each prunable layer keeps for a global sparsity."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from cascc.errors import OptionError
from cascc.ir import Layer
from cascc.registry import Registry

# An allocation maps each layer's weight name to the number of weights it keeps.
Allocation = Mapping[str, int]
Allocator = Callable[[Sequence[Layer], float], Allocation]
ALLOCATORS: Registry[Allocator] = Registry("allocator")


def check_sparsity(sparsity: float) -> float:
    """Reject a sparsity outside [0, 1)."""
    if not 0.0 <= sparsity < 1.0:
        raise OptionError(
            None, f"sparsity {sparsity} is outside [0, 1)", "pass a fraction of weights to remove, e.g. 0.9"
        )
    return float(sparsity)


def pruned_count(size: int, sparsity: float) -> int:
    """Weights removed from a layer of `size` at `sparsity`: round(sparsity × size), halves rounded up."""
    return min(size, int(sparsity * size + 0.5))


@ALLOCATORS.register("uniform")
def uniform(layers: Sequence[Layer], sparsity: float) -> Allocation:
    """Every layer at the same density 1 − s; each removes exactly round(s × size) weights."""
    check_sparsity(sparsity)
    return {layer.name: layer.size - pruned_count(layer.size, sparsity) for layer in layers}


def allocate(name: str, layers: Sequence[Layer], sparsity: float) -> Allocation:
    """Run the allocator registered as `name`."""
    if name not in ALLOCATORS:
        raise OptionError(
            None, f"unknown allocator {name!r}", f"choose one of {', '.join(sorted(ALLOCATORS))}"
        )
    return ALLOCATORS[name](layers, sparsity)
