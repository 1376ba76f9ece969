"""Shared plumbing of the encoding-based predictors.

Every built-in predictor is "featurise, standardise, fit a regressor that
yields a mean and a spread". This base class owns the parts that must behave
the same everywhere: input validation (an empty, tiny, non-finite or
constant training set is a :class:`~nas.core.ConfigError`, never a silently
useless model), feature scaling and target standardisation, and the not-fitted check.
Subclasses implement :meth:`_fit` and :meth:`_predict_dist` on arrays.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from nas.core import Architecture, ConfigError, Predictor, SearchSpace
from nas.core.predictor import check_targets
from nas.core.seeds import check_seed
from predictors.features import ExtraFeatures, Featurizer
from predictors.targets import TargetTransform


class EncodedPredictor(Predictor):
    """A predictor over :class:`~predictors.features.Featurizer` vectors.

    Options shared by all subclasses: ``encoding`` (``auto``, ``path``,
    ``onehot``, ``both``, ``none``), ``extra_features`` (a mapping or
    callable Architecture -> vector, e.g. zero-cost proxy scores),
    ``graph_features`` (GENNAPE-style statistics of the computational graph) and
    ``target_transform`` (``standard`` or ``rank``, see
    :mod:`predictors.targets`). Subclasses take their own options and pass
    these on with ``**common``, so the shared options are declared (and
    documented) once; :func:`nas.core.options.constructor_options` follows
    ``**`` up the class hierarchy when it checks option names.
    """

    #: Map continuous feature columns through the ranks of their training
    #: values before scaling. Models that use distances or gradients (MLP, GP)
    #: need it; trees split on order alone and keep plain min-max scaling.
    rank_continuous: ClassVar[bool] = False

    #: The registered name, which option errors name (``gbt option members=0 ...``).
    label: ClassVar[str] = "predictor"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        encoding: str = "auto",
        extra_features: ExtraFeatures | None = None,
        graph_features: bool = False,
        target_transform: str = "standard",
    ) -> None:
        super().__init__(space, check_seed(seed))
        self.featurizer = Featurizer(space, encoding, extra_features, graph_features)
        self.target = TargetTransform(target_transform)
        self._fitted = False

    # -- template --------------------------------------------------------------------------
    def fit(self, archs: Sequence[Architecture], targets: Sequence[float]) -> EncodedPredictor:
        if isinstance(archs, Architecture) or not isinstance(archs, Sequence) or not archs:
            raise ConfigError("fit needs a non-empty sequence of architectures")
        y = check_targets(targets, len(archs))
        x = self.featurizer(archs)
        # Continuous columns (anything but 0/1 bits, e.g. proxy scores) get the
        # positions of their distinct training values first (if the model asks
        # for it): a heavy tail such as jacob_cov's (a few cells at -110, the
        # rest within 0.3 of -32.4) would otherwise squash the informative bulk
        # into a sliver after min-max scaling.
        self._knots: dict[int, np.ndarray] = {}
        if self.rank_continuous:
            continuous = ~np.isin(x, (0.0, 1.0)).all(axis=0)
            self._knots = {j: np.unique(x[:, j]) for j in np.flatnonzero(continuous)}
        x = self._positions(x)
        # Min-max scaling keeps one-hot and path bits as 0/1 (what distance-based
        # kernels want) while bringing proxy scores such as params to [0, 1].
        self._x_mean = x.min(axis=0)
        span = np.ptp(x, axis=0)
        self._x_scale = np.where(span > 0, span, 1.0)
        self._fit((x - self._x_mean) / self._x_scale, self.target.fit_forward(y))
        self._fitted = True
        return self

    def _positions(self, x: np.ndarray) -> np.ndarray:
        """Continuous columns mapped through their training values' ranks (linear beyond them).

        Not scikit-learn's ``QuantileTransformer``: it clips values outside the
        training range, and a candidate whose proxy beats every trained cell's
        must stay above them (the search is looking for exactly those).
        """
        if not self._knots:
            return x
        x = x.copy()
        for j, knots in self._knots.items():
            if knots.size < 2:
                continue
            steps = np.arange(knots.size, dtype=np.float64)
            slope = (knots.size - 1) / (knots[-1] - knots[0])
            column = x[:, j]
            inside = np.interp(column, knots, steps)
            x[:, j] = np.where(
                column < knots[0],
                (column - knots[0]) * slope,
                np.where(column > knots[-1], steps[-1] + (column - knots[-1]) * slope, inside),
            )
        return x

    def predict_dist(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        if not self._fitted:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit(archs, targets) first")
        x = (self._positions(self.featurizer(archs)) - self._x_mean) / self._x_scale
        mean, std = self._predict_dist(x)
        return self.target.inverse(mean), self.target.inverse_std(mean, std)

    # -- hooks -------------------------------------------------------------------------------
    @abc.abstractmethod
    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        """Fit on features min-max scaled to [0, 1] (on the training set) and transformed targets."""

    @abc.abstractmethod
    def _predict_dist(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std in transformed target units."""


def optimiser_options(owner: str, lr: Any, weight_decay: Any) -> tuple[float, float]:
    """Validate the AdamW options of the torch predictors (MLP ensemble, GCN, recipe MLP): lr > 0, weight_decay >= 0.

    One rule for all three, so a bool or a string is refused by name here
    instead of reaching the optimiser (``True`` would train at lr 1).
    """
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise ConfigError(f"{owner} option lr={lr!r} is not allowed; expected > 0")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, int | float) or not weight_decay >= 0:
        raise ConfigError(f"{owner} option weight_decay={weight_decay!r} is not allowed; expected >= 0")
    return float(lr), float(weight_decay)


def fraction_option(owner: str, name: str, value: Any) -> float:
    """Validate a predictor option that is a share of something (rows, features, a step): (0, 1]."""
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"{owner} option {name}={value!r} is not allowed; expected (0, 1]")
    return value
