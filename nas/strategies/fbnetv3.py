"""FBNetV3-style joint architecture and training-recipe search (Dai et al. 2021).

A network's accuracy depends on how it is trained as much as on what it is:
FBNetV3 searches both at once. Each trial is an architecture *and* a recipe
(learning rate, weight decay, epochs, label smoothing, mixup, ...), and one
predictor scores the pair. The recipe is stored with the trial
(``system_attrs["recipe"]``, via :attr:`Strategy.last_attrs`), the runner hands
it to the evaluator (``EvalRequest.recipe``), which trains with it, and export
shows it on the model card.

The search space of recipes is the ``recipe`` option, one entry per training
setting::

    recipe:
      lr: {low: 0.01, high: 0.2, log: true, default: 0.05}
      weight_decay: {low: 1.0e-5, high: 1.0e-3, log: true}
      label_smoothing: {choices: [0.0, 0.1]}
      mixup: {choices: [0.0, 0.2]}
      epochs: {choices: [2, 4], default: 4}

a continuous range (``low``, ``high``, optional ``log`` and ``integer``) or a
list of ``choices``, each with a ``default`` (else the range's (geometric)
middle or the first choice): the recipe of a told trial that has none.
``search_recipe: false`` proposes no recipe, so every trial trains with the
evaluator's own settings: architecture-only search with the same predictor
(the baseline of ``benchmarks/fbnetv3.py``).
Which settings a recipe may set is the evaluator's business
(``Evaluator.recipe_fields``); the search plan refuses others before anything runs.

The predictor is injected like ``predictor``'s (a name in ``nas.core.PREDICTORS``,
default ``recipe_mlp``, or a factory) and must offer ``pretrain(archs)``,
``fit(archs, targets, recipes)`` and ``predict_dist(archs, recipes)``, recipes
being the numeric rows :meth:`RecipeSpace.encode` makes. It is created once,
pre-trained on ``pretrain_archs`` random architectures' cheap proxies (FLOPs,
params, a zero-cost score: the predictor computes them, this module never
touches torch), and fine-tuned on the results before each proposal after
``n_initial`` random architectures. Candidates are mutations of the best
architectures and random ones, each with the best trial's recipe plus
``recipes_per_arch`` new ones; the acquisition is ``ucb``, ``its`` or ``mean``.

New recipes are local moves (``recipe_sampling: local``, the default): one
setting, and each other with chance 1/n, moves by a normal step of
``recipe_step`` (0.15) of its range, or to a neighbouring choice, starting
from the default recipe in the initial phase and from the best trials'
recipes afterwards. That is FBNetV3's evolutionary search over recipes around
a known-good baseline; with a few dozen trials, uniform recipes
(``recipe_sampling: uniform``) spend most of them on learning rates where the
network does not train, which the first measurement here showed (digits,
30 trials: uniform recipes lost to the default recipe on 2 of 3 seeds).

Limit: duplicates are judged on the architecture, as for every strategy, so an
architecture is trained with one recipe (``allow_duplicates`` lifts it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.space import SearchSpace
from nas.core.strategy import STRATEGIES, Strategy
from nas.core.trial import Trial
from nas.strategies.acquisition import acquisition_scores, checked_predictions
from nas.strategies.options import choice_option, float_option, int_option
from nas.strategies.predictor import PredictorFactory, _factory

logger = logging.getLogger(__name__)

#: The recipe searched when none is given: the regularisation and optimisation knobs FBNetV3 tunes
#: (not epochs: at an equal number of trials more epochs nearly always wins, so searching them makes
#: sense only with a cost objective or constraint; add ``epochs`` to ``recipe`` to do so).
DEFAULT_RECIPE: dict[str, dict[str, Any]] = {
    "lr": {"low": 0.005, "high": 0.2, "log": True, "default": 0.05},
    "weight_decay": {"low": 1e-5, "high": 1e-2, "log": True, "default": 5e-4},
    "label_smoothing": {"choices": [0.0, 0.1, 0.2], "default": 0.0},
    "mixup": {"choices": [0.0, 0.2, 0.4], "default": 0.0},
}
ACQUISITIONS = ("ucb", "its", "mean")
RECIPE_SAMPLINGS = ("local", "uniform")
_SPEC_KEYS = {"low", "high", "log", "integer", "choices", "default"}


class Decision:
    """One recipe setting: a range or a list of choices, with a default and a [0, 1] encoding."""

    def __init__(self, name: str, spec: Any) -> None:
        where = f"strategy option recipe.{name}"
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"{where}={spec!r} is not allowed; expected {{low, high[, log, integer, default]}} "
                "or {choices[, default]}"
            )
        unknown = sorted(set(spec) - _SPEC_KEYS)
        if unknown:
            raise ConfigError(f"{where} has unknown keys {unknown}; allowed: {sorted(_SPEC_KEYS)}")
        self.name = name
        self.choices: list[Any] | None = None
        if "choices" in spec:
            if {"low", "high", "log", "integer"} & set(spec):
                raise ConfigError(f"{where} gives both choices and a range; give one")
            choices = spec["choices"]
            if isinstance(choices, str | bytes) or not isinstance(choices, Sequence) or not choices:
                raise ConfigError(f"{where}.choices={choices!r} is not allowed; expected a non-empty list")
            if any(isinstance(c, Mapping | list) for c in choices) or len(set(map(repr, choices))) < len(
                choices
            ):
                raise ConfigError(f"{where}.choices={list(choices)!r} must be distinct plain values")
            self.choices = list(choices)
            self.numeric = all(isinstance(c, int | float) and not isinstance(c, bool) for c in choices)
            default = spec.get("default", self.choices[0])
            if default not in self.choices:
                raise ConfigError(f"{where}.default={default!r} is not one of the choices {self.choices}")
        else:
            if "low" not in spec or "high" not in spec:
                raise ConfigError(f"{where} needs low and high (a range) or choices")
            self.low = float_option(f"recipe.{name}.low", spec["low"], -math.inf)
            self.high = float_option(f"recipe.{name}.high", spec["high"], -math.inf)
            if not self.low < self.high:
                raise ConfigError(f"{where}: low={self.low:g} must be below high={self.high:g}")
            self.log = spec.get("log", False)
            self.integer = spec.get("integer", False)
            for key in ("log", "integer"):
                if not isinstance(spec.get(key, False), bool):
                    raise ConfigError(f"{where}.{key}={spec[key]!r} is not allowed; expected true or false")
            if self.log and self.low <= 0:
                raise ConfigError(f"{where}: a log range needs low > 0, got {self.low:g}")
            middle = math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2
            default = spec.get("default", round(middle) if self.integer else middle)
            default = float_option(f"recipe.{name}.default", default, self.low, self.high)
            default = int(round(default)) if self.integer else default
        self.default = default

    def sample(self, rng: np.random.Generator) -> Any:
        if self.choices is not None:
            return self.choices[int(rng.integers(len(self.choices)))]
        return self._at(rng.random())

    def _at(self, u: float) -> Any:
        """The range's value at position ``u`` in [0, 1] (on the log scale if ``log``): :meth:`encode`'s inverse."""
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return int(round(value)) if self.integer else float(value)

    def near(self, value: Any, rng: np.random.Generator, step: float) -> Any:
        """A value close to ``value``: a normal step of ``step`` (a fraction of the range, on the log
        scale if ``log``) reflected into the range, or a numeric choice's neighbour, another choice else."""
        if self.choices is None:
            (u,) = self.encode(value)
            u = abs(u + step * float(rng.standard_normal()))
            u = 2.0 - u if u > 1.0 else u
            return self._at(min(1.0, max(0.0, u)))
        if len(self.choices) == 1:
            return value
        if self.numeric:
            ordered = sorted(self.choices)
            i = ordered.index(value)
            j = i + (1 if rng.random() < 0.5 else -1)
            return ordered[j if 0 <= j < len(ordered) else 2 * i - j]  # reflected at the ends
        others = [c for c in self.choices if c != value]
        return others[int(rng.integers(len(others)))]

    def check(self, value: Any) -> Any:
        """``value`` if this decision allows it, else a ConfigError naming what is allowed."""
        if self.choices is not None:
            if value not in self.choices:
                raise ConfigError(
                    f"recipe {self.name}={value!r} is not allowed; expected one of {self.choices}"
                )
            return value
        return float_option(f"recipe.{self.name}", value, self.low, self.high)

    def encode(self, value: Any) -> list[float]:
        """[0, 1] position in the range (log scale if ``log``), ordinal position of a numeric
        choice, or one-hot bits of other choices."""
        if self.choices is None:
            low, high, v = self.low, self.high, float(value)
            if self.log:
                low, high, v = math.log(low), math.log(high), math.log(v)
            return [(v - low) / (high - low)]
        if self.numeric:
            ordered = sorted(self.choices)
            return [ordered.index(value) / max(1, len(ordered) - 1)]
        return [1.0 if value == c else 0.0 for c in self.choices]


