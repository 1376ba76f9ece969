"""Target transforms: what scale a predictor learns accuracies on.

``standard`` learns (y - mean) / std. ``rank`` learns the normal scores of
the training targets' ranks and maps predictions back through the training
targets' quantiles: only the order of the training accuracies matters, so a
cluster of broken networks at 10% accuracy (a tenth of NAS-Bench-201) no
longer dominates a squared loss. Predictions come back in accuracy units
either way, monotone in what the model learned.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, rankdata

from nas.core import ConfigError

TRANSFORMS: tuple[str, ...] = ("standard", "rank")


class TargetTransform:
    """Fitted on the training targets; ``forward`` to model units, ``inverse`` back."""

    def __init__(self, kind: str = "standard") -> None:
        if kind not in TRANSFORMS:
            raise ConfigError(f"target_transform={kind!r} is not allowed; allowed: {', '.join(TRANSFORMS)}")
        self.kind = kind

    def fit_forward(self, y: np.ndarray) -> np.ndarray:
        """Fit on training targets ``y`` and return them in model units."""
        self._mean = float(y.mean())
        self._scale = float(y.std()) or 1.0
        if self.kind == "standard":
            return (y - self._mean) / self._scale
        z = norm.ppf((rankdata(y) - 0.5) / y.size)
        # The inverse map: through (z, y) of the sorted training set, one point per distinct z.
        self._z, first = np.unique(z, return_index=True)
        self._y = np.asarray(y, dtype=np.float64)[first]
        span = self._z[-1] - self._z[0]
        self._slope = (self._y[-1] - self._y[0]) / span if span > 0 else self._scale
        return z

    def inverse(self, z: np.ndarray) -> np.ndarray:
        if self.kind == "standard":
            return z * self._scale + self._mean
        inside = np.interp(z, self._z, self._y)
        # Linear beyond the training range, so predictions past the best (or
        # worst) training point stay ordered instead of tying at the edge.
        below = self._y[0] + (z - self._z[0]) * self._slope
        above = self._y[-1] + (z - self._z[-1]) * self._slope
        return np.where(z < self._z[0], below, np.where(z > self._z[-1], above, inside))

    def inverse_std(self, z: np.ndarray, std: np.ndarray) -> np.ndarray:
        """A model-unit std at ``z`` in target units (first-order: times the local slope)."""
        if self.kind == "standard":
            return np.abs(std) * self._scale
        step = 1e-3
        slope = (self.inverse(z + step) - self.inverse(z - step)) / (2 * step)
        return np.abs(std) * np.maximum(slope, 0.0)
