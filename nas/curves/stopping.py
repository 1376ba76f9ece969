"""The learning-curve stopping rule (LC-PFN's): stop a trial that will probably not beat the best.

After each epoch ``k >= min_epochs`` (and before the last), the curve so far
predicts the distribution of the trial's final value (at ``horizon``); the
trial stops when ``P(final > best) < threshold``, ``best`` being the best final
value of the trials that trained to the end (Adriaensen et al. 2023, after
Domhan et al. 2015). Without such a trial yet nothing stops: there is no
incumbent to beat.

The rule is plain code without Ray, so the ``lc`` scheduler
(:mod:`nas.runner.schedulers.lc`) and the offline replay
(``benchmarks/schedulers.py``) call the same decisions. Metrics in other units
are mapped into [0, 1] by their ``bounds`` (an accuracy in percent: ``(0, 100)``);
a metric to minimise is flipped (``1 - scaled``), so an error rate works too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nas.core.errors import ConfigError, shown
from nas.curves.prior import MAX_EPOCHS

#: The bounds of metrics whose range is known by name: accuracies are in percent here.
ACCURACY_BOUNDS = (0.0, 100.0)


def known_bounds(metric: str) -> tuple[float, float] | None:
    """The range of ``metric`` when its name says it (``*accuracy``: percent), else None."""
    return ACCURACY_BOUNDS if metric.endswith("accuracy") else None


@dataclass(frozen=True)
class LearningCurveRule:
    """``P(final > best) < threshold`` after ``min_epochs``; ``horizon`` is the trial's last epoch."""

    horizon: int
    threshold: float = 0.05
    min_epochs: int = 3
    bounds: tuple[float, float] = (0.0, 1.0)
    maximize: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(
                f"threshold {shown(self.threshold)} is not allowed; expected a probability in (0, 1)"
            )
        if not 1 <= self.horizon <= MAX_EPOCHS:
            raise ConfigError(
                f"horizon {shown(self.horizon)} is not allowed; the curve model predicts epochs 1..{MAX_EPOCHS}"
            )
        if not 1 <= self.min_epochs < self.horizon:
            raise ConfigError(
                f"min_epochs {shown(self.min_epochs)} is not allowed; expected 1..{self.horizon - 1} "
                f"(fewer than the {self.horizon} epochs a trial trains)"
            )
        low, high = self.bounds
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ConfigError(
                f"bounds {shown(self.bounds)} are not allowed; expected [low, high] with low < high"
            )

    def scaled(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """``values`` in the model's units: [0, 1], larger is better (clipped at the bounds)."""
        low, high = self.bounds
        unit = (np.asarray(values, dtype=np.float64) - low) / (high - low)
        return np.clip(unit if self.maximize else 1.0 - unit, 0.0, 1.0)

    def prob_beats(self, predictor: Any, curves: Sequence[Sequence[float]], best: float) -> np.ndarray:
        """P(final value > ``best``) of each curve (values in the metric's own units).

        ``predictor`` is a :class:`~nas.curves.predict.CurvePredictor` (anything
        with its ``logits(curves, horizon)`` and ``bar``).
        """
        scaled = [self.scaled(c).tolist() for c in curves]
        logits = predictor.logits(scaled, self.horizon)
        target = torch.tensor(float(self.scaled([best])[0]), dtype=torch.float32)
        return predictor.bar.prob_above(logits, target).numpy()

    def due(self, epoch: int) -> bool:
        """Whether the rule decides after ``epoch``: from ``min_epochs`` on, never after the last epoch."""
        return self.min_epochs <= epoch < self.horizon

    def stops(self, predictor: Any, curves: Sequence[Sequence[float]], best: float | None) -> np.ndarray:
        """Which of ``curves`` (each its epochs 1..k so far) stop now: the decision both callers use."""
        decide = np.array([self.due(len(c)) for c in curves], dtype=bool)
        if best is None or not np.isfinite(best) or not decide.any():
            return np.zeros(len(curves), dtype=bool)
        chosen = [c for c, d in zip(curves, decide, strict=True) if d]
        result = np.zeros(len(curves), dtype=bool)
        result[decide] = self.prob_beats(predictor, chosen, best) < self.threshold
        return result

    def better(self, a: float, b: float | None) -> bool:
        """Whether final value ``a`` is a better incumbent than ``b``."""
        return b is None or (a > b if self.maximize else a < b)


__all__ = ["ACCURACY_BOUNDS", "LearningCurveRule", "known_bounds"]
