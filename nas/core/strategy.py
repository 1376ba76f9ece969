"""The ask/tell contract between search logic and execution.

Strategies are pure Python: no I/O, no torch, no Ray. The runner asks for
architectures (possibly several before any is told, as on a cluster), trains
or looks them up, and tells the finished :class:`~nas.core.trial.Trial` back.
Resuming a search is ``warm_start`` with the trials replayed from the store.

The base class does the bookkeeping every strategy needs, so a plugin only
writes :meth:`Strategy._propose` (one candidate) and, if it learns, the
:meth:`Strategy._observe` hook:

* **duplicates** -- a candidate whose key (``space.canonical_key`` by default,
  so functionally identical cells count as one) was already told or is still
  pending is rejected, unless ``allow_duplicates``;
* **constraints** -- hard limits such as ``{"latency_ms": "<= 20"}`` checked on
  an injected cheap cost model ``measure(arch)`` *before* the candidate is
  proposed, so nothing infeasible is ever trained;
* **reproducibility** -- the randomness of the k-th proposal comes from a
  generator seeded by ``(seed, k)``, and everything else a strategy knows is
  derived from the trials told so far. A search resumed with ``warm_start``
  therefore continues exactly as the uninterrupted one would have;
* **phases** -- most strategies sample at random until they have
  :attr:`Strategy.initial_size` results, then use their own method. Each ask
  records which (:attr:`Strategy.last_phase`: :data:`INITIAL_PHASE`, the
  strategy's :attr:`Strategy.phase_name`, or :data:`FALLBACK_PHASE` when no
  proposal was admissible), and the runner stores it with the trial
  (``system_attrs["phase"]``), so a search's history shows when, and whether,
  the method took over from its random start. A strategy may say more about a
  proposal in :attr:`Strategy.last_attrs` (``morphism`` names the parent trial
  and the edit), which the runner stores with the trial's ``system_attrs`` too.
"""

from __future__ import annotations

import abc
import itertools
import logging
import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from nas.core.architecture import Architecture
from nas.core.errors import ArchitectureError, ConfigError
from nas.core.leakage import refuse_test_column
from nas.core.registry import Registry
from nas.core.seeds import check_seed
from nas.core.space import SearchSpace
from nas.core.trial import Direction, Trial, TrialState, parse_objectives

logger = logging.getLogger(__name__)

#: ``measure(arch) -> {"params": 1.2e6, "latency_ms": 14.0, ...}``: a cheap cost model.
Measure = Callable[[Architecture], Mapping[str, float]]

#: Which architectures count as the same for duplicate avoidance.
DuplicateKey = Literal["canonical", "exact"]

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
_CONSTRAINT_FORM = "'<= 20', '< 20', '>= 0.5' or '> 0.5' (an operator <=, <, >=, > and a finite number)"
_EXPRESSION = re.compile(r"^\s*(<=|>=|<|>)\s*([-+0-9.eE_]+|[-+]?inf)\s*$")
_FULL_EXPRESSION = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(<=|>=|<|>)\s*(\S+)\s*$")

#: Spaces up to this size are enumerated when rejection sampling stops finding
#: new admissible architectures, so exhaustion is detected exactly.
_ENUMERATE_LIMIT = 200_000

#: The phase of a random proposal made before the strategy has :attr:`Strategy.initial_size` results.
INITIAL_PHASE = "initial"
#: The phase of a random proposal made because the strategy's own had no admissible candidate.
FALLBACK_PHASE = "fallback"


@dataclass(frozen=True)
class Constraint:
    """A hard limit on one measured metric, e.g. ``latency_ms <= 20``."""

    metric: str
    op: str
    bound: float

    def satisfied(self, value: float) -> bool:
        """True if ``value`` meets the limit; a NaN measurement never does."""
        return not math.isnan(value) and _OPERATORS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


def parse_constraint(metric: str, expression: str | float) -> Constraint:
    """One constraint from a metric name and ``'<= 20'`` (a bare number means ``<=``)."""
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"constraint metric {metric!r} must be a non-empty string")
    refuse_test_column(metric, "constraint")  # a limit on test data would search on it
    if isinstance(expression, int | float) and not isinstance(expression, bool):
        op, text = "<=", str(expression)
    elif isinstance(expression, str) and (match := _EXPRESSION.match(expression)):
        op, text = match.group(1), match.group(2)
    else:
        raise ConfigError(
            f"constraint {metric}: {expression!r} is not a valid expression; expected {_CONSTRAINT_FORM}"
        )
    try:
        bound = float(text)
    except ValueError:
        raise ConfigError(
            f"constraint {metric}: {expression!r} has bound {text!r}, not a number; expected {_CONSTRAINT_FORM}"
        ) from None
    if not math.isfinite(bound):
        raise ConfigError(f"constraint {metric}: bound {text!r} must be finite; expected {_CONSTRAINT_FORM}")
    return Constraint(metric, op, bound)


