"""Successive-halving decisions at a rung, single- and multi-objective, without Ray.

Asynchronous successive halving (ASHA, Li et al. 2020) decides when a trial
reaches a rung (an epoch milestone): it goes on if it ranks in the top ``1/η``
of the trials recorded at that rung so far (itself included), else it stops.
Multi-objective ASHA (Schmucker et al. 2021, "Multi-objective asynchronous
successive halving") ranks by non-dominated sorting instead, breaking ties in
the last front it reaches by an ε-net (spread-out points first) or NSGA-II's
crowding distance. The ``moasha`` scheduler and the offline replay
(``benchmarks/schedulers.py``) call these same functions.

Points are rows to *minimise* (see :func:`nas.core.pareto.to_minimisation`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nas.core.errors import ConfigError
from nas.core.pareto import crowding_distance, non_dominated_ranks

#: How ties inside a non-dominated front are broken.
TIE_BREAKS = ("epsnet", "crowding")


def rung_milestones(grace: int, eta: float, max_epochs: int) -> list[int]:
    """The epochs at which trials are compared: ``grace · η^k`` below ``max_epochs``."""
    milestones, epoch = [], float(grace)
    while round(epoch) < max_epochs:
        if not milestones or round(epoch) > milestones[-1]:
            milestones.append(round(epoch))
        epoch *= eta
    return milestones


def promoted_count(n: int, eta: float) -> int:
    """How many of ``n`` trials at a rung go on: the top ``1/η`` (at least one)."""
    return max(1, math.floor(n / eta))


def epsnet_order(points: np.ndarray) -> np.ndarray:
    """Indices in ε-net order: the best point of the first objective, then always the farthest one.

    Each next point maximises its distance to the chosen ones (objectives
    normalised to [0, 1]), so any prefix covers the set evenly (Schmucker et al.).
    """
    n = len(points)
    if n == 0:
        return np.zeros(0, dtype=int)
    span = np.ptp(points, axis=0)
    unit = (points - points.min(axis=0)) / np.where(span > 0, span, 1.0)
    order = [int(np.lexsort(unit.T[::-1])[0])]
    distance = np.linalg.norm(unit - unit[order[0]], axis=1)
    while len(order) < n:
        distance[order] = -1.0
        nxt = int(np.argmax(distance))
        order.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(unit - unit[nxt], axis=1))
    return np.asarray(order)


def mo_order(points: Sequence[Sequence[float]] | np.ndarray, tie_break: str = "epsnet") -> np.ndarray:
    """Indices of ``points`` best first: by non-dominated front, then by ``tie_break`` within a front."""
    if tie_break not in TIE_BREAKS:
        raise ConfigError(f"tie_break {tie_break!r} is not allowed; expected one of {list(TIE_BREAKS)}")
    array = np.asarray(points, dtype=float)
    if array.ndim != 2 or not np.isfinite(array).all():
        raise ConfigError("points must be a finite (n, m) array of objective values to minimise")
    ranks = non_dominated_ranks(array)
    order: list[int] = []
    for front in range(int(ranks.max(initial=-1)) + 1):
        members = np.flatnonzero(ranks == front)
        if tie_break == "crowding":
            inner = np.argsort(-crowding_distance(array[members]), kind="stable")
        else:
            inner = epsnet_order(array[members])
        order.extend(int(i) for i in members[inner])
    return np.asarray(order, dtype=int)


def mo_promotes(
    candidate: Sequence[float], recorded: Sequence[Sequence[float]], eta: float, tie_break: str = "epsnet"
) -> bool:
    """Whether ``candidate`` goes on from a rung where ``recorded`` arrived before it (MO-ASHA)."""
    points = np.asarray([*recorded, candidate], dtype=float)
    top = mo_order(points, tie_break)[: promoted_count(len(points), eta)]
    return len(points) - 1 in top


def asha_promotes(candidate: float, recorded: Sequence[float], eta: float) -> bool:
    """Single-objective ASHA (larger is better): the top ``1/η`` of the rung so far, ties go on."""
    values = np.asarray([*recorded, candidate], dtype=float)
    k = promoted_count(len(values), eta)
    return bool(candidate >= np.sort(values)[::-1][k - 1])


def median_stops(running_mean: float, others: Sequence[float], min_samples: int = 3) -> bool:
    """Median stopping (Golovin et al. 2017, larger is better): stop when the trial's mean so far is
    below the median of the other trials' means over the same epochs (once ``min_samples`` exist)."""
    return len(others) >= min_samples and running_mean < float(np.median(others))


__all__ = [
    "TIE_BREAKS",
    "asha_promotes",
    "epsnet_order",
    "median_stops",
    "mo_order",
    "mo_promotes",
    "promoted_count",
    "rung_milestones",
]
