"""A small plugin registry in the style of timm's model registry.

Plugins (spaces, strategies, evaluators, predictors) register under a name
with a decorator; lookups of unknown names fail fast with the allowed names
and close matches. A registry may name the package whose import registers its
built-in plugins, so ``get`` works without the caller importing it first and
the kernel never imports the plugin layers at module import time.

An entry may also be *lazy*: :meth:`Registry.register_lazy` declares a name
with a ``"module:attr"`` reference that is imported only when ``get`` asks for
it. Membership and ``names`` then never import the plugin, which is how
``'darts' in ONESHOT`` answers without importing torch.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

from nas.core.errors import ConfigError, UnknownNameError, shorten

T = TypeVar("T")


class LazyEntry:
    """A registered name whose object is ``attr`` of ``module``, imported on first ``get``."""

    def __init__(self, reference: str) -> None:
        module, _, attr = reference.partition(":")
        if not module or not attr:
            raise ConfigError(f"lazy registry reference {reference!r} is not 'module:attr'")
        self.module, self.attr = module, attr

    def resolve(self) -> object:
        return getattr(importlib.import_module(self.module), self.attr)

    def __repr__(self) -> str:
        return f"LazyEntry({self.module}:{self.attr})"


class Registry(Generic[T]):
    """Name -> plugin factory, with lazy loading of the built-in plugins."""

    def __init__(self, kind: str, builtins: str | tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._builtins = (builtins,) if isinstance(builtins, str) else builtins
        self._entries: dict[str, T | LazyEntry] = {}
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
            current = self._entries.get(name)
            # A lazy declaration is replaced by the object its module registers on import.
            if current is not None and current is not obj and not isinstance(current, LazyEntry):
                raise ConfigError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return decorator

    def register_lazy(self, name: str, reference: str) -> None:
        """Declare ``name`` as ``"module:attr"``, imported on the first :meth:`get` of it.

        Declaring a name whose module already registered it (imported first) is a no-op.
        """
        entry = LazyEntry(reference)
        current = self._entries.get(name)
        if current is not None:
            if isinstance(current, LazyEntry):
                same = (current.module, current.attr) == (entry.module, entry.attr)
            else:
                same = (getattr(current, "__module__", None), getattr(current, "__name__", None)) == (
                    entry.module,
                    entry.attr,
                )
            if not same:
                raise ConfigError(f"{self.kind} {name!r} is already registered")
            return
        self._entries[name] = entry

    def get(self, name: str) -> T:
        self._load()
        try:
            entry = self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None
        if isinstance(entry, LazyEntry):
            resolved = entry.resolve()
            current = self._entries[name]  # the import may have registered the object itself
            if isinstance(current, LazyEntry):
                self._entries[name] = resolved  # type: ignore[assignment]
            entry = self._entries[name]
        return entry  # type: ignore[return-value]

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
        except ConfigError as exc:  # e.g. it registers a name that is taken
            raise ConfigError(f"plugin module {module!r}: {exc}") from exc
        except Exception as exc:  # the module's own code failed while importing
            raise ConfigError(
                f"plugin module {module!r} failed while importing: {type(exc).__name__}: {shorten(str(exc), 500)}"
            ) from exc