def parse_constraints(
    spec: Mapping[str, str | float] | Iterable[str | Constraint] | None,
) -> tuple[Constraint, ...]:
    """Constraints from ``{"params": "<= 2e6"}`` or ``["params <= 2e6", ...]`` (CLI form)."""
    if spec is None:
        return ()
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, Mapping):
        return tuple(parse_constraint(metric, expr) for metric, expr in spec.items())
    result = []
    for item in spec:
        if isinstance(item, Constraint):
            result.append(item)
            continue
        match = _FULL_EXPRESSION.match(item) if isinstance(item, str) else None
        if match is None:
            raise ConfigError(
                f"constraint {item!r} is not valid; expected 'metric <op> number', e.g. 'latency_ms <= 20'"
            )
        result.append(parse_constraint(match.group(1), f"{match.group(2)} {match.group(3)}"))
    return tuple(result)


@dataclass(frozen=True)
class Observation:
    """A usable result: a COMPLETE trial whose every objective is a finite number."""

    arch: Architecture
    values: tuple[float, ...]  # in objective order, in the objectives' own units
    trial: Trial


class Strategy(abc.ABC):
    """Base class of every black-box search strategy.

    Subclasses implement :meth:`_propose` and optionally :meth:`_observe`;
    they never override :meth:`ask` or :meth:`tell`, which enforce the
    duplicate, constraint and reproducibility rules described in the module.

    Trials that are FAIL or PRUNED, or COMPLETE with a missing or NaN objective
    value, are recorded (their architectures are not proposed again) but are
    not :attr:`observations`: a strategy never learns from a score it does
    not have. A warning is logged for the NaN case, which is usually a
    diverged training run.
    """

    #: Whether the strategy handles several objectives (single-objective ones
    #: optimise the first objective and only record the others).
    multi_objective: ClassVar[bool] = False

    #: What the strategy's own proposals are called in ``system_attrs["phase"]`` (e.g. ``"mutation"``).
    phase_name: ClassVar[str] = "search"

    #: Whether the strategy learns from learning curves: the runner then tells each trial with its
    #: primary objective's curve as ``system_attrs["curve"]`` (``[[epoch, value], ...]``, not stored
    #: twice), so a multi-fidelity model (``bohb``) sees how good a trial was at each budget.
    uses_curves: ClassVar[bool] = False

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | None = None,
        seed: int | np.random.Generator | None = 0,
        constraints: Mapping[str, str | float] | Iterable[str | Constraint] | None = None,
        measure: Measure | None = None,
        allow_duplicates: bool = False,
        duplicate_key: DuplicateKey = "canonical",
        max_attempts: int = 200,
    ) -> None:
        self.space = space
        self.objectives: dict[str, Direction] = parse_objectives(objectives or {"val_accuracy": "max"})
        self.constraints = parse_constraints(constraints)
        if self.constraints and measure is None:
            raise ConfigError(
                f"constraints {[str(c) for c in self.constraints]} need a cost model: pass "
                "measure=callable(arch) -> {metric: value} so candidates are checked before training"
            )
        if not callable(measure) and measure is not None:
            raise ConfigError(f"measure must be a callable arch -> dict of metrics, got {measure!r}")
        self.measure = measure
        if not isinstance(allow_duplicates, bool):
            raise ConfigError(f"allow_duplicates={allow_duplicates!r} is not allowed; expected True or False")
        self.allow_duplicates = allow_duplicates
        if duplicate_key not in ("canonical", "exact"):
            raise ConfigError(
                f"duplicate_key={duplicate_key!r} is not allowed; expected 'canonical' or 'exact'"
            )
        self.duplicate_key = duplicate_key
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigError(f"max_attempts={max_attempts!r} is not allowed; expected an integer >= 1")
        self.max_attempts = max_attempts
        self.seed_entropy = _entropy(seed)

        self.trials: list[Trial] = []
        self.observations: list[Observation] = []
        self._seen: set[str] = set()
        self._pending: Counter[str] = Counter()
        self._proposals = 0  # architectures handed out (or replayed); seeds the k-th proposal
        self._keys: dict[Architecture, str] = {}
        self._measured: dict[Architecture, Mapping[str, float]] = {}
        #: The phase of the last ``ask`` (None before the first); ``_propose`` may refine it.
        self.last_phase: str | None = None
        #: Bookkeeping of the last ``ask``'s proposal (e.g. ``{"parent": 3, "morphism": {...}}``),
        #: set by ``_propose`` and stored by the runner in the trial's ``system_attrs``.
        self.last_attrs: dict[str, Any] = {}
        self.check_space(space)

    # -- the contract --------------------------------------------------------------------
    def ask(self) -> Architecture | None:
        """The next admissible architecture, or ``None`` (nothing right now, or the space is exhausted).

        Admissible means: not a duplicate of a told or pending architecture
        (unless ``allow_duplicates``) and within every constraint.
        """
        rng = self.rng_for("ask", self._proposals)
        arch: Architecture | None = None
        self.last_phase = self.phase()
        for _ in range(self.max_attempts):
            self.last_attrs = {}
            candidate = self._propose(rng)
            if candidate is None:
                return None
            if self.admissible(candidate):
                arch = candidate
                break
        else:
            logger.debug(
                "%s: no admissible proposal in %d attempts; sampling at random", self, self.max_attempts
            )
            self.last_attrs = {}
            arch = self.random_admissible(rng)
            if arch is None:
                return None
            self.last_phase = FALLBACK_PHASE
        self._pending[self._dedupe_key(arch)] += 1
        self._proposals += 1
        return arch

    def tell(self, trial: Trial) -> None:
        """Learn from a finished trial (COMPLETE, PRUNED or FAIL)."""
        if not isinstance(trial, Trial):
            raise ConfigError(f"tell expects a Trial, got {type(trial).__name__}")
        if not trial.state.finished:
            raise ConfigError(
                f"trial {trial.number} is {trial.state.value}; only finished trials "
                "(COMPLETE, PRUNED, FAIL) can be told"
            )
        if trial.arch.space != self.space.name:
            raise ArchitectureError(
                f"trial {trial.number} is from space {trial.arch.space!r}, the strategy searches {self.space.name!r}"
            )
        key = self._dedupe_key(trial.arch)
        if self._pending[key] > 0:
            self._pending[key] -= 1
            if not self._pending[key]:
                del self._pending[key]
        self._seen.add(key)
        self.trials.append(trial)
        observation = self._observation(trial)
        if observation is not None:
            self.observations.append(observation)
        self._observe(trial, observation)

    def warm_start(self, trials: Iterable[Trial]) -> None:
        """Replay stored trials (resume): each is told in order and counts as one proposal."""
        for trial in trials:
            self.tell(trial)
            self._proposals += 1

    # -- what subclasses write ---------------------------------------------------------------
    @classmethod
    def check_space(cls, space: SearchSpace | type[SearchSpace]) -> None:  # noqa: B027
        """Raise ConfigError if the strategy cannot search ``space`` (an instance or its class; default:
        every space will do).

        A strategy that needs a space capability (``morphism`` needs morphisms)
        says so here, so the contract tests and the config check can ask before building it.
        """
        return None

    @abc.abstractmethod
    def _propose(self, rng: np.random.Generator) -> Architecture | None:
        """One candidate (the base class checks it), or ``None`` if nothing can be proposed now.

        ``rng`` is the generator of this proposal; use it for every random choice.
        """

    def _observe(self, trial: Trial, observation: Observation | None) -> None:  # noqa: B027
        """Hook called after each told trial; ``observation`` is None if it has no usable score."""

    def explain(self) -> dict[str, Any] | None:
        """What the strategy's model has learned, JSON-ready, or None (the default: nothing to say).

        The driver stores it with each trial the strategy proposes
        (``system_attrs["explanation"]``), so an interpretable strategy such
        as ``bowl`` can show why it chose what it chose.
        """
        return None

    @property
    def recipe_fields(self) -> tuple[str, ...]:
        """The training settings the strategy decides per trial (its proposals' ``last_attrs["recipe"]``).

        Empty for architecture-only strategies; the search plan checks that the evaluator takes
        every one of them (``Evaluator.recipe_fields``) before the search starts.
        """
        return ()

    @property
    def initial_size(self) -> int:
        """How many usable results the strategy samples at random before its own method proposes (0: none)."""
        return 0

    def phase(self) -> str:
        """The phase of the next proposal: :data:`INITIAL_PHASE` until ``initial_size`` results, then ``phase_name``.

        A strategy whose phases depend on more than that count overrides this
        (or sets :attr:`last_phase` inside ``_propose``).
        """
        return INITIAL_PHASE if len(self.observations) < self.initial_size else self.phase_name

    # -- helpers for subclasses -------------------------------------------------------------
    def rng_for(self, *stream: int | str) -> np.random.Generator:
        """A generator determined by the seed and ``stream`` (e.g. ``("fit", n_observations)``)."""
        words = [self.seed_entropy] + [
            int.from_bytes(s.encode(), "little") if isinstance(s, str) else int(s) for s in stream
        ]
        return np.random.default_rng(words)

    @property
    def primary(self) -> str:
        """The first objective: the one single-objective strategies optimise."""
        return next(iter(self.objectives))

    @property
    def num_pending(self) -> int:
        return sum(self._pending.values())

    def utility(self, observation: Observation) -> float:
        """The primary objective signed so that larger is better."""
        value = observation.values[0]
        return value if self.objectives[self.primary] is Direction.MAX else -value

    def best(self) -> Observation | None:
        """The incumbent by the primary objective (the first told wins ties)."""
        if not self.observations:
            return None
        return max(self.observations, key=self.utility)

    def minimisation_matrix(self, observations: Sequence[Observation] | None = None) -> np.ndarray:
        """Objective values as an (n, m) array with every column to be minimised."""
        rows = self.observations if observations is None else observations
        signs = np.array([-1.0 if d is Direction.MAX else 1.0 for d in self.objectives.values()])
        if not rows:
            return np.zeros((0, len(signs)))
        return np.array([o.values for o in rows], dtype=float) * signs

    def is_duplicate(self, arch: Architecture) -> bool:
        """Whether ``arch`` (by the duplicate key) was told already or is pending."""
        key = self._dedupe_key(arch)
        return key in self._seen or self._pending[key] > 0

    def feasible(self, arch: Architecture) -> bool:
        """Whether ``arch`` meets every constraint on the cost model."""
        if not self.constraints:
            return True
        metrics = self._measured.get(arch)
        if metrics is None and self.measure is not None:  # __init__ requires measure with constraints
            metrics = dict(self.measure(arch))
            self._measured[arch] = metrics
        metrics = metrics or {}
        for constraint in self.constraints:
            if constraint.metric not in metrics:
                raise ConfigError(
                    f"constraint {constraint} needs metric {constraint.metric!r}, but the cost model "
                    f"measures only {sorted(metrics)}"
                )
            if not constraint.satisfied(float(metrics[constraint.metric])):
                return False
        return True

    def admissible(self, arch: Architecture) -> bool:
        """Whether ``ask`` may return ``arch``: new (unless duplicates are allowed) and feasible."""
        if not self.allow_duplicates and self.is_duplicate(arch):
            return False
        return self.feasible(arch)

    def random_admissible(self, rng: np.random.Generator) -> Architecture | None:
        """A uniformly random admissible architecture, or ``None`` if there is none.

        Rejection sampling first; when that keeps failing, small spaces are
        enumerated so that ``None`` really means exhausted (or nothing feasible).
        """
        for _ in range(self.max_attempts):
            arch = self.space.sample(rng)
            if self.admissible(arch):
                return arch
        if self.space.size() > _ENUMERATE_LIMIT:
            logger.warning(
                "%s: %d random samples were all duplicates or infeasible; giving up for now",
                self,
                self.max_attempts,
            )
            return None
        remaining = [a for a in self._enumerate() if self.admissible(a)]
        if not remaining:
            logger.info("%s: every admissible architecture of %s was proposed", self, self.space.name)
            return None
        return remaining[int(rng.integers(len(remaining)))]

    # -- internals ---------------------------------------------------------------------------
    def _dedupe_key(self, arch: Architecture) -> str:
        key = self._keys.get(arch)
        if key is None:
            key = self.space.canonical_key(arch) if self.duplicate_key == "canonical" else arch.key
            self._keys[arch] = key
        return key

    def _enumerate(self) -> Iterable[Architecture]:
        choices = self.space.choices()
        for values in itertools.product(*choices.values()):
            arch = Architecture(self.space.name, tuple(zip(choices, values, strict=True)))
            if self.space.is_valid(arch):
                yield arch

    def _observation(self, trial: Trial) -> Observation | None:
        if trial.state is not TrialState.COMPLETE:
            return None
        values = tuple(trial.value(name) for name in self.objectives)
        if not all(math.isfinite(v) for v in values):
            logger.warning(
                "trial %d is COMPLETE but objective values %s are missing or not finite; "
                "it is treated as failed",
                trial.number,
                dict(zip(self.objectives, values, strict=True)),
            )
            return None
        return Observation(trial.arch, values, trial)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space.name!r})"


def _entropy(seed: int | np.random.Generator | None) -> int:
    """An integer seed root; a Generator contributes one draw, None fresh OS entropy."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**63))
    if seed is None:
        return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    return check_seed(seed)


#: Registered strategies; importing ``nas.strategies`` registers the built-ins.
STRATEGIES: Registry[type[Strategy]] = Registry("strategy", builtins="nas.strategies")
