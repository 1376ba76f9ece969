"""Which options a plugin's constructor takes, and refusing the ones it does not.

Spaces, strategies and evaluators are configured by keyword options that
come from YAML; a typo there should fail with the allowed names rather than
as a ``TypeError`` deep inside a Ray worker. The allowed names are read from
the constructor signatures along the class's MRO, following ``**kwargs`` to
the base class only where a constructor forwards them.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from nas.core.errors import ConfigError

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def constructor_options(cls: type, skip: Iterable[str] = ("self", "space")) -> list[str]:
    """The keyword options ``cls(...)`` accepts, in declaration order (``skip``: positional inputs)."""
    skipped = set(skip)
    allowed: list[str] = []
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()  # type: ignore[misc]
        for param in params:
            if param.kind in _NAMED and param.name not in skipped and param.name not in allowed:
                allowed.append(param.name)
        if not any(param.kind is param.VAR_KEYWORD for param in params):
            break  # the base classes' options are not forwarded
    return allowed


def check_option_names(
    kind: str, name: str, cls: type, options: Mapping[str, Any], skip: Iterable[str] = ("self", "space")
) -> None:
    """ConfigError if ``options`` holds a name ``cls``'s constructor does not take."""
    allowed = constructor_options(cls, skip)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"{kind} {name!r} has no option(s) {unknown}; allowed: {allowed}")


__all__ = ["check_option_names", "constructor_options"]
