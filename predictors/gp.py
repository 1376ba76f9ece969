"""Gaussian-process predictor (scikit-learn).

The GP is the textbook Bayesian-optimisation surrogate: its posterior std is
a calibrated uncertainty, not an ensemble's disagreement. A Matern kernel
with one learned length scale (ARD would be under-determined with ~100
points in 84+ dimensions) plus a white-noise term for the training noise.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from nas.core import PREDICTORS, ConfigError, SearchSpace, positive_int
from predictors.base import EncodedPredictor


@PREDICTORS.register("gp")
class GaussianProcess(EncodedPredictor):
    """Gaussian process with a Matern(nu) kernel; std from the posterior."""

    rank_continuous = True
    label = "gp"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        nu: float = 1.5,
        min_length_scale: float = 2.0,
        restarts: int = 2,
        **common: Any,
    ) -> None:
        super().__init__(space, seed, **common)
        if nu not in (0.5, 1.5, 2.5, np.inf):
            raise ConfigError(f"{self.label} option nu={nu!r} is not allowed; allowed: 0.5, 1.5, 2.5, inf")
        if not min_length_scale > 0:
            raise ConfigError(
                f"{self.label} option min_length_scale={min_length_scale!r} is not allowed; expected > 0"
            )
        self.nu = nu
        self.min_length_scale = float(min_length_scale)
        self.restarts = positive_int(self.label, "restarts", restarts, minimum=0)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        # Lower bounds matter: with ~100 points the marginal likelihood otherwise
        # prefers a tiny length scale and no noise, i.e. memorising the training
        # set (Kendall tau 0.3 instead of 0.5 on NAS-Bench-201).
        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
            length_scale=1.0, length_scale_bounds=(self.min_length_scale, 1e3), nu=self.nu
        ) + WhiteKernel(0.1, (1e-2, 1.0))
        self._model = GaussianProcessRegressor(
            kernel=kernel, n_restarts_optimizer=self.restarts, random_state=self.seed
        )
        with warnings.catch_warnings():
            # A bound hit by the optimiser is a fit detail, not the caller's problem.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._model.fit(x, y)

    def _predict_dist(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self._model.predict(x, return_std=True)
        return mean, std
