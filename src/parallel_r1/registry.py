"""Registry[T]: pick a function or class by name; unknown names list the known ones.

Entries are objects registered with a decorator, or lazy "package.module:object" strings that are
imported on first use (so optional heavy backends cost nothing until asked for). A name that is not
registered but looks like a dotted path ("my_pkg.rewards:brevity") is imported as user code.
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterator, TypeVar

from parallel_r1.errors import UnknownNameError, unknown_name

T = TypeVar("T")


def import_object(path: str) -> object:
    """Import "package.module:attr" (or "package.module.attr") and return the attribute."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ImportError(f"'{path}' is not a dotted path like 'package.module:name'")
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """A named collection of T; `kind` is used in error messages ("reward", "engine", ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T | str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@REWARDS.register("accuracy")`."""

        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T | str) -> None:
        """Register `obj` (or a lazy "pkg.mod:obj" string) under `name`; names are unique."""
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._entries[name] = obj

    def get(self, name: str) -> T:
        """Return the entry for `name`; raises UnknownNameError listing the known names."""
        if name in self._entries:
            entry = self._entries[name]
            if isinstance(entry, str):
                entry = import_object(entry)  # type: ignore[assignment]
                self._entries[name] = entry
            return entry  # type: ignore[return-value]
        if ":" in name:
            try:
                return import_object(name)  # type: ignore[return-value]
            except (ImportError, AttributeError) as exc:
                raise UnknownNameError(f"cannot import {self.kind} '{name}': {exc}",
                                       field=self.kind) from exc
        raise UnknownNameError(unknown_name(self.kind, name, self._entries, list_all=True), field=self.kind)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
