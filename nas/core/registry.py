"""A small plugin registry in the style of timm's model registry.

Plugins (spaces, strategies, evaluators, predictors) register under a name
with a decorator; lookups of unknown names fail fast with the allowed names
and close matches. A registry may name the package whose import registers its
built-in plugins, so ``get`` works without the caller importing it first and
the kernel never imports the plugin layers at module import time.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

from nas.core.errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> plugin factory, with lazy loading of the built-in plugins."""

    def __init__(self, kind: str, builtins: str | tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._builtins = (builtins,) if isinstance(builtins, str) else builtins
        self._entries: dict[str, T] = {}
        self._loaded = False
        self._imported: set[str] = set()

    def _load(self) -> None:
        # Each built-in module is marked loaded only once its import succeeded, so
        # a failing import fails every lookup loudly instead of leaving a partial registry.
        while not self._loaded:
            pending = [m for m in self._builtins if m not in self._imported]
            if not pending:
                self._loaded = True
                return
            importlib.import_module(pending[0])
            self._imported.add(pending[0])

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a second registration is an error."""

        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ConfigError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, sorted."""
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries


def import_plugins(modules: list[str] | tuple[str, ...]) -> None:
    """Import user plugin modules (which register themselves), naming the one that fails."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(
                f"plugin module {module!r} cannot be imported: {exc}; it must be importable on the "
                "driver and on every Ray worker (installed, or on PYTHONPATH)"
            ) from exc
