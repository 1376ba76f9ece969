"""Black-box (ask/tell) search strategies.

Importing this package registers the built-ins in ``nas.core.STRATEGIES``:
``random``, ``local``, ``evolution``, ``predictor`` (BANANAS-style), ``bowl`` (NAS-BOWL),
``nsga2``, ``pnas`` (progressive), ``reinforce`` (NAS-RL controller), ``cmab`` (combinatorial bandit),
``manas`` (multi-agent), ``morphism`` (children that inherit their parent's weights) ``bohb`` (BOHB's per-budget density model) and ``fbnetv3`` (joint architecture and training-recipe search). :func:`create_strategy` builds one by
name and turns unknown options into a :class:`~nas.core.errors.ConfigError` listing the allowed ones.
"""

from __future__ import annotations

from typing import Any

from nas.core.options import check_option_names, constructor_options
from nas.core.space import SearchSpace
from nas.core.strategy import STRATEGIES, Strategy
from nas.strategies import (  # noqa: F401  (registration)
    bohb,
    bowl,
    cmab,
    evolution,
    fbnetv3,
    local,
    manas,
    morphism,
    nsga2,
    pnas,
    predictor,
    random,
    reinforce,
)
from nas.strategies.loop import run_loop


def strategy_options(name: str) -> list[str]:
    """Every option the strategy ``name`` accepts (its own and the base class's)."""
    return constructor_options(STRATEGIES.get(name))


def create_strategy(name: str, space: SearchSpace, **options: Any) -> Strategy:
    """The strategy ``name`` for ``space``; unknown names or options raise ConfigError."""
    cls = STRATEGIES.get(name)
    check_option_names("strategy", name, cls, options)
    return cls(space, **options)


def list_strategies(pattern: str = "*") -> list[str]:
    return STRATEGIES.names(pattern)


__all__ = ["create_strategy", "list_strategies", "run_loop", "strategy_options"]
