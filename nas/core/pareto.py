"""Multi-objective arithmetic: Pareto fronts, NSGA-II ranks, crowding, hypervolume.

Pure numpy, in the kernel, so the store (best trials), the strategies
(NSGA-II), the benchmarks (hypervolume) and the dashboard share one
implementation. The ranking functions work on an ``(n, m)`` array of values to
*minimise*; :func:`to_minimisation` turns values with ``max``/``min``
directions into that form, so no caller flips signs by hand.
:func:`pareto_mask` answers "which points are on the front" for values with
directions; it equals ``non_dominated_ranks(to_minimisation(...)) == 0`` but
costs ``O(n * |front|)`` vectorised steps instead of ``O(n^2)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from nas.core.errors import ConfigError
from nas.core.trial import Direction

#: Rows of the dominance matrix computed at once (bounds memory to chunk * n * m).
_CHUNK = 512


def _as_points(points: object) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.ndim == 1 and array.size == 0:
        return array.reshape(0, 0)
    if array.ndim != 2:
        raise ConfigError(
            f"objective values must be a 2-D (points x objectives) array, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ConfigError(
            "objective values must be finite but contain NaN or infinity; drop failed trials before Pareto sorting"
        )
    return array


def to_minimisation(points: object, directions: Sequence[str | Direction]) -> np.ndarray:
    """A copy of ``points`` with every ``max`` column negated, so all columns are minimised."""
    array = _as_points(points)
    if array.size == 0:
        return array.reshape(0, len(directions))
    if array.shape[1] != len(directions):
        raise ConfigError(f"{array.shape[1]} objective column(s) but {len(directions)} direction(s)")
    try:
        signs = np.array([-1.0 if _direction(d) is Direction.MAX else 1.0 for d in directions])
    except ValueError:
        raise ConfigError(
            f"directions {list(directions)} are not allowed; each must be 'max' or 'min'"
        ) from None
    return array * signs


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
    costs = to_minimisation(array, directions)  # every column is now "smaller is better"
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


def _dominates(rows: np.ndarray, array: np.ndarray) -> np.ndarray:
    """``result[i, j]``: ``rows[i]`` dominates ``array[j]``."""
    le = np.all(rows[:, None, :] <= array[None, :, :], axis=2)
    lt = np.any(rows[:, None, :] < array[None, :, :], axis=2)
    return le & lt


def _dominator_counts(rows: np.ndarray, array: np.ndarray) -> np.ndarray:
    """How many of ``rows`` dominate each point of ``array`` (chunked)."""
    counts = np.zeros(len(array), dtype=int)
    for start in range(0, len(rows), _CHUNK):
        counts += _dominates(rows[start : start + _CHUNK], array).sum(axis=0)
    return counts


def non_dominated_ranks(points: object) -> np.ndarray:
    """NSGA-II front number of every point: 0 for the Pareto front, 1 for the next, ...

    Equal points do not dominate each other, so they share a front.
    """
    array = _as_points(points)
    ranks = np.full(len(array), -1, dtype=int)
    if not len(array):
        return ranks
    counts = _dominator_counts(array, array)
    rank = 0
    current = np.flatnonzero(counts == 0)
    while current.size:
        ranks[current] = rank
        counts -= _dominator_counts(array[current], array)
        counts[ranks >= 0] = -1
        current = np.flatnonzero(counts == 0)
        rank += 1
    return ranks


def crowding_distance(points: object) -> np.ndarray:
    """NSGA-II crowding distance within one front; boundary points get infinity.

    Each objective is normalised by its range on the front, so objectives in
    different units (accuracy in %, latency in ms) weigh the same.
    """
    array = _as_points(points)
    n = len(array)
    distance = np.zeros(n, dtype=float)
    if n <= 2:
        distance[:] = np.inf
        return distance
    for column in array.T:
        order = np.argsort(column, kind="stable")
        span = column[order[-1]] - column[order[0]]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span <= 0:
            continue
        distance[order[1:-1]] += (column[order[2:]] - column[order[:-2]]) / span
    return distance


def hypervolume(points: object, reference: Sequence[float]) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (minimisation).

    Points that do not strictly dominate the reference add nothing. Two
    objectives use an exact O(n log n) sweep; more use exact recursive slicing
    (HSO), exponential in the number of objectives but fine for search-sized
    fronts.
    """
    array = _as_points(points)
    if array.size == 0:
        return 0.0
    ref = np.asarray(reference, dtype=float)
    if ref.shape != (array.shape[1],) or not np.all(np.isfinite(ref)):
        raise ConfigError(f"hypervolume reference {list(reference)} must be {array.shape[1]} finite numbers")
    inside = np.unique(array[np.all(array < ref, axis=1)], axis=0)
    if inside.size == 0:
        return 0.0
    return float(_hso(inside, ref))


def _hso(points: np.ndarray, ref: np.ndarray) -> float:
    if points.shape[1] == 1:
        return float(ref[0] - points[:, 0].min())
    if points.shape[1] == 2:
        # Sweep by the first objective; a point adds area only if it improves the second.
        order = np.lexsort((points[:, 1], points[:, 0]))
        volume, best_y = 0.0, ref[1]
        for x, y in points[order]:
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return volume
    front = points[non_dominated_ranks(points) == 0]
    # Slice along the last objective: between consecutive levels the dominated
    # region is the (m-1)-dimensional volume of the points at or below the level.
    order = np.argsort(front[:, -1], kind="stable")
    levels = np.append(front[order, -1], ref[-1])
    volume = 0.0
    for k in range(len(order)):
        height = levels[k + 1] - levels[k]
        if height > 0:
            volume += height * _hso(front[order[: k + 1], :-1], ref[:-1])
    return volume


def _direction(value: str | Direction) -> Direction:
    return value if isinstance(value, Direction) else Direction(str(value).lower())
