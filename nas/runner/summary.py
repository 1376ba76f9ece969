"""How much the search found: the best trial against the median and the first trial.

A search that ends with its best trial barely ahead of a typical one found
little; the closing summary says so in numbers, on the primary objective.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nas.core.trial import Direction, Trial, TrialState


@dataclass(frozen=True)
class Improvement:
    """The primary objective's best, median and first value over the completed trials."""

    objective: str
    direction: Direction
    best: float
    median: float
    first: float
    trials: int

    def gain(self, reference: float) -> float:
        """How much better ``best`` is than ``reference`` (positive is better, whatever the direction)."""
        return self.best - reference if self.direction is Direction.MAX else reference - self.best

    def describe(self) -> str:
        """One line: ``val_accuracy 95.2: +9.4 over the median trial (85.8), +12.8 over the first (82.4)``."""
        return (
            f"{self.objective} {self.best:.4g}: {self.gain(self.median):+.4g} over the median trial "
            f"({self.median:.4g}), {self.gain(self.first):+.4g} over the first ({self.first:.4g}) "
            f"of {self.trials} completed"
        )


def improvement(trials: Sequence[Trial], directions: Mapping[str, Direction]) -> Improvement | None:
    """The summary on the primary objective (``None`` without completed trials reporting it)."""
    if not directions:
        return None
    objective, direction = next(iter(directions.items()))
    done = sorted(
        (t for t in trials if t.state is TrialState.COMPLETE and objective in (t.values or {})),
        key=lambda t: t.number,
    )
    if not done:
        return None
    values = [float(t.values[objective]) for t in done]
    best = max(values) if direction is Direction.MAX else min(values)
    return Improvement(objective, direction, best, statistics.median(values), values[0], len(values))


__all__ = ["Improvement", "improvement"]
