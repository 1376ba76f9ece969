"""Trial records and objectives shared by strategies, the store and the runner.

A :class:`Trial` is a frozen snapshot (as Optuna's ``FrozenTrial``): the store
hands them out, strategies learn from them, nobody mutates them.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.leakage import refuse_test_column


class TrialState(str, enum.Enum):
    WAITING = "WAITING"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAIL = "FAIL"

    @property
    def finished(self) -> bool:
        return self in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class Direction(str, enum.Enum):
    MAX = "max"
    MIN = "min"


def parse_objectives(objectives: Mapping[str, str] | None) -> dict[str, Direction]:
    """Validate ``{"val_accuracy": "max", ...}``; order is kept (the first is primary).

    A test metric (``cifar10-test``, ``test_accuracy``) is refused: a search that
    optimises test data makes its reported test accuracy meaningless.
    """
    if not objectives:
        raise ConfigError("at least one objective is needed, e.g. {'val_accuracy': 'max'}")
    result: dict[str, Direction] = {}
    for name, direction in objectives.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"objective name {name!r} must be a non-empty string")
        refuse_test_column(name, "objective")
        try:
            result[name] = Direction(str(direction).lower())
        except ValueError:
            raise ConfigError(
                f"objective {name!r} has direction {direction!r}; allowed: 'max', 'min'"
            ) from None
    return result


@dataclass(frozen=True)
class Trial:
    """One evaluation of one architecture in one study (a frozen snapshot).

    ``user_attrs`` belong to the user and the evaluator (test accuracy,
    training time...); ``system_attrs`` hold the platform's own bookkeeping
    (``retry_of``, ``kind``, ``method``, ``derived_from``, ``reused_from``,
    ``workers``), kept apart so that neither can overwrite the other.
    """

    number: int
    arch: Architecture
    state: TrialState
    values: Mapping[str, float] | None = None
    seed: int = 0
    budget: float | None = None
    user_attrs: Mapping[str, Any] = field(default_factory=dict)
    system_attrs: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    node: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    trial_id: int | None = None
    study: str | None = None

    @property
    def paused_at(self) -> int | None:
        """The epoch a RUNNING trial is paused after (a pausing scheduler's ``paused_at``), else None."""
        step = self.system_attrs.get("paused_at")
        return int(step) if self.state is TrialState.RUNNING and isinstance(step, int | float) else None

    @property
    def shown_state(self) -> str:
        """The state as listings show it: ``PAUSED at epoch k`` for a paused trial (stored RUNNING).

        A paused trial stays RUNNING in the store (its driver owns it, see
        docs/schedulers.md); users still want to see that it is not training.
        """
        paused = self.paused_at
        return self.state.value if paused is None else f"PAUSED at epoch {paused}"

    def value(self, objective: str) -> float:
        """The value of one objective; NaN if the trial has none."""
        if not self.values or objective not in self.values:
            return math.nan
        return float(self.values[objective])
