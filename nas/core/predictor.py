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
from nas.core.registry import Registry
from nas.core.space import SearchSpace


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
