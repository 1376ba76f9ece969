"""The platform's one error hierarchy.

Every error a user can cause derives from :class:`NASError`. Errors about bad
input are also :class:`ValueError` so that callers who do not know our types
still catch them the idiomatic way. Messages name the bad value and what is
allowed; causes are chained with ``raise ... from``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NASError(Exception):
    """Base class of every error raised on purpose by the platform."""


class ConfigError(NASError, ValueError):
    """A user-supplied value (option, config field, name) is not allowed."""


class UnknownNameError(ConfigError):
    """A name (space, op, strategy, ...) is not registered.

    The message lists the allowed names and the closest matches, as timm's
    model factory does, so a typo is fixed in one look.
    """

    def __init__(self, kind: str, name: object, allowed: Iterable[str]) -> None:
        allowed = sorted(allowed)
        close = difflib.get_close_matches(str(name), allowed, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        super().__init__(
            f"unknown {kind} {name!r}.{hint} Allowed: {', '.join(allowed) or '(none registered)'}."
        )
        self.kind = kind
        self.name = name
        self.allowed = tuple(allowed)


class ArchitectureError(ConfigError):
    """An architecture, its string form, graph or JSON is malformed or invalid."""


class UnknownOpError(UnknownNameError, ArchitectureError):
    """An architecture names an op (or block) that its space does not have."""


class StorageError(NASError):
    """The trial store cannot be opened, read or written."""


class DependencyError(NASError, ImportError):
    """An optional heavy dependency (torch, ray, streamlit, ...) is missing."""


#: Longest message the command line prints for one error (the rest is cut, ``--debug`` shows it all).
MAX_MESSAGE_CHARS = 4_000


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to about ``limit`` characters, saying how much was left out.

    Error messages quote the bad value; a hostile value (a megabyte string, an
    expanded YAML alias bomb) must not turn into a megabyte message.
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def shown(value: object, limit: int = 200) -> str:
    """``repr(value)`` for an error message, cut to about ``limit`` characters."""
    return shorten(repr(value), limit)


def require(module: str, extra: str) -> object:
    """Import ``module`` or raise a :class:`DependencyError` naming the extra to install.

    Heavy dependencies stay at the edges of the platform and are imported
    lazily; this gives the user the exact install command instead of a bare
    ``ModuleNotFoundError``.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"{module!r} is needed here but is not installed; install it with "
            f"`pip install 'nas-platform[{extra}]'`."
        ) from exc
