"""A minimal predictor plugin: Bayesian linear regression on the space's encoding.

Subclassing :class:`predictors.base.EncodedPredictor` gives the shared options
(``encoding``, ``extra_features``, ``target_transform``), input validation and
feature scaling; the plugin writes only ``_fit`` and ``_predict_dist`` on
arrays. It must pass every contract test in tests/test_predictors.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.core import PREDICTORS, ConfigError, SearchSpace
from predictors.base import EncodedPredictor


@PREDICTORS.register("plugin_linear")
class BayesianLinear(EncodedPredictor):
    """Ridge regression with its Gaussian posterior: the std grows away from the training cells."""

    label = "plugin_linear"  # the registered name, which option errors name

    def __init__(self, space: SearchSpace, seed: int = 0, *, alpha: float = 1.0, **common: Any) -> None:
        super().__init__(space, seed, **common)
        if not alpha > 0:
            raise ConfigError(f"{self.label} option alpha={alpha!r} is not allowed; expected > 0")
        self.alpha = float(alpha)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        design = np.hstack([x, np.ones((len(x), 1))])
        precision = design.T @ design + self.alpha * np.eye(design.shape[1])
        self._covariance = np.linalg.inv(precision)
        self._weights = self._covariance @ design.T @ y
        residuals = y - design @ self._weights
        self._noise = float(residuals.var()) + 1e-12

    def _predict_dist(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        design = np.hstack([x, np.ones((len(x), 1))])
        spread = np.einsum("ij,jk,ik->i", design, self._covariance, design)
        return design @ self._weights, np.sqrt(self._noise * (1.0 + spread))
