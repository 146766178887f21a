"""Turn a cascc Target into a TVM target, filling in the host CPU where the target asks for it."""

from __future__ import annotations

import os
from typing import Any

import tvm
from tvm.target import codegen

from cascc.targets import Target


def target_dict(target: Target) -> dict[str, Any]:
    """The TVM target JSON dict, with `mcpu` and `num-cores` of this machine when `detect_host` is set."""
    spec = dict(target.tvm_target)
    if target.detect_host:
        spec.setdefault("mcpu", codegen.llvm_get_system_cpu())
        spec.setdefault("num-cores", os.cpu_count() or 1)
    return spec


def resolve(target: Target) -> tvm.target.Target:
    """The tvm.target.Target for a cascc Target."""
    return tvm.target.Target(target_dict(target))
