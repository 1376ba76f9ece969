"""Latency predictors: an additive per-layer lookup table and a learned model.

FBNet estimates a network's latency as the sum of per-layer, per-block
latencies read from a lookup table (LUT). We fit that table from measured
whole-network latencies: latency ~= const + sum over decisions of
``LUT[decision, value]`` is a linear model on the space's one-hot encoding,
solved by least squares. On devices where latency really is additive (the
HW-NAS-Bench ``pixel3``, ``raspi4``, ``eyeriss``, ``fpga`` columns) the table
is exact; elsewhere it is the best additive approximation.

Measured latencies on busy devices have outliers (a phone's thermal or
scheduling hiccups can double one measurement) that pull a least-squares
table off. The learned model therefore fits the additive part robustly
(Huber loss) and then lets gradient-boosted trees, given the one-hot
encoding and the additive estimate, learn what is not additive, on an
absolute-error loss so outliers do not drive it either.

Both are ordinary :class:`~nas.core.Predictor` plugins (``latency_lut``,
``latency_learned``) on any space with a one-hot encoding; the std they
report is the spread of the training residuals (homoscedastic).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import HuberRegressor

from nas.core import PREDICTORS, Architecture, ConfigError, Predictor, Scalar, SearchSpace, positive_int
from nas.core.seeds import check_seed
from predictors.base import check_targets, fraction_option

#: Scale factor turning a median absolute deviation into a normal std.
_MAD_TO_STD = 1.4826


class _OneHotPredictor(Predictor):
    """Validation and encoding shared by the latency predictors (raw one-hot, no scaling)."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        check_seed(seed)
        super().__init__(space, seed)
        self._fitted = False

    def _encode(self, archs: Sequence[Architecture]) -> np.ndarray:
        if isinstance(archs, Architecture) or not isinstance(archs, Sequence) or not archs:
            raise ConfigError("expected a non-empty sequence of architectures")
        return np.stack([self.space.encode(a) for a in archs]).astype(np.float64)

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit(archs, latencies) first")

    def fit(self, archs: Sequence[Architecture], targets: Sequence[float]) -> _OneHotPredictor:
        x = self._encode(archs)
        y = check_targets(targets, len(archs))
        self._fit(x, y)
        residuals = y - self._predict(x)
        mad = float(np.median(np.abs(residuals - np.median(residuals))))
        self._std = _MAD_TO_STD * mad
        self._fitted = True
        return self

    def predict_dist(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        mean = self._predict(self._encode(archs))
        return mean, np.full_like(mean, self._std)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _additive_fit(x: np.ndarray, y: np.ndarray, loss: str) -> tuple[np.ndarray, float]:
    """Per-column costs and a constant with ``loss`` "squared" (lstsq) or "huber"."""
    if loss == "squared":
        design = np.column_stack([x, np.ones(len(x))])
        # Minimum-norm solution: the one-hot blocks are collinear with the constant,
        # so the table is defined up to a shift per decision; predictions are unique.
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        return coef[:-1], float(coef[-1])
    scale = float(np.std(y)) or 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = HuberRegressor(epsilon=1.35, alpha=1e-4, max_iter=5000).fit(x, y / scale)
    return model.coef_ * scale, float(model.intercept_) * scale


@PREDICTORS.register("latency_lut")
class LatencyLUT(_OneHotPredictor):
    """Additive per-layer lookup table fitted by least squares (``loss="squared"``) or Huber."""

    def __init__(self, space: SearchSpace, seed: int = 0, *, loss: str = "squared") -> None:
        super().__init__(space, seed)
        if loss not in ("squared", "huber"):
            raise ConfigError(f"latency_lut option loss={loss!r} is not allowed; allowed: squared, huber")
        self.loss = loss

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self._coef, self._const = _additive_fit(x, y, self.loss)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return x @ self._coef + self._const

    def table(self) -> dict[tuple[str, Scalar], float]:
        """``{(decision, value): ms}``; the latency is ``constant`` plus one entry per decision.

        Each decision's entries are defined up to a common shift (absorbed by
        the constant), so compare entries within a decision, not across.
        """
        self._check_fitted()
        keys = [(name, value) for name, values in self.space.choices().items() for value in values]
        return {key: float(c) for key, c in zip(keys, self._coef, strict=True)}

    @property
    def constant(self) -> float:
        self._check_fitted()
        return self._const


@PREDICTORS.register("latency_learned")
class LearnedLatency(_OneHotPredictor):
    """Robust additive table plus boosted trees on what the table misses."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_depth: int = 3,
    ) -> None:
        super().__init__(space, seed)
        self.max_iter = positive_int("latency_learned", "max_iter", max_iter, minimum=0)
        self.max_depth = positive_int("latency_learned", "max_depth", max_depth)
        self.learning_rate = fraction_option("latency_learned", "learning_rate", learning_rate)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self._coef, self._const = _additive_fit(x, y, "huber")
        additive = x @ self._coef + self._const
        self._trees: HistGradientBoostingRegressor | None = None
        if self.max_iter > 0:
            self._trees = HistGradientBoostingRegressor(
                loss="absolute_error",
                max_iter=self.max_iter,
                learning_rate=self.learning_rate,
                max_depth=self.max_depth,
                random_state=self.seed,
            ).fit(np.column_stack([x, additive]), y - additive)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        additive = x @ self._coef + self._const
        if self._trees is None:
            return additive
        return additive + self._trees.predict(np.column_stack([x, additive]))
