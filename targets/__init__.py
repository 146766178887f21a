"""Compilation targets (installed as cascc.targets). Adding a target = adding one module and one entry here."""

from __future__ import annotations

import dataclasses

from cascc.errors import OptionError

from . import arm64, cuda, x86
from .base import KernelCosts, Target

TARGETS: dict[str, Target] = {t.name: t for t in (x86.TARGET, arm64.TARGET, cuda.TARGET)}


def get(name: str, *, cpu: str | None = None) -> Target:
    """The target registered as `name` (optionally for a specific `cpu`: LLVM's -mcpu, CUDA's arch), or a
    clear error."""
    if name not in TARGETS:
        raise OptionError(None, f"unknown target {name!r}", f"choose one of {', '.join(sorted(TARGETS))}")
    target = TARGETS[name]
    if cpu:
        if target.cpu_choices and cpu not in target.cpu_choices:
            raise OptionError(
                cpu,
                f"not a {target.cpu_option} the {name} target knows",
                f"pass one of {', '.join(target.cpu_choices)}",
            )
        target = dataclasses.replace(target, tvm_target={**target.tvm_target, target.cpu_option: cpu})
    return target


__all__ = ["TARGETS", "KernelCosts", "Target", "get"]
