"""Rank metrics for predictors and proxies.

A search only needs a predictor to *order* architectures well, so predictors
and zero-cost proxies are judged by rank correlation (Spearman's rho,
Kendall's tau) and by how many of the truly best architectures they put in
their own top k, not by regression error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from nas.core import ConfigError


def _pair(
    predicted: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Validate two equally long, finite 1-d score vectors of at least two items."""
    p = np.asarray(predicted, dtype=float).ravel()
    a = np.asarray(actual, dtype=float).ravel()
    if p.shape != a.shape:
        raise ConfigError(f"predicted and actual must have the same length, got {p.size} and {a.size}")
    if p.size < 2:
        raise ConfigError(f"rank metrics need at least 2 items, got {p.size}")
    if not (np.isfinite(p).all() and np.isfinite(a).all()):
        raise ConfigError("rank metrics need finite scores; got NaN or infinity")
    return p, a


def _constant(p: np.ndarray, a: np.ndarray) -> bool:
    # A constant vector has no ranking, so it agrees with nothing: we report 0
    # (scipy would warn and return NaN).
    return bool(np.ptp(p) == 0 or np.ptp(a) == 0)


def spearman(predicted: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation; 0.0 if either vector is constant."""
    p, a = _pair(predicted, actual)
    return 0.0 if _constant(p, a) else float(stats.spearmanr(p, a).statistic)


def kendall_tau(predicted: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b (ties handled); 0.0 if either vector is constant."""
    p, a = _pair(predicted, actual)
    return 0.0 if _constant(p, a) else float(stats.kendalltau(p, a).statistic)


def top_k_precision(
    predicted: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, k: int | float = 0.01
) -> float:
    """Fraction of the predicted top ``k`` that are in the actual top ``k`` (higher is better).

    ``k`` is a count (int >= 1) or a fraction of the items (0 < k <= 1). Ties
    are broken by position, so the result is deterministic.
    """
    p, a = _pair(predicted, actual)
    if isinstance(k, bool) or not isinstance(k, int | float):
        raise ConfigError(f"k={k!r} is not allowed; expected an int >= 1 or a fraction in (0, 1]")
    if isinstance(k, float):
        if not 0.0 < k <= 1.0:
            raise ConfigError(f"k={k!r} is not allowed; a fraction must lie in (0, 1]")
        count = max(1, int(round(k * p.size)))
    else:
        if k < 1:
            raise ConfigError(f"k={k!r} is not allowed; a count must be >= 1")
        count = min(k, p.size)
    top_pred = set(np.argsort(-p, kind="stable")[:count].tolist())
    top_true = set(np.argsort(-a, kind="stable")[:count].tolist())
    return len(top_pred & top_true) / count


def rank_metrics(
    predicted: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, k: int | float = 0.01
) -> dict[str, float]:
    """Spearman, Kendall tau and top-k precision in one dict (the benchmark's columns)."""
    return {
        "spearman": spearman(predicted, actual),
        "kendall_tau": kendall_tau(predicted, actual),
        "top_k": top_k_precision(predicted, actual, k),
    }
