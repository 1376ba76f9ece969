"""Small, fast options of each built-in space, shared by the tests that build or train every space.

Spaces not named here (a plugin's) are used at their defaults.
"""

from __future__ import annotations

from typing import Any

from nas.core.errors import ConfigError
from search_spaces import get_space

#: Small configurations: 50 forward and backward passes per space stay fast.
SMALL_OPTIONS: dict[str, dict[str, object]] = {
    "nb201": {"channels": 4, "cells": 1},
    "darts": {"channels": 4, "cells": 3},
    "fbnet": {"width_mult": 0.25},
    "hybrid": {"base_width": 8},
}


#: Per strategy, options that shrink its own costly set-up (fbnetv3 pre-trains its predictor on the proxies
#: of random networks: 8 networks, parameter counts only, two briefly trained members).
FAST_STRATEGY_OPTIONS: dict[str, dict[str, Any]] = {
    "fbnetv3": {
        "pretrain_archs": 8,
        "predictor_options": {"members": 2, "epochs": 40, "pretrain_epochs": 20, "proxies": ["params"]},
    },
}


def small_options(name: str) -> dict[str, object]:
    """The small options of space ``name`` (empty: its defaults)."""
    return dict(SMALL_OPTIONS.get(name, {}))


def small_space(name: str) -> Any:
    """Space ``name`` built small (at its defaults if it refuses the small options)."""
    try:
        return get_space(name, **small_options(name))
    except ConfigError:
        return get_space(name)


def searches(strategy: str, space: str) -> bool:
    """Whether the registered ``strategy`` can search ``space`` (``Strategy.check_space``; ``morphism``
    needs a space with morphisms), so tests over every strategy pick the ones a space admits."""
    from nas.core import STRATEGIES

    try:
        STRATEGIES.get(strategy).check_space(get_space(space))
    except ConfigError:
        return False
    return True
