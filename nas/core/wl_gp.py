"""A Gaussian process with the Weisfeiler-Lehman kernel, and what it learned (NAS-BOWL).

The kernel is the dot product of the WL feature vectors of two architectures
after each is normalised to unit length (``nas.core.wl``), so it is 1 for
identical graphs and counts shared sub-trees otherwise. With
``graph_features`` (the default) it is multiplied by an RBF kernel on the
cell's standardised operation counts and graph statistics (depth in
operations, paths, degrees: :mod:`nas.core.graph_stats`), GENNAPE's
hand-made features: normalising the WL vector throws away how many
operations a cell has and how deep it is, which matters for accuracy (Kendall
tau 0.59 -> 0.69 at 100 NAS-Bench-201 cells on the tuning splits; a sum of
the two kernels reached 0.65, see docs/predictors.md). As in NAS-BOWL the
number of WL iterations ``h`` is chosen among ``0..max_iterations`` by the
log marginal likelihood, together with the RBF length scale, the signal
amplitude and the noise (grids, scored on one eigendecomposition of the
``n x n`` kernel per ``h`` and length scale, no optimiser, so the fit is
deterministic and takes milliseconds at n = 100).

For a fixed graph-statistics factor the posterior mean is linear in each
training cell's normalised WL features, so its gradient with respect to a
feature's count says how much one more occurrence of that sub-graph moves
the prediction among cells of similar size and depth;
:meth:`WLGaussianProcess.explain` averages it over the training
architectures that contain the feature, as NAS-BOWL does, and returns the
strongest positive and negative features.

Kernel layer (numpy only) because the ``bowl`` strategy and the ``wl_gp``
predictor both use it and may not import each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.predictor import Predictor, check_targets
from nas.core.space import SearchSpace
from nas.core.wl import (
    DEFAULT_ITERATIONS,
    WLFeaturizer,
    check_iterations,
    count_matrix,
    feature_name,
    vocabulary,
)

#: Candidate noise variances (standardised targets): from near-exact interpolation to mostly noise.
NOISE_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
#: Candidate signal amplitudes of the (unit-diagonal) kernel.
AMPLITUDE_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
#: Candidate length scales of the graph-statistics factor, in units of sqrt(number of statistics).
LENGTH_SCALE_GRID = (0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 4.0, 8.0)
#: A feature must occur in this many training architectures to be named in an explanation.
MIN_SUPPORT = 2


class WLGaussianProcess(Predictor):
    """GP regression on normalised WL features (times a graph-statistics RBF); hyper-parameters by marginal likelihood."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        max_iterations: int = DEFAULT_ITERATIONS,
        noise: float | None = None,
        featurizer: WLFeaturizer | None = None,
        graph_features: bool = True,
    ) -> None:
        super().__init__(space, seed)
        if not isinstance(graph_features, bool):
            raise ConfigError(
                f"wl_gp option graph_features={graph_features!r} is not allowed; expected true or false"
            )
        self.graph_features = graph_features
        self.max_iterations = check_iterations(max_iterations)
        if noise is not None and (
            isinstance(noise, bool) or not isinstance(noise, int | float) or not noise > 0
        ):
            raise ConfigError(
                f"wl_gp option noise={noise!r} is not allowed; expected a number > 0 or None (chosen)"
            )
        self.noise = None if noise is None else float(noise)
        if featurizer is not None and (
            featurizer.space is not space or featurizer.iterations < self.max_iterations
        ):
            raise ConfigError(
                "wl_gp featurizer must be of the same space with at least max_iterations iterations"
            )
        # A shared featurizer keeps its cache across refits (a search refits at every ask).
        self.featurizer = featurizer or WLFeaturizer(space, self.max_iterations)
        self._fitted = False

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, archs: Sequence[Architecture], targets: Sequence[float]) -> WLGaussianProcess:
        if isinstance(archs, Architecture) or not isinstance(archs, Sequence) or not archs:
            raise ConfigError("fit needs a non-empty sequence of architectures")
        y = check_targets(targets, len(archs))
        features = self.featurizer.many(archs)
        self._y_mean, self._y_std = float(y.mean()), float(y.std())
        z = (y - self._y_mean) / self._y_std
        noises = NOISE_GRID if self.noise is None else (self.noise,)
        if self.graph_features:
            self._graph_columns = vocabulary(features, 0)
            raw = self._graph_matrix(archs, features)
            self._g_mean, self._g_std = raw.mean(axis=0), raw.std(axis=0)
            self._g = self._standardised(raw)
            distances = _squared_distances(self._g, self._g)
            # Length scales relative to sqrt(number of varying statistics), the typical distance.
            width = max(int((self._g_std > 0).sum()), 1)
            scales = tuple(s * math.sqrt(width) for s in LENGTH_SCALE_GRID)
        else:
            distances, scales = np.zeros((len(z), len(z))), (math.inf,)
        best: tuple[float, int, float, float, float] | None = None
        constant = 0.5 * len(z) * math.log(2 * math.pi)
        for h in range(self.max_iterations + 1):
            columns = vocabulary(features, h)
            x = _normalised(*count_matrix(features, columns, h))
            for scale in scales:
                kernel = (x @ x.T) * _rbf(distances, scale)
                # One eigendecomposition serves the whole grid: amplitude * K + noise * I has
                # eigenvalues amplitude * lambda + noise on the same eigenvectors.
                eigenvalues, vectors = np.linalg.eigh(kernel)
                eigenvalues = np.maximum(eigenvalues, 0.0)
                projected = (vectors.T @ z) ** 2
                for amplitude in AMPLITUDE_GRID:
                    for noise in noises:
                        spectrum = amplitude * eigenvalues + noise
                        lml = float(-0.5 * (projected / spectrum).sum() - 0.5 * np.log(spectrum).sum())
                        if best is None or lml - constant > best[0] + 1e-9:
                            best = (lml - constant, h, scale, amplitude, noise)
        assert best is not None  # the grids are never empty
        (
            self.log_marginal_likelihood,
            self.iterations,
            self.length_scale,
            self.amplitude,
            self.chosen_noise,
        ) = best
        self._columns = vocabulary(features, self.iterations)
        self._counts = count_matrix(features, self._columns, self.iterations)
        self._x = _normalised(*self._counts)
        self._r = _rbf(distances, self.length_scale)
        kernel = self.amplitude * (self._x @ self._x.T) * self._r + self.chosen_noise * np.eye(len(z))
        self._chol = np.linalg.cholesky(kernel)
        self._alpha = np.linalg.solve(self._chol.T, np.linalg.solve(self._chol, z))
        self._fitted = True
        return self

    def _graph_matrix(self, archs: Sequence[Architecture], features: Sequence[Any]) -> np.ndarray:
        """Operation counts (h0 features seen in training, not normalised) and graph statistics."""
        counts, _ = count_matrix(features, self._graph_columns, 0)
        return np.concatenate([counts, self.featurizer.statistics(archs)], axis=1)

    def _standardised(self, raw: np.ndarray) -> np.ndarray:
        return (raw - self._g_mean) / np.where(self._g_std > 0, self._g_std, 1.0)

    # -- prediction ----------------------------------------------------------------------------
    def predict_dist(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        if not self._fitted:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit(archs, targets) first")
        features = self.featurizer.many(archs)
        x = _normalised(*count_matrix(features, self._columns, self.iterations))
        cross = self.amplitude * (x @ self._x.T)
        if self.graph_features:
            g = self._standardised(self._graph_matrix(archs, features))
            cross *= _rbf(_squared_distances(g, self._g), self.length_scale)
        mean = cross @ self._alpha
        v = np.linalg.solve(self._chol, cross.T)
        variance = np.maximum(self.amplitude * (x * x).sum(axis=1) - (v * v).sum(axis=0), 0.0)
        return self._y_mean + self._y_std * mean, self._y_std * np.sqrt(variance)

    # -- interpretation ------------------------------------------------------------------------
    def feature_effects(self) -> list[tuple[str, float, int]]:
        """``(feature name, effect, support)`` for every training feature, strongest first.

        ``effect`` is the posterior mean's derivative with respect to the
        feature's count (target units per occurrence), averaged over the
        ``support`` training architectures that contain it. At a training
        architecture ``x_j`` the mean is ``m = w_j . x_j / |x_j|`` with
        ``w_j = amplitude * sum_i alpha_i r_ji x_i / |x_i|``, where ``r_ji``
        is the graph-statistics factor of the kernel (1 without it), held
        fixed: the derivative is ``(w_jf - m x_jf / |x_j|) / |x_j|``, the
        effect of the sub-graph among cells of similar size and depth.
        """
        if not self._fitted:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit(archs, targets) first")
        counts, norms = self._counts
        weights = self.amplitude * ((self._r * self._alpha[None, :]) @ self._x)
        means = (weights * self._x).sum(axis=1)
        unit = counts / norms[:, None]
        gradients = (weights - means[:, None] * unit) / norms[:, None]
        present = counts > 0
        support = present.sum(axis=0)
        effect = self._y_std * np.where(present, gradients, 0.0).sum(axis=0) / np.maximum(support, 1)
        names = [feature_name(f) for f in self._columns]
        order = np.argsort(-np.abs(effect), kind="stable")
        return [(names[j], float(effect[j]), int(support[j])) for j in order]

    def _constant(self) -> set[str]:
        """Features with the same count in every training architecture (e.g. ``h0:input``): they explain nothing."""
        counts = self._counts[0]
        return {feature_name(f) for f, j in self._columns.items() if np.ptp(counts[:, j]) == 0}

    def explain(self, top: int = 10) -> dict[str, Any]:
        """JSON-ready summary: chosen hyper-parameters and the ``top`` features each way."""
        effects = [e for e in self.feature_effects() if MIN_SUPPORT <= e[2] and e[0] not in self._constant()]

        def rows(sign: float) -> list[dict[str, Any]]:
            chosen = [e for e in effects if e[1] * sign > 0][:top]
            return [
                {"feature": name, "effect": effect, "support": support} for name, effect, support in chosen
            ]

        return {
            "model": "wl_gp",
            "wl_iterations": self.iterations,
            "graph_features": self.graph_features,
            "length_scale": self.length_scale if self.graph_features else None,
            "amplitude": self.amplitude,
            "noise": self.chosen_noise,
            "training_size": len(self._alpha),
            "positive": rows(1.0),
            "negative": rows(-1.0),
        }


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.maximum(squared, 0.0)


def _rbf(squared_distances: np.ndarray, scale: float) -> np.ndarray:
    """The graph-statistics factor of the kernel; an infinite ``scale`` makes it 1 (WL kernel alone)."""
    return np.exp(-0.5 * squared_distances / scale**2)


def _normalised(counts: np.ndarray, norms: np.ndarray) -> np.ndarray:
    return counts / np.where(norms > 0, norms, 1.0)[:, None]
