"""The performance-predictor interface.

Predictors learn architecture -> metric from a few evaluated architectures
(via the space's encoding) and expose a mean and an uncertainty, which
predictor-guided strategies turn into an acquisition. Strategies receive a
predictor by injection, so ``nas.strategies`` never imports ``predictors``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.registry import Registry
from nas.core.space import SearchSpace

#: Fewer training points than this cannot say anything about a ranking.
MIN_TRAINING = 2


def check_targets(targets: Sequence[float], count: int) -> np.ndarray:
    """Validate training targets against ``count`` architectures; returns float64."""
    y = np.asarray(targets, dtype=np.float64).ravel()
    if y.size != count:
        raise ConfigError(f"got {count} architectures but {y.size} targets; they must match")
    if count < MIN_TRAINING:
        raise ConfigError(f"a predictor needs at least {MIN_TRAINING} training architectures, got {count}")
    if not np.isfinite(y).all():
        bad = int((~np.isfinite(y)).sum())
        raise ConfigError(f"{bad} training target(s) are NaN or infinite; drop failed trials before fitting")
    if np.ptp(y) == 0:
        raise ConfigError(
            f"all {count} training targets equal {y[0]!r}: a constant training set has no ranking to learn"
        )
    return y


class Predictor(abc.ABC):
    """Base class of every performance predictor plugin."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed

    @abc.abstractmethod
    def fit(self, archs: Sequence[Architecture], targets: Sequence[float]) -> Predictor:
        """Train on evaluated architectures; returns ``self``."""

    @abc.abstractmethod
    def predict_dist(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted mean and standard deviation for each architecture."""

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        return self.predict_dist(archs)[0]


#: Registered predictors; importing ``predictors`` registers the built-ins.
PREDICTORS: Registry[type[Predictor]] = Registry("predictor", builtins="predictors")
