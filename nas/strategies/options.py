"""Validation of strategy options: one place for the messages users see."""

from __future__ import annotations

import math
from collections.abc import Sequence

from nas.core.errors import ConfigError
from nas.core.space import positive_int


def int_option(name: str, value: object, minimum: int = 1) -> int:
    """An integer option ``>= minimum`` (bools are refused: ``True`` is not a size).

    The same rule and message as every plugin's integer options (:func:`nas.core.positive_int`).
    """
    return positive_int("strategy", name, value, minimum)


def float_option(name: str, value: object, low: float, high: float = math.inf) -> float:
    """A finite number in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(
            f"strategy option {name}={value!r} is not allowed; expected a number in [{low:g}, {high:g}]"
        )
    if not math.isfinite(value):
        raise ConfigError(f"strategy option {name}={value!r} is not allowed; expected a finite number")
    return float(value)


def choice_option(name: str, value: object, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ConfigError(f"strategy option {name}={value!r} is not allowed; expected one of {list(allowed)}")
    return str(value)
