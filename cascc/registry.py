"""One registry per extension point: a dict filled by a decorator that rejects duplicate names."""

from __future__ import annotations

from collections.abc import Callable
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
