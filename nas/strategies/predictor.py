"""Predictor-guided search in the style of BANANAS (White, Neiswanger, Savani 2021).

After ``n_initial`` random architectures, every ask fits a performance
predictor on what has been told (plus an optional prior), generates
candidates by mutating the best architectures so far (plus a few random ones),
and proposes the candidate with the highest acquisition: independent
Thompson sampling (``its``, a draw from each candidate's predicted normal),
an upper confidence bound (``ucb``), expected improvement over the best
training target (``ei``) or the plain predicted mean (``mean``).

The predictor is injected: ``predictor=factory`` is called as
``factory(space, seed=int, **predictor_options)`` (a class registered in
``nas.core.PREDICTORS`` fits), or ``predictor="name"`` is looked up in that
registry. Either way this module never imports ``predictors``; the predictor
chooses its encoding (path encoding where the space has one).

``prior`` seeds the model with earlier results: ``[(arch, value), ...]`` in
the primary objective's units (``prior_units="objective"``, e.g. the store's
cross-study lookup), or in any larger-is-better score
(``prior_units="score"``, e.g. a zero-cost proxy), which is turned into
normal scores of its ranks and, once results exist, rescaled to their mean
and spread. Prior architectures are training data and mutation parents; they
are not marked as evaluated.

Documented fallbacks: if every training target is equal the model cannot rank
anything, so a random candidate is proposed; a predictor returning NaN or a
wrongly shaped prediction is an error (:class:`~nas.core.errors.NASError`).
"""

from __future__ import annotations

import functools
import logging
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.predictor import PREDICTORS, Predictor
from nas.core.space import SearchSpace
from nas.core.strategy import FALLBACK_PHASE, STRATEGIES, Strategy
from nas.core.trial import Direction
from nas.strategies.acquisition import acquisition_scores, checked_predictions
from nas.strategies.options import choice_option, float_option, int_option

logger = logging.getLogger(__name__)

#: ``factory(space, seed=int) -> Predictor``; a registered predictor class fits.
PredictorFactory = Callable[..., Predictor]

#: Used when no predictor is given (a name in ``nas.core.PREDICTORS``).
DEFAULT_PREDICTOR = "gbt"
ACQUISITIONS = ("its", "ucb", "mean", "ei")
CANDIDATE_POOLS = ("local", "all")
#: Largest space whose every architecture may be scored at each ask.
MAX_POOL = 50_000
PRIOR_UNITS = ("objective", "score")
#: ``system_attrs["phase"]`` of a random proposal made because every training target was equal.
EQUAL_TARGETS_PHASE = "random (equal targets)"
_NEIGHBOUR_CACHE = 20_000


