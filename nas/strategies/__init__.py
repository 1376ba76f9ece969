"""Black-box (ask/tell) search strategies.

Importing this package registers the built-ins in ``nas.core.STRATEGIES``:
``random``, ``local``, ``evolution``, ``predictor`` (BANANAS-style) and
``nsga2``. :func:`create_strategy` builds one by name and turns unknown
options into a :class:`~nas.core.errors.ConfigError` listing the allowed ones.
"""

from __future__ import annotations

import inspect
from typing import Any

from nas.core.errors import ConfigError
from nas.core.space import SearchSpace
from nas.core.strategy import STRATEGIES, Strategy
from nas.strategies import evolution, local, nsga2, predictor, random  # noqa: F401  (registration)
from nas.strategies.loop import run_search


def strategy_options(name: str) -> list[str]:
    """Every option the strategy ``name`` accepts (its own and the base class's)."""
    cls = STRATEGIES.get(name)
    names: list[str] = []
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        for param in inspect.signature(klass.__init__).parameters.values():
            if param.name not in ("self", "space") and param.kind is param.POSITIONAL_OR_KEYWORD:
                if param.name not in names:
                    names.append(param.name)
    return names


def create_strategy(name: str, space: SearchSpace, **options: Any) -> Strategy:
    """The strategy ``name`` for ``space``; unknown names or options raise ConfigError."""
    allowed = strategy_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"strategy {name!r} has no option(s) {unknown}; allowed: {allowed}")
    return STRATEGIES.get(name)(space, **options)


def list_strategies(pattern: str = "*") -> list[str]:
    return STRATEGIES.names(pattern)


__all__ = ["create_strategy", "list_strategies", "run_search", "strategy_options"]
