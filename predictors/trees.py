"""Tree-ensemble predictors (scikit-learn): gradient-boosted trees and a random forest.

Trees are the strong, cheap baseline of the NAS predictor literature (White
et al. 2021): no scaling issues, robust with 50-500 training points. Their
uncertainty comes from disagreement: between boosted models fitted with
different seeds on row subsamples, or between the trees of the forest.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor

from nas.core import PREDICTORS, ConfigError, SearchSpace
from predictors.base import EncodedPredictor, positive_option
from predictors.features import ExtraFeatures


@PREDICTORS.register("gbt")
class GradientBoostedTrees(EncodedPredictor):
    """Gradient-boosted trees; mean and std over ``members`` models fitted with different seeds."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        encoding: str = "auto",
        extra_features: ExtraFeatures | None = None,
        target_transform: str = "standard",
        members: int = 5,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        subsample: float = 0.8,
    ) -> None:
        super().__init__(
            space, seed, encoding=encoding, extra_features=extra_features, target_transform=target_transform
        )
        self.members = positive_option("gbt", "members", members)
        self.n_estimators = positive_option("gbt", "n_estimators", n_estimators)
        self.max_depth = positive_option("gbt", "max_depth", max_depth)
        if not 0.0 < learning_rate <= 1.0:
            raise ConfigError(f"gbt option learning_rate={learning_rate!r} is not allowed; expected (0, 1]")
        if not 0.0 < subsample <= 1.0:
            raise ConfigError(f"gbt option subsample={subsample!r} is not allowed; expected (0, 1]")
        self.learning_rate = learning_rate
        self.subsample = subsample

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self._models = [
            GradientBoostingRegressor(
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                max_depth=self.max_depth,
                subsample=self.subsample,
                random_state=self.seed * 1000 + member,
            ).fit(x, y)
            for member in range(self.members)
        ]

    def _predict_dist(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        predictions = np.stack([m.predict(x) for m in self._models])
        return predictions.mean(axis=0), predictions.std(axis=0)


@PREDICTORS.register("rf")
class RandomForest(EncodedPredictor):
    """Random forest; the std is the spread of the individual trees' predictions."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        encoding: str = "auto",
        extra_features: ExtraFeatures | None = None,
        target_transform: str = "standard",
        n_estimators: int = 300,
        max_features: float = 0.5,
        min_samples_leaf: int = 1,
    ) -> None:
        super().__init__(
            space, seed, encoding=encoding, extra_features=extra_features, target_transform=target_transform
        )
        self.n_estimators = positive_option("rf", "n_estimators", n_estimators)
        self.min_samples_leaf = positive_option("rf", "min_samples_leaf", min_samples_leaf)
        if not 0.0 < max_features <= 1.0:
            raise ConfigError(f"rf option max_features={max_features!r} is not allowed; expected (0, 1]")
        self.max_features = max_features

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
