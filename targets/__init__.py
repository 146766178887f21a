"""Compilation targets (installed as cascc.targets). Adding a target = adding one module and one entry here."""

from __future__ import annotations

from cascc.errors import OptionError

from . import x86
from .base import KernelCosts, Target

TARGETS: dict[str, Target] = {t.name: t for t in (x86.TARGET,)}


def get(name: str) -> Target:
    """The target registered as `name`, or a clear error listing the known ones."""
    if name not in TARGETS:
        raise OptionError(None, f"unknown target {name!r}", f"choose one of {', '.join(sorted(TARGETS))}")
    return TARGETS[name]


__all__ = ["TARGETS", "KernelCosts", "Target", "get"]
