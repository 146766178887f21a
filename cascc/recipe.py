"""A sparsification recipe: the CLI's pruning options turned into the list of passes that carries them out.

The names come from the registries: a criterion is a `prune.*` pass, a reparameterization a `reparam.*` pass,
an allocator an entry of `passes.density.ALLOCATORS`. Their keyword options are their declarations: a recipe
option reaches a criterion or allocator that takes it, and set where none does, it is refused.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import OptionError

# recipe options that fill a criterion's or allocator's keyword options (the same name unless listed here)
FILLS = {"nm": ("n", "m")}
# recipe options that only feed declarations: refused where the chosen ones do not take them. `data` also
# feeds commands (analysis probes, fine-tuning), so it is refused only when given to a command without a use
DECLARED = ("nm", "block", "margin", "dense_ends")


def criteria() -> dict[str, str]:
    """`--criterion` names → their `prune.*` passes."""
    from .passes.registry import choices

    return choices("prune")


def reparams() -> dict[str, str | None]:
    """`--reparam` names → their `reparam.*` passes (`none`: no pass)."""
    from .passes.registry import choices

    return {"none": None, **choices("reparam")}


def allocators() -> list[str]:
    """`--allocator` names: the allocator registry."""
    from .passes.density import ALLOCATORS

    return list(ALLOCATORS)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


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

    def steps(
        self, *, given: Iterable[str] = (), command_uses: Iterable[str] = ()
    ) -> list[tuple[str, dict[str, Any]]]:
        """The passes, in order, with their options; options that would do nothing are refused first
        (`check_applies`)."""
        from . import passes

        criterion = _known(self.criterion, criteria(), "criterion")
        reparam = _known(self.reparam, reparams(), "reparameterization")
        _known(self.allocator, allocators(), "allocator")
        self.check_applies(given, command_uses=command_uses)
        steps = self._prune(criterion, passes.PASSES.options(criterion))
        if self.repair_flow and steps:
            steps.append(("repair.flow", {"seed": self.seed}))
        # rescale corrects the weights this recipe just pruned; sparse-init initializes any mask
        if reparam is not None and (steps or reparam != "reparam.rescale"):
            steps.append((reparam, self._fill(passes.PASSES.options(reparam), ("seed", "data"))))
        if self.shrink:
            steps.append(("shrink.dead_units", {}))
        return steps

    def takers(self, option: str) -> dict[str, list[str]]:
        """Where recipe option `option` applies: the `--criterion`, `--allocator` and `--reparam` names
        whose declarations take it."""
        from . import passes

        wanted = set(FILLS.get(option, (option,)))
        found = {
            "--criterion": [n for n, p in criteria().items() if wanted <= set(passes.PASSES.options(p))],
            "--allocator": [n for n in allocators() if wanted <= set(passes.density.ALLOCATORS.options(n))],
            "--reparam": [n for n, p in reparams().items() if p and wanted <= set(passes.PASSES.options(p))],
        }
        return {flag: names for flag, names in found.items() if names}

    def applies(self, option: str, *, command_uses: Iterable[str] = ()) -> bool:
        """Whether `option` reaches the chosen criterion, allocator or reparameterization (or the command,
        which uses the options in `command_uses` itself)."""
        chosen = {"--criterion": self.criterion, "--allocator": self.allocator, "--reparam": self.reparam}
        return option in command_uses or any(
            chosen[flag] in names for flag, names in self.takers(option).items()
        )

    def check_applies(self, given: Iterable[str] = (), *, command_uses: Iterable[str] = ()) -> None:
        """Refuse an option that would do nothing: one of `DECLARED` set away from its default, or any
        option named in `given` (what the user gave explicitly), that no chosen declaration takes and the
        command does not use (`command_uses`)."""
        defaults = {f.name: f.default for f in dataclasses.fields(Recipe)}
        given = set(given)
        for option in (*DECLARED, "data"):
            set_here = option in given or (option in DECLARED and getattr(self, option) != defaults[option])
            if set_here and not self.applies(option, command_uses=command_uses):
                where = " or ".join(
                    f"{flag} {'/'.join(names)}" for flag, names in self.takers(option).items()
                )
                raise OptionError(
                    None,
                    f"{_flag(option)} does nothing here: it applies with {where or 'no choice'}",
                    f"add it, or drop {_flag(option)}",
                )

    def allocator_options(self) -> dict[str, Any]:
        """The options the allocator declares, where the recipe sets them away from its defaults."""
        from .passes.density import ALLOCATORS

        declared = ALLOCATORS.options(_known(self.allocator, allocators(), "allocator"))
        return {
            name: getattr(self, name)
            for name in ("dense_ends", "margin")
            if name in declared and getattr(self, name) != declared[name].default
        }

    def _prune(self, name: str, declared: dict) -> list[tuple[str, dict[str, Any]]]:
        # a criterion whose sparsity is optional fixes it by itself (N:M) and runs at sparsity 0
        sparsity = declared.get("sparsity")
        if self.sparsity == 0.0 and (sparsity is None or sparsity.default is sparsity.empty):
            return []
        options: dict[str, Any] = {"sparsity": self.sparsity or None}
        if "allocator" in declared:
            options["allocator"] = self.allocator
            if allocator_options := self.allocator_options():
                options["allocator_options"] = allocator_options
        options.update(self._fill(declared, ("nm", "block", "seed", "data")))
        return [(name, options)]

    def _fill(self, declared: dict, names: tuple[str, ...]) -> dict[str, Any]:
        """The recipe options among `names` that the declaration takes, as its keyword options."""
        options: dict[str, Any] = {}
        for name in names:
            if set(FILLS.get(name, (name,))) <= set(declared):
                options.update(_PARSERS.get(name, lambda v, name=name: {name: v})(getattr(self, name)))
        return options


def _known(name: str, table: dict | list, what: str):
    if name not in table:
        raise OptionError(None, f"unknown {what} {name!r}", f"choose one of {', '.join(table)}")
    return table[name] if isinstance(table, dict) else name


def _parse_nm(text: str) -> dict[str, int]:
    found = re.fullmatch(r"([0-9]{1,4}):([0-9]{1,4})", text.strip())
    if not found or not 0 < int(found[1]) <= int(found[2]):
        raise OptionError(None, f"N:M pattern {text!r} is not N:M with 0 < N ≤ M", "use e.g. --nm 2:4")
    return {"n": int(found[1]), "m": int(found[2])}


def _parse_block(text: str) -> dict[str, str]:
    from .passes.prune import parse_block

    parse_block(text)
    return {"block": text}


# recipe options given as text that its declaration takes parsed
_PARSERS = {"nm": _parse_nm, "block": _parse_block}
