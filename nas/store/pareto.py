"""Pareto sets: which points no other point beats on every objective.

Pure numpy and free of the store, so strategies and the dashboard can reuse
it. The cost is ``O(n * |front|)`` vectorised operations instead of the
``O(n^2)`` of comparing every pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from nas.core.errors import ConfigError
from nas.core.trial import Direction


def pareto_mask(points: ArrayLike, directions: Sequence[Direction | str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` (n x k), honouring each column's direction.

    A row is dominated if another row is at least as good on every objective
    and strictly better on one; equal rows do not dominate each other, so ties
    stay in the front together.
    """
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != len(directions):
        raise ConfigError(
            f"points of shape {array.shape} do not match {len(directions)} directions; expected (n, {len(directions)})"
        )
    if not np.all(np.isfinite(array)):
        raise ConfigError("Pareto points must be finite (no NaN or infinity)")
    signs = np.array([_sign(d) for d in directions], dtype=np.float64)
    costs = array * signs  # every column is now "smaller is better"
    mask = np.zeros(len(costs), dtype=bool)
    # Lexicographic order puts a non-dominated point first, and every point
    # kept as current is non-dominated; each round drops all points it
    # dominates in one vectorised step, so there are only |front| rounds.
    remaining = np.lexsort(costs.T[::-1])
    while remaining.size:
        best = costs[remaining[0]]
        mask[remaining[0]] = True
        others = costs[remaining[1:]]
        dominated = np.all(best <= others, axis=1) & np.any(best < others, axis=1)
        remaining = remaining[1:][~dominated]
    return mask


def _sign(direction: Direction | str) -> float:
    try:
        return (
            -1.0 if Direction(str(getattr(direction, "value", direction)).lower()) is Direction.MAX else 1.0
        )
    except ValueError:
        raise ConfigError(f"direction {direction!r} is not allowed; allowed: 'max', 'min'") from None
