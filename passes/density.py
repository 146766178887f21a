"""Layerwise density allocation: how many weights each prunable layer keeps for a global sparsity.

Every allocator first computes real-valued densities, then `exact_counts` turns them into kept counts whose
sum is exactly N − round(s·N) and never exceeds a layer's size (largest-remainder rounding).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence

from cascc.errors import OptionError
from cascc.ir import Layer
from cascc.registry import Registry

from . import connectivity
from .registry import PassWarning

# An allocation maps each layer's weight name to the number of weights it keeps.
Allocation = Mapping[str, int]
Allocator = Callable[..., Allocation]
ALLOCATORS: Registry[Allocator] = Registry("allocator")


class AllocationWarning(PassWarning):
    """An allocator met the global sparsity but not every constraint it aims for."""


def check_sparsity(sparsity: float) -> float:
    """Reject a sparsity outside [0, 1)."""
    if not 0.0 <= sparsity < 1.0:
        raise OptionError(
            None, f"sparsity {sparsity} is outside [0, 1)", "pass a fraction of weights to remove, e.g. 0.9"
        )
    return float(sparsity)


def pruned_count(size: int, sparsity: float) -> int:
    """Weights removed from `size` at `sparsity`: round(sparsity × size), halves rounded up."""
    return min(size, int(sparsity * size + 0.5))


def kept_budget(layers: Sequence[Layer], sparsity: float) -> int:
    """Total weights all layers keep together at the global sparsity."""
    total = sum(layer.size for layer in layers)
    return total - pruned_count(total, sparsity)


def exact_counts(layers: Sequence[Layer], densities: Mapping[str, float], budget: int) -> Allocation:
    """Kept counts ≈ d_l·N_l, each within [0, N_l], summing to exactly `budget` (largest remainder first)."""
    quota = {layer.name: min(max(densities[layer.name], 0.0), 1.0) * layer.size for layer in layers}
    kept = {name: math.floor(q) for name, q in quota.items()}
    size = {layer.name: layer.size for layer in layers}
    order = sorted(quota, key=lambda name: (-(quota[name] - kept[name]), name))
    while (missing := budget - sum(kept.values())) != 0:
        step = 1 if missing > 0 else -1
        room = [n for n in (order if step > 0 else reversed(order)) if 0 <= kept[n] + step <= size[n]]
        if not room:
            raise ValueError(f"cannot place {budget} weights in layers of total size {sum(size.values())}")
        for name in room[: abs(missing)]:
            kept[name] += step
    return kept


@ALLOCATORS.register("uniform")
def uniform(layers: Sequence[Layer], sparsity: float, *, dense_ends: bool = False) -> Allocation:
    """Every layer at density 1 − s; with `dense_ends` the first and last layer stay dense and the others
    are raised to meet the global sparsity."""
    check_sparsity(sparsity)
    budget = kept_budget(layers, sparsity)
    ends = {layers[0].name, layers[-1].name} if dense_ends and len(layers) > 2 else set()
    rest = [layer for layer in layers if layer.name not in ends]
    end_size = sum(layer.size for layer in layers if layer.name in ends)
    density = (budget - end_size) / max(sum(layer.size for layer in rest), 1)
    if density < 0:
        raise OptionError(
            None,
            f"sparsity {sparsity} cannot be met with the first and last layer dense "
            f"(they alone hold {end_size} weights, the budget is {budget})",
            "lower the sparsity or drop --dense-ends",
        )
    return exact_counts(
        layers, {layer.name: 1.0 if layer.name in ends else density for layer in layers}, budget
    )


def _solve_capped(layers: Sequence[Layer], weight: Mapping[str, float], budget: int) -> dict[str, float]:
    """d_l = min(1, ε·weight_l) with Σ d_l N_l = budget; capped layers leave the pool and ε is re-solved."""
    dense: set[str] = set()
    while True:
        free = [layer for layer in layers if layer.name not in dense]
        left = budget - sum(layer.size for layer in layers if layer.name in dense)
        scale = left / max(sum(weight[layer.name] * layer.size for layer in free), 1e-300)
        over = {layer.name for layer in free if scale * weight[layer.name] > 1.0}
        if not over:
            return {
                layer.name: 1.0 if layer.name in dense else scale * weight[layer.name] for layer in layers
            }
        dense |= over


@ALLOCATORS.register("erk")
def erk(layers: Sequence[Layer], sparsity: float) -> Allocation:
    """Erdős–Rényi-Kernel: d_l ∝ Σ shape / Π shape (Mocanu et al. 2018; Evci et al., RigL, ICML 2020)."""
    check_sparsity(sparsity)
    budget = kept_budget(layers, sparsity)
    return exact_counts(layers, _solve_capped(layers, _erk_weight(layers), budget), budget)


def _erk_weight(layers: Sequence[Layer]) -> dict[str, float]:
    return {layer.name: sum(layer.weight_shape) / layer.size for layer in layers}


@ALLOCATORS.register("balanced")
def balanced(layers: Sequence[Layer], sparsity: float) -> Allocation:
    """The same number of kept weights in every layer; budget of layers that would exceed density 1 is
    redistributed (Gadhikar, Mukherjee & Burkholz, ICML 2023, `ER_same_params_per_layer`)."""
    check_sparsity(sparsity)
    budget = kept_budget(layers, sparsity)
    return exact_counts(
        layers, _solve_capped(layers, {layer.name: 1.0 / layer.size for layer in layers}, budget), budget
    )


@ALLOCATORS.register("gain")
def gain(layers: Sequence[Layer], sparsity: float) -> Allocation:
    """Trainability-targeted allocation from the variance-gain recursion (docs/methods.md §1, Burkholz &
    Dubatovka 2019): with sparse-aware init a unit of in-degree k has a gain that is a mean of k χ²₁ terms
    (relative variance 2/k), so the log-variance of the signal after all layers spreads as Σ_l 2/k_l. This
    allocator minimizes Σ_l 1/k_l under the budget (k_l = d_l·fan_in_l): d_l ∝ 1/(fan_in_l·√n_out,l), layers
    capped at dense leaving the pool. The least in-degree reached is the κ it achieves (`gain_margin`)."""
    check_sparsity(sparsity)
    budget = kept_budget(layers, sparsity)
    weight = {layer.name: 1.0 / (layer.fan_in * math.sqrt(layer.fan_out)) for layer in layers}
    return exact_counts(layers, _solve_capped(layers, weight, budget), budget)


def gain_margin(layers: Sequence[Layer], allocation: Allocation) -> float:
    """The least expected in-degree k_l = kept_l / n_out,l over layers: the κ an allocation achieves."""
    return min(allocation[layer.name] / layer.fan_out for layer in layers)


@ALLOCATORS.register("pyramidal")
def pyramidal(layers: Sequence[Layer], sparsity: float) -> Allocation:
    """Density decays geometrically with depth, d_l = ρ^l, with Σ N_l ρ^l = (1 − s)N (Gadhikar et al. 2023)."""
    check_sparsity(sparsity)
    budget = kept_budget(layers, sparsity)

    def kept(rho: float) -> float:
        return sum(layer.size * rho ** (i + 1) for i, layer in enumerate(layers))

    low, high = 0.0, 1.0
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if kept(mid) < budget else (low, mid)
    rho = (low + high) / 2
    return exact_counts(layers, {layer.name: rho ** (i + 1) for i, layer in enumerate(layers)}, budget)


@ALLOCATORS.register("cascade")
def cascade(layers: Sequence[Layer], sparsity: float, *, margin: float = 3.0) -> Allocation:
    """cascc's cascade-guided allocation (docs/methods.md §2): start from ERK, raise every layer whose expected
    live in- or out-degree is below the percolation margin κ to the least density meeting it, and take the
    budget back proportionally from layers with slack. If the budget cannot meet κ everywhere, the best
    achievable κ is used and an AllocationWarning says so.
    """
    check_sparsity(sparsity)
    budget = kept_budget(layers, sparsity)
    start = _solve_capped(layers, _erk_weight(layers), budget)
    densities = dict(start)
    kappa = margin
    for _ in range(30):
        floors = percolation_floor(layers, densities, kappa)
        if sum(floors[layer.name] * layer.size for layer in layers) > budget:
            kappa = _best_margin(layers, densities, budget, kappa)
            floors = percolation_floor(layers, densities, kappa)
        updated = _fill_above(layers, start, floors, budget)
        if all(abs(updated[n] - densities[n]) < 1e-9 for n in densities):
            break
        densities = updated
    if kappa < margin - 1e-6:
        warnings.warn(
            f"cascade allocation: sparsity {sparsity} leaves too few weights to keep every layer's live "
            f"in- and out-degree ≥ {margin}; the best achievable margin is κ = {kappa:.2f}",
            AllocationWarning,
            stacklevel=2,
        )
    return exact_counts(layers, densities, budget)


def percolation_floor(
    layers: Sequence[Layer], densities: Mapping[str, float], kappa: float
) -> dict[str, float]:
    """Least density of each layer at which its units' expected live in-degree, and its hidden input units'
    expected live out-degree, reach κ.

    The margin is taken in its Poisson-exact form −n·ln(1 − p·r) ≥ κ (probability of no live link ≤ e^−κ),
    which equals λ·r ≥ κ of docs/methods.md §1 for wide layers and stays meaningful for depthwise convs (n = 1).
    """
    rec = connectivity.analytic(layers, densities)
    floors = {}
    for layer in layers:
        need = _least_pair_probability(connectivity.unit_fan_in(layer), rec.reachable_in[layer.name], kappa)
        if layer.producers:  # hidden input units must also reach an output
            fan_out = connectivity.unit_fan_out(layer)
            need = max(need, _least_pair_probability(fan_out, rec.coreachable[layer.name], kappa))
        taps = layer.size // (layer.fan_out * connectivity.unit_fan_in(layer))
        floors[layer.name] = 1.0 - (1.0 - min(need, 1.0)) ** (1.0 / max(taps, 1))
    return floors


def _least_pair_probability(n: int, live: float, kappa: float) -> float:
    if live <= 0.0:
        return 1.0
    return min(1.0, (1.0 - math.exp(-kappa / n)) / live)


def _fill_above(
    layers: Sequence[Layer], start: Mapping[str, float], floors: Mapping[str, float], budget: int
) -> dict[str, float]:
    """Densities ≥ floors summing to the budget: layers keep their floor plus a common share t of the slack
    (start − floor), so budget moves proportionally away from layers with slack."""
    base = {layer.name: max(start[layer.name], floors[layer.name]) for layer in layers}
    need = sum(floors[layer.name] * layer.size for layer in layers)
    slack = sum((base[layer.name] - floors[layer.name]) * layer.size for layer in layers)
    t = 0.0 if slack <= 0 else min(1.0, max(0.0, (budget - need) / slack))
    result = {n: floors[n] + t * (base[n] - floors[n]) for n in base}
    spare = budget - sum(result[layer.name] * layer.size for layer in layers)
    if spare > 0:  # ERK alone was under budget (everything clipped): spread the rest by ERK weights
        grow = [layer for layer in layers if result[layer.name] < 1.0]
        room = sum((1.0 - result[layer.name]) * layer.size for layer in grow)
        for layer in grow:
            result[layer.name] += (1.0 - result[layer.name]) * min(1.0, spare / max(room, 1e-300))
    return result


def _best_margin(layers: Sequence[Layer], densities: Mapping[str, float], budget: int, kappa: float) -> float:
    """The largest κ' ≤ κ whose percolation floors fit in the budget (bisection)."""
    low, high = 0.0, kappa
    for _ in range(40):
        mid = (low + high) / 2
        cost = sum(percolation_floor(layers, densities, mid)[layer.name] * layer.size for layer in layers)
        low, high = (mid, high) if cost <= budget else (low, mid)
    return low


