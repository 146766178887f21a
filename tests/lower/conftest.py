"""Fixtures of the int8 kernel tests: the host x86 target and each int8 dot product it offers."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def target():
    from cascc.lower.target import resolve
    from cascc.targets import TARGETS

    return resolve(TARGETS["x86"])


@pytest.fixture(scope="module", params=["vnni", "pmaddwd", "widen"])
def dot(request, target):
    from tvm.target import codegen

    needs = {"vnni": "avx512vnni", "pmaddwd": "avx2"}.get(request.param)
    if needs and not codegen.target_has_features(needs, target):
        pytest.skip(f"this CPU has no {needs}")
    return request.param
