"""Pareto sets: which points no other point beats on every objective.

Pure numpy and free of the store, so strategies and the dashboard can reuse
it. Points are sorted lexicographically first: a point can then only be
dominated by one before it, and only the current front has to be checked,
which is ``O(n * |front|)`` instead of ``O(n^2)``.
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
    if len(costs) == 0:
        return mask
    order = np.lexsort(costs.T[::-1])
    front = np.empty_like(costs)
    size = 0
    for index in order:
        point = costs[index]
        current = front[:size]
        dominated = np.any(np.all(current <= point, axis=1) & np.any(current < point, axis=1))
        if not dominated:
            front[size] = point
            size += 1
            mask[index] = True
    return mask


def _sign(direction: Direction | str) -> float:
    try:
        return (
            -1.0 if Direction(str(getattr(direction, "value", direction)).lower()) is Direction.MAX else 1.0
        )
    except ValueError:
        raise ConfigError(f"direction {direction!r} is not allowed; allowed: 'max', 'min'") from None