@ALLOCATORS.register("global")
def global_ranking(layers: Sequence[Layer], sparsity: float, *, scores: Mapping) -> Allocation:
    """No per-layer target: the budget goes to the top scores over all layers together (global magnitude
    pruning, Frankle & Carbin 2019; SynFlow's default), so each layer keeps its share of the global top.
    Ties are broken by layer order, then position, as within a layer."""
    import torch

    check_sparsity(sparsity)
    names = [layer.name for layer in layers]
    flat = torch.cat([scores[n].detach().flatten().double() for n in names])
    top = torch.argsort(flat, descending=True, stable=True)[: kept_budget(layers, sparsity)]
    owner = torch.repeat_interleave(
        torch.arange(len(names)), torch.tensor([scores[n].numel() for n in names])
    )
    counts = torch.bincount(owner[top], minlength=len(names))
    return {name: int(count) for name, count in zip(names, counts, strict=True)}


def allocate(
    name: str, layers: Sequence[Layer], sparsity: float, *, scores: Mapping | None = None, **options
) -> Allocation:
    """Run the allocator registered as `name` with its options; an allocator declaring `scores` ranks
    the criterion's scores (`scores`: per-layer score tensors, or None where the caller has none)."""
    if name not in ALLOCATORS:
        raise OptionError(None, f"unknown allocator {name!r}", f"choose one of {', '.join(ALLOCATORS)}")
    declared = ALLOCATORS.options(name)
    unknown = sorted(set(options) - set(declared) - {"scores"})
    if unknown:
        raise OptionError(
            None,
            f"allocator {name!r} does not take {', '.join(unknown)}",
            f"drop {'it' if len(unknown) == 1 else 'them'}",
        )
    if "scores" in declared:
        if scores is None:
            raise OptionError(
                None,
                f"allocator {name!r} ranks a criterion's scores across layers, and this pass sets "
                "per-layer counts without scoring",
                f"choose one of {', '.join(n for n in ALLOCATORS if 'scores' not in ALLOCATORS.options(n))}",
            )
        options["scores"] = scores
    return ALLOCATORS[name](layers, sparsity, **options)
