"""A sparsification recipe: the CLI's pruning options turned into the list of passes that carries them out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import OptionError

# Criterion name on the command line -> registered pass.
CRITERIA = {
    "magnitude": "prune.magnitude",
    "random": "prune.random",
    "random-regular": "prune.random_regular",
    "snip": "prune.snip",
    "synflow": "prune.synflow",
    "nm": "prune.nm",
    "block": "prune.block",
}
REPARAMS = {"none": None, "rescale": "reparam.rescale", "sparse-init": "reparam.sparse_init"}
ALLOCATOR_NAMES = ("uniform", "erk", "balanced", "pyramidal", "cascade", "global")


@dataclass(frozen=True)
class Recipe:
    """How to sparsify: global sparsity, allocator, criterion and their options, flow repair,
    reparameterization, shrink."""

    sparsity: float = 0.0
    allocator: str = "uniform"
    criterion: str = "magnitude"
    dense_ends: bool = False
    margin: float = 3.0
    nm: str = "2:4"
    block: str = "4x1"
    reparam: str = "none"
    repair_flow: bool = False
    shrink: bool = False
    data: str | None = None
    seed: int | None = None

    def steps(self) -> list[tuple[str, dict[str, Any]]]:
        """The passes, in order, with their options."""
        if self.criterion not in CRITERIA:
            raise OptionError(
                None, f"unknown criterion {self.criterion!r}", f"choose one of {', '.join(CRITERIA)}"
            )
        if self.reparam not in REPARAMS:
            raise OptionError(
                None, f"unknown reparameterization {self.reparam!r}", f"choose one of {', '.join(REPARAMS)}"
            )
        steps = self._prune()
        if self.repair_flow and steps:
            steps.append(("repair.flow", {"seed": self.seed}))
        if REPARAMS[self.reparam] == "reparam.rescale" and steps:
            steps.append(("reparam.rescale", {"data": self.data}))
        elif REPARAMS[self.reparam] == "reparam.sparse_init":
            steps.append(("reparam.sparse_init", {"seed": self.seed}))
        if self.shrink:
            steps.append(("shrink.dead_units", {}))
        return steps

    def _prune(self) -> list[tuple[str, dict[str, Any]]]:
        if self.criterion == "nm":
            n, m = _parse_nm(self.nm)
            return [("prune.nm", {"n": n, "m": m, "sparsity": self.sparsity or None})]
        if self.sparsity == 0.0:
            return []
        options: dict[str, Any] = {"sparsity": self.sparsity, "allocator": self.allocator}
        allocator_options = self.allocator_options()
        if allocator_options:
            options["allocator_options"] = allocator_options
        if self.criterion in ("random", "random-regular", "snip"):
            options["seed"] = self.seed
        if self.criterion == "snip":
            options["data"] = self.data
        if self.criterion == "block":
            from .passes.prune import parse_block

            parse_block(self.block)
            options["block"] = self.block
        return [(CRITERIA[self.criterion], options)]

    def allocator_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.dense_ends:
            if self.allocator != "uniform":
                raise OptionError(
                    None,
                    "--dense-ends applies to the uniform allocator only",
                    "drop it or use --allocator uniform",
                )
            options["dense_ends"] = True
        if self.allocator == "cascade" and self.margin != 3.0:
            options["margin"] = self.margin
        return options


def _parse_nm(text: str) -> tuple[int, int]:
    found = re.fullmatch(r"([0-9]{1,4}):([0-9]{1,4})", text.strip())
    if not found or not 0 < int(found[1]) <= int(found[2]):
        raise OptionError(None, f"N:M pattern {text!r} is not N:M with 0 < N ≤ M", "use e.g. --nm 2:4")
    return int(found[1]), int(found[2])
