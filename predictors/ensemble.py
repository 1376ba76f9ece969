"""Ensembles of independently seeded members: mean and spread of their predictions.

Two built-in predictors (boosted trees and the BANANAS MLP ensemble) get
their uncertainty the same way: ``members`` models that differ only in their
random seed, the std being the members' disagreement. This class owns that
rule (and ``recipe_mlp``, whose members also take recipes, its functions), so all derive member seeds identically (member ``k`` of a predictor
seeded ``s`` uses ``s * 1000 + k``: distinct across members and across
predictor seeds) and reduce predictions identically.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.core import SearchSpace, positive_int
from predictors.base import EncodedPredictor


def member_seeds(seed: int, members: int) -> list[int]:
    """Member ``k`` of a predictor seeded ``seed`` uses ``seed * 1000 + k``."""
    return [seed * 1000 + member for member in range(members)]


def spread(predictions: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over the members' predictions (one array each): the prediction and its uncertainty."""
    stacked = np.stack(predictions)
    return stacked.mean(axis=0), stacked.std(axis=0)


class MemberEnsemble(EncodedPredictor):
    """``members`` models fitted with seeds ``seed * 1000 + k``; mean and std over them."""

    def __init__(self, space: SearchSpace, seed: int = 0, *, members: int = 5, **common: Any) -> None:
        super().__init__(space, seed, **common)
        self.members = positive_int(self.label, "members", members)

    def member_seeds(self) -> list[int]:
        """The seed of each member, in member order."""
        return member_seeds(self.seed, self.members)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self._fitted_members = [self._fit_member(x, y, seed) for seed in self.member_seeds()]

    def _predict_dist(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return spread([self._predict_member(member, x) for member in self._fitted_members])

    # -- hooks -------------------------------------------------------------------------------
    @abc.abstractmethod
    def _fit_member(self, x: np.ndarray, y: np.ndarray, seed: int) -> Any:
        """One member fitted with all its randomness drawn from ``seed``."""

    @abc.abstractmethod
    def _predict_member(self, member: Any, x: np.ndarray) -> np.ndarray:
        """One member's predictions, shape ``(len(x),)``, in transformed target units."""
