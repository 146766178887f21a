"""One registry per extension point: a dict filled by a decorator that rejects duplicate names."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """A named dict whose `register(name)` decorator refuses to overwrite an entry."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self:
                raise ValueError(
                    f"{self.kind} {name!r} registered twice "
                    f"({getattr(self[name], '__module__', '?')}, {getattr(item, '__module__', '?')})"
                )
            self[name] = item
            return item

        return add

    def options(self, name: str) -> Mapping[str, inspect.Parameter]:
        """The keyword options the callable registered as `name` declares: its signature is its spec."""
        return {
            p.name: p
            for p in inspect.signature(self[name]).parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }
