"""Memoized kernel factories: a factory called again with the same arguments returns the same PrimFunc.

Parsing a TVMScript kernel takes 0.1–0.4 s, which dominated the compile time of nets that repeat a layer
shape (MobileNet's blocks, a transformer's layers). PrimFuncs are immutable, so sharing one is safe, and
equal kernels are what lets the library hold one copy of them (`context.add_kernel`).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)
SIZE = 1024  # kernels kept per factory


def cached(factory: F) -> F:
    """`factory` memoized on its arguments (called through whenever one is unhashable)."""
    memo: OrderedDict = OrderedDict()

    @functools.wraps(factory)
    def build(*args, **kwargs):
        key = (args, tuple(sorted(kwargs.items())))
        try:
            hit = memo.get(key)
        except TypeError:
            return factory(*args, **kwargs)
        if hit is None:
            hit = memo[key] = factory(*args, **kwargs)
            if len(memo) > SIZE:
                memo.popitem(last=False)
        else:
            memo.move_to_end(key)
        return hit

    build.cache_clear = memo.clear
    return build  # type: ignore[return-value]
