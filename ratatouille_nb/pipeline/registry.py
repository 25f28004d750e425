"""A registry of strategy classes by name: materializations and data-test kinds both use one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from ratatouille_nb.pipeline.errors import PipelineError

T = TypeVar("T")


class Registry(Generic[T]):
    """Instances of registered classes, by the name each class declares (`key` reads it)."""

    def __init__(self, what: str, key: Callable[[type[T]], str], load: Callable[[], object]) -> None:
        self.what = what
        self.items: dict[str, T] = {}
        self._key = key
        self._load = load  # imports the built-in classes (their modules register themselves)

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: make the class available under its name."""
        self.items[self._key(cls)] = cls()
        return cls

    def get(self, name: str) -> T:
        self._load()
        found = self.items.get(name)
        if found is None:
            raise PipelineError(f"unknown {self.what} '{name}'", hint=f"known: {', '.join(sorted(self.items))}")
        return found
