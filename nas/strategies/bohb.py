"""BOHB's model (Falkner, Klein and Hutter 2018): a TPE-style density ratio, fitted per budget.

Every told trial contributes one observation per budget it reached: with the
``bohb`` scheduler's brackets most trials stop early, and their curves
(``system_attrs["curve"]``, attached by the runner because
:attr:`uses_curves` is set) say how good they were after 1, 3, 9... epochs.
Each ask fits the model on the *largest* budget that has ``min_points``
results, since that is the most faithful evidence available, as BOHB does:
the best ``top_fraction`` there form the "good" density ``l(x)``, the rest
the "bad" ``g(x)``, and the candidate with the largest ``l(x)/g(x)`` among
``n_candidates`` drawn from a widened ``l`` is proposed. A ``random_fraction``
of asks stays uniformly random (BOHB's guarantee to explore).

The densities are products of Aitchison-Aitken kernels over the space's
categorical encoding (one categorical per decision, e.g. nb201's six edge
operations), which is what BOHB's KDE uses for categorical parameters; the
bandwidths follow the normal reference rule, floored at ``min_bandwidth``.
A COMPLETE trial without a curve counts at its own budget (or the full one).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.space import SearchSpace
from nas.core.strategy import INITIAL_PHASE, STRATEGIES, Observation, Strategy
from nas.core.trial import Direction, Trial
from nas.strategies.options import float_option, int_option

#: ``system_attrs["phase"]`` of an ask in BOHB's random fraction (exploration, not the model).
RANDOM_FRACTION_PHASE = "random fraction"


@STRATEGIES.register("bohb")
class Bohb(Strategy):
    """BOHB's density-ratio proposals from the largest budget with enough results."""

    phase_name = "kde"
    #: The runner attaches each told trial's curve of the primary objective (per-budget evidence).
    uses_curves = True

    def __init__(
        self,
        space: SearchSpace,
        min_points: int | None = None,
        top_fraction: float = 0.15,
        random_fraction: float = 1 / 3,
        n_candidates: int = 64,
        bandwidth_factor: float = 3.0,
        min_bandwidth: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        super().__init__(space, **kwargs)
        self.names = list(space.choices())
        self.values = [list(v) for v in space.choices().values()]
        default_points = len(self.names) + 1  # BOHB's d + 1
        self.min_points = int_option("min_points", default_points if min_points is None else min_points, 2)
        self.top_fraction = float_option("top_fraction", top_fraction, 1e-6, 1.0 - 1e-6)
        self.random_fraction = float_option("random_fraction", random_fraction, 0.0, 1.0)
        self.n_candidates = int_option("n_candidates", n_candidates)
        self.bandwidth_factor = float_option("bandwidth_factor", bandwidth_factor, 1.0)
        self.min_bandwidth = float_option("min_bandwidth", min_bandwidth, 1e-9, 0.5)
        #: budget -> canonical key -> (decision codes, larger-is-better value at that budget)
        self.by_budget: dict[float, dict[str, tuple[np.ndarray, float]]] = {}

    # -- what it learns ------------------------------------------------------------------------------
    def _observe(self, trial: Trial, observation: Observation | None) -> None:
        sign = 1.0 if self.objectives[self.primary] is Direction.MAX else -1.0
        codes = self.encode(trial.arch)
        key = self._dedupe_key(trial.arch)
        for budget, value in self.budget_values(trial, observation):
            if math.isfinite(value):
                self.by_budget.setdefault(budget, {})[key] = (codes, sign * value)

    def budget_values(self, trial: Trial, observation: Observation | None) -> list[tuple[float, float]]:
        """(budget, value) pairs of ``trial``: its curve's epochs, else its final value at its budget."""
        curve = trial.system_attrs.get("curve")
        if curve:
            return [(float(step), float(value)) for step, value in curve]
        if observation is None:
            return []
        return [(float(trial.budget) if trial.budget is not None else math.inf, observation.values[0])]

    def model_budget(self) -> float | None:
        """The largest budget with ``min_points`` results (None: keep sampling at random)."""
        ready = [b for b, results in self.by_budget.items() if len(results) >= self.min_points]
        return max(ready) if ready else None

    @property
    def initial_size(self) -> int:
        return self.min_points

    def phase(self) -> str:
        return INITIAL_PHASE if self.model_budget() is None else self.phase_name

    # -- the model -----------------------------------------------------------------------------------
    def encode(self, arch: Architecture) -> np.ndarray:
        """Decision codes: the index of each decision's value among its choices."""
        return np.array([self.values[i].index(arch[name]) for i, name in enumerate(self.names)], dtype=int)

    def decode(self, codes: np.ndarray) -> Architecture:
        pairs = zip(self.names, self.values, codes, strict=True)
        return Architecture(self.space.name, tuple((name, values[int(c)]) for name, values, c in pairs))

    def _bandwidths(self, data: np.ndarray) -> np.ndarray:
        """Normal-reference bandwidths per decision, clipped to the Aitchison-Aitken range."""
        n, d = data.shape
        sizes = np.array([len(v) for v in self.values], dtype=float)
        bw = 1.06 * data.std(axis=0) * n ** (-1.0 / (4 + d))
        return np.clip(bw, self.min_bandwidth, (sizes - 1) / sizes)

    def _density(self, points: np.ndarray, data: np.ndarray, bw: np.ndarray) -> np.ndarray:
        """Mean over ``data`` of the product Aitchison-Aitken kernel at each of ``points``."""
        sizes = np.array([len(v) for v in self.values], dtype=float)
        same = points[:, None, :] == data[None, :, :]
        other = np.where(sizes > 1, bw / np.maximum(sizes - 1, 1), 0.0)
        kernel = np.where(same, 1.0 - bw, other)
        return np.exp(np.log(np.maximum(kernel, 1e-300)).sum(axis=-1)).mean(axis=1)

    def _propose(self, rng: np.random.Generator) -> Architecture | None:
        budget = self.model_budget()
        if budget is None:
            return self.space.sample(rng)
        if rng.random() < self.random_fraction:
            self.last_phase = RANDOM_FRACTION_PHASE
            return self.space.sample(rng)
        results = list(self.by_budget[budget].values())
        results.sort(key=lambda r: -r[1])
        data = np.stack([codes for codes, _ in results])
        n_good = max(1, math.ceil(self.top_fraction * len(results)))
        good, bad = data[:n_good], data[n_good:] if len(results) > n_good else data
        bw_good, bw_bad = self._bandwidths(good), self._bandwidths(bad)
        widened = np.minimum(bw_good * self.bandwidth_factor, [(len(v) - 1) / len(v) for v in self.values])
        parents = good[rng.integers(len(good), size=self.n_candidates)]
        resample = rng.random(parents.shape) < widened
        uniform = np.stack([rng.integers(len(v), size=self.n_candidates) for v in self.values], axis=1)
        candidates = np.where(resample, uniform, parents)
        bad_density = np.maximum(self._density(candidates, bad, bw_bad), 1e-300)
        ratio = self._density(candidates, good, bw_good) / bad_density
        for index in np.argsort(-ratio, kind="stable"):
            arch = self.decode(candidates[index])
            if self.space.is_valid(arch) and self.admissible(arch):
                return arch
        return self.space.sample(rng)

    def explain(self) -> dict[str, Any] | None:
        budget = self.model_budget()
        if budget is None:
            return None
        shown = budget if math.isfinite(budget) else "full"
        return {"model_budget": shown, "results": len(self.by_budget[budget])}


__all__ = ["RANDOM_FRACTION_PHASE", "Bohb"]