class RecipeSpace:
    """The recipe decisions of a search: sampling, checking, defaults and the predictor's encoding."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        if not isinstance(spec, Mapping) or not spec:
            raise ConfigError(
                f"strategy option recipe={spec!r} is not allowed; expected a mapping setting -> "
                "{low, high, ...} or {choices: [...]}, e.g. {lr: {low: 0.01, high: 0.2, log: true}}"
            )
        self.decisions = {str(name): Decision(str(name), value) for name, value in spec.items()}

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.decisions)

    def default(self) -> dict[str, Any]:
        return {name: d.default for name, d in self.decisions.items()}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {name: d.sample(rng) for name, d in self.decisions.items()}

    def near(self, recipe: Mapping[str, Any], rng: np.random.Generator, step: float) -> dict[str, Any]:
        """``recipe`` with one setting moved (:meth:`Decision.near`) and each other with chance 1/n."""
        names = list(self.decisions)
        moved = names[int(rng.integers(len(names)))]
        return {
            name: d.near(recipe[name], rng, step)
            if name == moved or rng.random() < 1.0 / len(names)
            else recipe[name]
            for name, d in self.decisions.items()
        }

    def check(self, recipe: Mapping[str, Any]) -> dict[str, Any]:
        """A stored recipe as this space reads it: unknown settings refused, missing ones defaulted."""
        unknown = sorted(set(recipe) - set(self.decisions))
        if unknown:
            raise ConfigError(
                f"recipe sets {unknown}, which the search does not decide; its settings: {list(self.fields)}"
            )
        return {
            name: d.check(recipe[name]) if name in recipe else d.default for name, d in self.decisions.items()
        }

    def encode(self, recipes: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.array(
            [[x for name, d in self.decisions.items() for x in d.encode(r[name])] for r in recipes]
        )


@STRATEGIES.register("fbnetv3")
class FBNetV3Search(Strategy):
    """Joint architecture-recipe search with a proxy-pre-trained predictor (FBNetV3)."""

    phase_name = "joint predictor"

    def __init__(
        self,
        space: SearchSpace,
        recipe: Mapping[str, Any] | None = None,
        search_recipe: bool = True,
        predictor: PredictorFactory | str = "recipe_mlp",
        predictor_options: Mapping[str, Any] | None = None,
        n_initial: int = 10,
        pretrain_archs: int = 100,
        n_candidates: int = 50,
        recipes_per_arch: int = 4,
        num_parents: int = 5,
        acquisition: str = "ucb",
        ucb_beta: float = 1.0,
        recipe_sampling: str = "local",
        recipe_step: float = 0.15,
        **options: Any,
    ) -> None:
        super().__init__(space, **options)
        self.recipe_space = RecipeSpace(DEFAULT_RECIPE if recipe is None else recipe)
        if not isinstance(search_recipe, bool):
            raise ConfigError(
                f"strategy option search_recipe={search_recipe!r} is not allowed; expected true or false"
            )
        self.search_recipe = search_recipe
        self.predictor_factory = _factory(predictor, predictor_options)
        self.n_initial = int_option("n_initial", n_initial, 2)
        self.pretrain_archs = int_option("pretrain_archs", pretrain_archs, 0)
        self.n_candidates = int_option("n_candidates", n_candidates, 1)
        self.recipes_per_arch = int_option("recipes_per_arch", recipes_per_arch, 1)
        self.num_parents = int_option("num_parents", num_parents, 1)
        self.acquisition = choice_option("acquisition", acquisition, ACQUISITIONS)
        self.ucb_beta = float_option("ucb_beta", ucb_beta, 0.0)
        self.recipe_sampling = choice_option("recipe_sampling", recipe_sampling, RECIPE_SAMPLINGS)
        self.recipe_step = float_option("recipe_step", recipe_step, 0.0, 1.0)
        self._model: Any = None
        self._recipes: dict[int, dict[str, Any]] = {}  # trial number -> its (checked) recipe

    @property
    def recipe_fields(self) -> tuple[str, ...]:
        """The training settings this strategy decides per trial (the plan checks the evaluator takes them)."""
        return self.recipe_space.fields if self.search_recipe else ()

    @property
    def initial_size(self) -> int:
        return self.n_initial

    # -- proposal ----------------------------------------------------------------------------
    def _propose(self, rng: np.random.Generator) -> Architecture | None:
        if len(self.observations) < self.n_initial:
            arch = self.space.sample(rng)
            self._attach(self._new_recipe(rng, [self.recipe_space.default()]))
            return arch
        archs = [o.arch for o in self.observations]
        targets = np.array([self.utility(o) for o in self.observations])
        if np.ptp(targets) == 0:
            self._attach(self._new_recipe(rng, [self.recipe_space.default()]))
            return self.space.sample(rng)
        model = self._fitted(archs, targets)
        pairs = self._candidates(rng, targets)
        if not pairs:
            return None
        encoded = self.recipe_space.encode([recipe for _, recipe in pairs])
        prediction = model.predict_dist([a for a, _ in pairs], encoded)
        mean, std = checked_predictions(model, prediction, len(pairs))
        scores = acquisition_scores(self.acquisition, mean, std, rng, ucb_beta=self.ucb_beta)
        arch, recipe = pairs[int(np.argmax(scores))]
        self._attach(recipe)
        return arch

    def _attach(self, recipe: dict[str, Any]) -> None:
        """Propose ``recipe`` with the architecture (none without recipe search: the evaluator's own)."""
        if self.search_recipe:
            self.last_attrs = {"recipe": recipe}

    def _candidates(
        self, rng: np.random.Generator, targets: np.ndarray
    ) -> list[tuple[Architecture, dict[str, Any]]]:
        """New architectures near the best and at random, each with several recipes (or the default)."""
        order = np.argsort(-targets, kind="stable")[: self.num_parents]
        parents = [self.observations[int(i)] for i in order]
        archs: dict[str, Architecture] = {}
        for _ in range(self.n_candidates * 4):
            if len(archs) >= self.n_candidates:
                break
            if rng.random() < 0.5:
                parent = parents[int(rng.integers(len(parents)))].arch
                options = self.space.neighbours(parent)
                arch = options[int(rng.integers(len(options)))] if options else self.space.sample(rng)
            else:
                arch = self.space.sample(rng)
            if self.admissible(arch):
                archs.setdefault(self._dedupe_key(arch), arch)
        good = [self._recipes.get(p.trial.number, self.recipe_space.default()) for p in parents]
        pairs = []
        for arch in archs.values():
            if not self.search_recipe:
                pairs.append((arch, self.recipe_space.default()))
                continue
            pairs.append((arch, good[0]))
            pairs += [(arch, self._new_recipe(rng, good)) for _ in range(self.recipes_per_arch)]
        return pairs

    def _new_recipe(self, rng: np.random.Generator, good: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """A recipe to try: a local move from one of the ``good`` ones (FBNetV3's evolutionary step) or,
        with ``recipe_sampling: uniform``, a uniform draw."""
        if self.recipe_sampling == "uniform":
            return self.recipe_space.sample(rng)
        return self.recipe_space.near(good[int(rng.integers(len(good)))], rng, self.recipe_step)

    # -- the model ---------------------------------------------------------------------------------
    def _fitted(self, archs: list[Architecture], targets: np.ndarray) -> Any:
        """The predictor: created and pre-trained once, fine-tuned on every result so far."""
        if self._model is None:
            model = self.predictor_factory(self.space, seed=int(self.rng_for("fit").integers(2**20)))
            for method in ("pretrain", "fit", "predict_dist"):
                if not callable(getattr(model, method, None)):
                    raise ConfigError(
                        f"predictor {type(model).__name__} has no {method}(); fbnetv3 needs pretrain(archs), "
                        "fit(archs, targets, recipes) and predict_dist(archs, recipes) (e.g. 'recipe_mlp')"
                    )
            if self.pretrain_archs >= 2:
                rng = self.rng_for("pretrain")
                model.pretrain([self.space.sample(rng) for _ in range(self.pretrain_archs)])
            self._model = model
        recipes = [self._recipes.get(o.trial.number, self.recipe_space.default()) for o in self.observations]
        self._model.fit(archs, targets.tolist(), self.recipe_space.encode(recipes))
        return self._model

    def _observe(self, trial: Trial, observation: Any) -> None:
        stored = trial.system_attrs.get("recipe")
        # A trial without a recipe (e.g. from before the search used recipes) ran the default one.
        self._recipes[trial.number] = (
            self.recipe_space.check(stored) if stored else self.recipe_space.default()
        )


__all__ = ["DEFAULT_RECIPE", "FBNetV3Search", "RecipeSpace"]
