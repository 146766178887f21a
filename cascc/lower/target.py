"""Turn a cascc Target into a TVM target, filling in the host CPU where the target asks for it."""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from typing import Any

import tvm
from tvm.target import codegen

from cascc.errors import OptionError
from cascc.targets import Target


def target_dict(target: Target) -> dict[str, Any]:
    """The TVM target JSON dict, with `mcpu` and `num-cores` of this machine when `detect_host` is set."""
    spec = dict(target.tvm_target)
    if "mcpu" in spec and target.cpu_option == "mcpu":
        _check_cpu(target, spec)
    if target.detect_host:
        spec.setdefault("mcpu", codegen.llvm_get_system_cpu())
        spec.setdefault("num-cores", os.cpu_count() or 1)
    return spec


def for_cpu(target: Target) -> Target:
    """`target` with its `lacking` overrides applied for each feature the target CPU (the host's, or
    --cpu's) does not have."""
    if not target.lacking:
        return target
    tvm_target = tvm.target.Target(target_dict(target))
    for feature, overrides in target.lacking:
        if not codegen.target_has_features(feature, tvm_target):
            fields = {
                key: dataclasses.replace(getattr(target, key), **value)
                if isinstance(value, Mapping)
                else value
                for key, value in overrides.items()
            }
            target = dataclasses.replace(target, **fields)
    return target


def _check_cpu(target: Target, spec: dict[str, Any]) -> None:
    """Reject a CPU name LLVM does not know for the target's triple (LLVM would silently compile for a
    generic CPU instead)."""
    without_cpu = {key: value for key, value in spec.items() if key != "mcpu"}
    known = [str(cpu) for cpu in codegen.llvm_get_cpu_archlist(tvm.target.Target(without_cpu))]
    if spec["mcpu"] not in known:
        examples = difflib.get_close_matches(spec["mcpu"], known, n=6) or sorted(known)[:12]
        raise OptionError(
            spec["mcpu"],
            f"not a CPU LLVM knows for the {target.name} target ({spec['mtriple']})",
            f"pass one of the {len(known)} it knows, e.g. {', '.join(examples)}",
        )


def resolve(target: Target) -> tvm.target.Target:
    """The tvm.target.Target for a cascc Target."""
    return tvm.target.Target(target_dict(target))
