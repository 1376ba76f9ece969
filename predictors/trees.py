"""Tree-ensemble predictors (scikit-learn): gradient-boosted trees and a random forest.

Trees are the strong, cheap baseline of the NAS predictor literature (White
et al. 2021): no scaling issues, robust with 50-500 training points. Their
uncertainty comes from disagreement: between boosted models fitted with
different seeds on row subsamples, or between the trees of the forest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor

from nas.core import PREDICTORS, SearchSpace, positive_int
from predictors.base import EncodedPredictor, fraction_option
from predictors.ensemble import MemberEnsemble


@PREDICTORS.register("gbt")
class GradientBoostedTrees(MemberEnsemble):
    """Gradient-boosted trees; mean and std over ``members`` models fitted with different seeds."""

    label = "gbt"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        subsample: float = 0.8,
        **common: Any,
    ) -> None:
        super().__init__(space, seed, **common)
        self.n_estimators = positive_int(self.label, "n_estimators", n_estimators)
        self.max_depth = positive_int(self.label, "max_depth", max_depth)
        self.learning_rate = fraction_option(self.label, "learning_rate", learning_rate)
        self.subsample = fraction_option(self.label, "subsample", subsample)

    def _fit_member(self, x: np.ndarray, y: np.ndarray, seed: int) -> GradientBoostingRegressor:
        return GradientBoostingRegressor(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            subsample=self.subsample,
            random_state=seed,
        ).fit(x, y)

    def _predict_member(self, member: GradientBoostingRegressor, x: np.ndarray) -> np.ndarray:
        return member.predict(x)


@PREDICTORS.register("rf")
class RandomForest(EncodedPredictor):
    """Random forest; the std is the spread of the individual trees' predictions."""

    label = "rf"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        n_estimators: int = 300,
        max_features: float = 0.5,
        min_samples_leaf: int = 1,
        **common: Any,
    ) -> None:
        super().__init__(space, seed, **common)
        self.n_estimators = positive_int(self.label, "n_estimators", n_estimators)
        self.min_samples_leaf = positive_int(self.label, "min_samples_leaf", min_samples_leaf)
        self.max_features = fraction_option(self.label, "max_features", max_features)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self._model = RandomForestRegressor(
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            random_state=self.seed,
            n_jobs=1,
        ).fit(x, y)

    def _predict_dist(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        per_tree = np.stack([tree.predict(x) for tree in self._model.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)