@STRATEGIES.register("predictor")
class PredictorGuidedSearch(Strategy):
    """BANANAS-style search: predictor ensemble, mutation candidates, Thompson sampling."""

    phase_name = "predictor"

    def __init__(
        self,
        space: SearchSpace,
        predictor: PredictorFactory | str = DEFAULT_PREDICTOR,
        predictor_options: Mapping[str, Any] | None = None,
        n_initial: int = 10,
        n_candidates: int = 100,
        num_parents: int = 5,
        max_edits: int = 2,
        random_fraction: float = 0.2,
        candidate_pool: str = "local",
        acquisition: str = "its",
        ucb_beta: float = 1.0,
        refit_every: int = 1,
        prior: Sequence[tuple[Architecture, float]] | None = None,
        prior_units: str = "objective",
        **options: Any,
    ) -> None:
        super().__init__(space, **options)
        self.predictor_factory = _factory(predictor, predictor_options)
        self.n_initial = int_option("n_initial", n_initial, 1)
        self.n_candidates = int_option("n_candidates", n_candidates, 0)
        self.num_parents = int_option("num_parents", num_parents, 1)
        self.max_edits = int_option("max_edits", max_edits, 1)
        self.random_fraction = float_option("random_fraction", random_fraction, 0.0, 1.0)
        self.acquisition = choice_option("acquisition", acquisition, ACQUISITIONS)
        self.candidate_pool = choice_option("candidate_pool", candidate_pool, CANDIDATE_POOLS)
        if self.candidate_pool == "all" and space.size() > MAX_POOL:
            raise ConfigError(
                f"candidate_pool='all' scores every architecture, but {space.name} has {space.size()} "
                f"(more than {MAX_POOL}); use candidate_pool='local'"
            )
        self._pool: list[Architecture] | None = None
        self.ucb_beta = float_option("ucb_beta", ucb_beta, 0.0)
        self.refit_every = int_option("refit_every", refit_every, 1)
        self.prior_units = choice_option("prior_units", prior_units, PRIOR_UNITS)
        self._prior_archs, self._prior_values = self._check_prior(prior)
        self._model: Predictor | None = None
        self._model_size = -1  # observations the current model was fitted on
        self._neighbour_cache: dict[Architecture, list[Architecture]] = {}

    # -- proposal ----------------------------------------------------------------------------
    @property
    def initial_size(self) -> int:
        """``n_initial``, less the prior's architectures (they count as results)."""
        return max(0, self.n_initial - len(self._prior_archs))

    def _propose(self, rng: np.random.Generator) -> Architecture | None:
        if len(self.observations) + len(self._prior_archs) < self.n_initial:
            return self.space.sample(rng)
        _, fit_targets = self.training_set(self._fit_size())
        if np.ptp(fit_targets) == 0:
            logger.info("%s: all %d training targets are equal; proposing at random", self, len(fit_targets))
            self.last_phase = EQUAL_TARGETS_PHASE
            return self.space.sample(rng)
        if self.candidate_pool == "all":
            candidates = [a for a in self._all() if self.admissible(a)]
        else:
            candidates = self._candidates(rng, *self.training_set())
        if not candidates:
            self.last_phase = FALLBACK_PHASE
            return self.space.sample(rng)
        mean, std = self._predict(candidates)
        scores = acquisition_scores(
            self.acquisition, mean, std, rng, ucb_beta=self.ucb_beta, best=float(np.max(fit_targets))
        )
        return candidates[int(np.argmax(scores))]

    def explain(self) -> dict[str, Any] | None:
        """What the current model says, if the predictor can tell (``explain()`` on it), else None."""
        explain = getattr(self._model, "explain", None)
        if self._model is None or not callable(explain):
            return None
        return {"trials": self._model_size, **explain()}

    def training_set(self, size: int | None = None) -> tuple[list[Architecture], np.ndarray]:
        """Prior plus the first ``size`` observations (all by default), as utilities (larger is better)."""
        observed = self.observations if size is None else self.observations[:size]
        archs = [o.arch for o in observed]
        utilities = np.array([self.utility(o) for o in observed], dtype=float)
        if not self._prior_archs:
            return archs, utilities
        prior = np.asarray(self._prior_values, dtype=float)
        if self.prior_units == "objective":
            prior = prior if self.objectives[self.primary] is Direction.MAX else -prior
        else:
            prior = normal_scores(prior)
            if len(utilities) >= 2 and np.std(utilities) > 0:
                prior = utilities.mean() + utilities.std() * prior
        return [*self._prior_archs, *archs], np.concatenate([prior, utilities])

    # -- internals -----------------------------------------------------------------------------
    def _fit_size(self) -> int:
        """How many observations the model uses: all, or the last multiple of ``refit_every``.

        Depends only on the number of observations, so a resumed search fits
        the same models as the uninterrupted one.
        """
        n = len(self.observations)
        start = max(0, self.n_initial - len(self._prior_archs))
        return n - (n - start) % self.refit_every if n > start else n

    def _fitted(self, size: int) -> Predictor:
        if self._model is None or self._model_size != size:
            archs, targets = self.training_set(size)
            seed = int(
                self.rng_for("fit", size).integers(2**20)
            )  # small: predictors derive member seeds from it
            model = self.predictor_factory(self.space, seed=seed)
            if not isinstance(model, Predictor):
                raise ConfigError(
                    f"predictor factory {self.predictor_factory!r} returned {type(model).__name__}, not a Predictor"
                )
            model.fit(archs, targets.tolist())
            self._model, self._model_size = model, size
        return self._model

    def _predict(self, candidates: list[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        model = self._fitted(self._fit_size())
        return checked_predictions(model, model.predict_dist(candidates), len(candidates))

    def _candidates(
        self, rng: np.random.Generator, archs: Sequence[Architecture], targets: np.ndarray
    ) -> list[Architecture]:
        """Admissible, mutually distinct candidates around the best architectures so far.

        Every neighbour (one edit) of the ``num_parents`` best, then
        ``n_candidates`` random walks of 2..``max_edits`` edits from them, a
        ``random_fraction`` of which are replaced by uniform samples.
        """
        order = np.argsort(-targets, kind="stable")
        parents = [archs[int(i)] for i in order[: self.num_parents]]
        found: dict[str, Architecture] = {}

        def add(candidate: Architecture) -> None:
            key = self._dedupe_key(candidate)
            if key not in found and self.admissible(candidate):
                found[key] = candidate

        for parent in parents:
            for neighbour in self._neighbours(parent):
                add(neighbour)
        n_random = round(self.n_candidates * self.random_fraction)
        for _ in range(self.n_candidates - n_random if self.max_edits > 1 else 0):
            child = parents[int(rng.integers(len(parents)))]
            for _ in range(2 + int(rng.integers(self.max_edits - 1))):
                options = self._neighbours(child)
                if not options:
                    break
                child = options[int(rng.integers(len(options)))]
            add(child)
        for _ in range(n_random):
            add(self.space.sample(rng))
        return list(found.values())

    def _all(self) -> list[Architecture]:
        """One architecture per duplicate key of the whole space (enumerated once)."""
        if self._pool is None:
            seen: dict[str, Architecture] = {}
            for arch in self._enumerate():
                seen.setdefault(self._dedupe_key(arch), arch)
            self._pool = list(seen.values())
        return self._pool

    def _neighbours(self, arch: Architecture) -> list[Architecture]:
        """``space.neighbours``, memoised: parents and their neighbours recur across asks."""
        result = self._neighbour_cache.get(arch)
        if result is None:
            if len(self._neighbour_cache) >= _NEIGHBOUR_CACHE:
                self._neighbour_cache.clear()
            result = self._neighbour_cache[arch] = self.space.neighbours(arch)
        return result

    def _check_prior(
        self, prior: Sequence[tuple[Architecture, float]] | None
    ) -> tuple[list[Architecture], list[float]]:
        archs: list[Architecture] = []
        values: list[float] = []
        for index, item in enumerate(prior or ()):
            if not (isinstance(item, tuple | list) and len(item) == 2):
                raise ConfigError(f"prior item {index} is {item!r}; expected an (architecture, value) pair")
            arch, value = item
            self.space.validate(arch)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"prior item {index} has value {value!r}; expected a finite number")
            archs.append(arch)
            values.append(float(value))
        return archs, values


def _factory(predictor: PredictorFactory | str, options: Mapping[str, Any] | None) -> PredictorFactory:
    """The predictor factory: a callable as given, or a name looked up in ``PREDICTORS``.

    A name keeps YAML configs and the CLI simple; the lookup goes through the
    kernel registry (which imports the ``predictors`` plugin package lazily),
    so this module still never imports it.
    """
    if isinstance(predictor, str):
        factory: PredictorFactory = PREDICTORS.get(predictor)
    elif callable(predictor):
        factory = predictor
    else:
        raise ConfigError(
            f"predictor={predictor!r} is not allowed; expected a registered predictor name "
            f"(e.g. {DEFAULT_PREDICTOR!r}) or a factory(space, seed=int) -> Predictor"
        )
    if options:
        factory = functools.partial(factory, **options)
    return factory


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Standard normal quantiles of the ranks (ties share their mean rank): scale-free scores."""
    n = len(values)
    if n == 1:
        return np.zeros(1)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(n, dtype=float)
    for value in np.unique(values):  # average the ranks of ties
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    normal = statistics.NormalDist()
    return np.array([normal.inv_cdf((r + 0.5) / n) for r in ranks])
