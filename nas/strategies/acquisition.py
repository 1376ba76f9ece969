"""Scoring candidates from a predictor's mean and std: checked predictions and acquisition functions.

The predictor-guided strategies (``predictor``, ``bowl``, ``fbnetv3``) all
turn a model's ``(mean, std)`` per candidate into one score and propose the
argmax. The checks (a prediction per candidate, all finite) and the
acquisitions live here once, so the strategies agree on what ``its`` or
``ucb`` means and a broken predictor fails the same way in each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.core.errors import NASError


def checked_predictions(model: Any, prediction: Sequence[Any], count: int) -> tuple[np.ndarray, np.ndarray]:
    """``model``'s ``(mean, std)`` for ``count`` candidates as float arrays, std clipped at 0.

    A wrongly shaped or non-finite prediction is a :class:`NASError` naming
    the predictor: proposing from it would pick an arbitrary candidate.
    """
    mean, std = (np.asarray(a, dtype=float) for a in prediction)
    if mean.shape != (count,) or std.shape != (count,):
        raise NASError(
            f"predictor {type(model).__name__} returned shapes {mean.shape}/{std.shape} "
            f"for {count} candidates; expected ({count},) each"
        )
    bad = ~(np.isfinite(mean) & np.isfinite(std))
    if bad.any():
        raise NASError(
            f"predictor {type(model).__name__} returned NaN or infinite predictions for "
            f"{int(bad.sum())} of {count} candidates"
        )
    return mean, np.maximum(std, 0.0)


def acquisition_scores(
    acquisition: str,
    mean: np.ndarray,
    std: np.ndarray,
    rng: np.random.Generator,
    *,
    ucb_beta: float = 1.0,
    best: float | None = None,
) -> np.ndarray:
    """Larger-is-better scores: ``its`` (one draw per candidate), ``ucb``, ``ei`` over ``best``, ``mean``."""
    if acquisition == "its":
        return rng.normal(mean, std)
    if acquisition == "ucb":
        return mean + ucb_beta * std
    if acquisition == "ei":
        if best is None:
            raise ValueError("expected improvement needs the best training target")
        return expected_improvement(mean, std, best)
    return mean


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """E[max(f - best, 0)] for f ~ N(mean, std) (larger is better); ``mean - best`` where std is 0."""
    gain = mean - best
    safe = np.where(std > 0, std, 1.0)
    z = gain / safe
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return np.where(std > 0, gain * cdf + safe * pdf, np.maximum(gain, 0.0))
